//! `history` → a page of a room's messages (members only) or of the caller's direct
//! conversation with a user: the latest ones, or those `before` (scrollback) or `after`
//! (catching up after a reconnect) a message id, oldest first. One Query per page.

use serde::Deserialize;
use serde_json::Value;

use super::conversation::{ConversationFields, ConversationRef};
use super::{fields, Context};
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

#[derive(Debug)]
pub struct History {
    pub conversation: ConversationRef,
    pub cursor: Cursor,
    pub limit: usize,
    /// Only messages that are surely archived by now: see [`History::settled`].
    pub settled_only: bool,
}

impl History {
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
        } = fields(frame)?;
        let cursor = match (before, after) {
            (None, None) => Cursor::Latest,
            (Some(before), None) => Cursor::Before(MessageId::parse(&before)?),
            (None, Some(after)) => Cursor::After(MessageId::parse(&after)?),
            (Some(_), Some(_)) => {
                return Err(ClientError::bad_request("give `before` or `after`, not both"));
            }
        };
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(limit) if (1..=MAX_LIMIT as i64).contains(&limit) => limit as usize,
            Some(_) => return Err(ClientError::bad_request(format!("limit must be 1 to {MAX_LIMIT}"))),
        };
        Ok(Self {
            conversation: ConversationRef::parse(conversation, config.limits.room_name_chars)?,
            cursor,
            limit,
            settled_only: false,
        })
    }

    /// This page for a poller, which reads on with `after` the last id it got and must
    /// then never skip a message. Ids are made by the senders and messages are archived
    /// in the order their records arrive, so a message can become readable after one
    /// with a greater id (two senders at once, one of them slower to publish). The
    /// latest page (the newest settled messages) and `after` pages therefore leave out
    /// messages younger than `Config::archive_lag`, the bound on how long a message takes
    /// to be archived: every message with a smaller id than one returned is then already
    /// readable. Polling sees each message once, at most that much later than a WebSocket
    /// member does. (`before` pages read back from an old id and need no such care.)
    pub fn settled(mut self) -> Self {
        self.settled_only = true;
        self
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
        let conversation = self.conversation.resolve(ctx).await?;
        let horizon = ctx.now_ms - ctx.config.archive_lag.as_millis() as i64;
        let cursor = match self.cursor {
            // The latest settled page: the newest messages made before the horizon.
            Cursor::Latest if self.settled_only => Cursor::Before(MessageId::earliest_at(horizon + 1)),
            cursor => cursor,
        };
        let mut page = ctx.history.page(&conversation, &cursor, self.limit).await?;
        let mut unsettled = false;
        if self.settled_only && matches!(cursor, Cursor::After(_)) {
            // Oldest first: the unsettled ones are at the end.
            let settled = page
                .messages
                .partition_point(|message| message.id.timestamp_ms() <= horizon);
            unsettled = settled < page.messages.len();
            page.messages.truncate(settled);
        }
        let (messages, cut) = fit(page.messages.into_iter().map(HistoryEntry::from).collect(), &cursor);
        let more = match cursor {
            // Whatever follows an unsettled message is unsettled too: nothing more to
            // read now.
            Cursor::After(_) if unsettled => cut,
            _ => page.more || cut,
        };
        let (room, with) = self.conversation.fields();
        Ok(ServerFrame::History {
            room,
            with,
            messages,
            more,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Conversation, StoredMessage};
    use crate::memory::{MemoryHistory, MemoryLog, MemoryStore};
    use crate::model::{Caller, Nick, RoomName, User, UserId};
    use crate::ports::{History as _, Rooms as _};

    const NOW: i64 = 1_800_000_000_000;

    fn message(id: &MessageId) -> StoredMessage {
        StoredMessage {
            id: id.clone(),
            conversation: Conversation::Room(RoomName::trusted("general")),
            from: User {
                user_id: UserId::new("u1"),
                nick: Nick::trusted("alice"),
            },
            to: None,
            text: Some("hi".into()),
            ts: id.timestamp_ms(),
            reply_to: None,
            edited_at: None,
            edit_id: None,
            deleted: false,
            expires_at: i64::MAX,
        }
    }

    fn ids(frame: &ServerFrame) -> (Vec<String>, bool) {
        let ServerFrame::History { messages, more, .. } = frame else {
            panic!("a history page: {frame:?}");
        };
        let json = serde_json::to_value(messages).unwrap();
        let ids = json
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["id"].as_str().unwrap().to_owned())
            .collect();
        (ids, *more)
    }

    /// A poller's pages hold only messages older than the archive lag: the latest page
    /// is the newest of those, and `after` stops before the first younger one.
    #[tokio::test]
    async fn a_pollers_pages_hold_only_settled_messages() {
        let (store, history, log) = (MemoryStore::new(), MemoryHistory::default(), MemoryLog::new("t", 1, 10));
        let config = Config::default();
        let lag = config.archive_lag.as_millis() as i64;
        let caller = Caller {
            user: User {
                user_id: UserId::new("u1"),
                nick: Nick::trusted("alice"),
            },
            roles: Vec::new(),
            connection: None,
            expires_at: None,
            source_ip: None,
        };
        let room = RoomName::trusted("general");
        store.join(&room, &caller.user, None).await.unwrap();
        // Two settled messages, then two younger than the lag.
        let times = [NOW - lag - 2_000, NOW - lag, NOW - lag + 1, NOW - 10];
        let kept: Vec<MessageId> = times.iter().map(|ms| MessageId::earliest_at(*ms)).collect();
        for id in &kept {
            history.keep(&message(id)).await.unwrap();
        }
        let ctx = Context {
            store: &store,
            history: &history,
            publisher: &log,
            config: &config,
            caller: &caller,
            now_ms: NOW,
        };
        let page = |cursor: Cursor, settled: bool| History {
            conversation: ConversationRef::Room(room.clone()),
            cursor,
            limit: 1,
            settled_only: settled,
        };
        let all: Vec<String> = kept.iter().map(ToString::to_string).collect();

        let latest = page(Cursor::Latest, true).apply(&ctx).await.unwrap();
        assert_eq!(ids(&latest), (vec![all[1].clone()], true), "the newest settled message");
        let after = page(Cursor::After(kept[0].clone()), true).apply(&ctx).await.unwrap();
        assert_eq!(ids(&after).0, vec![all[1].clone()]);
        let after = page(Cursor::After(kept[1].clone()), true).apply(&ctx).await.unwrap();
        assert_eq!(ids(&after), (vec![], false), "nothing more is settled");
        // A WebSocket client's page holds everything the archive has.
        let latest = page(Cursor::Latest, false).apply(&ctx).await.unwrap();
        assert_eq!(ids(&latest), (vec![all[3].clone()], true));
        let after = page(Cursor::After(kept[1].clone()), false).apply(&ctx).await.unwrap();
        assert_eq!(ids(&after), (vec![all[2].clone()], true));
    }
}
