//! The archive of a batch of event-log records: what kafka-archive does with each batch,
//! on its own consumer group, and what the local gateway does with the same log.
//!
//! The rules, each for a reason:
//! - `message` and `dm` frames are kept, `edited` and `deleted` applied to the kept
//!   message; every other frame (presence, a service's own frames) is not history, and
//!   neither is a chat frame without a [`Stamp`](crate::envelope::Stamp): only the chat
//!   functions write history, never a service's push;
//! - a message's id, and an edit's, is its record's log position ([`MessageId::at`]), as
//!   fan-out and the sender's `ack` derive it;
//! - each conversation's records are applied one after the other in log order, so that a
//!   reader never sees a later message of a room before an earlier one (polling `after`
//!   the last id it read then never skips one), and an edit finds its message; different
//!   conversations are written at once;
//! - a record that cannot be used (not an envelope, a chat frame of the wrong shape, a text
//!   over the limit) is logged and skipped: retrying it would block its partition forever;
//! - a write that fails fails the batch, so that it is delivered again. That is safe
//!   because every write is idempotent: a message is kept only if absent, an edit applies
//!   only over an older edit, a tombstone is final. Within a conversation the writes before
//!   the failure were the earlier records, so the order holds on the retry too.

use std::collections::HashMap;
use std::time::Duration;

use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Deserialize;

use crate::config::Limits;
use crate::envelope::{Envelope, Target};
use crate::history::{Conversation, MessageEdit, StoredMessage};
use crate::model::{LogPosition, MessageId, RoomName, User, UserId};
use crate::ports::{History, StoreError};
use crate::protocol::ServerFrame;
use crate::record::Record;

#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    /// How long messages are kept (`ROOMCAST_HISTORY_DAYS`).
    pub retention: Duration,
    /// Writes in flight at once.
    pub concurrency: usize,
    /// What a message may be, as `send` and `dm` check it: a record past these is skipped.
    pub limits: Limits,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(30 * 24 * 3600),
            concurrency: 16,
            limits: Limits::default(),
        }
    }
}

/// What a batch did, for logs and benchmarks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ArchiveReport {
    pub records: usize,
    /// Messages written (or found there already, on a redelivery).
    pub kept: usize,
    /// Edits and deletes that changed a message.
    pub changed: usize,
    /// Edits and deletes that changed nothing: applied already, superseded, or their
    /// message deleted or expired.
    pub unchanged: usize,
    /// Records that are not history (presence, other frames).
    pub ignored: usize,
    /// Records that could not be used, skipped (and logged).
    pub skipped: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("could not write to the message history")]
