//! The single-table layout: attribute names and key formats, kept here so every format
//! lives in one place and `infra/tables.json` is checked against the same names.
//!
//! | pk | sk | what | gsi1pk / gsi1sk |
//! |---|---|---|---|
//! | `CONN#<c>` | `#META` | a connection: its user, nick, roles, TTL | – |
//! | `USER#<u>` | `#CONNS` | the user's live connections (`conns`: `<c>\|<expiresAt>`), latest nick | – |
//! | `USER#<u>` | `ROOM#<r>` | the user's membership, seen from the user (`rooms_of`) | – |
//! | `ROOM#<r>` | `#META` | the room in the catalog | `CATALOG` / `ROOM#<r>` |
//! | `ROOM#<r>` | `USER#<u>` | the membership: nick, the member's live connections (`conns`) | `INROOM#<shard of u>` / `USER#<u>#ROOM#<r>` |
//! | `NICK#<n>` | `#NICK` | the nickname claim: user, `connections` holding it, HTTP `leaseUntil`, TTL | – |
//! | `CATALOG` | `#COUNT` | how many rooms the catalog holds (`roomCount`) | – |
//! | `QUOTA#<bucket>` | `#BUCKET` | a rate limit's token bucket: `fullAt`, TTL | – |
//! | `HIST#ROOM#<r>` | `MSG#<id>` | a room's message: `id`, `from`, `text`, `ts`, `replyTo`, `editedAt`, `editId`, `deleted`, TTL | – |
//! | `HIST#DM#<bytes of a>#<a>#<b>` | `MSG#<id>` | a direct message between users `a` ≤ `b`: the same, and `to` | – |
//! | `CONVS#<u>` | `WITH#<v>` | user `u`'s conversation with `v`: `with`, and its latest message as a message item has it | `CONVS#<u>` / `<ms of the latest id, 16 digits>#<latest id>` |
//! | `LOG#<epoch>#<partition>` | `#ARCHIVED` | how far kafka-archive has applied the partition: `next`, the offset after its last chat record | – |
//! | `USER#<u>` | `#PROFILE` | a signed-in user as last seen: `nick` (a DM may wait for it while it is offline), TTL | – |
//! | `FILE#<fileId>` | `#UPLOAD` | a granted upload: `uploader`, `room` or `users` (the two of a direct conversation), `name`, `contentType`, `size`, TTL a day on | – |
//!
//! A conversation's messages are one partition of their own, apart from the room's or the
//! users' items: its Query needs no filter, and a busy room's history does not share a
//! partition with its members. The partition holds nothing but `MSG#` items, so a Query
//! bounded on one side by `MSG#<id>` stays among messages. Message ids come from the
//! messages' log positions (`MessageId::at`), so the sort key orders a conversation's
//! messages as the log does; ids kept before that (ULIDs) sort before them, by time.
//!
//! A user's conversations list is a partition of its own, one item per other user, and on
//! `gsi1` sorted by the time of their latest message: `conversations` is one Query of the
//! index, latest first.

use roomcast_core::history::Conversation;
use roomcast_core::model::{ConnectionId, MessageId, Nick, RoomName, UserId};

/// Attribute names. Key attributes must match `infra/tables.json` (a unit test checks).
pub mod attr {
    pub const PK: &str = "pk";
    pub const SK: &str = "sk";
    pub const GSI1_PK: &str = "gsi1pk";
    pub const GSI1_SK: &str = "gsi1sk";
    /// The TTL attribute (seconds since the epoch). Items whose time has passed are ignored
    /// on read: DynamoDB may take days to delete them.
    pub const EXPIRES_AT: &str = "expiresAt";

