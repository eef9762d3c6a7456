//! The contract of the [`History`] port: every behaviour runs on the in-memory adapter and
//! on the DynamoDB adapter on moto's server, so that local mode and AWS keep the same
//! message history (keep once, edits only forward, tombstones final, expired messages
//! invisible, pages that give every message once, in order).
//!
//! The DynamoDB store gets Query pages of two items, as the state contract does: a history
//! page must be one Query with its own `Limit`, not the table's page size.

use roomcast_core::clock::{now_ms, now_secs};
use roomcast_core::history::{Conversation, Cursor, HistoryEntry, MessageEdit, Page, StoredMessage};
use roomcast_core::model::{MessageId, Nick, RoomName, User, UserId};
use roomcast_core::ports::StoreError;
use roomcast_core::History;
use roomcast_tests::each_backend;

each_backend!(
    memory => roomcast_core::memory::MemoryHistory::default(),
    real => roomcast_tests::moto::fresh_store().await.with_page_size(2);
    [
        a_message_is_kept_once_and_a_second_keep_changes_nothing,
        edits_apply_only_forward,
        a_deleted_message_keeps_no_text_and_stays_deleted,
        a_message_never_kept_cannot_be_edited_or_deleted,
        pages_give_every_message_once_in_order_at_any_size,
        conversations_are_separate,
        both_sides_of_a_direct_conversation_read_the_same_messages,
        an_expired_message_is_invisible_and_cannot_be_changed,
        a_client_paging_across_expired_messages_sees_every_live_one_and_stops,
    ]
);

fn user(id: &str, nick: &str) -> User {
    User {
        user_id: UserId::new(id),
        nick: Nick::trusted(nick),
    }
}

fn room(name: &str) -> Conversation {
    Conversation::Room(RoomName::trusted(name))
}

fn direct(a: &str, b: &str) -> Conversation {
    Conversation::direct(UserId::new(a), UserId::new(b))
}

/// A new message of the conversation, from its first user (or `alice` in a room), kept for
/// an hour.
fn message(conversation: &Conversation, text: &str) -> StoredMessage {
    let (from, to) = match conversation {
        Conversation::Room(_) => (user("u-alice", "alice"), None),
        Conversation::Direct(a, b) => (user(a.as_str(), "first"), Some(user(b.as_str(), "second"))),
    };
    StoredMessage {
        id: MessageId::generate(),
        conversation: conversation.clone(),
        from,
        to,
        text: Some(text.to_owned()),
        ts: now_ms(),
        reply_to: None,
        edited_at: None,
        edit_id: None,
        deleted: false,
        expires_at: now_secs() + 3600,
        files: vec![],
    }
}

fn edit(text: &str) -> MessageEdit {
    MessageEdit {
        text: text.to_owned(),
        edited_at: now_ms(),
        edit_id: MessageId::generate(),
    }
}

async fn kept<H: History>(history: &H, message: &StoredMessage) -> StoredMessage {
    history
        .message(&message.conversation, &message.id)
        .await
        .expect("history readable")
        .unwrap_or_else(|| panic!("message {} is not kept", message.id))
}

async fn text_of<H: History>(history: &H, message: &StoredMessage) -> Option<String> {
    kept(history, message).await.text
}

async fn page<H: History>(history: &H, conversation: &Conversation, cursor: Cursor, limit: usize) -> Page {
    history
        .page(conversation, &cursor, limit)
        .await
        .expect("history readable")
}

fn ids(messages: &[StoredMessage]) -> Vec<MessageId> {
    messages.iter().map(|message| message.id.clone()).collect()
}