pub struct ArchiveError(#[source] pub StoreError);

/// What one record asks of the history.
#[derive(Debug)]
enum Change {
    Keep(StoredMessage),
    /// An edit or a delete of the message `id` of the conversation.
    Amend(Conversation, MessageId, Amendment),
}

impl Change {
    fn conversation(&self) -> &Conversation {
        match self {
            Change::Keep(message) => &message.conversation,
            Change::Amend(conversation, _, _) => conversation,
        }
    }
}

#[derive(Debug)]
enum Amendment {
    Edit(MessageEdit),
    Delete,
}

/// Archives a batch. Fails only when a write failed; the batch must then be retried.
pub async fn archive<H: History + ?Sized>(
    history: &H,
    config: &ArchiveConfig,
    mut records: Vec<Record>,
) -> Result<ArchiveReport, ArchiveError> {
    let mut report = ArchiveReport {
        records: records.len(),
        ..ArchiveReport::default()
    };
    records.sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));

    // Each conversation's changes in log order; the conversations in order of appearance.
    let mut conversations: HashMap<Conversation, Vec<Change>> = HashMap::new();
    let mut order = Vec::new();
    // The offset after the last chat record of each (epoch, partition).
    let mut marks: HashMap<(u8, i32), i64> = HashMap::new();
    for record in &records {
        let envelope = match Envelope::decode(&record.value) {
            Ok(envelope) => envelope,
            Err(error) => {
                report.skipped += 1;
                tracing::warn!(reason = %error, topic = %record.topic, partition = record.partition, offset = record.offset, "skipping record");
                continue;
            }
        };
        if let Some(stamp) = &envelope.stamp {
            let next = marks.entry((stamp.epoch, record.partition)).or_default();
            *next = (*next).max(record.offset + 1);
        }
        match change(record, &envelope, config) {
            Ok(Some(change)) => conversations
                .entry(change.conversation().clone())
                .or_insert_with_key(|conversation| {
                    order.push(conversation.clone());
                    Vec::new()
                })
                .push(change),
            Ok(None) => report.ignored += 1,
            Err(reason) => {
                report.skipped += 1;
                tracing::warn!(%reason, topic = %record.topic, partition = record.partition, offset = record.offset, "skipping record");
            }
        }
    }

    // Streams over indices, not references: a closure over `&T` is higher-ranked, and the
    // compiler then cannot prove the whole future `Send` (rust-lang/rust#102211).
    let (order, conversations) = (&order, &conversations);
    let outcomes: Vec<ArchiveReport> = stream::iter(0..order.len())
        .map(|index| apply(history, &conversations[&order[index]]))
        .buffer_unordered(config.concurrency.max(1))
        .try_collect()
        .await
        .map_err(ArchiveError)?;
    for outcome in outcomes {
        report.kept += outcome.kept;
        report.changed += outcome.changed;
        report.unchanged += outcome.unchanged;
    }
    // Then how far each partition is archived, for `edit`, `delete` and replies that name a
    // message not kept yet: they wait for the archive only while it has not passed it.
    for ((epoch, partition), next) in marks {
        history
            .mark_archived(epoch, partition, next)
            .await
            .map_err(ArchiveError)?;
    }
    tracing::info!(?report, "batch archived");
    Ok(report)
}

/// Applies one conversation's changes, one after the other in log order.
async fn apply<H: History + ?Sized>(history: &H, changes: &[Change]) -> Result<ArchiveReport, StoreError> {
    let mut outcome = ArchiveReport::default();
    for change in changes {
        match change {
            Change::Keep(message) => {
                history.keep(message).await?;
                outcome.kept += 1;
            }
            Change::Amend(conversation, id, amendment) => {
                let changed = match amendment {
                    Amendment::Edit(edit) => history.edit(conversation, id, edit).await?,
                    Amendment::Delete => history.delete(conversation, id).await?,
                };
                if changed {
                    outcome.changed += 1;
                } else {
                    outcome.unchanged += 1;
                }
            }
        }
    }
    Ok(outcome)
}

/// The message a record keeps, exactly as the archive would keep it: for `edit`, `delete`
/// and replies that name a message the archive has not reached yet. `None` for any other
/// record, and for one the archive would skip.
pub fn message_of(record: &Record, limits: &Limits) -> Option<StoredMessage> {
    let envelope = Envelope::decode(&record.value).ok()?;
    let config = ArchiveConfig {
        limits: limits.clone(),
        ..ArchiveConfig::default()
    };
    match change(record, &envelope, &config) {
        Ok(Some(Change::Keep(message))) => Some(message),
        _ => None,
    }
}

/// The frame types that are history.
const HISTORY_FRAMES: &[&str] = &["message", "dm", "edited", "deleted"];