    pub const CONNECTION_ID: &str = "connectionId";
    pub const USER_ID: &str = "userId";
    pub const NICK: &str = "nick";
    /// On a connection: the list of its roles.
    pub const ROLES: &str = "roles";
    /// On a connection: whether an authorizer vouched for its user.
    pub const AUTHENTICATED: &str = "authenticated";
    pub const CONNECTED_AT: &str = "connectedAt";
    /// On a connection being removed: whether the removal found its user's last live
    /// connection, recorded so that a removal completed by a later call reports it.
    pub const DEPARTED_LAST: &str = "departedLast";
    pub const ROOM: &str = "room";
    pub const NAME: &str = "name";
    pub const CREATED_BY: &str = "createdBy";
    pub const CREATED_AT: &str = "createdAt";
    /// On a nickname claim: the string set of the connection ids holding it.
    pub const CONNECTIONS: &str = "connections";
    /// On a nickname claim: until when (seconds since the epoch) its user holds it without
    /// a connection, for the HTTP API; never past the claim's `expiresAt`.
    pub const LEASE_UNTIL: &str = "leaseUntil";
    /// On a user's `#CONNS` and on a membership: the string set of the user's live
    /// connections as `<connectionId>|<expiresAt>` entries, so that a connection whose
    /// `$disconnect` never came stops counting once its TTL has passed.
    /// Absent when there is none (DynamoDB has no empty sets).
    pub const CONNS: &str = "conns";

    // A kept message. `text` is absent on a tombstone; `replyTo`, `editedAt`, `editId`
    // are absent until they apply.
    pub const ID: &str = "id";
    /// The author, as a map of `userId` and `nick`.
    pub const FROM: &str = "from";
    /// The recipient of a direct message, as a map of `userId` and `nick`.
    pub const TO: &str = "to";
    pub const TEXT: &str = "text";
    /// Milliseconds since the epoch, as the message frame's `ts`.
    pub const TS: &str = "ts";
    pub const REPLY_TO: &str = "replyTo";
    pub const EDITED_AT: &str = "editedAt";
    /// The id of the latest edit applied: an edit applies only over an older one.
    pub const EDIT_ID: &str = "editId";
    pub const DELETED: &str = "deleted";
    /// On a message with files: their metadata as one JSON string (no urls).
    pub const FILES: &str = "files";

    // A granted upload (`FILE#<id>`): who may attach it where, and what it must be.
    pub const UPLOADER: &str = "uploader";
    /// On an upload for a direct conversation: its two user ids, in order (one for a
    /// room has `room`).
    pub const USERS: &str = "users";
    pub const CONTENT_TYPE: &str = "contentType";
    pub const SIZE: &str = "size";

    /// On the catalog's `#COUNT`: how many rooms were created.
    pub const ROOM_COUNT: &str = "roomCount";
    /// On a token bucket: when it is full again, in milliseconds since the epoch.
    pub const FULL_AT: &str = "fullAt";
}

/// The one global secondary index.
pub const GSI1: &str = "gsi1";

/// Sort key of a connection's own item and of a room's catalog item.
pub const META: &str = "#META";
/// Sort key of a user's live connections.
pub const CONNS: &str = "#CONNS";
/// Sort key of a nickname claim.
pub const NICK_SK: &str = "#NICK";
/// `gsi1pk` of every catalog item; `pk` of the catalog's room count.
pub const CATALOG: &str = "CATALOG";
/// Sort key of the catalog's room count.
pub const COUNT: &str = "#COUNT";
/// Sort key of a token bucket.
pub const BUCKET: &str = "#BUCKET";

/// The prefix of every room key: a user's memberships sort by room name under it.
pub const ROOM_PREFIX: &str = "ROOM#";
/// The prefix of every user key: a room's members sort by user id under it.
pub const USER_PREFIX: &str = "USER#";

/// How many `INROOM#n` partitions the memberships are spread over on `gsi1`, so that the
/// broadcast audience is not one hot GSI partition.
pub const AUDIENCE_SHARDS: u32 = 8;

/// `pk` of a connection's `#META`.
pub fn connection(id: &ConnectionId) -> String {
    format!("CONN#{id}")
}

/// `pk` of a user's partition (its `#CONNS` and its memberships); `sk` of its membership
/// in a room's partition.
pub fn user(user: &UserId) -> String {
    format!("{USER_PREFIX}{user}")
}

/// `pk` of a room's partition (its catalog item and its memberships); `sk` of a membership
/// in a user's partition; `gsi1sk` of a catalog item.
pub fn room(room: &RoomName) -> String {
    format!("{ROOM_PREFIX}{room}")
}

