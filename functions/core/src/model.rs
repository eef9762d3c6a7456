//! Names and identifiers of the domain. Room names and nicknames are validated once, at the
//! edge, so everything past parsing can trust them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ClientError;

/// The characters allowed in room names and nicknames: safe in URLs, keys and logs.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn check_name(kind: &str, value: &str, max_chars: usize) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{kind} must not be empty"));
    }
    if value.chars().count() > max_chars {
        return Err(format!("{kind} is longer than {max_chars} characters"));
    }
    if let Some(bad) = value.chars().find(|c| !is_name_char(*c)) {
        return Err(format!(
            "{kind} may only contain letters, digits, `_`, `.` and `-` (found {bad:?})"
        ));
    }
    // `.` and `..` could not be named in a URL path (the HTTP API's `/api/rooms/{room}`):
    // clients and servers collapse such segments.
    if value.chars().all(|c| c == '.') {
        return Err(format!("{kind} must not be only dots"));
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A room's name: 1 to `Limits::room_name_chars` characters of `[A-Za-z0-9_.-]`.
    RoomName
);
string_id!(
    /// A nickname, unique among connected users.
    Nick
);
string_id!(
    /// API Gateway's id of one WebSocket connection (URL-safe, may end in `=`).
    ConnectionId
);
string_id!(
    /// A user: the JWT subject, or a generated id for an anonymous nickname.
    UserId
);
string_id!(
    /// A server-assigned message id: a ULID, so ids sort by time.
    MessageId
);

impl RoomName {
    pub fn parse(value: &str, max_chars: usize) -> Result<Self, ClientError> {
        check_name("room name", value, max_chars).map_err(ClientError::bad_request)?;
        Ok(Self(value.to_owned()))
    }

    /// For names read back from our own storage, which were validated when written.
    pub fn trusted(value: impl Into<String>) -> Self {
        Self(value.into())
    }
}

impl Nick {
    pub fn parse(value: &str, max_chars: usize) -> Result<Self, String> {
        check_name("nickname", value, max_chars)?;
        Ok(Self(value.to_owned()))
    }

    pub fn trusted(value: impl Into<String>) -> Self {
        Self(value.into())
    }
}

impl ConnectionId {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
}

impl UserId {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// A fresh id for an anonymous user. It is not derived from the connection id, so
    /// publishing `from.userId` does not reveal connection ids to other users.
    pub fn anonymous() -> Self {
        Self(format!("anon-{}", ulid::Ulid::new().to_string().to_lowercase()))
    }
}

impl MessageId {
    /// A new time-ordered id, greater than every id this process generated before (ULIDs
    /// made in the same millisecond are otherwise in random order), so that messages sent
    /// through one process sort as they were sent.
    pub fn generate() -> Self {
        static GENERATOR: std::sync::Mutex<ulid::Generator> = std::sync::Mutex::new(ulid::Generator::new());
        let id = GENERATOR
            .lock()
            .map_err(|_| ())
            .and_then(|mut generator| generator.generate().map_err(|_| ()))
            // Poisoned, or 2^80 ids in one millisecond: a plain ULID is still time-ordered.
            .unwrap_or_else(|()| ulid::Ulid::new());
        Self(id.to_string())
    }

    /// The smallest id made at `ms` (milliseconds since the epoch): every id made earlier
    /// is smaller.
    pub fn earliest_at(ms: i64) -> Self {
        Self(ulid::Ulid::from_parts(ms.max(0) as u64, 0).to_string())
    }

    /// When the id was made, in milliseconds since the epoch.
    pub fn timestamp_ms(&self) -> i64 {
        ulid::Ulid::from_string(&self.0).map_or(0, |id| id.timestamp_ms() as i64)
    }

    pub fn parse(value: &str) -> Result<Self, ClientError> {
        // 26 base32 characters hold 130 bits: a ULID's first is `0` to `7`. The ulid crate
        // would drop the excess bits and read another id.
        if !value.starts_with(|first: char| ('0'..='7').contains(&first)) {
            return Err(ClientError::bad_request(format!("`{value}` is not a message id")));
        }
        ulid::Ulid::from_string(value)
            .map(|id| Self(id.to_string()))
            .map_err(|_| ClientError::bad_request(format!("`{value}` is not a message id")))
    }
}

