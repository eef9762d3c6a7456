//! Each user's list of direct conversations on the table (`CONVS#<u>` / `WITH#<v>`, see
//! [`super::keys`]): kept by the archive as it keeps, edits and deletes direct messages, and
//! read latest first from `gsi1` by `conversations`.
//!
//! Every write is one UpdateItem per side whose condition carries the rule: a message
//! becomes the latest only over an earlier one (ids of one conversation follow the log),
//! and an edit or a delete reaches the list only while its message is the latest. The
//! archive applies one conversation's records in log order, so the list ends as the
//! conversation does; a redelivered record finds the conditions false.

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use roomcast_core::clock::now_secs;
use roomcast_core::history::{Conversation, ConversationSummary, ConversationsPage, MessageEdit, StoredMessage};
use roomcast_core::model::{MessageId, UserId};
use roomcast_core::ports::StoreError;

use super::history::{parse_message, user_map};
use super::item::{self, Item, Reader};
use super::keys::{self, attr};
use super::store::DynamoStore;
use super::table::{corrupt, unavailable, unless_condition_failed};

/// The other user, as a list entry's map `{userId, nick}`.
const WITH: &str = "with";

fn entry_key(user: &UserId, other: &UserId) -> Item {
    item::key(keys::conversations_of(user), keys::conversation_with(other))
}

/// `(user, the other user)` for each side of a direct conversation: one for a note to
/// oneself.
fn sides(a: &UserId, b: &UserId) -> Vec<(UserId, UserId)> {
    if a == b {
        vec![(a.clone(), a.clone())]
    } else {
        vec![(a.clone(), b.clone()), (b.clone(), a.clone())]
    }
}

impl DynamoStore {
    /// The direct message becomes the latest of its conversation on both users' lists,
    /// unless a later one is there: one conditional UpdateItem per side.
    pub(super) async fn note_latest(&self, message: &StoredMessage) -> Result<(), StoreError> {
        let Conversation::Direct(a, b) = &message.conversation else {
            return Ok(());
        };
        for (user, other) in sides(a, b) {
            let Some(with) = message.partner_of(&user) else {
                continue;
            };
            let mut names = vec![
                ("#gpk", attr::GSI1_PK),
                ("#gsk", attr::GSI1_SK),
                ("#with", WITH),
                ("#id", attr::ID),
                ("#from", attr::FROM),
                ("#ts", attr::TS),
                ("#deleted", attr::DELETED),
                ("#e", attr::EXPIRES_AT),
                ("#editedAt", attr::EDITED_AT),
            ];
            let mut values = vec![
                (":gpk", item::s(keys::conversations_of(&user))),
                (":gsk", item::s(keys::latest_first(&message.id))),
                (":with", user_map(with)),
                (":id", item::s(message.id.as_str())),
                (":from", user_map(&message.from)),
                (":ts", item::n(message.ts)),
                (":deleted", AttributeValue::Bool(message.deleted)),
                (":e", item::n(message.expires_at)),
            ];
            let mut set = "SET #gpk = :gpk, #gsk = :gsk, #with = :with, #id = :id, #from = :from, #ts = :ts, \
                           #deleted = :deleted, #e = :e"
                .to_owned();
            let mut remove = vec!["#editedAt"];
            names.push(("#text", attr::TEXT));
            match &message.text {
                Some(text) => {
                    set.push_str(", #text = :text");
                    values.push((":text", item::s(text)));
                }
                None => remove.push("#text"),
            }
            let mut update = self
                .table
                .update(entry_key(&user, &other))
                .update_expression(format!("{set} REMOVE {}", remove.join(", ")))
                .condition_expression("attribute_not_exists(#id) OR #id < :id");
            for (name, attribute) in names {
                update = update.expression_attribute_names(name, attribute);
            }
            for (name, value) in values {
                update = update.expression_attribute_values(name, value);
            }
            unless_condition_failed(update.send().await)?;
        }
        Ok(())
    }