/// `gsi1pk` of a membership: one of the [`AUDIENCE_SHARDS`] audience partitions.
pub fn audience_shard(shard: u32) -> String {
    format!("INROOM#{shard}")
}

/// `gsi1sk` of a membership, unique per (user, room): room names cannot hold `#`.
pub fn audience_entry(user: &UserId, room: &RoomName) -> String {
    format!("{USER_PREFIX}{user}#{ROOM_PREFIX}{room}")
}

/// `pk` of a token bucket.
pub fn bucket(key: &roomcast_core::quota::BucketKey) -> String {
    format!("QUOTA#{key}")
}

/// `pk` of a nickname claim.
pub fn nick(nick: &Nick) -> String {
    format!("NICK#{nick}")
}

/// The prefix of every message's sort key.
pub const MESSAGE_PREFIX: &str = "MSG#";

/// `pk` of a conversation's messages. A room's name cannot hold `#`, but user ids are
/// opaque and may: the first id of a direct conversation is preceded by its length in
/// bytes, so that (`a#b`, `c`) and (`a`, `b#c`) cannot meet in one key. The ids are taken
/// in the conversation's order ([`Conversation::direct`] puts them in order).
pub fn conversation(conversation: &Conversation) -> String {
    match conversation {
        Conversation::Room(room) => format!("HIST#ROOM#{room}"),
        Conversation::Direct(a, b) => format!("HIST#DM#{}#{a}#{b}", a.as_str().len()),
    }
}

/// `sk` of a message in its conversation's partition.
pub fn message(id: &MessageId) -> String {
    format!("{MESSAGE_PREFIX}{id}")
}

/// `pk` of a user's conversations list, and its `gsi1pk`.
pub fn conversations_of(user: &UserId) -> String {
    format!("CONVS#{user}")
}

/// `sk` of a user's conversation with `other` in its list.
pub fn conversation_with(other: &UserId) -> String {
    format!("WITH#{other}")
}

/// `gsi1sk` of a conversation in its user's list: by the time of its latest message, then
/// that message's id; a `before` cursor is the same string for the id it names.
pub fn latest_first(id: &MessageId) -> String {
    format!("{:016}#{id}", id.timestamp_ms().max(0))
}

/// `pk` of how far the archive has applied a partition of the log (of one epoch).
pub fn archived(epoch: u8, partition: i32) -> String {
    format!("LOG#{epoch}#{partition}")
}

/// Sort key of an archive mark.
pub const ARCHIVED: &str = "#ARCHIVED";

/// Sort key of a signed-in user's profile in its `USER#` partition.
pub const PROFILE: &str = "#PROFILE";

/// `pk` of a granted upload.
pub fn upload(file: &roomcast_core::files::FileId) -> String {
    format!("FILE#{file}")
}

/// Sort key of a granted upload.
pub const UPLOAD: &str = "#UPLOAD";