/// Who a connection belongs to, as other users see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub user_id: UserId,
    pub nick: Nick,
}

/// Who is asking: the user, its roles, and the connection when the request came over a
/// WebSocket. Commands act for a caller, so WebSocket frames and HTTP requests share them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: User,
    pub roles: Vec<String>,
    pub connection: Option<ConnectionId>,
    /// Set for an anonymous caller (no token): its user exists only as long as its one
    /// connection, so its memberships end with that connection (seconds since the epoch).
    pub expires_at: Option<i64>,
    /// The address the request came from (API Gateway's `requestContext.identity.sourceIp`),
    /// when known: what bounds anonymous callers, who are a new user on each connection.
    pub source_ip: Option<String>,
}

impl Caller {
    /// The caller behind a registered connection.
    pub fn of(connection: &Connection) -> Self {
        Self {
            user: connection.user.clone(),
            roles: connection.roles.clone(),
            connection: Some(connection.id.clone()),
            expires_at: (!connection.authenticated).then_some(connection.expires_at),
            source_ip: None,
        }
    }

    /// The same caller, seen coming from `source_ip`.
    pub fn from_address(self, source_ip: Option<&str>) -> Self {
        Self {
            source_ip: source_ip.filter(|ip| !ip.is_empty()).map(str::to_owned),
            ..self
        }
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|held| held == role)
    }
}

/// One open WebSocket connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub id: ConnectionId,
    pub user: User,
    /// The roles of the token the connection signed in with; none when anonymous.
    pub roles: Vec<String>,
    /// Whether an authorizer vouched for the user (a JWT), or the user is anonymous.
    pub authenticated: bool,
    /// Milliseconds since the epoch, as API Gateway's `connectedAt`.
    pub connected_at_ms: i64,
    /// Seconds since the epoch after which the store may forget this connection.
    pub expires_at: i64,
}

/// What registering a connection found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// The user had no other live connection: it just came online.
    pub first: bool,
    /// The rooms the user is a member of, which the connection is now in.
    pub rooms: Vec<RoomName>,
}

/// What removing a connection found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure {
    pub connection: Connection,
    /// The user has no live connection left: it just went offline.
    pub last: bool,
    /// The rooms the user is a member of, which the connection was in.
    pub rooms: Vec<RoomName>,
}

/// A user with at least one live connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineUser {
    pub user: User,
    /// Sorted by id.
    pub connections: Vec<ConnectionId>,
}

/// A room in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    pub name: RoomName,
    pub created_by: UserId,
    pub created_at_ms: i64,
}

/// A user's membership of a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user: User,
    /// The member's live connections, sorted by id; empty while the user is offline.
    pub connections: Vec<ConnectionId>,
    /// When an anonymous user's membership ends with its connection; `None` for a
    /// signed-in user, whose membership lasts until it leaves.
    pub expires_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_follow_the_documented_rule() {
        assert!(RoomName::parse("general", 64).is_ok());
        assert!(RoomName::parse("a.b_c-9", 64).is_ok());
        assert!(RoomName::parse("", 64).is_err());
        assert!(RoomName::parse("has space", 64).is_err());
        assert!(RoomName::parse("ümlaut", 64).is_err());
        assert!(RoomName::parse(&"x".repeat(64), 64).is_ok());
        assert!(RoomName::parse(&"x".repeat(65), 64).is_err());
        // A URL path cannot name them.
        assert!(RoomName::parse(".", 64).is_err());
        assert!(RoomName::parse("..", 64).is_err());
        assert!(RoomName::parse(".hidden", 64).is_ok());
    }

    #[test]
    fn message_ids_sort_by_creation_time() {
        let first = MessageId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = MessageId::generate();
        assert!(first < second);
        assert_eq!(MessageId::parse(first.as_str()).unwrap(), first);
        assert!(MessageId::parse("not-a-ulid").is_err());
        // The largest ULID, and one past 128 bits, which must not wrap to another id.
        assert!(MessageId::parse("7ZZZZZZZZZZZZZZZZZZZZZZZZZ").is_ok());
        assert!(MessageId::parse("8ZZZZZZZZZZZZZZZZZZZZZZZZZ").is_err());
        assert!(MessageId::parse("ZZZZZZZZZZZZZZZZZZZZZZZZZZ").is_err());
    }
}
