//! Publishing to the event log: what every command that changes something ends with
//! ([`publish`], and [`publish_about`] for a change to a kept message), and `publish`
//! itself, the command behind `POST /api/publish` ([`Publish`]), which pushes any notice to
//! any target for a service.

use serde_json::Value;

use super::context::Context;
use super::conversation::ConversationRef;
use super::fields;
use crate::config::Config;
use crate::envelope::{Envelope, Target};
use crate::error::{ClientError, ErrorCode};
use crate::model::{LogPosition, MessageId, RoomName};
use crate::ports::PublishError;
use crate::protocol::ServerFrame;

/// API Gateway's connection ids are 16 characters; anything much longer is not one.
const MAX_CONNECTION_ID_BYTES: usize = 128;

/// The roles that may push any frame to anyone with `POST /api/publish`.
pub const PUBLISH_ROLES: &[&str] = &["service", "admin"];

/// Publishes for the command of `ctx`, turning a failure into the `unavailable` answer, its
/// cause kept (and logged where the answer is sent). The position names a chat record (see
/// [`crate::envelope::Stamp`]).
pub(crate) async fn publish(ctx: &Context<'_>, envelope: &Envelope) -> Result<LogPosition, ClientError> {
    ctx.ports
        .publisher
        .publish(envelope)
        .await
        .map_err(|error: PublishError| {
            let refusal = match &error {
                // A record the log did not confirm in time may still be written (a Kafka
                // producer's request can land after its answer was given up on), so the
                // client must not be told that nothing happened: sending it again blindly
                // could show it twice.
                PublishError::Timeout => ClientError::new(
                    ErrorCode::Unavailable,
                    "the message log did not confirm this in time; it may still go through, \
                 so look for it before trying again",
                ),
                PublishError::Refused(_) => ClientError::unavailable("the message log"),
            };
            refusal.caused_by(error)
        })
}

/// Publishes a frame about a conversation's message (`edited`, `deleted`) where the
/// message went and keyed as it was, so that the record follows its message in the
/// conversation's one order and kafka-archive always has the message before it: to the
/// room, or to both users of a direct conversation (fan-out tells each side the other as
/// `with`).
pub(crate) async fn publish_about(
    ctx: &Context<'_>,
    conversation: &ConversationRef,
    frame: &ServerFrame,
) -> Result<(), ClientError> {
    let target = conversation.target(&ctx.caller.user.user_id);
    publish(ctx, &Envelope::stamped(target, ctx.except(), ctx.stamp(), frame)).await?;
    Ok(())
}

/// `POST /api/publish`: any frame to any target, as a Kafka producer could send it, for
/// services that hold a token with a [`PUBLISH_ROLES`] role rather than Kafka credentials.
#[derive(Debug)]
pub struct Publish {
    pub target: Target,
    pub frame: Box<serde_json::value::RawValue>,
}

impl Publish {
    /// The action's name: the HTTP API's route `POST /api/publish` stands for it (it has
    /// no WebSocket route).
    pub const ACTION: &'static str = "publish";

    pub fn parse(frame: Value, config: &Config) -> Result<Self, ClientError> {
        let Value::Object(mut body) = frame else {
            return Err(ClientError::bad_request("body must be a JSON object"));
        };
        let target = body
            .remove("target")
            .ok_or_else(|| ClientError::bad_request("missing field `target`"))?;
        let target: Target =
            serde_json::from_value(target).map_err(|error| ClientError::bad_request(error.to_string()))?;
        // A name no room, user or connection can have would be published and reach nobody.
        match &target {
            Target::Room(room) => {
                RoomName::parse(room.as_str(), config.limits.room_name_chars)?;
            }
            Target::User(user) => {
                fields::user_id("target.user", user.as_str().to_owned())?;
            }
            Target::Direct(a, b) => {
                fields::user_id("target.dm", a.as_str().to_owned())?;
                fields::user_id("target.dm", b.as_str().to_owned())?;
            }
            Target::Connection(id) if id.as_str().is_empty() || id.as_str().len() > MAX_CONNECTION_ID_BYTES => {
                return Err(ClientError::bad_request(format!(
                    "target.connection must be 1 to {MAX_CONNECTION_ID_BYTES} bytes"
                )));
            }
            Target::Connection(_) | Target::All => {}
        }
        let frame = body
            .remove("frame")
            .ok_or_else(|| ClientError::bad_request("missing field `frame`"))?;
        let Some(kind) = frame.get("type").and_then(Value::as_str) else {
            return Err(ClientError::bad_request(
                "`frame` must be a JSON object with a string `type`",
            ));
        };
        // A chat frame from here would be a message, an edit or a deletion under anyone's
        // name, which clients show and the archive may keep: publish only pushes notices.
        if let Some(chat) = chat_frame_types().iter().find(|chat| chat.eq_ignore_ascii_case(kind)) {
            return Err(ClientError::bad_request(format!(
                "`frame.type` {chat:?} is a frame of the chat protocol, which publish cannot send; \
                 use a type of your own (such as \"notice\")"
            )));
        }
        if let Some(other) = body.keys().next() {
            return Err(ClientError::bad_request(format!("unknown field `{other}`")));
        }
        let frame =
            serde_json::value::to_raw_value(&frame).map_err(|error| ClientError::bad_request(error.to_string()))?;
        Ok(Self { target, frame })
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
        if !PUBLISH_ROLES.iter().any(|role| ctx.caller.has_role(role)) {
            return Err(ClientError::forbidden(format!(
                "publishing needs one of the roles {}",
                PUBLISH_ROLES.join(", ")
            )));
        }
        let id = MessageId::generate();
        let envelope = Envelope {
            frame: self.frame,
            ..Envelope::new(id.to_string(), self.target, None, &ServerFrame::Pong)
        };
        publish(ctx, &envelope).await?;
        Ok(ServerFrame::Published { id })
    }
}

/// The `type` of every [`ServerFrame`] (`message`, `dm`, `edited`, `deleted`, `presence`,
/// `ack`, `error`, `history`, ...), read from its `Deserialize` implementation: serde names
/// all of an enum's variants when it meets an unknown one, so a frame type added to the
/// protocol later is refused by publish without a list here to keep up to date.
pub fn chat_frame_types() -> &'static [&'static str] {
    use serde::de::value::MapDeserializer;
    use serde::Deserialize;

    /// The error serde builds for an unknown variant, keeping the variants' names.
    #[derive(Debug)]
    struct Variants(&'static [&'static str]);
    impl std::fmt::Display for Variants {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "variants {:?}", self.0)
        }
    }
    impl std::error::Error for Variants {}
    impl serde::de::Error for Variants {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Variants(&[])
        }
        fn unknown_variant(_: &str, expected: &'static [&'static str]) -> Self {
            Variants(expected)
        }
    }

    static TYPES: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();
    TYPES.get_or_init(|| {
        // A `type` that no frame has ("" is never a variant's name).
        let unknown = MapDeserializer::<_, Variants>::new(std::iter::once(("type", "")));
        match ServerFrame::deserialize(unknown) {
            Err(Variants(types)) => types,
            Ok(_) => &[],
        }
    })
}
