//! The in-memory [`History`]: each conversation's messages in a sorted map, with the same
//! rules as the DynamoDB adapter (keep once, edits only forward, tombstones final, expired
//! messages invisible).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::clock::now_secs;
use crate::history::{Conversation, ConversationSummary, ConversationsPage, Cursor, MessageEdit, Page, StoredMessage};
use crate::model::{MessageId, UserId};
use crate::ports::{History, StoreError};

#[derive(Default)]
pub struct MemoryHistory {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    conversations: HashMap<Conversation, BTreeMap<MessageId, StoredMessage>>,
    /// Each user's direct conversations: the other user's id → the latest message.
    lists: HashMap<UserId, HashMap<UserId, ConversationSummary>>,
    /// How far the archive has applied each (epoch, partition) of the log.
    archived: HashMap<(u8, i32), i64>,
}

impl State {
    /// Runs `change` on the list entry of `user` for the conversation with `partner`.
    fn summary(&mut self, user: &UserId, partner: &UserId) -> Option<&mut ConversationSummary> {
        self.lists.get_mut(user).and_then(|list| list.get_mut(partner))
    }

    /// The message became the latest of its conversation on both users' lists, unless a
    /// later one is there.
    fn note_latest(&mut self, message: &StoredMessage) {
        for (user, partner) in sides(message) {
            let Some(with) = message.partner_of(&user).cloned() else {
                continue;
            };
            let list = self.lists.entry(user).or_default();
            match list.get(&partner) {
                Some(summary) if summary.last.id >= message.id => {}
                _ => {
                    list.insert(
                        partner,
                        ConversationSummary {
                            with,
                            last: message.clone(),
                        },
                    );
                }
            }
        }
    }

    /// The lists whose latest message is `message` follow its change.
    fn follow(&mut self, message: &StoredMessage) {
        for (user, partner) in sides(message) {
            if let Some(summary) = self
                .summary(&user, &partner)
                .filter(|summary| summary.last.id == message.id)
            {
                summary.last = message.clone();
            }
        }
    }
}

/// `(user, the other user)` for each side of a direct message; none for a room's.
fn sides(message: &StoredMessage) -> Vec<(UserId, UserId)> {
    match &message.to {
        Some(to) if to.user_id != message.from.user_id => vec![
            (message.from.user_id.clone(), to.user_id.clone()),
            (to.user_id.clone(), message.from.user_id.clone()),
        ],
        Some(to) => vec![(to.user_id.clone(), to.user_id.clone())],
        None => Vec::new(),
    }
}

impl MemoryHistory {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A panic while holding the lock leaves the maps consistent (every change is one
        // insert or one field update), so a poisoned lock is still usable.
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut state)
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
        self.with(|state| {
            let changed = match state
                .conversations
                .get_mut(conversation)
                .and_then(|messages| messages.get_mut(id))
            {
                Some(message) if !message.deleted && live(message, now) => change(message).then(|| message.clone()),
                _ => None,
            };
            match changed {
                Some(message) => {
                    state.follow(&message);
                    true
                }
                None => false,
            }
        })
    }
}

/// A message whose retention has passed is gone, as DynamoDB's TTL would make it.
fn live(message: &StoredMessage, now: i64) -> bool {
    message.expires_at >= now
}

/// How conversations sort across users' lists: by the time of their latest message, then
/// by its id (ids of different conversations come from different log partitions, so only
/// their time compares).
fn latest_first_key(message: &StoredMessage) -> (i64, &str) {
    (message.id.timestamp_ms(), message.id.as_str())
}

fn before_key(id: &MessageId) -> (i64, &str) {
    (id.timestamp_ms(), id.as_str())
}

#[async_trait]
impl History for MemoryHistory {
    async fn keep(&self, message: &StoredMessage) -> Result<(), StoreError> {
        self.with(|state| {
            let kept = state
                .conversations
                .entry(message.conversation.clone())
                .or_default()
                .entry(message.id.clone())
                .or_insert_with(|| message.clone())
                .clone();
            state.note_latest(&kept);
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
        Ok(self.with(|state| {
            state
                .conversations
                .get(conversation)
                .and_then(|messages| messages.get(id))
                .filter(|message| live(message, now))
                .cloned()
        }))
    }

    async fn page(&self, conversation: &Conversation, cursor: &Cursor, limit: usize) -> Result<Page, StoreError> {
        let now = now_secs();
        Ok(self.with(|state| {
            let Some(messages) = state.conversations.get(conversation) else {
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

    async fn archived_until(&self, epoch: u8, partition: i32) -> Result<Option<i64>, StoreError> {
        Ok(self.with(|state| state.archived.get(&(epoch, partition)).copied()))
    }

    async fn mark_archived(&self, epoch: u8, partition: i32, next: i64) -> Result<(), StoreError> {
        self.with(|state| {
            let mark = state.archived.entry((epoch, partition)).or_insert(next);
            *mark = (*mark).max(next);
        });
        Ok(())
    }

    async fn conversations(
        &self,
        user: &UserId,
        before: Option<&MessageId>,
        limit: usize,
    ) -> Result<ConversationsPage, StoreError> {
        let now = now_secs();
        Ok(self.with(|state| {
            let mut listed: Vec<ConversationSummary> = state
                .lists
                .get(user)
                .into_iter()
                .flat_map(|list| list.values())
                .filter(|summary| live(&summary.last, now))
                .filter(|summary| before.is_none_or(|before| latest_first_key(&summary.last) < before_key(before)))
                .cloned()
                .collect();
            listed.sort_by(|a, b| latest_first_key(&b.last).cmp(&latest_first_key(&a.last)));
            let more = listed.len() > limit;
            listed.truncate(limit);
            ConversationsPage {
                conversations: listed,
                more,
            }
        }))
    }
}
