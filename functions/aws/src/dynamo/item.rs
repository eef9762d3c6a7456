//! Items of the table to and from domain values. Reading never panics: an item that lacks
//! an attribute (or holds the wrong type) becomes a [`CorruptItem`] error.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use roomcast_core::model::{Connection, ConnectionId, Member, Nick, OnlineUser, Room, RoomName, User, UserId};

use super::keys::{self, attr};

pub type Item = HashMap<String, AttributeValue>;

/// An item read back from the table that does not have the shape this code writes.
#[derive(Debug, thiserror::Error)]
#[error("corrupt item (pk {pk:?}, sk {sk:?}): attribute `{attribute}` {problem}")]
pub struct CorruptItem {
    pub pk: Option<String>,
    pub sk: Option<String>,
    pub attribute: &'static str,
    pub problem: &'static str,
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The primary key of an item.
pub fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([(attr::PK.to_owned(), s(pk)), (attr::SK.to_owned(), s(sk))])
}

/// Typed access to an item's attributes.
pub struct Reader<'a>(pub &'a Item);

impl<'a> Reader<'a> {
    /// The error for an attribute of this item that is not what this code writes.
    pub fn corrupt(&self, attribute: &'static str, problem: &'static str) -> CorruptItem {
        let key_part = |name| match self.0.get(name) {
            Some(AttributeValue::S(value)) => Some(value.clone()),
            _ => None,
        };
        CorruptItem {
            pk: key_part(attr::PK),
            sk: key_part(attr::SK),
            attribute,
            problem,
        }
    }