async fn a_message_is_kept_once_and_a_second_keep_changes_nothing<H: History>(history: H) {
    let general = room("general");
    let original = message(&general, "hello");
    history.keep(&original).await.unwrap();
    assert_eq!(kept(&history, &original).await, original, "reads back as kept");

    // A redelivery carrying other text (it cannot, but a blind overwrite would show it).
    let copy = StoredMessage {
        text: Some("overwritten".into()),
        ..original.clone()
    };
    history.keep(&copy).await.unwrap();
    assert_eq!(text_of(&history, &original).await.as_deref(), Some("hello"));

    // A redelivered message after its edit must not bring the old text back.
    assert!(history
        .edit(&general, &original.id, &edit("hello, edited"))
        .await
        .unwrap());
    history.keep(&original).await.unwrap();
    let after = kept(&history, &original).await;
    assert_eq!(after.text.as_deref(), Some("hello, edited"));
    assert!(after.edit_id.is_some() && after.edited_at.is_some());

    // Nor undo its deletion.
    assert!(history.delete(&general, &original.id).await.unwrap());
    history.keep(&original).await.unwrap();
    let after = kept(&history, &original).await;
    assert!(after.deleted, "a redelivery must not resurrect a deleted message");
    assert_eq!(after.text, None);

    let listed = page(&history, &general, Cursor::Latest, 10).await;
    assert_eq!(ids(&listed.messages), vec![original.id], "kept once, listed once");
}

async fn edits_apply_only_forward<H: History>(history: H) {
    let general = room("general");
    let original = message(&general, "v0");
    history.keep(&original).await.unwrap();
    let (first, second, third) = (edit("v1"), edit("v2"), edit("v3"));
    assert!(first.edit_id < second.edit_id && second.edit_id < third.edit_id);

    assert!(history.edit(&general, &original.id, &second).await.unwrap());
    let after = kept(&history, &original).await;
    assert_eq!(after.text.as_deref(), Some("v2"));
    assert_eq!(after.edited_at, Some(second.edited_at));
    assert_eq!(after.edit_id.as_ref(), Some(&second.edit_id));

    // An older edit arriving late, and the same edit delivered again, change nothing.
    assert!(
        !history.edit(&general, &original.id, &first).await.unwrap(),
        "older edit"
    );
    assert!(
        !history.edit(&general, &original.id, &second).await.unwrap(),
        "same edit again"
    );
    assert_eq!(kept(&history, &original).await, after);

    assert!(history.edit(&general, &original.id, &third).await.unwrap());
    let latest = kept(&history, &original).await;
    assert_eq!(latest.text.as_deref(), Some("v3"));
    assert_eq!(latest.edit_id.as_ref(), Some(&third.edit_id));
    // Everything but the text and the edit's marks is as kept.
    assert_eq!(
        StoredMessage {
            text: original.text.clone(),
            edited_at: None,
            edit_id: None,
            ..latest.clone()
        },
        original
    );
    let listed = page(&history, &general, Cursor::Latest, 10).await;
    assert_eq!(listed.messages, [latest], "pages show the latest edit");
}

async fn a_deleted_message_keeps_no_text_and_stays_deleted<H: History>(history: H) {
    let general = room("general");
    let gone = message(&general, "oops");
    let other = message(&general, "stays");
    history.keep(&gone).await.unwrap();
    history.keep(&other).await.unwrap();

    assert!(history.delete(&general, &gone.id).await.unwrap(), "first delete");
    assert!(!history.delete(&general, &gone.id).await.unwrap(), "second delete");
    assert!(
        !history.edit(&general, &gone.id, &edit("back")).await.unwrap(),
        "a deleted message cannot be edited"
    );

    let tombstone = kept(&history, &gone).await;
    assert!(tombstone.deleted);
    assert_eq!(tombstone.text, None, "a tombstone keeps no text");
    assert_eq!(tombstone.from, gone.from, "who wrote it is still known");
    assert_eq!(
        serde_json::to_value(HistoryEntry::from(tombstone.clone())).unwrap(),
        serde_json::json!({"id": gone.id.as_str(), "deleted": true}),
        "what `history` shows of it"
    );

    // The tombstone keeps its place in the conversation; its neighbour is untouched.
    let listed = page(&history, &general, Cursor::Latest, 10).await;
    assert_eq!(listed.messages, [tombstone, other.clone()]);
    assert_eq!(text_of(&history, &other).await.as_deref(), Some("stays"));
}

