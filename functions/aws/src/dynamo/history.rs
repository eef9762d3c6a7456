//! The [`History`] port on the table: each conversation's messages in a partition of their
//! own (`HIST#ROOM#<r>` or `HIST#DM#…`, see [`super::keys`]), one item per message under
//! `MSG#<id>`, so that a page is one Query in id (time) order.
//!
//! Every write is one conditional PutItem or UpdateItem whose condition carries the rule
//! (keep once, edits only forward, tombstones final, expired messages untouchable): a
//! redelivered or reordered record finds the condition false and changes nothing, with no
//! read before the write for another writer to race. Every read is one strongly consistent
//! GetItem or Query, so an `edit` right after the archive kept its message finds it.
//!
//! The items carry the table's TTL (`expiresAt`, the message's `expires_at`). DynamoDB
//! deletes expired items lazily (within days), so they are filtered out on read and
//! excluded by the conditions of writes, as [`roomcast_core::memory::MemoryHistory`] does.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use roomcast_core::clock::now_secs;
use roomcast_core::history::{Conversation, ConversationsPage, Cursor, MessageEdit, Page, StoredMessage};
use roomcast_core::model::{MessageId, Nick, User, UserId};
use roomcast_core::ports::{History, StoreError};

use super::item::{self, CorruptItem, Item, Reader};
use super::keys::{self, attr};
use super::store::DynamoStore;
use super::table::{corrupt, unavailable, unless_condition_failed};

/// On an archive mark: the offset after the last chat record applied.
const NEXT: &str = "next";

fn message_key(conversation: &Conversation, id: &MessageId) -> Item {
    item::key(keys::conversation(conversation), keys::message(id))
}

/// A user as the map `{userId, nick}` (a message's `from` and `to`).
pub(super) fn user_map(user: &User) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        (attr::USER_ID.to_owned(), item::s(user.user_id.as_str())),
        (attr::NICK.to_owned(), item::s(user.nick.as_str())),
    ]))
}

/// The item of a kept message. Optional fields are left out rather than stored as NULL, so
/// that the conditions can test them with `attribute_not_exists`.
fn message_item(message: &StoredMessage) -> Item {
    let mut item = message_key(&message.conversation, &message.id);
    item.extend([
        (attr::ID.to_owned(), item::s(message.id.as_str())),
        (attr::FROM.to_owned(), user_map(&message.from)),
        (attr::TS.to_owned(), item::n(message.ts)),
        (attr::DELETED.to_owned(), AttributeValue::Bool(message.deleted)),
        (attr::EXPIRES_AT.to_owned(), item::n(message.expires_at)),
    ]);
    let optional = [
        (attr::TO, message.to.as_ref().map(user_map)),
        (attr::TEXT, message.text.as_deref().map(item::s)),
        (attr::REPLY_TO, message.reply_to.as_ref().map(|id| item::s(id.as_str()))),
        (attr::EDITED_AT, message.edited_at.map(item::n)),
        (attr::EDIT_ID, message.edit_id.as_ref().map(|id| item::s(id.as_str()))),
        (attr::FILES, files_attribute(&message.files)),
    ];
    item.extend(
        optional
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_owned(), value?))),
    );
    item
}

/// A message item read back; `conversation` is the one whose partition it was read from.
pub(super) fn parse_message(item: &Item, conversation: &Conversation) -> Result<StoredMessage, CorruptItem> {
    let r = Reader(item);
    Ok(StoredMessage {
        id: message_id(&r, attr::ID)?.ok_or_else(|| r.corrupt(attr::ID, "is missing"))?,
        conversation: conversation.clone(),
        from: user(&r, attr::FROM)?.ok_or_else(|| r.corrupt(attr::FROM, "is missing"))?,
        to: user(&r, attr::TO)?,
        text: r.opt_s(attr::TEXT)?.map(str::to_owned),
        ts: r.n(attr::TS)?,
        reply_to: message_id(&r, attr::REPLY_TO)?,
        edited_at: r.opt_n(attr::EDITED_AT)?,
        edit_id: message_id(&r, attr::EDIT_ID)?,
        deleted: r
            .opt_bool(attr::DELETED)?
            .ok_or_else(|| r.corrupt(attr::DELETED, "is missing"))?,
        expires_at: r.n(attr::EXPIRES_AT)?,
        files: match r.opt_s(attr::FILES)? {
            Some(json) => serde_json::from_str(json).map_err(|_| r.corrupt(attr::FILES, "is not a list of files"))?,
            None => Vec::new(),
        },
    })
}