/// What a record asks of the history: `None` if it is not history, `Err` (why) if it is
/// unusable.
fn change(record: &Record, envelope: &Envelope, config: &ArchiveConfig) -> Result<Option<Change>, String> {
    // Owned: a `type` with a JSON escape cannot be borrowed (and is no history frame).
    #[derive(Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: String,
    }
    let kind = serde_json::from_str::<Typed>(envelope.frame.get())
        .map_err(|error| error.to_string())?
        .kind;
    if !HISTORY_FRAMES.contains(&kind.as_str()) {
        return Ok(None);
    }
    // A chat frame that no chat function wrote (a service's push): not history.
    let Some(stamp) = envelope.stamp else {
        return Ok(None);
    };
    let position: LogPosition = record.position();
    let frame: ServerFrame =
        serde_json::from_str(&envelope.frame_at(position)).map_err(|error| format!("`{kind}` frame: {error}"))?;
    let limits = &config.limits;
    // A message or a direct message is kept; the two differ only in their conversation
    // and recipient.
    let (id, conversation, from, to, text, ts, reply_to, files) = match frame {
        ServerFrame::Message {
            room,
            id,
            from,
            text,
            ts,
            reply_to,
            files,
        } => (
            id.ok_or("a message without an id")?,
            Conversation::Room(check_room(room, limits)?),
            from,
            None,
            text,
            ts,
            reply_to,
            files,
        ),
        ServerFrame::Dm {
            id,
            from,
            to,
            text,
            ts,
            reply_to,
            files,
        } => {
            check_user(&to)?;
            let conversation = Conversation::direct(from.user_id.clone(), to.user_id.clone());
            let id = id.ok_or("a dm without an id")?;
            (id, conversation, from, Some(to), text, ts, reply_to, files)
        }
        ServerFrame::Edited {
            room,
            with,
            id,
            text,
            edited_at,
            by: _,
        } => {
            check_text(&text, limits)?;
            let edit_id = stamp.id_at(position);
            let edit = MessageEdit {
                text,
                edited_at,
                edit_id,
            };
            let conversation = conversation_of(room, with, &envelope.target, limits)?;
            return Ok(Some(Change::Amend(conversation, id, Amendment::Edit(edit))));
        }
        ServerFrame::Deleted { room, with, id, by: _ } => {
            let conversation = conversation_of(room, with, &envelope.target, limits)?;
            return Ok(Some(Change::Amend(conversation, id, Amendment::Delete)));
        }
        _ => unreachable!("only history frame types get here"),
    };
    check_user(&from)?;
    check_text(&text, limits)?;
    if files.len() > crate::files::MAX_FILES_PER_MESSAGE {
        return Err(format!("a `{kind}` with {} files", files.len()));
    }
    // The record's key is its conversation's, so that its position orders it there.
    let expected = match &conversation {
        Conversation::Room(room) => Target::Room(room.clone()),
        Conversation::Direct(a, b) => Target::direct(a.clone(), b.clone()),
    };
    if envelope.target != expected {
        return Err(format!(
            "a `{kind}` must be addressed to its conversation, {conversation}"
        ));
    }
    Ok(Some(Change::Keep(StoredMessage {
        id,
        conversation,
        from,
        to,
        text: Some(text),
        ts,
        reply_to,
        edited_at: None,
        edit_id: None,
        deleted: false,
        expires_at: ts / 1000 + i64::try_from(config.retention.as_secs()).unwrap_or(i64::MAX / 2),
        // The urls were signed for the live frame; readers of the history get their own.
        files: files
            .into_iter()
            .map(|file| crate::files::Attachment { url: None, ..file })
            .collect(),
    })))
}

/// The conversation an `edited` or `deleted` frame is about: its room, or the direct
/// conversation it is addressed to (fan-out tells each side the other as `with`).
fn conversation_of(
    room: Option<RoomName>,
    with: Option<UserId>,
    target: &Target,
    limits: &Limits,
) -> Result<Conversation, String> {
    match (room, with, target) {
        (Some(room), None, _) => Ok(Conversation::Room(check_room(room, limits)?)),
        (None, None, Target::Direct(a, b)) => Ok(Conversation::direct(a.clone(), b.clone())),
        _ => Err("names no conversation: needs `room`, or a direct conversation's target".to_owned()),
    }
}

fn check_room(room: RoomName, limits: &Limits) -> Result<RoomName, String> {
    RoomName::parse(room.as_str(), limits.room_name_chars).map_err(|error| error.message)
}

fn check_text(text: &str, limits: &Limits) -> Result<(), String> {
    if text.len() > limits.text_bytes {
        return Err(format!(
            "text is {} bytes; the limit is {}",
            text.len(),
            limits.text_bytes
        ));
    }
    Ok(())
}

/// User ids go into keys: bounded as the protocol bounds them.
fn check_user(user: &User) -> Result<(), String> {
    let id = user.user_id.as_str();
    if id.is_empty() || id.len() > 256 {
        return Err("a user id must be 1 to 256 bytes".to_owned());
    }
    Ok(())
}