async fn a_message_never_kept_cannot_be_edited_or_deleted<H: History>(history: H) {
    let general = room("general");
    let ghost = message(&general, "never kept");
    assert!(!history.edit(&general, &ghost.id, &edit("x")).await.unwrap());
    assert!(!history.delete(&general, &ghost.id).await.unwrap());
    // Neither call left anything behind (an unconditional update would create an item).
    assert_eq!(history.message(&general, &ghost.id).await.unwrap(), None);
    let listed = page(&history, &general, Cursor::Latest, 10).await;
    assert_eq!((listed.messages.len(), listed.more), (0, false));

    // And an edit applied once the message arrives still works.
    history.keep(&ghost).await.unwrap();
    assert!(history.edit(&general, &ghost.id, &edit("late")).await.unwrap());
    assert_eq!(text_of(&history, &ghost).await.as_deref(), Some("late"));
}

async fn pages_give_every_message_once_in_order_at_any_size<H: History>(history: H) {
    let general = room("general");
    let elsewhere = room("elsewhere");
    let before_all = MessageId::generate();
    let mut sent = Vec::new();
    for n in 0..25 {
        let kept_here = message(&general, &format!("m{n}"));
        history.keep(&kept_here).await.unwrap();
        sent.push(kept_here);
        // Another room's messages in between, with ids among these: they must not show.
        if n % 5 == 0 {
            history.keep(&message(&elsewhere, "noise")).await.unwrap();
        }
    }
    let sent_ids = ids(&sent);

    for size in [1, 7, 10, 25, 30] {
        // Scrolling back from the latest messages.
        let mut seen: Vec<MessageId> = Vec::new();
        let mut cursor = Cursor::Latest;
        loop {
            let got = page(&history, &general, cursor.clone(), size).await;
            let remaining = sent.len() - seen.len();
            let expected = &sent_ids[remaining.saturating_sub(size)..remaining];
            assert_eq!(
                ids(&got.messages),
                expected,
                "size {size}, {cursor:?}: the next older page, oldest first"
            );
            assert_eq!(got.more, remaining > size, "size {size}, {cursor:?}: more");
            seen.splice(0..0, ids(&got.messages));
            if !got.more {
                break;
            }
            cursor = Cursor::Before(got.messages[0].id.clone());
        }
        assert_eq!(
            seen, sent_ids,
            "size {size}: every message once, in order, scrolling back"
        );

        // Catching up from before the first message.
        let mut seen: Vec<MessageId> = Vec::new();
        let mut cursor = Cursor::After(before_all.clone());
        loop {
            let got = page(&history, &general, cursor.clone(), size).await;
            let expected = &sent_ids[seen.len()..(seen.len() + size).min(sent.len())];
            assert_eq!(
                ids(&got.messages),
                expected,
                "size {size}, {cursor:?}: the next newer page"
            );
            assert_eq!(
                got.more,
                seen.len() + size < sent.len(),
                "size {size}, {cursor:?}: more"
            );
            seen.extend(ids(&got.messages));
            if !got.more {
                break;
            }
            cursor = Cursor::After(got.messages.last().expect("a page with more is not empty").id.clone());
        }
        assert_eq!(seen, sent_ids, "size {size}: every message once, in order, catching up");
    }

    // Whole messages come back, not just ids; and the ends of the conversation are empty.
    let latest = page(&history, &general, Cursor::Latest, 3).await;
    assert_eq!(latest.messages, sent[22..]);
    let none_newer = page(&history, &general, Cursor::After(sent[24].id.clone()), 5).await;
    assert_eq!((none_newer.messages.len(), none_newer.more), (0, false));
    let none_older = page(&history, &general, Cursor::Before(sent[0].id.clone()), 5).await;
    assert_eq!((none_older.messages.len(), none_older.more), (0, false));
    let between = page(&history, &general, Cursor::Before(sent[10].id.clone()), 3).await;
    assert_eq!((ids(&between.messages), between.more), (sent_ids[7..10].to_vec(), true));
}