/// A message's files as one JSON string (`[{id, name, contentType, size}]`): read only
/// whole, with the message. Absent when there are none, as on every message before files.
fn files_attribute(files: &[roomcast_core::files::Attachment]) -> Option<AttributeValue> {
    if files.is_empty() {
        return None;
    }
    // Plain structs of strings and numbers: serialising cannot fail.
    serde_json::to_string(files).ok().map(item::s)
}

fn message_id(r: &Reader<'_>, attribute: &'static str) -> Result<Option<MessageId>, CorruptItem> {
    r.opt_s(attribute)?
        .map(|id| MessageId::parse(id).map_err(|_| r.corrupt(attribute, "is not a message id")))
        .transpose()
}

pub(super) fn user(r: &Reader<'_>, attribute: &'static str) -> Result<Option<User>, CorruptItem> {
    let Some(value) = r.0.get(attribute) else {
        return Ok(None);
    };
    let AttributeValue::M(map) = value else {
        return Err(r.corrupt(attribute, "is not a map"));
    };
    match (map.get(attr::USER_ID), map.get(attr::NICK)) {
        (Some(AttributeValue::S(user_id)), Some(AttributeValue::S(nick))) => Ok(Some(User {
            user_id: UserId::new(user_id),
            nick: Nick::trusted(nick),
        })),
        _ => Err(r.corrupt(attribute, "is not a map of the strings `userId` and `nick`")),
    }
}

/// Whether a message's retention has not passed, as `MemoryHistory` and the write
/// conditions (`expiresAt >= :now`) decide it.
fn live(message: &StoredMessage, now: i64) -> bool {
    message.expires_at >= now
}

/// A Query's `Limit` for a page of `limit`: one more item than the page, to learn whether
/// there is more. Capped where DynamoDB's parameter ends; a page that large is cut by the
/// 1 MB response limit long before.
fn query_limit(limit: usize) -> i32 {
    i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX)
}

/// The page from a Query's items, in the order they were read (newest first for `Latest`
/// and `Before`, oldest first for `After`).
///
/// Without expired items (the usual case) this is exactly `MemoryHistory`'s page: `limit`
/// messages, and `more` if the Query found one more. Expired items not yet deleted by
/// DynamoDB are read too (filtering in the Query would not help: `Limit` counts items
/// before any filter) and left out here, so a page may hold fewer than `limit` messages.
/// `more` then means "the Query stopped before the end of the conversation and this page
/// gave a cursor to go on from": a client may find the next page empty (and `more` false),
/// but never misses a message behind a `more: false`, and never loops on an empty page
/// with `more: true`. The one loss: a page that read nothing but expired items says
/// `more: false` even if live messages lie beyond them (an `After` cursor older than the
/// retention, or a retention shortened since): messages expire oldest first, so behind
/// expired messages there are normally only expired ones.
fn page_of(read: Vec<StoredMessage>, cursor: &Cursor, limit: usize, query_cut: bool, now: i64) -> Page {
    let mut messages: Vec<StoredMessage> = read.into_iter().filter(|message| live(message, now)).collect();
    let mut more = messages.len() > limit;
    messages.truncate(limit);
    more |= query_cut && !messages.is_empty();
    if !matches!(cursor, Cursor::After(_)) {
        messages.reverse();
    }
    Page { messages, more }
}

