//! Message history: what kafka-archive keeps of room messages and direct messages, and the
//! pages `history` reads. A conversation is a room, or the direct messages between two
//! users; its messages sort by id, which is time-ordered.

use serde::{Deserialize, Serialize};

use crate::files::Attachment;
use crate::model::{MessageId, RoomName, User, UserId};

/// Whose messages: a room's, or the direct messages between two users.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Conversation {
    Room(RoomName),
    /// The two users, in order, so that both sides name the same conversation.
    Direct(UserId, UserId),
}

impl Conversation {
    /// The conversation between `a` and `b`, the same whichever side asks.
    pub fn direct(a: UserId, b: UserId) -> Self {
        if a <= b {
            Self::Direct(a, b)
        } else {
            Self::Direct(b, a)
        }
    }

    /// Whether `user` takes part: a member of a room is checked elsewhere.
    pub fn includes(&self, user: &UserId) -> bool {
        match self {
            Self::Room(_) => false,
            Self::Direct(a, b) => a == user || b == user,
        }
    }
}

impl std::fmt::Display for Conversation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Room(room) => write!(f, "room `{room}`"),
            Self::Direct(a, b) => write!(f, "the conversation of `{a}` and `{b}`"),
        }
    }
}

/// A message as the archive keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: MessageId,
    pub conversation: Conversation,
    pub from: User,
    /// The recipient of a direct message.
    pub to: Option<User>,
    /// The latest text; `None` once deleted (a tombstone keeps no text).
    pub text: Option<String>,
    pub ts: i64,
    pub reply_to: Option<MessageId>,
    pub edited_at: Option<i64>,
    /// The latest edit's id: see [`MessageEdit::edit_id`].
    pub edit_id: Option<MessageId>,
    pub deleted: bool,
    /// When the item expires (seconds since the epoch): the retention.
    pub expires_at: i64,
    /// Its files, without urls (each reader gets them signed afresh).
    pub files: Vec<Attachment>,
}

/// A change of a stored message's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEdit {
    pub text: String,
    pub edited_at: i64,
    /// The edit's own id (time-ordered): an edit applies only over an older one, so a
    /// redelivered or reordered copy cannot bring back a text that was edited since.
    pub edit_id: MessageId,
}

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// The latest messages.
    Latest,
    /// Messages older than this id (scrollback).
    Before(MessageId),
    /// Messages newer than this id (catching up).
    After(MessageId),
}

/// One page of a conversation, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub messages: Vec<StoredMessage>,
    /// More messages may lie beyond the page in the direction it was read (older ones for
    /// `Latest` and `Before`, newer ones for `After`): ask again from its last message.
    /// Never false while there are more; an adapter that reads expired items it must leave
    /// out may say true before a page that turns out empty.
    pub more: bool,
}

/// One direct conversation as a user's `conversations` list shows it: the other user and
/// the latest message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    /// The other user (the user itself for notes to oneself).
    pub with: User,
    pub last: StoredMessage,
}

/// A page of a user's conversations, latest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationsPage {
    pub conversations: Vec<ConversationSummary>,
    /// More, older, conversations follow: ask again `before` the last one's message id.
    pub more: bool,
}

/// The latest message of a conversation in a `conversations` answer: its text is absent
/// once deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastMessage {
    pub id: MessageId,
    pub from: User,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub ts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub deleted: bool,
}

/// One entry of a `conversations` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationEntry {
    pub with: User,
    pub last: LastMessage,
}

impl From<ConversationSummary> for ConversationEntry {
    fn from(summary: ConversationSummary) -> Self {
        let last = summary.last;
        Self {
            with: summary.with,
            last: LastMessage {
                id: last.id,
                from: last.from,
                text: last.text.filter(|_| !last.deleted),
                ts: last.ts,
                edited_at: last.edited_at,
                deleted: last.deleted,
            },
        }
    }
}

impl StoredMessage {
    /// For a direct message: the other user of the conversation as `user` sees it.
    pub fn partner_of(&self, user: &UserId) -> Option<&User> {
        let to = self.to.as_ref()?;
        Some(if &self.from.user_id == user { to } else { &self.from })
    }
}

/// One message of a `history` answer: a message, or what is left of a deleted one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HistoryEntry {
    Deleted {
        id: MessageId,
        deleted: bool,
    },
    #[serde(rename_all = "camelCase")]
    Message {
        id: MessageId,
        from: User,
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<User>,
        text: String,
        ts: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        reply_to: Option<MessageId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        edited_at: Option<i64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<Attachment>,
    },
}

impl From<StoredMessage> for HistoryEntry {
    fn from(message: StoredMessage) -> Self {
        match message.text {
            Some(text) if !message.deleted => HistoryEntry::Message {
                id: message.id,
                from: message.from,
                to: message.to,
                text,
                ts: message.ts,
                reply_to: message.reply_to,
                edited_at: message.edited_at,
                files: message.files,
            },
            _ => HistoryEntry::Deleted {
                id: message.id,
                deleted: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Nick;
    use serde_json::json;

    #[test]
    fn both_sides_name_the_same_conversation() {
        let (a, b) = (UserId::new("u-a"), UserId::new("u-b"));
        assert_eq!(
            Conversation::direct(a.clone(), b.clone()),
            Conversation::direct(b.clone(), a.clone())
        );
        assert!(Conversation::direct(a.clone(), b).includes(&a));
    }

    #[test]
    fn history_entries_have_the_documented_shape() {
        let message = StoredMessage {
            id: MessageId::parse("01HZY3J5Q6V9W8X7Y6Z5A4B3C2").unwrap(),
            conversation: Conversation::Room(RoomName::trusted("general")),
            from: User {
                user_id: UserId::new("u1"),
                nick: Nick::trusted("alice"),
            },
            to: None,
            text: Some("hi".into()),
            ts: 5,
            reply_to: None,
            edited_at: Some(7),
            edit_id: None,
            deleted: false,
            expires_at: 0,
            files: vec![],
        };
        assert_eq!(
            serde_json::to_value(HistoryEntry::from(message.clone())).unwrap(),
            json!({"id": "01HZY3J5Q6V9W8X7Y6Z5A4B3C2", "from": {"userId": "u1", "nick": "alice"},
                   "text": "hi", "ts": 5, "editedAt": 7})
        );
        let tombstone = StoredMessage {
            text: None,
            deleted: true,
            ..message
        };
        assert_eq!(
            serde_json::to_value(HistoryEntry::from(tombstone)).unwrap(),
            json!({"id": "01HZY3J5Q6V9W8X7Y6Z5A4B3C2", "deleted": true})
        );
    }
}