async fn conversations_are_separate<H: History>(history: H) {
    // Conversations whose keys a careless encoding would mix up: two rooms, a room and a
    // direct conversation, and user ids holding the separator.
    let conversations = [
        room("a"),
        room("b"),
        direct("a", "b"),
        direct("a#b", "c"),
        direct("a", "b#c"),
        direct("ROOM", "a"),
    ];
    let mut all = Vec::new();
    for (n, conversation) in conversations.iter().enumerate() {
        let own = message(conversation, &format!("in conversation {n}"));
        history.keep(&own).await.unwrap();
        all.push(own);
    }
    // One id kept in two conversations is two messages (as a DM is never a room message).
    let shared_id = MessageId::generate();
    let in_a = StoredMessage {
        id: shared_id.clone(),
        ..message(&conversations[3], "same id, first")
    };
    let in_b = StoredMessage {
        id: shared_id.clone(),
        ..message(&conversations[4], "same id, second")
    };
    history.keep(&in_a).await.unwrap();
    history.keep(&in_b).await.unwrap();
    let change = edit("edited in the first");
    assert!(history.edit(&conversations[3], &shared_id, &change).await.unwrap());
    assert!(history.delete(&conversations[4], &shared_id).await.unwrap());

    for (n, conversation) in conversations.iter().enumerate() {
        let listed = page(&history, conversation, Cursor::Latest, 50).await;
        let mut expected = vec![all[n].clone()];
        match n {
            3 => expected.push(StoredMessage {
                text: Some(change.text.clone()),
                edited_at: Some(change.edited_at),
                edit_id: Some(change.edit_id.clone()),
                ..in_a.clone()
            }),
            4 => expected.push(StoredMessage {
                text: None,
                deleted: true,
                ..in_b.clone()
            }),
            _ => {}
        }
        assert_eq!(listed.messages, expected, "{conversation}: its own messages only");
        assert!(!listed.more);
        for (m, other) in all.iter().enumerate() {
            let found = history.message(conversation, &other.id).await.unwrap();
            assert_eq!(found.is_some(), m == n, "message {m} read through {conversation}");
        }
    }
    assert_eq!(text_of(&history, &in_a).await.as_deref(), Some("edited in the first"));
    assert!(!kept(&history, &in_a).await.deleted);
    assert!(kept(&history, &in_b).await.deleted);
}

async fn both_sides_of_a_direct_conversation_read_the_same_messages<H: History>(history: H) {
    let ab = direct("u-a", "u-b");
    assert_eq!(ab, direct("u-b", "u-a"));
    let first = message(&ab, "hi b");
    let reply = StoredMessage {
        from: user("u-b", "bob"),
        to: Some(user("u-a", "alice")),
        reply_to: Some(first.id.clone()),
        ..message(&ab, "hi a")
    };
    history.keep(&first).await.unwrap();
    history.keep(&reply).await.unwrap();
    // The second copy of a DM (kept once per side's record) is the same message.
    history.keep(&first).await.unwrap();

    let from_a = page(&history, &direct("u-a", "u-b"), Cursor::Latest, 10).await;
    let from_b = page(&history, &direct("u-b", "u-a"), Cursor::Latest, 10).await;
    assert_eq!(from_a.messages, [first.clone(), reply.clone()]);
    assert_eq!(from_a, from_b);
    assert_eq!(
        history.message(&direct("u-b", "u-a"), &first.id).await.unwrap(),
        Some(first.clone()),
        "`to` and `replyTo` read back"
    );
    // An edit through one side shows through the other.
    assert!(history
        .edit(&direct("u-b", "u-a"), &reply.id, &edit("hi a!"))
        .await
        .unwrap());
    let seen_by_a = history.message(&direct("u-a", "u-b"), &reply.id).await.unwrap();
    assert_eq!(seen_by_a.and_then(|message| message.text).as_deref(), Some("hi a!"));
}