#[async_trait]
impl History for DynamoStore {
    /// One PutItem on condition that the item is absent: a message is written once, and a
    /// redelivery (or the second copy of a direct message) finds it there and leaves it,
    /// edits and tombstone included. An expired item not yet deleted counts as there, as in
    /// `MemoryHistory`; message ids are never reused, so only a redelivery can meet one.
    async fn keep(&self, message: &StoredMessage) -> Result<(), StoreError> {
        let put = self
            .table
            .put(message_item(message))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", attr::PK);
        // A failed condition is the message already kept: the answer is the same.
        unless_condition_failed(put.send().await)?;
        self.note_latest(message).await
    }

    /// One UpdateItem setting the text, `editedAt` and `editId`, on condition that the
    /// message exists, is neither deleted nor expired, and has no edit as recent: the
    /// comparison of edit ids (ULIDs, compared as strings like `MessageId`s) makes a
    /// redelivered or reordered edit a no-op.
    async fn edit(&self, conversation: &Conversation, id: &MessageId, edit: &MessageEdit) -> Result<bool, StoreError> {
        let update = self
            .table
            .update(message_key(conversation, id))
            .update_expression("SET #text = :text, #editedAt = :editedAt, #editId = :editId")
            .condition_expression(
                "attribute_exists(#pk) AND #deleted = :false AND #expiresAt >= :now \
                 AND (attribute_not_exists(#editId) OR #editId < :editId)",
            )
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#text", attr::TEXT)
            .expression_attribute_names("#editedAt", attr::EDITED_AT)
            .expression_attribute_names("#editId", attr::EDIT_ID)
            .expression_attribute_names("#deleted", attr::DELETED)
            .expression_attribute_names("#expiresAt", attr::EXPIRES_AT)
            .expression_attribute_values(":text", item::s(&edit.text))
            .expression_attribute_values(":editedAt", item::n(edit.edited_at))
            .expression_attribute_values(":editId", item::s(edit.edit_id.as_str()))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":now", item::n(now_secs()));
        let changed = unless_condition_failed(update.send().await)?.is_some();
        if changed {
            self.follow_edit(conversation, id, edit).await?;
        }
        Ok(changed)
    }

    /// One UpdateItem marking the message deleted and removing its text, on condition that
    /// it exists, is not deleted already and has not expired: only the first delete
    /// reports `true`, and a tombstone is final (`edit` requires `deleted = false`).
    async fn delete(&self, conversation: &Conversation, id: &MessageId) -> Result<bool, StoreError> {
        let update = self
            .table
            .update(message_key(conversation, id))
            .update_expression("SET #deleted = :true REMOVE #text")
            .condition_expression("attribute_exists(#pk) AND #deleted = :false AND #expiresAt >= :now")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#text", attr::TEXT)
            .expression_attribute_names("#deleted", attr::DELETED)
            .expression_attribute_names("#expiresAt", attr::EXPIRES_AT)
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":now", item::n(now_secs()));
        let changed = unless_condition_failed(update.send().await)?.is_some();
        if changed {
            self.follow_delete(conversation, id).await?;
        }
        Ok(changed)
    }

    /// One strongly consistent GetItem; an expired item is `None`.
    async fn message(&self, conversation: &Conversation, id: &MessageId) -> Result<Option<StoredMessage>, StoreError> {
        let now = now_secs();
        let Some(found) = self.table.get(message_key(conversation, id), &[]).await? else {
            return Ok(None);
        };
        let message = parse_message(&found, conversation).map_err(corrupt)?;
        Ok(live(&message, now).then_some(message))
    }

    /// One strongly consistent Query of the conversation's partition, bounded by the cursor
    /// on the sort key, read newest first for `Latest` and `Before` and oldest first for
    /// `After`, with `Limit` one more than the page (see `page_of` for what `more` says
    /// when expired items are read). Its own `Limit`, not the table's test page size: a
    /// page is one request.
    async fn page(&self, conversation: &Conversation, cursor: &Cursor, limit: usize) -> Result<Page, StoreError> {
        let now = now_secs();
        let (condition, bound, forward) = match cursor {
            Cursor::Latest => (
                "#pk = :pk AND begins_with(#sk, :sk)",
                keys::MESSAGE_PREFIX.to_owned(),
                false,
            ),
            Cursor::Before(id) => ("#pk = :pk AND #sk < :sk", keys::message(id), false),
            Cursor::After(id) => ("#pk = :pk AND #sk > :sk", keys::message(id), true),
        };
        let output = self
            .table
            .query()
            .limit(query_limit(limit))
            .consistent_read(true)
            .scan_index_forward(forward)
            .key_condition_expression(condition)
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .expression_attribute_values(":pk", item::s(keys::conversation(conversation)))
            .expression_attribute_values(":sk", item::s(bound))
            .send()
            .await
            .map_err(unavailable)?;
        // DynamoDB sets LastEvaluatedKey when it stopped at `Limit` or at 1 MB of items.
        let query_cut = output.last_evaluated_key.as_ref().is_some_and(|key| !key.is_empty());
        let read = output
            .items
            .unwrap_or_default()
            .iter()
            .map(|found| parse_message(found, conversation))
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt)?;
        Ok(page_of(read, cursor, limit, query_cut, now))
    }

    /// One strongly consistent GetItem of the mark.
    async fn archived_until(&self, epoch: u8, partition: i32) -> Result<Option<i64>, StoreError> {
        let key = item::key(keys::archived(epoch, partition), keys::ARCHIVED);
        let Some(found) = self.table.get(key, &[NEXT]).await? else {
            return Ok(None);
        };
        Reader(&found).n(NEXT).map(Some).map_err(corrupt)
    }

    /// One UpdateItem that only ever raises the mark.
    async fn mark_archived(&self, epoch: u8, partition: i32, next: i64) -> Result<(), StoreError> {
        let update = self
            .table
            .update(item::key(keys::archived(epoch, partition), keys::ARCHIVED))
            .update_expression("SET #next = :next")
            .condition_expression("attribute_not_exists(#next) OR #next < :next")
            .expression_attribute_names("#next", NEXT)
            .expression_attribute_values(":next", item::n(next));
        unless_condition_failed(update.send().await)?;
        Ok(())
    }

    async fn conversations(
        &self,
        user: &UserId,
        before: Option<&MessageId>,
        limit: usize,
    ) -> Result<ConversationsPage, StoreError> {
        self.conversation_list(user, before, limit).await
    }
}