    /// The edit reaches both users' lists where the message is still the latest.
    pub(super) async fn follow_edit(
        &self,
        conversation: &Conversation,
        id: &MessageId,
        edit: &MessageEdit,
    ) -> Result<(), StoreError> {
        self.update_where_latest(conversation, id, |update| {
            update
                .update_expression("SET #text = :text, #editedAt = :editedAt")
                .condition_expression("#id = :id AND #deleted = :false")
                .expression_attribute_names("#text", attr::TEXT)
                .expression_attribute_names("#editedAt", attr::EDITED_AT)
                .expression_attribute_names("#deleted", attr::DELETED)
                .expression_attribute_values(":text", item::s(&edit.text))
                .expression_attribute_values(":editedAt", item::n(edit.edited_at))
                .expression_attribute_values(":false", AttributeValue::Bool(false))
        })
        .await
    }

    /// The delete reaches both users' lists where the message is still the latest: it
    /// stays their latest, without its text.
    pub(super) async fn follow_delete(&self, conversation: &Conversation, id: &MessageId) -> Result<(), StoreError> {
        self.update_where_latest(conversation, id, |update| {
            update
                .update_expression("SET #deleted = :true REMOVE #text")
                .condition_expression("#id = :id")
                .expression_attribute_names("#text", attr::TEXT)
                .expression_attribute_names("#deleted", attr::DELETED)
                .expression_attribute_values(":true", AttributeValue::Bool(true))
        })
        .await
    }

    /// One UpdateItem per side of a direct conversation, shaped by `change`, whose
    /// condition names the entry's latest message as `#id = :id` (`id`); a failed
    /// condition (another message is the latest now) changes nothing.
    async fn update_where_latest(
        &self,
        conversation: &Conversation,
        id: &MessageId,
        change: impl Fn(UpdateItemFluentBuilder) -> UpdateItemFluentBuilder,
    ) -> Result<(), StoreError> {
        let Conversation::Direct(a, b) = conversation else {
            return Ok(());
        };
        for (user, other) in sides(a, b) {
            let update = self
                .table
                .update(entry_key(&user, &other))
                .expression_attribute_names("#id", attr::ID)
                .expression_attribute_values(":id", item::s(id.as_str()));
            unless_condition_failed(change(update).send().await)?;
        }
        Ok(())
    }

    /// One Query of `gsi1` (eventually consistent, as every index read), latest first,
    /// `Limit` one more than the page; entries whose latest message expired are left out.
    pub(super) async fn conversation_list(
        &self,
        user: &UserId,
        before: Option<&MessageId>,
        limit: usize,
    ) -> Result<ConversationsPage, StoreError> {
        let now = now_secs();
        let mut query = self
            .table
            .query()
            .index_name(keys::GSI1)
            .limit(i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX))
            .scan_index_forward(false)
            .expression_attribute_names("#pk", attr::GSI1_PK)
            .expression_attribute_values(":pk", item::s(keys::conversations_of(user)));
        query = match before {
            Some(before) => query
                .key_condition_expression("#pk = :pk AND #sk < :sk")
                .expression_attribute_names("#sk", attr::GSI1_SK)
                .expression_attribute_values(":sk", item::s(keys::latest_first(before))),
            None => query.key_condition_expression("#pk = :pk"),
        };
        let output = query.send().await.map_err(unavailable)?;
        let mut conversations = Vec::new();
        for found in output.items.unwrap_or_default() {
            let summary = parse_summary(&found, user).map_err(corrupt)?;
            if summary.last.expires_at >= now {
                conversations.push(summary);
            }
        }
        let more = conversations.len() > limit;
        conversations.truncate(limit);
        Ok(ConversationsPage { conversations, more })
    }
}

fn parse_summary(found: &Item, user: &UserId) -> Result<ConversationSummary, super::item::CorruptItem> {
    let r = Reader(found);
    let with = super::history::user(&r, WITH)?.ok_or_else(|| r.corrupt(WITH, "is missing"))?;
    let conversation = Conversation::direct(user.clone(), with.user_id.clone());
    // The entry holds the latest message as its item does, without `to`: the list's user
    // and `with` are the two sides.
    let last = parse_message(found, &conversation)?;
    Ok(ConversationSummary { with, last })
}
