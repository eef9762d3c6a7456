//! The Kafka record value: a versioned envelope saying who gets which server frame. It is
//! the public way for any backend service to push to users, so it is parsed strictly.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::model::{ConnectionId, RoomName, UserId};
use crate::protocol::ServerFrame;

/// The envelope version this code writes and reads.
pub const ENVELOPE_VERSION: u32 = 1;

/// Who an envelope is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "TargetFields", into = "TargetFields")]
pub enum Target {
    /// Every connection in the room (for the broadcast room: in any room).
    Room(RoomName),
    /// Every connection of the user.
    User(UserId),
    Connection(ConnectionId),
    /// Every connection that is in any room, as the broadcast room.
    All,
}

/// The wire form of [`Target`]: exactly one of the fields is set.
#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TargetFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    all: Option<bool>,
}

impl TryFrom<TargetFields> for Target {
    type Error = String;

    fn try_from(fields: TargetFields) -> Result<Self, String> {
        match fields {
            TargetFields {
                room: Some(room),
                user: None,
                connection: None,
                all: None,
            } => Ok(Target::Room(RoomName::trusted(room))),
            TargetFields {
                room: None,
                user: Some(user),
                connection: None,
                all: None,
            } => Ok(Target::User(UserId::new(user))),
            TargetFields {
                room: None,
                user: None,
                connection: Some(id),
                all: None,
            } => Ok(Target::Connection(ConnectionId::new(id))),
            TargetFields {
                room: None,
                user: None,
                connection: None,
                all: Some(true),
            } => Ok(Target::All),
            _ => Err("target must have exactly one of `room`, `user`, `connection` or `all: true`".to_owned()),
        }
    }
}

impl From<Target> for TargetFields {
    fn from(target: Target) -> Self {
        match target {
            Target::Room(room) => Self {
                room: Some(room.as_str().to_owned()),
                ..Self::default()
            },
            Target::User(user) => Self {
                user: Some(user.as_str().to_owned()),
                ..Self::default()
            },
            Target::Connection(id) => Self {
                connection: Some(id.as_str().to_owned()),
                ..Self::default()
            },
            Target::All => Self {
                all: Some(true),
                ..Self::default()
            },
        }
    }
}

impl Target {
    /// The Kafka record key: one room's (or one user's) records share a partition and so
    /// stay in order.
    pub fn record_key(&self) -> String {
        match self {
            Target::Room(room) => room.as_str().to_owned(),
            Target::User(user) => format!("user:{user}"),
            Target::Connection(id) => format!("connection:{id}"),
            Target::All => "all".to_owned(),
        }
    }
}

/// One record on the topic.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    /// Unique per envelope (the message id for chat messages); lets consumers de-duplicate.
    pub id: String,
    pub target: Target,
    /// A connection that must not receive the frame: the sender of a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<ConnectionId>,
    /// Deliver only if the target has at most this many connections, else drop the frame:
    /// for frames that matter in a small room and would flood a large one (presence).
    #[serde(rename = "maxAudience", default, skip_serializing_if = "Option::is_none")]
    pub max_audience: Option<usize>,
    /// The server frame, kept as the producer wrote it so fan-out posts it byte for byte.
    pub frame: Box<RawValue>,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("record is not a roomcast envelope: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("envelope version {0} is not supported (expected {ENVELOPE_VERSION})")]
    Version(u32),
    #[error("envelope frame must be a JSON object with a string `type`")]
    Frame,
}

impl Envelope {
    pub fn new(id: impl Into<String>, target: Target, except: Option<ConnectionId>, frame: &ServerFrame) -> Self {
        let frame = serde_json::value::to_raw_value(frame).expect("server frames always serialise");
        Self {
            v: ENVELOPE_VERSION,
            id: id.into(),
            target,
            except,
            max_audience: None,
            frame,
        }
    }

    /// The same envelope, dropped by fan-out when its target has more than `connections`.
    pub fn with_max_audience(mut self, connections: usize) -> Self {
        self.max_audience = Some(connections);
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("envelopes always serialise")
    }

    /// Parses and checks a record value written by roomcast or by any other service.
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let envelope: Envelope = serde_json::from_slice(bytes)?;
        if envelope.v != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version(envelope.v));
        }
        // Owned, not borrowed: a `type` with a JSON escape (`\u00e9`, which Python's
        // json.dumps writes for `é`) cannot be borrowed from the record.
        #[derive(Deserialize)]
        struct Typed {
            #[serde(rename = "type")]
            _kind: String,
        }
        serde_json::from_str::<Typed>(envelope.frame.get()).map_err(|_| EnvelopeError::Frame)?;
        // And a value clients can read, as `POST /api/publish` requires: the checks above
        // skip what they ignore, so a number beyond f64 (`1e999`) got through.
        serde_json::from_str::<serde_json::Value>(envelope.frame.get()).map_err(|_| EnvelopeError::Frame)?;
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_and_keys_by_room() {
        let envelope = Envelope::new(
            "m1",
            Target::Room(RoomName::trusted("general")),
            Some(ConnectionId::new("c1")),
            &ServerFrame::Pong,
        );
        let json = envelope.to_json();
        assert_eq!(
            json,
            r#"{"v":1,"id":"m1","target":{"room":"general"},"except":"c1","frame":{"type":"pong"}}"#
        );
        let back = Envelope::decode(json.as_bytes()).unwrap();
        assert_eq!(back.target.record_key(), "general");
        assert_eq!(Target::User(UserId::new("u7")).record_key(), "user:u7");
    }

    #[test]
    fn a_frame_type_with_json_escapes_is_decoded() {
        let json = r#"{"v":1,"id":"m1","target":{"all":true},"frame":{"type":"caf\u00e9 \"n\"","text":"x"}}"#;
        let envelope = Envelope::decode(json.as_bytes()).expect("an escaped type is a string type");
        assert_eq!(envelope.frame.get(), r#"{"type":"caf\u00e9 \"n\"","text":"x"}"#);
    }

    /// Found by the `envelope` fuzz target: `1e999` is JSON grammar but no JSON value a
    /// client (serde_json, or `POST /api/publish`) reads, so such a frame is not posted.
    #[test]
    fn a_frame_with_a_number_out_of_range_is_refused() {
        let json = br#"{"v":1,"id":"x","target":{"all":true},"frame":{"type":"notice","ts":17.23e20551615}}"#;
        assert!(matches!(Envelope::decode(json), Err(EnvelopeError::Frame)));
        let fine = br#"{"v":1,"id":"x","target":{"all":true},"frame":{"type":"notice","ts":1.7e308}}"#;
        assert!(Envelope::decode(fine).is_ok());
    }

    #[test]
    fn foreign_producers_get_strict_checks() {
        let ok = br#"{"v":1,"id":"x","target":{"all":true},"frame":{"type":"notice","text":"maintenance"}}"#;
        assert_eq!(Envelope::decode(ok).unwrap().target, Target::All);
        for bad in [
            &br#"{"v":2,"id":"x","target":{"all":true},"frame":{"type":"a"}}"#[..],
            br#"{"v":1,"id":"x","target":{"room":"a","user":"b"},"frame":{"type":"a"}}"#,
            br#"{"v":1,"id":"x","target":{"all":false},"frame":{"type":"a"}}"#,
            br#"{"v":1,"id":"x","target":{"room":"a"},"frame":"text"}"#,
            br#"{"v":1,"id":"x","target":{"room":"a"},"frame":{"kind":"a"}}"#,
            br#"not json"#,
        ] {
            assert!(Envelope::decode(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