#[cfg(test)]
mod tests {
    use roomcast_core::model::RoomName;

    use super::*;

    fn sample() -> StoredMessage {
        let user = |id: &str, nick: &str| User {
            user_id: UserId::new(id),
            nick: Nick::trusted(nick),
        };
        StoredMessage {
            id: MessageId::parse("01HZY3J5Q6V9W8X7Y6Z5A4B3C2").unwrap(),
            conversation: Conversation::direct(UserId::new("u#2"), UserId::new("u1")),
            from: user("u1", "alice"),
            to: Some(user("u#2", "bob")),
            text: Some("hi".into()),
            ts: 1_700_000_000_123,
            reply_to: Some(MessageId::parse("01HZY3J5Q6V9W8X7Y6Z5A4B3C1").unwrap()),
            edited_at: Some(1_700_000_000_999),
            edit_id: Some(MessageId::parse("01HZY3J5Q6V9W8X7Y6Z5A4B3C3").unwrap()),
            deleted: false,
            expires_at: 1_702_592_000,
            files: vec![roomcast_core::files::Attachment {
                id: roomcast_core::files::FileId::generate(),
                name: "a \"b\".png".into(),
                content_type: "image/png".into(),
                size: 7,
                url: None,
            }],
        }
    }

    #[test]
    fn messages_read_back_as_written() {
        let full = sample();
        let item = message_item(&full);
        assert_eq!(parse_message(&item, &full.conversation).unwrap(), full);
        assert_eq!(
            item.get(attr::EXPIRES_AT),
            Some(&item::n(full.expires_at)),
            "the TTL attribute is the message's expiry"
        );

        let room = Conversation::Room(RoomName::trusted("general"));
        let tombstone = StoredMessage {
            conversation: room.clone(),
            to: None,
            text: None,
            reply_to: None,
            edited_at: None,
            edit_id: None,
            deleted: true,
            ..sample()
        };
        let item = message_item(&tombstone);
        assert!(!item.contains_key(attr::TEXT) && !item.contains_key(attr::TO));
        assert_eq!(parse_message(&item, &room).unwrap(), tombstone);
    }