/// The audience shard of a user: all its memberships land in one shard, so the broadcast
/// audience reads each user's connections from one partition. FNV-1a rather than `std`'s
/// hasher, whose output may change between Rust releases.
pub fn shard_of(user: &UserId) -> u32 {
    let hash = user.as_str().bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    hash % AUDIENCE_SHARDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_in_range() {
        // Pinned values: a change of hash would scatter existing items over new shards.
        assert_eq!(shard_of(&UserId::new("")), 0x811c_9dc5 % AUDIENCE_SHARDS);
        assert_eq!(shard_of(&UserId::new("a")), 0xe40c_292c % AUDIENCE_SHARDS);
        let shards: std::collections::BTreeSet<u32> =
            (0..200).map(|i| shard_of(&UserId::new(format!("user-{i}")))).collect();
        assert_eq!(shards.len(), AUDIENCE_SHARDS as usize, "200 ids should use every shard");
    }

    #[test]
    fn keys_sort_like_the_names_they_hold() {
        let (a, b) = (UserId::new("Ab="), UserId::new("Ab0"));
        assert_eq!(a < b, user(&a) < user(&b));
        let (x, y) = (RoomName::trusted("a.b"), RoomName::trusted("a_b"));
        assert_eq!(x < y, room(&x) < room(&y));
        assert!(room(&x).starts_with(ROOM_PREFIX) && user(&a).starts_with(USER_PREFIX));
        // The fixed items of a partition never fall inside a prefix Query.
        for fixed in [META, CONNS, NICK_SK, PROFILE, ARCHIVED, UPLOAD] {
            assert!(!fixed.starts_with(ROOM_PREFIX) && !fixed.starts_with(USER_PREFIX));
            assert!(!fixed.starts_with(MESSAGE_PREFIX));
        }
    }

    fn direct(a: &str, b: &str) -> Conversation {
        Conversation::direct(UserId::new(a), UserId::new(b))
    }

    /// Reads a direct conversation's key back: the length, then that many bytes, then `#`
    /// and the rest.
    fn decode_direct(key: &str) -> Option<(&str, &str)> {
        let rest = key.strip_prefix("HIST#DM#")?;
        let (length, rest) = rest.split_once('#')?;
        let length: usize = length.parse().ok()?;
        let (a, rest) = (rest.get(..length)?, rest.get(length..)?);
        Some((a, rest.strip_prefix('#')?))
    }

    #[test]
    fn conversation_keys_are_pinned_and_never_meet() {
        // Pinned: a change of format would hide every message kept before it.
        let general = Conversation::Room(RoomName::trusted("general"));
        assert_eq!(conversation(&general), "HIST#ROOM#general");
        assert_eq!(conversation(&direct("u-b", "u-a")), "HIST#DM#3#u-a#u-b");

        // Ids holding `#` (or digits, or the separator's look-alikes) cannot forge another
        // pair's key.
        let pairs = [
            ("a#b", "c"),
            ("a", "b#c"),
            ("a#", "b"),
            ("a", "#b"),
            ("1#a", "b"),
            ("1", "a#b"),
            ("", "1#a#b"),
            ("ROOM#general", "x"),
        ];
        let mut seen = std::collections::HashMap::new();
        for (a, b) in pairs {
            let key = conversation(&direct(a, b));
            if let Some(other) = seen.insert(key.clone(), (a, b)) {
                panic!("{other:?} and {:?} share the key {key}", (a, b));
            }
        }
        assert_ne!(conversation(&direct("a#b", "c")), conversation(&direct("a", "b#c")));
        // The key gives back its pair, so no two pairs can share it.
        for (a, b) in pairs.into_iter().chain([("é#", "ü"), ("12", "3"), ("x|y", "#")]) {
            let Conversation::Direct(first, second) = direct(a, b) else {
                unreachable!()
            };
            let key = conversation(&direct(a, b));
            assert_eq!(decode_direct(&key), Some((first.as_str(), second.as_str())), "{key}");
        }
        // A room never shares a key with a conversation between users.
        assert_ne!(
            conversation(&Conversation::Room(RoomName::trusted("x"))),
            conversation(&direct("ROOM", "x"))
        );
        // Nor with the partitions of connections, users, rooms or nicknames.
        for key in [conversation(&general), conversation(&direct("a", "b"))] {
            for other in ["CONN#", USER_PREFIX, ROOM_PREFIX, "NICK#", CATALOG, "INROOM#", "FILE#"] {
                assert!(!key.starts_with(other), "{key} starts with {other}");
            }
        }
    }

    #[test]
    fn upload_keys_are_pinned() {
        // Pinned: a change of format would lose the uploads granted before it.
        let file = roomcast_core::files::FileId::parse("01HZY3J5Q6V9W8X7Y6Z5A4B3C2").unwrap();
        assert_eq!(upload(&file), "FILE#01HZY3J5Q6V9W8X7Y6Z5A4B3C2");
        assert_eq!(UPLOAD, "#UPLOAD");
    }

    #[test]
    fn message_keys_sort_like_their_ids() {
        let ids: Vec<MessageId> = (0..50).map(|_| MessageId::generate()).collect();
        let mut by_key = ids.clone();
        by_key.sort_by_key(message);
        assert_eq!(by_key, ids, "generated ids are increasing, and so are their keys");
        assert!(message(&ids[0]).starts_with(MESSAGE_PREFIX));
    }
}
