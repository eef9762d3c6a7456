//! The conversation a frame names: a room (`room`) or the direct conversation with a user
//! (`with`), as `history`, `edit` and `delete` take them; and the messages kept of it.

use serde::Deserialize;

use super::context::Context;
use super::fields;
use crate::archive::message_of;
use crate::envelope::Target;
use crate::error::ClientError;
use crate::history::{Conversation, StoredMessage};
use crate::model::{MessageId, RoomName, UserId};
use crate::ports::History;
use crate::protocol::ServerFrame;

/// The `room` and `with` fields of a frame, as sent: flattened into each action's fields.
#[derive(Debug, Deserialize)]
pub struct ConversationFields {
    #[serde(default)]
    room: Option<String>,
    #[serde(default)]
    with: Option<String>,
}

/// What the client named, before it is checked against the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversationRef {
    Room(RoomName),
    /// The caller's direct conversation with this user.
    With(UserId),
}

impl ConversationRef {
    /// Exactly one of `room` and `with`.
    pub fn parse(fields: ConversationFields, max_room_chars: usize) -> Result<Self, ClientError> {
        match (fields.room, fields.with) {
            (Some(room), None) => Ok(Self::Room(RoomName::parse(&room, max_room_chars)?)),
            (None, Some(with)) => Ok(Self::With(fields::user_id("with", with)?)),
            _ => Err(ClientError::bad_request(
                "name exactly one of `room` (a room) or `with` (a user id: your direct conversation)",
            )),
        }
    }

    /// The conversation, once the caller may see it: a room needs membership; a direct
    /// conversation is the caller's own.
    pub async fn resolve(&self, ctx: &Context<'_>) -> Result<Conversation, ClientError> {
        match self {
            Self::Room(room) => {
                ctx.require_member(room).await?;
                Ok(Conversation::Room(room.clone()))
            }
            Self::With(user) => Ok(Conversation::direct(ctx.caller.user.user_id.clone(), user.clone())),
        }
    }

    /// The `ack` of a change to the message `id` of this conversation, made at `ts`.
    pub fn ack(&self, id: MessageId, ts: i64) -> ServerFrame {
        let (room, with) = self.fields();
        ServerFrame::Ack {
            room,
            to: None,
            with,
            id,
            client_msg_id: None,
            ts,
        }
    }

    /// The records of this conversation, as `caller` names it: one key, one order.
    pub fn target(&self, caller: &UserId) -> Target {
        match self {
            Self::Room(room) => Target::Room(room.clone()),
            Self::With(other) => Target::direct(caller.clone(), other.clone()),
        }
    }

    /// `(room, with)` as the frames about this conversation carry them.
    pub fn fields(&self) -> (Option<RoomName>, Option<UserId>) {
        match self {
            Self::Room(room) => (Some(room.clone()), None),
            Self::With(user) => (None, Some(user.clone())),
        }
    }
}

/// How far ahead of the request's time a message id may be dated: the clocks of the
/// functions that make ids and of API Gateway, which times requests, differ a little.
const MAX_CLOCK_SKEW_MS: i64 = 2_000;

/// The message `id` of `conversation`, kept or on its way to the history, deleted or not.
///
/// A message is acknowledged once Kafka has it; kafka-archive stores it a moment later,
/// or later still when it is behind. An edit, a delete or a reply sent right after the
/// `ack` must not depend on that lag (docs/protocol.md, "One order"): the id is the
/// message's log position, so what the history does not hold yet, the log tells.
/// - The archive's mark first: if it had passed the id before the message was read, a
///   message that is not there never will be (read the other way round, a message kept
///   between the two reads would look missing).
/// - Then the history: a kept message, with its edits and its tombstone.
/// - Not kept and not passed: the record at the id's position, read as the archive will
///   read it. Only a message of this conversation with exactly this id is found; a
///   position past the log's end, or holding anything else, is `not_found` at once. A
///   delete that is also on its way is not seen there: an edit that follows it by moments
///   is acknowledged, and the archive, applying both in log order, keeps the delete.
/// - An id of an earlier log (another epoch) or from before ids came from the log (a
///   ULID) is only in the history.
pub async fn kept_message(
    ctx: &Context<'_>,
    conversation: &Conversation,
    id: &MessageId,
) -> Result<StoredMessage, ClientError> {
    let history: &dyn History = &*ctx.ports.history;
    // No message is dated in the future: refused without a look at the table or the log.
    if id.timestamp_ms() > ctx.now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
        return Err(ClientError::not_found(format!(
            "there is no message `{id}` in {conversation}: its id is dated in the future"
        )));
    }
    let missing = || ClientError::not_found(format!("there is no message `{id}` in {conversation}"));
    let position = id.position().filter(|(epoch, _)| *epoch == ctx.config.log_epoch);
    let passed = match position {
        Some((epoch, position)) => history
            .archived_until(epoch, position.partition)
            .await?
            .is_some_and(|next| next > position.offset),
        None => true,
    };
    if let Some(message) = history.message(conversation, id).await? {
        return Ok(message);
    }
    let Some((_, position)) = position.filter(|_| !passed) else {
        return Err(missing());
    };
    let record = ctx
        .ports
        .publisher
        .record_at(position)
        .await
        .map_err(|error| ClientError::unavailable("the message log").caused_by(error))?;
    match record.and_then(|record| message_of(&record, &ctx.config.limits)) {
        Some(message) if message.id == *id && message.conversation == *conversation => Ok(message),
        _ => Err(missing()),
    }
}