async fn an_expired_message_is_invisible_and_cannot_be_changed<H: History>(history: H) {
    let general = room("general");
    let before = message(&general, "live, older");
    let expired = StoredMessage {
        expires_at: now_secs() - 60,
        ..message(&general, "past its retention")
    };
    let after = message(&general, "live, newer");
    for kept_here in [&before, &expired, &after] {
        history.keep(kept_here).await.unwrap();
    }

    assert_eq!(history.message(&general, &expired.id).await.unwrap(), None);
    assert!(!history.edit(&general, &expired.id, &edit("revived")).await.unwrap());
    assert!(!history.delete(&general, &expired.id).await.unwrap());

    let listed = page(&history, &general, Cursor::Latest, 10).await;
    assert_eq!(listed.messages, [before.clone(), after.clone()]);
    assert!(!listed.more);
    let newer = page(&history, &general, Cursor::After(before.id.clone()), 10).await;
    assert_eq!((ids(&newer.messages), newer.more), (vec![after.id.clone()], false));
    let older = page(&history, &general, Cursor::Before(after.id.clone()), 10).await;
    assert_eq!((ids(&older.messages), older.more), (vec![before.id.clone()], false));
    // The live ones are still editable: the expired one's failure was its own.
    assert!(history.edit(&general, &before.id, &edit("fine")).await.unwrap());
}

/// Expired items that DynamoDB has not deleted yet take room in a Query, so the two
/// adapters may cut pages differently around them; what a client notices must not differ:
/// every live message once, in order, and an end.
async fn a_client_paging_across_expired_messages_sees_every_live_one_and_stops<H: History>(history: H) {
    let general = room("general");
    let before_all = MessageId::generate();
    let mut live = Vec::new();
    for n in 0..9 {
        let mut kept_here = message(&general, &format!("m{n}"));
        if n % 3 == 1 {
            kept_here.expires_at = now_secs() - 60;
        } else {
            live.push(kept_here.id.clone());
        }
        history.keep(&kept_here).await.unwrap();
    }
    for size in [1, 2, 4] {
        let mut seen = Vec::new();
        let mut cursor = Cursor::Latest;
        for _ in 0..=live.len() + 1 {
            let got = page(&history, &general, cursor.clone(), size).await;
            assert!(got.messages.len() <= size);
            seen.splice(0..0, ids(&got.messages));
            if !got.more {
                break;
            }
            let oldest = got
                .messages
                .first()
                .unwrap_or_else(|| panic!("size {size}: `more` on an empty page"));
            cursor = Cursor::Before(oldest.id.clone());
        }
        assert_eq!(seen, live, "size {size}, scrolling back");

        let mut seen = Vec::new();
        let mut cursor = Cursor::After(before_all.clone());
        for _ in 0..=live.len() + 1 {
            let got = page(&history, &general, cursor.clone(), size).await;
            assert!(got.messages.len() <= size);
            seen.extend(ids(&got.messages));
            if !got.more {
                break;
            }
            let newest = got
                .messages
                .last()
                .unwrap_or_else(|| panic!("size {size}: `more` on an empty page"));
            cursor = Cursor::After(newest.id.clone());
        }
        assert_eq!(seen, live, "size {size}, catching up");
    }
}

/// An item of the history partition that this code did not write is reported, not panicked
/// on, by every read (DynamoDB only).
#[tokio::test]
async fn a_corrupt_history_item_is_an_error_not_a_panic() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use roomcast_aws::dynamo::keys;

    roomcast_tests::init_tracing();
    let store = roomcast_tests::moto::fresh_store().await;
    let general = room("general");
    let good = message(&general, "fine");
    store.keep(&good).await.unwrap();
    let broken = MessageId::generate();
    roomcast_tests::moto::client()
        .put_item()
        .table_name(store.table())
        .item("pk", AttributeValue::S(keys::conversation(&general)))
        .item("sk", AttributeValue::S(keys::message(&broken)))
        .item("id", AttributeValue::S(broken.to_string()))
        .item("text", AttributeValue::N("42".into()))
        .send()
        .await
        .expect("raw put");

    let read = store.message(&general, &broken).await;
    assert!(matches!(read, Err(StoreError::Unavailable(_))), "{read:?}");
    let listed = store.page(&general, &Cursor::Latest, 10).await;
    assert!(matches!(listed, Err(StoreError::Unavailable(_))), "{listed:?}");
    // The good message beside it is still readable on its own.
    assert_eq!(store.message(&general, &good.id).await.unwrap(), Some(good));
}
