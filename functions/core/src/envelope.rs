//! The Kafka record value: a versioned envelope saying who gets which server frame. It is
//! the public way for any backend service to push to users, so it is parsed strictly.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use std::borrow::Cow;

use crate::model::{ConnectionId, LogPosition, MessageId, RoomName, UserId};
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
    /// Every connection of the two users of a direct conversation, in the order
    /// [`Target::direct`] gives them: one record, one partition, one order for both.
    Direct(UserId, UserId),
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
    /// The two users of a direct conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    dm: Option<[String; 2]>,
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
                dm: None,
            } => Ok(Target::Room(RoomName::trusted(room))),
            TargetFields {
                room: None,
                user: Some(user),
                connection: None,
                all: None,
                dm: None,
            } => Ok(Target::User(UserId::new(user))),
            TargetFields {
                room: None,
                user: None,
                connection: Some(id),
                all: None,
                dm: None,
            } => Ok(Target::Connection(ConnectionId::new(id))),
            TargetFields {
                room: None,
                user: None,
                connection: None,
                all: Some(true),
                dm: None,
            } => Ok(Target::All),
            TargetFields {
                room: None,
                user: None,
                connection: None,
                all: None,
                dm: Some([a, b]),
            } => Ok(Target::direct(UserId::new(a), UserId::new(b))),
            _ => Err(
                "target must have exactly one of `room`, `user`, `connection`, `all: true` or `dm: [a, b]`".to_owned(),
            ),
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
            Target::Direct(a, b) => Self {
                dm: Some([a.as_str().to_owned(), b.as_str().to_owned()]),
                ..Self::default()
            },
        }
    }
}

impl Target {
    /// The direct conversation of `a` and `b`, the same whichever side names it.
    pub fn direct(a: UserId, b: UserId) -> Self {
        if a <= b {
            Target::Direct(a, b)
        } else {
            Target::Direct(b, a)
        }
    }

    /// The Kafka record key: one room's (one user's, one direct conversation's) records
    /// share a partition and so stay in one order.
    pub fn record_key(&self) -> String {
        match self {
            Target::Room(room) => room.as_str().to_owned(),
            Target::User(user) => format!("user:{user}"),
            Target::Connection(id) => format!("connection:{id}"),
            Target::All => "all".to_owned(),
            Target::Direct(a, b) => format!("dm:{a}:{b}"),
        }
    }
}

/// What makes a record a chat record of roomcast's own (a message, a direct message, an
/// edit, a delete): the record's log position names it, so the `ack`, fan-out and the
/// archive derive one id and one order from it ([`MessageId::at`]). Only the chat
/// functions write it (`POST /api/publish` refuses chat frames); the archive keeps only
/// records that carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stamp {
    /// When the record was made (milliseconds since the epoch): the frame's `ts` or
    /// `editedAt`.
    pub ts: i64,
    /// `ROOMCAST_LOG_EPOCH` of the function that wrote it.
    #[serde(default)]
    pub epoch: u8,
}

impl Stamp {
    /// The id of the record at `position` with this stamp.
    pub fn id_at(&self, position: LogPosition) -> MessageId {
        MessageId::at(self.epoch, position, self.ts)
    }
}

