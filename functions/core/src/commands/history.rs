//! `history` → a page of a room's messages (members only) or of the caller's direct
//! conversation with a user: the latest ones, or those `before` (scrollback) or `after`
//! (catching up after a reconnect) a message id, oldest first. One Query per page.

use serde::Deserialize;
use serde_json::Value;

use super::context::Context;
use super::conversation::{ConversationFields, ConversationRef};
use super::fields;
use crate::config::Config;
use crate::error::ClientError;
use crate::history::{Cursor, HistoryEntry};
use crate::model::MessageId;
use crate::protocol::ServerFrame;

/// Messages in a page when the client does not say.
pub const DEFAULT_LIMIT: usize = 50;
/// Most messages in a page.
pub const MAX_LIMIT: usize = 100;
/// Most bytes of messages in one answer: API Gateway's 128 KB message limit, less room
/// for the frame around them. A page of long texts is cut short to fit, with `more` set.
pub const MAX_ANSWER_BYTES: usize = 120 * 1024;

/// A page's `limit`: [`DEFAULT_LIMIT`] when absent, at most [`MAX_LIMIT`].
pub(super) fn parse_limit(limit: Option<i64>) -> Result<usize, ClientError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(limit) if (1..=MAX_LIMIT as i64).contains(&limit) => Ok(limit as usize),
        Some(_) => Err(ClientError::bad_request(format!("limit must be 1 to {MAX_LIMIT}"))),
    }
}

#[derive(Debug)]
pub struct ReadHistory {
    pub conversation: ConversationRef,
    pub cursor: Cursor,
    pub limit: usize,
}

impl ReadHistory {
    pub fn parse(frame: Value, config: &Config) -> Result<Self, ClientError> {
        #[derive(Deserialize)]
        struct Fields {
            #[serde(flatten)]
            conversation: ConversationFields,
            #[serde(default)]
            before: Option<String>,
            #[serde(default)]
            after: Option<String>,
            #[serde(default)]
            limit: Option<i64>,
        }
        let Fields {
            conversation,
            before,
            after,
            limit,
        } = fields::read(frame)?;
        let cursor = match (before, after) {
            (None, None) => Cursor::Latest,
            (Some(before), None) => Cursor::Before(MessageId::parse(&before)?),
            (None, Some(after)) => Cursor::After(MessageId::parse(&after)?),
            (Some(_), Some(_)) => {
                return Err(ClientError::bad_request("give `before` or `after`, not both"));
            }
        };
        let limit = parse_limit(limit)?;
        Ok(Self {
            conversation: ConversationRef::parse(conversation, config.limits.room_name_chars)?,
            cursor,
            limit,
        })
    }

    /// The page. A conversation's ids follow its log and kafka-archive writes each
    /// conversation in log order, so whatever this page holds, every message before it is
    /// readable already: a client (a poller too) that reads on `after` the last id it got
    /// never skips one, with no need to wait for messages to settle.
    pub async fn apply(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
        let conversation = self.conversation.resolve(ctx).await?;
        let page = ctx.ports.history.page(&conversation, &self.cursor, self.limit).await?;
        let (messages, cut) = fit(super::upload::entries(ctx, page.messages).await?, &self.cursor);
        let (room, with) = self.conversation.fields();
        Ok(ServerFrame::History {
            room,
            with,
            messages,
            more: page.more || cut,
        })
    }
}

/// Keeps the messages nearest the cursor that fit in [`MAX_ANSWER_BYTES`]: the newest when
/// reading back, the oldest when catching up, so the next page goes on from the cut.
/// Says whether it cut any.
fn fit(mut messages: Vec<HistoryEntry>, cursor: &Cursor) -> (Vec<HistoryEntry>, bool) {
    let size = |entry: &HistoryEntry| serde_json::to_string(entry).map_or(0, |json| json.len() + 1);
    let forward = matches!(cursor, Cursor::After(_));
    let mut total = 0;
    let mut kept = 0;
    let nearest_first: Box<dyn Iterator<Item = &HistoryEntry>> = if forward {
        Box::new(messages.iter())
    } else {
        Box::new(messages.iter().rev())
    };
    for entry in nearest_first {
        total += size(entry);
        if total > MAX_ANSWER_BYTES {
            break;
        }
        kept += 1;
    }
    let cut = kept < messages.len();
    if forward {
        messages.truncate(kept);
    } else {
        messages.drain(..messages.len() - kept);
    }
    (messages, cut)
}
