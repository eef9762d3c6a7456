//! The single-table layout: attribute names and key formats, kept here so every format
//! lives in one place and `infra/tables.json` is checked against the same names.

use roomcast_core::model::{ConnectionId, Nick, RoomName, UserId};

/// Attribute names. Key attributes must match `infra/tables.json` (a unit test checks).
pub mod attr {
    pub const PK: &str = "pk";
    pub const SK: &str = "sk";
    pub const GSI1_PK: &str = "gsi1pk";
    pub const GSI1_SK: &str = "gsi1sk";
    /// The TTL attribute (seconds since the epoch).
    pub const EXPIRES_AT: &str = "expiresAt";

    pub const CONNECTION_ID: &str = "connectionId";
    pub const USER_ID: &str = "userId";
    pub const NICK: &str = "nick";
    pub const CONNECTED_AT: &str = "connectedAt";
    pub const ROOM: &str = "room";
    pub const NAME: &str = "name";
    pub const CREATED_BY: &str = "createdBy";
    pub const CREATED_AT: &str = "createdAt";
    /// On a nickname claim: the string set of the connections holding it.
    pub const CONNECTIONS: &str = "connections";
}

/// The one global secondary index.
pub const GSI1: &str = "gsi1";

/// Sort key of a connection's own item and of a room's catalog item.
pub const META: &str = "#META";
/// Sort key of a nickname claim.
pub const NICK_SK: &str = "#NICK";
/// `gsi1pk` of every catalog item.
pub const CATALOG: &str = "CATALOG";

const CONN: &str = "CONN#";
const ROOM: &str = "ROOM#";

/// How many `INROOM#n` partitions the reverse memberships are spread over on `gsi1`, so
/// that the broadcast audience is not one hot GSI partition.
pub const AUDIENCE_SHARDS: u32 = 8;

/// `pk` of a connection's partition (its `#META` item and its reverse memberships).
pub fn connection(id: &ConnectionId) -> String {
    format!("{CONN}{id}")
}

/// `sk` of a membership in a room's partition; also `gsi1sk` of a connection's `#META`.
pub fn member(id: &ConnectionId) -> String {
    format!("{CONN}{id}")
}

/// The prefix every membership `sk` in a room's partition starts with.
pub const MEMBER_PREFIX: &str = CONN;

/// `pk` of a room's partition (its catalog item and its memberships).
pub fn room(room: &RoomName) -> String {
    format!("{ROOM}{room}")
}

/// `sk` of a reverse membership in a connection's partition; also `gsi1sk` of a catalog item.
pub fn in_room(room: &RoomName) -> String {
    format!("{ROOM}{room}")
}

/// The prefix every reverse membership `sk` starts with.
pub const IN_ROOM_PREFIX: &str = ROOM;

/// `gsi1pk` of a connection's `#META`: the user's connections are one Query on `gsi1`.
pub fn user(user: &UserId) -> String {
    format!("USER#{user}")
}

/// `gsi1pk` of a reverse membership: one of the [`AUDIENCE_SHARDS`] audience partitions.
pub fn audience_shard(shard: u32) -> String {
    format!("INROOM#{shard}")
}

/// `gsi1sk` of a reverse membership, unique per (connection, room).
pub fn audience_entry(id: &ConnectionId, room: &RoomName) -> String {
    format!("{CONN}{id}#{ROOM}{room}")
}

/// `pk` of a nickname claim.
pub fn nick(nick: &Nick) -> String {
    format!("NICK#{nick}")
}

/// The audience shard of a connection. FNV-1a rather than `std`'s hasher, whose output may
/// change between Rust releases: all of a connection's rooms then land in one shard.
pub fn shard_of(id: &ConnectionId) -> u32 {
    let hash = id.as_str().bytes().fold(0x811c_9dc5_u32, |hash, byte| {
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
        assert_eq!(shard_of(&ConnectionId::new("")), 0x811c_9dc5 % AUDIENCE_SHARDS);
        assert_eq!(shard_of(&ConnectionId::new("a")), 0xe40c_292c % AUDIENCE_SHARDS);
        let shards: std::collections::BTreeSet<u32> = (0..200)
            .map(|i| shard_of(&ConnectionId::new(format!("conn-{i}="))))
            .collect();
        assert_eq!(shards.len(), AUDIENCE_SHARDS as usize, "200 ids should use every shard");
    }

    #[test]
    fn member_keys_sort_like_connection_ids() {
        let a = ConnectionId::new("Ab=");
        let b = ConnectionId::new("Ab0");
        assert_eq!(a < b, member(&a) < member(&b));
        assert!(member(&a).starts_with(MEMBER_PREFIX));
        assert!(in_room(&RoomName::trusted("x")).starts_with(IN_ROOM_PREFIX));
        // `#META` sorts before every `ROOM#` item, so it leads a connection's Query.
        assert!(META < IN_ROOM_PREFIX);
    }
}