/// The frame types a [`Stamp`] may carry; `message` and `dm` take the record's id as theirs.
const STAMPED_FRAMES: &[&str] = &["message", "dm", "edited", "deleted"];

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
    /// Set on the chat functions' own records: see [`Stamp`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<Stamp>,
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
    #[error("a stamped envelope's frame must be a `message` or `dm` without an `id`, an `edited` or a `deleted`")]
    Stamp,
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
            stamp: None,
            frame,
        }
    }

    /// A chat record (see [`Stamp`]): `frame` is a `message` or `dm` without its id, or an
    /// `edited` or `deleted`.
    pub fn stamped(target: Target, except: Option<ConnectionId>, stamp: Stamp, frame: &ServerFrame) -> Self {
        Self {
            stamp: Some(stamp),
            ..Self::new(MessageId::generate().to_string(), target, except, frame)
        }
    }

    /// The frame as its receivers get it: a stamped `message` or `dm` with the id of the
    /// record at `position` (the only change; everything else byte for byte), any other
    /// frame as written.
    pub fn frame_at(&self, position: LogPosition) -> Cow<'_, str> {
        let frame = self.frame.get();
        match &self.stamp {
            Some(stamp) if frame.starts_with(r#"{"type":"message","#) || frame.starts_with(r#"{"type":"dm","#) => {
                let id = stamp.id_at(position);
                Cow::Owned(with_field(frame, "id", &format!(r#""{id}""#)))
            }
            _ => Cow::Borrowed(frame),
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
        let value =
            serde_json::from_str::<serde_json::Value>(envelope.frame.get()).map_err(|_| EnvelopeError::Frame)?;
        if envelope.stamp.is_some() {
            // `frame_at` gives a stamped message its id at the front, where its type is.
            let kind = value["type"].as_str().unwrap_or_default();
            let takes_id = matches!(kind, "message" | "dm");
            let head_ok = !takes_id || envelope.frame.get().starts_with(&format!(r#"{{"type":"{kind}","#));
            if !STAMPED_FRAMES.contains(&kind) || (takes_id && (value.get("id").is_some() || !head_ok)) {
                return Err(EnvelopeError::Stamp);
            }
        }
        Ok(envelope)
    }
}

/// `frame` (a JSON object) with the member `"name": value` added: after its `type` when
/// that comes first, as in every frame roomcast writes, else at the front.
pub fn with_field(frame: &str, name: &str, value: &str) -> String {
    if let Some(rest) = frame.strip_prefix(r#"{"type":""#) {
        if let Some((kind, after)) = rest.split_once('"') {
            if !kind.contains('\\') {
                if let Some(after) = after.strip_prefix(',') {
                    return format!(r#"{{"type":"{kind}","{name}":{value},{after}"#);
                }
            }
        }
    }
    match frame.strip_prefix('{') {
        Some(rest) if rest.trim_start().starts_with('}') => format!(r#"{{"{name}":{value}}}"#),
        Some(rest) => format!(r#"{{"{name}":{value},{rest}"#),
        None => frame.to_owned(),
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

    fn stamped_message() -> Envelope {
        let frame = ServerFrame::Message {
            room: RoomName::trusted("general"),
            id: None,
            from: crate::model::User {
                user_id: UserId::new("u1"),
                nick: crate::model::Nick::trusted("alice"),
            },
            text: "hi".into(),
            ts: 1_795_397_090_866,
            reply_to: None,
            files: vec![],
        };
        let stamp = Stamp {
            ts: 1_795_397_090_866,
            epoch: 0,
        };
        Envelope::stamped(Target::Room(RoomName::trusted("general")), None, stamp, &frame)
    }

    #[test]
    fn a_stamped_message_takes_its_id_from_its_position() {
        let envelope = Envelope::decode(stamped_message().to_json().as_bytes()).unwrap();
        let position = LogPosition {
            partition: 1,
            offset: 42,
        };
        let id = envelope.stamp.unwrap().id_at(position);
        assert_eq!(
            envelope.frame_at(position),
            format!(
                r#"{{"type":"message","id":"{id}","room":"general","from":{{"userId":"u1","nick":"alice"}},"text":"hi","ts":1795397090866}}"#
            )
        );
        // Another position, another id; an unstamped frame goes as it is.
        assert_ne!(
            envelope.frame_at(LogPosition {
                partition: 1,
                offset: 43
            }),
            envelope.frame_at(position)
        );
        let plain = Envelope::new("x", Target::All, None, &ServerFrame::Pong);
        assert_eq!(plain.frame_at(position), r#"{"type":"pong"}"#);
    }

    #[test]
    fn a_stamp_fits_only_a_chat_frame_without_an_id() {
        let base = r#"{"v":1,"id":"x","target":{"room":"a"},"stamp":{"ts":5},"frame":"#;
        for bad in [
            r#"{"type":"message","id":"1000000000000000000000000A","room":"a"}"#,
            r#"{"type":"notice","text":"x"}"#,
            r#"{"room":"a","type":"message"}"#,
        ] {
            let json = format!("{base}{bad}}}");
            assert!(
                matches!(Envelope::decode(json.as_bytes()), Err(EnvelopeError::Stamp)),
                "{json}"
            );
        }
        let edit = format!(
            r#"{base}{{"type":"edited","room":"a","id":"1000000000000000000000000A","text":"t","editedAt":5,"by":{{"userId":"u","nick":"n"}}}}}}"#
        );
        assert!(Envelope::decode(edit.as_bytes()).is_ok());
    }

    #[test]
    fn a_conversation_is_one_key_whichever_side_names_it() {
        let (a, b) = (UserId::new("u-a"), UserId::new("u-b"));
        let target = Target::direct(b.clone(), a.clone());
        assert_eq!(target, Target::direct(a, b));
        assert_eq!(target.record_key(), "dm:u-a:u-b");
        let json = serde_json::to_string(&target).unwrap();
        assert_eq!(json, r#"{"dm":["u-a","u-b"]}"#);
        // Read back in order, whichever order a producer wrote.
        let back: Target = serde_json::from_str(r#"{"dm":["u-b","u-a"]}"#).unwrap();
        assert_eq!(back, target);
    }

    #[test]
    fn a_field_goes_after_the_type() {
        assert_eq!(
            with_field(r#"{"type":"edited","id":"x"}"#, "with", r#""u""#),
            r#"{"type":"edited","with":"u","id":"x"}"#
        );
        assert_eq!(with_field(r#"{"a":1}"#, "with", r#""u""#), r#"{"with":"u","a":1}"#);
        assert_eq!(with_field(r#"{}"#, "with", r#""u""#), r#"{"with":"u"}"#);
    }
}
