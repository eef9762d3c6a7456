//! The in-memory [`History`]: each conversation's messages in a sorted map, with the same
//! rules as the DynamoDB adapter (keep once, edits only forward, tombstones final, expired
//! messages invisible).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::clock::now_secs;
use crate::history::{Conversation, Cursor, MessageEdit, Page, StoredMessage};
use crate::model::MessageId;
use crate::ports::{History, StoreError};

#[derive(Default)]
pub struct MemoryHistory {
    conversations: Mutex<HashMap<Conversation, BTreeMap<MessageId, StoredMessage>>>,
}

impl MemoryHistory {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<Conversation, BTreeMap<MessageId, StoredMessage>>) -> T) -> T {
        // A panic while holding the lock leaves the maps consistent (every change is one
        // insert or one field update), so a poisoned lock is still usable.
        let mut conversations = self
            .conversations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut conversations)
    }
}

impl MemoryHistory {
    /// Runs `change` on a message that can still change: kept, not deleted, not expired.
    /// `false` (nothing changed) otherwise, as the DynamoDB adapter's write conditions say.
    fn amend(
        &self,
        conversation: &Conversation,
        id: &MessageId,
        change: impl FnOnce(&mut StoredMessage) -> bool,
    ) -> bool {
        let now = now_secs();
        self.with(|conversations| {
            match conversations
                .get_mut(conversation)
                .and_then(|messages| messages.get_mut(id))
            {
                Some(message) if !message.deleted && live(message, now) => change(message),
                _ => false,
            }
        })
    }
}

/// A message whose retention has passed is gone, as DynamoDB's TTL would make it.
fn live(message: &StoredMessage, now: i64) -> bool {
    message.expires_at >= now
}

#[async_trait]
impl History for MemoryHistory {
    async fn keep(&self, message: &StoredMessage) -> Result<(), StoreError> {
        self.with(|conversations| {
            conversations
                .entry(message.conversation.clone())
                .or_default()
                .entry(message.id.clone())
                .or_insert_with(|| message.clone());
        });
        Ok(())
    }

    async fn edit(&self, conversation: &Conversation, id: &MessageId, edit: &MessageEdit) -> Result<bool, StoreError> {
        Ok(self.amend(conversation, id, |message| {
            if message.edit_id.as_ref().is_some_and(|last| *last >= edit.edit_id) {
                return false;
            }
            message.text = Some(edit.text.clone());
            message.edited_at = Some(edit.edited_at);
            message.edit_id = Some(edit.edit_id.clone());
            true
        }))
    }

    async fn delete(&self, conversation: &Conversation, id: &MessageId) -> Result<bool, StoreError> {
        Ok(self.amend(conversation, id, |message| {
            message.deleted = true;
            message.text = None;
            true
        }))
    }

    async fn message(&self, conversation: &Conversation, id: &MessageId) -> Result<Option<StoredMessage>, StoreError> {
        let now = now_secs();
        Ok(self.with(|conversations| {
            conversations
                .get(conversation)
                .and_then(|messages| messages.get(id))
                .filter(|message| live(message, now))
                .cloned()
        }))
    }

    async fn page(&self, conversation: &Conversation, cursor: &Cursor, limit: usize) -> Result<Page, StoreError> {
        let now = now_secs();
        Ok(self.with(|conversations| {
            let Some(messages) = conversations.get(conversation) else {
                return Page {
                    messages: Vec::new(),
                    more: false,
                };
            };
            let range = match cursor {
                Cursor::Latest => (Bound::Unbounded, Bound::Unbounded),
                Cursor::Before(id) => (Bound::Unbounded, Bound::Excluded(id.clone())),
                Cursor::After(id) => (Bound::Excluded(id.clone()), Bound::Unbounded),
            };
            let in_range = messages
                .range(range)
                .map(|(_, message)| message)
                .filter(|m| live(m, now));
            let mut page: Vec<StoredMessage> = match cursor {
                Cursor::After(_) => in_range.take(limit + 1).cloned().collect(),
                Cursor::Latest | Cursor::Before(_) => in_range.rev().take(limit + 1).cloned().collect(),
            };
            let more = page.len() > limit;
            page.truncate(limit);
            if !matches!(cursor, Cursor::After(_)) {
                page.reverse();
            }
            Page { messages: page, more }
        }))
    }
}
