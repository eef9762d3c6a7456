//! Items of the table to and from domain values. Reading never panics: an item that lacks
//! an attribute (or holds the wrong type) becomes a [`CorruptItem`] error.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use roomcast_core::model::{Connection, ConnectionId, Member, Nick, Room, RoomName, User, UserId};

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
    fn corrupt(&self, attribute: &'static str, problem: &'static str) -> CorruptItem {
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

    pub fn n(&self, attribute: &'static str) -> Result<i64, CorruptItem> {
        match self.0.get(attribute) {
            Some(AttributeValue::N(value)) => value
                .parse()
                .map_err(|_| self.corrupt(attribute, "is not an integer that fits in 64 bits")),
            Some(_) => Err(self.corrupt(attribute, "is not a number")),
            None => Err(self.corrupt(attribute, "is missing")),
        }
    }

    /// The sort key, which tells the item kinds of a partition apart.
    pub fn sk(&self) -> Result<&'a str, CorruptItem> {
        self.s(attr::SK)
    }
}

/// A connection's `#META` item.
pub fn connection_meta(connection: &Connection) -> Item {
    HashMap::from([
        (attr::PK.to_owned(), s(keys::connection(&connection.id))),
        (attr::SK.to_owned(), s(keys::META)),
        (attr::GSI1_PK.to_owned(), s(keys::user(&connection.user.user_id))),
        (attr::GSI1_SK.to_owned(), s(keys::member(&connection.id))),
        (attr::CONNECTION_ID.to_owned(), s(connection.id.as_str())),
        (attr::USER_ID.to_owned(), s(connection.user.user_id.as_str())),
        (attr::NICK.to_owned(), s(connection.user.nick.as_str())),
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
        connected_at_ms: r.n(attr::CONNECTED_AT)?,
        expires_at: r.n(attr::EXPIRES_AT)?,
    })
}

/// A membership in the room's partition: what the fan-out reads for every record.
pub fn membership(room: &RoomName, member: &Member) -> Item {
    HashMap::from([
        (attr::PK.to_owned(), s(keys::room(room))),
        (attr::SK.to_owned(), s(keys::member(&member.connection_id))),
        (attr::ROOM.to_owned(), s(room.as_str())),
        (attr::CONNECTION_ID.to_owned(), s(member.connection_id.as_str())),
        (attr::USER_ID.to_owned(), s(member.user.user_id.as_str())),
        (attr::NICK.to_owned(), s(member.user.nick.as_str())),
        (attr::EXPIRES_AT.to_owned(), n(member.expires_at)),
    ])
}

pub fn parse_member(item: &Item) -> Result<Member, CorruptItem> {
    let r = Reader(item);
    Ok(Member {
        connection_id: ConnectionId::new(r.s(attr::CONNECTION_ID)?),
        user: User {
            user_id: UserId::new(r.s(attr::USER_ID)?),
            nick: Nick::trusted(r.s(attr::NICK)?),
        },
        expires_at: r.n(attr::EXPIRES_AT)?,
    })
}

/// The same membership in the connection's partition, also indexed in an audience shard.
pub fn reverse_membership(room: &RoomName, member: &Member) -> Item {
    let id = &member.connection_id;
    HashMap::from([
        (attr::PK.to_owned(), s(keys::connection(id))),
        (attr::SK.to_owned(), s(keys::in_room(room))),
        (attr::GSI1_PK.to_owned(), s(keys::audience_shard(keys::shard_of(id)))),
        (attr::GSI1_SK.to_owned(), s(keys::audience_entry(id, room))),
        (attr::ROOM.to_owned(), s(room.as_str())),
        (attr::CONNECTION_ID.to_owned(), s(id.as_str())),
        (attr::EXPIRES_AT.to_owned(), n(member.expires_at)),
    ])
}

pub fn parse_reverse_room(item: &Item) -> Result<RoomName, CorruptItem> {
    Ok(RoomName::trusted(Reader(item).s(attr::ROOM)?))
}

pub fn room_meta(room: &Room) -> Item {
    HashMap::from([
        (attr::PK.to_owned(), s(keys::room(&room.name))),
        (attr::SK.to_owned(), s(keys::META)),
        (attr::GSI1_PK.to_owned(), s(keys::CATALOG)),
        (attr::GSI1_SK.to_owned(), s(keys::in_room(&room.name))),
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

/// Who holds a nickname and until when, as read before a takeover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NickClaim {
    pub user: UserId,
    pub expires_at: i64,
}

pub fn parse_nick_claim(item: &Item) -> Result<NickClaim, CorruptItem> {
    let r = Reader(item);
    Ok(NickClaim {
        user: UserId::new(r.s(attr::USER_ID)?),
        expires_at: r.n(attr::EXPIRES_AT)?,
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
            connected_at_ms: 1_700_000_000_123,
            expires_at: 1_700_008_000,
        }
    }

    #[test]
    fn items_read_back_as_written() {
        let connection = sample_connection();
        assert_eq!(parse_connection(&connection_meta(&connection)).unwrap(), connection);
        let member = Member {
            connection_id: connection.id.clone(),
            user: connection.user.clone(),
            expires_at: 42,
        };
        let room = RoomName::trusted("general");
        assert_eq!(parse_member(&membership(&room, &member)).unwrap(), member);
        assert_eq!(parse_reverse_room(&reverse_membership(&room, &member)).unwrap(), room);
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
    }
}