    pub fn s(&self, attribute: &'static str) -> Result<&'a str, CorruptItem> {
        match self.0.get(attribute) {
            Some(AttributeValue::S(value)) => Ok(value),
            Some(_) => Err(self.corrupt(attribute, "is not a string")),
            None => Err(self.corrupt(attribute, "is missing")),
        }
    }

    /// A string that may be absent.
    pub fn opt_s(&self, attribute: &'static str) -> Result<Option<&'a str>, CorruptItem> {
        match self.0.get(attribute) {
            Some(AttributeValue::S(value)) => Ok(Some(value)),
            Some(_) => Err(self.corrupt(attribute, "is not a string")),
            None => Ok(None),
        }
    }

    pub fn n(&self, attribute: &'static str) -> Result<i64, CorruptItem> {
        self.opt_n(attribute)?
            .ok_or_else(|| self.corrupt(attribute, "is missing"))
    }

    pub fn opt_n(&self, attribute: &'static str) -> Result<Option<i64>, CorruptItem> {
        match self.0.get(attribute) {
            Some(AttributeValue::N(value)) => value
                .parse()
                .map(Some)
                .map_err(|_| self.corrupt(attribute, "is not an integer that fits in 64 bits")),
            Some(_) => Err(self.corrupt(attribute, "is not a number")),
            None => Ok(None),
        }
    }

    pub fn opt_bool(&self, attribute: &'static str) -> Result<Option<bool>, CorruptItem> {
        match self.0.get(attribute) {
            Some(AttributeValue::Bool(value)) => Ok(Some(*value)),
            Some(_) => Err(self.corrupt(attribute, "is not a boolean")),
            None => Ok(None),
        }
    }

    /// A list of strings (order kept).
    pub fn strings(&self, attribute: &'static str) -> Result<Vec<String>, CorruptItem> {
        let Some(value) = self.0.get(attribute) else {
            return Err(self.corrupt(attribute, "is missing"));
        };
        let AttributeValue::L(values) = value else {
            return Err(self.corrupt(attribute, "is not a list"));
        };
        values
            .iter()
            .map(|value| match value {
                AttributeValue::S(text) => Ok(text.clone()),
                _ => Err(self.corrupt(attribute, "holds something other than strings")),
            })
            .collect()
    }

    /// A string set; absent means empty (DynamoDB drops a set whose last element goes).
    pub fn string_set(&self, attribute: &'static str) -> Result<&'a [String], CorruptItem> {
        match self.0.get(attribute) {
            Some(AttributeValue::Ss(values)) => Ok(values),
            Some(_) => Err(self.corrupt(attribute, "is not a string set")),
            None => Ok(&[]),
        }
    }

    /// Whether the item's time has not passed: an item without `expiresAt` lasts.
    pub fn is_live(&self, now: i64) -> Result<bool, CorruptItem> {
        Ok(self.opt_n(attr::EXPIRES_AT)?.is_none_or(|expires_at| expires_at >= now))
    }
}

/// One connection of a user as the `conns` sets hold it: `<connectionId>|<expiresAt>`. The
/// expiry travels with the id, so that a connection whose `$disconnect` never came stops
/// counting (online, first/last, audiences) once its TTL has passed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub id: ConnectionId,
    pub expires_at: i64,
}

impl Entry {
    pub fn of(connection: &Connection) -> Self {
        Self {
            id: connection.id.clone(),
            expires_at: connection.expires_at,
        }
    }

    pub fn encode(&self) -> String {
        format!("{}|{}", self.id, self.expires_at)
    }

    pub fn is_live(&self, now: i64) -> bool {
        self.expires_at >= now
    }
}

/// A string set of entries, for `ADD` and `DELETE` (which need at least one).
pub fn entry_set<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> AttributeValue {
    AttributeValue::Ss(entries.into_iter().map(Entry::encode).collect())
}

/// The `conns` entries of a user's `#CONNS` or of a membership (none when absent).
pub fn entries(item: &Item) -> Result<Vec<Entry>, CorruptItem> {
    let reader = Reader(item);
    reader
        .string_set(attr::CONNS)?
        .iter()
        .map(|raw| {
            let (id, expires_at) = raw.rsplit_once('|').ok_or_else(|| {
                reader.corrupt(attr::CONNS, "holds an entry that is not `<connectionId>|<expiresAt>`")
            })?;
            let expires_at = expires_at
                .parse()
                .map_err(|_| reader.corrupt(attr::CONNS, "holds an entry whose expiry is not an integer"))?;
            Ok(Entry {
                id: ConnectionId::new(id),
                expires_at,
            })
        })
        .collect()
}

/// The live connections among `entries`, sorted by id, each once.
pub fn live_ids(entries: &[Entry], now: i64) -> Vec<ConnectionId> {
    let mut ids: Vec<ConnectionId> = entries
        .iter()
        .filter(|entry| entry.is_live(now))
        .map(|entry| entry.id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// A connection's `#META` item.
pub fn connection_meta(connection: &Connection) -> Item {
    HashMap::from([
        (attr::PK.to_owned(), s(keys::connection(&connection.id))),
        (attr::SK.to_owned(), s(keys::META)),
        (attr::CONNECTION_ID.to_owned(), s(connection.id.as_str())),
        (attr::USER_ID.to_owned(), s(connection.user.user_id.as_str())),
        (attr::NICK.to_owned(), s(connection.user.nick.as_str())),
        (
            attr::ROLES.to_owned(),
            AttributeValue::L(connection.roles.iter().map(s).collect()),
        ),
        (
            attr::AUTHENTICATED.to_owned(),
            AttributeValue::Bool(connection.authenticated),
        ),
        (attr::CONNECTED_AT.to_owned(), n(connection.connected_at_ms)),
        (attr::EXPIRES_AT.to_owned(), n(connection.expires_at)),
    ])
}

pub fn parse_connection(item: &Item) -> Result<Connection, CorruptItem> {
    let r = Reader(item);
    Ok(Connection {
        id: ConnectionId::new(r.s(attr::CONNECTION_ID)?),
        user: User {
            user_id: UserId::new(r.s(attr::USER_ID)?),
            nick: Nick::trusted(r.s(attr::NICK)?),
        },
        roles: r.strings(attr::ROLES)?,
        authenticated: r
            .opt_bool(attr::AUTHENTICATED)?
            .ok_or_else(|| r.corrupt(attr::AUTHENTICATED, "is missing"))?,
        connected_at_ms: r.n(attr::CONNECTED_AT)?,
        expires_at: r.n(attr::EXPIRES_AT)?,
    })
}

/// A user's `#CONNS` as an online user, if one of its connections is live.
pub fn parse_online_user(item: &Item, now: i64) -> Result<Option<OnlineUser>, CorruptItem> {
    let connections = live_ids(&entries(item)?, now);
    if connections.is_empty() {
        return Ok(None);
    }
    let r = Reader(item);
    Ok(Some(OnlineUser {
        user: User {
            user_id: UserId::new(r.s(attr::USER_ID)?),
            nick: Nick::trusted(r.s(attr::NICK)?),
        },
        connections,
    }))
}

/// A membership in the room's partition, indexed in its user's audience shard. Its `conns`
/// are added afterwards, by the join that wrote it and by each arriving connection.
pub fn membership(room: &RoomName, user: &User, expires_at: Option<i64>) -> Item {
    let mut item = HashMap::from([
        (attr::PK.to_owned(), s(keys::room(room))),
        (attr::SK.to_owned(), s(keys::user(&user.user_id))),
        (
            attr::GSI1_PK.to_owned(),
            s(keys::audience_shard(keys::shard_of(&user.user_id))),
        ),
        (attr::GSI1_SK.to_owned(), s(keys::audience_entry(&user.user_id, room))),
        (attr::ROOM.to_owned(), s(room.as_str())),
        (attr::USER_ID.to_owned(), s(user.user_id.as_str())),
        (attr::NICK.to_owned(), s(user.nick.as_str())),
    ]);
    if let Some(expires_at) = expires_at {
        item.insert(attr::EXPIRES_AT.to_owned(), n(expires_at));
    }
    item
}

/// A membership with its member's live connections.
pub fn parse_member(item: &Item, now: i64) -> Result<Member, CorruptItem> {
    let r = Reader(item);
    Ok(Member {
        user: User {
            user_id: UserId::new(r.s(attr::USER_ID)?),
            nick: Nick::trusted(r.s(attr::NICK)?),
        },
        connections: live_ids(&entries(item)?, now),
        expires_at: r.opt_n(attr::EXPIRES_AT)?,
    })
}

/// The same membership in the user's partition.
pub fn reverse_membership(room: &RoomName, user: &UserId, expires_at: Option<i64>) -> Item {
    let mut item = HashMap::from([
        (attr::PK.to_owned(), s(keys::user(user))),
        (attr::SK.to_owned(), s(keys::room(room))),
        (attr::ROOM.to_owned(), s(room.as_str())),
    ]);
    if let Some(expires_at) = expires_at {
        item.insert(attr::EXPIRES_AT.to_owned(), n(expires_at));
    }
    item
}

pub fn parse_reverse_room(item: &Item) -> Result<RoomName, CorruptItem> {
    Ok(RoomName::trusted(Reader(item).s(attr::ROOM)?))
}

pub fn room_meta(room: &Room) -> Item {
    HashMap::from([
        (attr::PK.to_owned(), s(keys::room(&room.name))),
        (attr::SK.to_owned(), s(keys::META)),
        (attr::GSI1_PK.to_owned(), s(keys::CATALOG)),
        (attr::GSI1_SK.to_owned(), s(keys::room(&room.name))),
        (attr::NAME.to_owned(), s(room.name.as_str())),
        (attr::CREATED_BY.to_owned(), s(room.created_by.as_str())),
        (attr::CREATED_AT.to_owned(), n(room.created_at_ms)),
    ])
}

pub fn parse_room(item: &Item) -> Result<Room, CorruptItem> {
    let r = Reader(item);
    Ok(Room {
        name: RoomName::trusted(r.s(attr::NAME)?),
        created_by: UserId::new(r.s(attr::CREATED_BY)?),
        created_at_ms: r.n(attr::CREATED_AT)?,
    })
}

/// Who holds a nickname, through how many connections, until when; and until when its
/// lease (an HTTP caller's) holds it, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NickClaim {
    pub user: UserId,
    pub held: bool,
    pub expires_at: i64,
    pub lease_until: Option<i64>,
}

pub fn parse_nick_claim(item: &Item) -> Result<NickClaim, CorruptItem> {
    let r = Reader(item);
    Ok(NickClaim {
        user: UserId::new(r.s(attr::USER_ID)?),
        held: !r.string_set(attr::CONNECTIONS)?.is_empty(),
        expires_at: r.n(attr::EXPIRES_AT)?,
        lease_until: r.opt_n(attr::LEASE_UNTIL)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_connection() -> Connection {
        Connection {
            id: ConnectionId::new("abc="),
            user: User {
                user_id: UserId::new("u1"),
                nick: Nick::trusted("alice"),
            },
            roles: vec!["admin".into(), "service".into()],
            authenticated: true,
            connected_at_ms: 1_700_000_000_123,
            expires_at: 1_700_008_000,
        }
    }

    #[test]
    fn items_read_back_as_written() {
        let connection = sample_connection();
        assert_eq!(parse_connection(&connection_meta(&connection)).unwrap(), connection);
        let anonymous = Connection {
            roles: vec![],
            authenticated: false,
            ..sample_connection()
        };
        assert_eq!(parse_connection(&connection_meta(&anonymous)).unwrap(), anonymous);

        let room = RoomName::trusted("general");
        let mut item = membership(&room, &connection.user, Some(42));
        let entries = [
            Entry {
                id: ConnectionId::new("b|x="),
                expires_at: 100,
            },
            Entry {
                id: ConnectionId::new("a="),
                expires_at: 99,
            },
        ];
        item.insert(attr::CONNS.to_owned(), entry_set(&entries));
        let member = parse_member(&item, 100).unwrap();
        assert_eq!(member.user, connection.user);
        assert_eq!(member.expires_at, Some(42));
        assert_eq!(
            member.connections,
            vec![ConnectionId::new("b|x=")],
            "an entry past its expiry is not a connection"
        );
        assert_eq!(parse_member(&item, 0).unwrap().connections.len(), 2);
        assert_eq!(
            parse_reverse_room(&reverse_membership(&room, &connection.user.user_id, None)).unwrap(),
            room
        );
        let catalog = Room {
            name: room,
            created_by: UserId::new("u1"),
            created_at_ms: 7,
        };
        assert_eq!(parse_room(&room_meta(&catalog)).unwrap(), catalog);
    }

    #[test]
    fn a_missing_or_mistyped_attribute_is_reported_not_panicked() {
        let mut item = connection_meta(&sample_connection());
        item.remove(attr::NICK);
        let error = parse_connection(&item).unwrap_err();
        assert_eq!(error.attribute, attr::NICK);
        assert_eq!(error.pk.as_deref(), Some("CONN#abc="));
        assert!(error.to_string().contains("`nick` is missing"), "{error}");

        let mut item = connection_meta(&sample_connection());
        item.insert(attr::EXPIRES_AT.to_owned(), s("soon"));
        assert_eq!(parse_connection(&item).unwrap_err().problem, "is not a number");
        item.insert(attr::EXPIRES_AT.to_owned(), AttributeValue::N("1.5".into()));
        assert_eq!(parse_connection(&item).unwrap_err().attribute, attr::EXPIRES_AT);

        let mut item = key("USER#u1".into(), keys::CONNS);
        item.insert(attr::CONNS.to_owned(), AttributeValue::Ss(vec!["no-expiry".into()]));
        assert_eq!(entries(&item).unwrap_err().attribute, attr::CONNS);
    }
}