    #[test]
    fn a_corrupt_message_is_an_error_not_a_panic() {
        let message = sample();
        let broken = |edit: &dyn Fn(&mut Item)| {
            let mut item = message_item(&message);
            edit(&mut item);
            parse_message(&item, &message.conversation).unwrap_err()
        };
        let error = broken(&|item| {
            item.remove(attr::FROM);
        });
        assert_eq!((error.attribute, error.problem), (attr::FROM, "is missing"));
        assert_eq!(error.sk.as_deref(), Some("MSG#01HZY3J5Q6V9W8X7Y6Z5A4B3C2"));
        let error = broken(&|item| {
            item.insert(attr::TO.to_owned(), item::s("bob"));
        });
        assert_eq!((error.attribute, error.problem), (attr::TO, "is not a map"));
        let error = broken(&|item| {
            item.insert(
                attr::FROM.to_owned(),
                AttributeValue::M(HashMap::from([(attr::USER_ID.to_owned(), item::s("u1"))])),
            );
        });
        assert_eq!(error.attribute, attr::FROM);
        let error = broken(&|item| {
            item.insert(attr::EDIT_ID.to_owned(), item::s("not a ulid"));
        });
        assert_eq!((error.attribute, error.problem), (attr::EDIT_ID, "is not a message id"));
        let error = broken(&|item| {
            item.insert(attr::TEXT.to_owned(), item::n(5));
        });
        assert_eq!(error.attribute, attr::TEXT);
        let error = broken(&|item| {
            item.remove(attr::DELETED);
        });
        assert_eq!(error.attribute, attr::DELETED);
    }

    fn numbered(n: usize, expired: &[usize]) -> Vec<StoredMessage> {
        (0..n)
            .map(|i| StoredMessage {
                id: MessageId::generate(),
                expires_at: if expired.contains(&i) { 0 } else { 100 },
                ..sample()
            })
            .collect()
    }

    #[test]
    fn a_page_without_expired_items_is_the_memory_page() {
        // Items in the order the Query read them (newest first for Latest): a page of 2
        // read with Limit 3, cut at Limit.
        let read = numbered(3, &[]);
        let page = page_of(read.clone(), &Cursor::Latest, 2, true, 50);
        assert_eq!(page.messages, vec![read[1].clone(), read[0].clone()], "oldest first");
        assert!(page.more);
        // The end of the partition: fewer than Limit items and no LastEvaluatedKey.
        let page = page_of(read[..2].to_vec(), &Cursor::Latest, 2, false, 50);
        assert!(!page.more);
        let page = page_of(read.clone(), &Cursor::After(read[0].id.clone()), 3, false, 50);
        assert_eq!(page.messages, read, "After pages are read oldest first already");
        assert!(!page.more);
    }

    #[test]
    fn expired_items_are_left_out_and_more_never_strands_a_client() {
        // A Latest page of 2 read [newest, expired, oldest]: only two live messages, but the
        // Query stopped at Limit, so the client must be told to go on past the oldest.
        let read = numbered(3, &[1]);
        let page = page_of(read.clone(), &Cursor::Latest, 2, true, 50);
        assert_eq!(page.messages, vec![read[2].clone(), read[0].clone()]);
        assert!(page.more);
        // Nothing but expired items: no cursor to go on from, so no `more`.
        let page = page_of(numbered(3, &[0, 1, 2]), &Cursor::Latest, 2, true, 50);
        assert_eq!((page.messages.len(), page.more), (0, false));
        // The Query reached the end: `more` only from the items read.
        let page = page_of(numbered(2, &[0]), &Cursor::Latest, 5, false, 50);
        assert_eq!((page.messages.len(), page.more), (1, false));
    }

    #[test]
    fn the_query_limit_is_one_more_than_the_page() {
        assert_eq!(query_limit(0), 1);
        assert_eq!(query_limit(50), 51);
        assert_eq!(query_limit(usize::MAX), i32::MAX);
    }
}
