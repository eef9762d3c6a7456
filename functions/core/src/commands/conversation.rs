//! The conversation a frame names: a room (`room`) or the direct conversation with a user
//! (`with`), as `history`, `edit` and `delete` take them; and the messages kept of it.

use std::time::Duration;

use serde::Deserialize;

use super::{parse_user_id, Context};
use crate::backoff::backoff;
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
            (None, Some(with)) => Ok(Self::With(parse_user_id("with", with)?)),
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

/// The first pause between two looks at the history while waiting for the archive.
const FIRST_PAUSE: Duration = Duration::from_millis(10);

/// The kept message `id` of `conversation`, deleted or not.
///
/// A message is acknowledged once Kafka has it; kafka-archive stores it a moment later.
/// So an edit, a delete or a reply sent right after the `ack` may find it missing: then,
/// if the id is recent enough to be on its way (younger than `config.archive_lag`), this
/// looks again (with [`backoff`] from 10 ms) until it arrives or that time is up. An id
/// older than that, or one the archive never gets, is `not_found`.
pub async fn kept_message(
    ctx: &Context<'_>,
    conversation: &Conversation,
    id: &MessageId,
) -> Result<StoredMessage, ClientError> {
    let history: &dyn History = ctx.history;
    // No message is dated in the future: an id that is cannot be on its way, and waiting
    // for it would hold a function for the whole lag.
    if id.timestamp_ms() > ctx.now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
        return Err(ClientError::not_found(format!(
            "there is no message `{id}` in {conversation}: its id is dated in the future"
        )));
    }
    let lag = i64::try_from(ctx.config.archive_lag.as_millis()).unwrap_or(i64::MAX);
    let age = (ctx.now_ms - id.timestamp_ms()).max(0);
    let wait = Duration::from_millis(lag.saturating_sub(age).max(0) as u64);
    let deadline = tokio::time::Instant::now() + wait;
    let mut attempt = 0;
    loop {
        attempt += 1;
        if let Some(message) = history.message(conversation, id).await? {
            return Ok(message);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(ClientError::not_found(format!(
                "there is no message `{id}` in {conversation}"
            )));
        }
        tokio::time::sleep(backoff(FIRST_PAUSE, attempt).min(deadline - now)).await;
    }
}
