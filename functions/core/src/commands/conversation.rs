//! The conversation a frame names: a room (`room`) or the direct conversation with a user
//! (`with`), as `history`, `edit` and `delete` take them; and the messages kept of it.

use std::time::Duration;

use serde::Deserialize;

use super::{parse_user_id, Context};
use crate::backoff::backoff;
use crate::envelope::Target;
use crate::error::{ClientError, ErrorCode};
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

/// The first pause between two looks at the history while waiting for the archive.
const FIRST_PAUSE: Duration = Duration::from_millis(10);

/// The kept message `id` of `conversation`, deleted or not.
///
/// A message is acknowledged once Kafka has it; kafka-archive stores it a moment later,
/// or later still when it is behind. So an edit, a delete or a reply sent right after the
/// `ack` may find it missing. Then, for an id made from a log position, this asks how far
/// the archive has applied that partition: past the id, the message is not there to be
/// found (`not_found` at once); not yet, it looks again (with [`backoff`] from 10 ms)
/// until the message is kept or the archive passes it, for up to `config.archive_lag`
/// from now: an archive behind by more gets `unavailable` (try again), never a false
/// `not_found`. An id made before ids came from the log (a ULID) waits as long from its
/// own time.
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
    let lag = ctx.config.archive_lag;
    let position = id.position();
    let wait = match position {
        Some(_) => lag,
        None => {
            // A forged id from the future waits no longer than a fresh one.
            let age = u64::try_from(ctx.now_ms - id.timestamp_ms()).unwrap_or(0);
            lag.saturating_sub(Duration::from_millis(age))
        }
    };
    let deadline = tokio::time::Instant::now() + wait;
    let missing = || ClientError::not_found(format!("there is no message `{id}` in {conversation}"));
    let mut attempt = 0;
    loop {
        attempt += 1;
        // The mark first: if the archive had passed the id before the message was read,
        // a message that is not there will never be (read the other way round, a message
        // kept between the two reads would look missing).
        let passed = match position {
            Some((epoch, position)) => history
                .archived_until(epoch, position.partition)
                .await?
                .is_some_and(|next| next > position.offset),
            None => false,
        };
        if let Some(message) = history.message(conversation, id).await? {
            return Ok(message);
        }
        if passed {
            return Err(missing());
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(match position {
                Some(_) => ClientError::new(
                    ErrorCode::Unavailable,
                    format!(
                        "the message history has not caught up with message `{id}` yet; nothing was changed, \
                         try again in a moment"
                    ),
                ),
                None => missing(),
            });
        }
        tokio::time::sleep(backoff(FIRST_PAUSE, attempt).min(deadline - now)).await;
    }
}
