//! kafka-archive's batches: a redelivery keeps each message once, a record it cannot use is
//! skipped, and a failed write fails the batch so that its redelivery keeps it.

use roomcast_core::history::{Conversation, Cursor, MessageEdit, Page, StoredMessage};
use roomcast_core::memory::LogRecord;
use roomcast_core::ports::StoreError;
use roomcast_core::{MessageId, UserId};
use roomcast_tests::backends::Backends;
use roomcast_tests::each_backend;
use roomcast_tests::events;
use serde_json::json;

use super::{send, signed_in, texts};

each_backend!(
    memory => Backends::memory().await,
    real => Backends::real().await;
    [
        a_batch_archived_twice_keeps_each_message_once_and_its_edit,
        a_record_the_archive_cannot_use_is_skipped_and_the_rest_kept,
        a_failed_write_fails_the_batch_and_its_redelivery_keeps_it,
    ]
);

async fn a_batch_archived_twice_keeps_each_message_once_and_its_edit(backends: Backends) {
    let lambdas = signed_in(backends).await;
    let alice = lambdas.sign_in("u-alice", "alice", &[]).await;
    lambdas.room(&alice, "general").await;
    let ack = lambdas.ok(&alice, &send("general", "first"), "ack").await;
    lambdas.ok(&alice, &send("general", "second"), "ack").await;
    let messages_only = lambdas.backends.published().await;
    let first = lambdas.archive().await;
    assert_eq!(first.kept, 2, "{first:?}");
    let edit = json!({"action": "edit", "room": "general", "id": ack["id"], "text": "first, edited"});
    lambdas.ok(&alice, &edit.to_string(), "ack").await;
    // Everything again (the edit now among it), then the old batch once more, after the edit.
    let again = lambdas.archive().await;
    assert_eq!((again.kept, again.changed), (2, 1), "{again:?}");
    let old = kafka_archive::handle(
        &*lambdas.backends.history,
        &Default::default(),
        &events::kafka_batch(&messages_only),
    )
    .await
    .expect("archived");
    assert_eq!(old.kept, 2);

    let history = lambdas
        .ok(&alice, r#"{"action":"history","room":"general"}"#, "history")
        .await;
    assert_eq!(texts(&history), ["first, edited", "second"]);
    assert!(history["messages"][0]["editedAt"].is_i64(), "{history}");
}

async fn a_record_the_archive_cannot_use_is_skipped_and_the_rest_kept(backends: Backends) {
    let lambdas = signed_in(backends).await;
    let alice = lambdas.sign_in("u-alice", "alice", &[]).await;
    lambdas.room(&alice, "general").await;
    lambdas.ok(&alice, &send("general", "before"), "ack").await;
    let good_before = lambdas.backends.published().await;
    lambdas.ok(&alice, &send("general", "after"), "ack").await;
    let all = lambdas.backends.published().await;
    let poison = |value: &[u8], offset: i64| LogRecord {
        value: value.to_vec(),
        offset,
        ..all[0].clone()
    };
    // Records after the poison ones in the partition: they must still be archived.
    let mut batch = good_before.clone();
    let base = all.last().unwrap().offset;
    batch.push(poison(b"not json at all", base + 1));
    batch.push(poison(
        br#"{"v":1,"id":"x","target":{"room":"general"},"stamp":{"ts":1},"frame":{"type":"message","text":"no sender"}}"#,
        base + 2,
    ));
    batch.push(LogRecord {
        offset: base + 3,
        ..all.last().unwrap().clone()
    });
    let report = kafka_archive::handle(
        &*lambdas.backends.history,
        &Default::default(),
        &events::kafka_batch(&batch),
    )
    .await
    .expect("a poison record does not fail the batch");
    assert_eq!(report.skipped, 2, "{report:?}");
    let history = lambdas
        .ok(&alice, r#"{"action":"history","room":"general"}"#, "history")
        .await;
    assert_eq!(texts(&history), ["before", "after"]);
}

/// A history whose writes fail, as DynamoDB does when it is unreachable.
struct Unreachable;

#[async_trait::async_trait]
impl roomcast_core::History for Unreachable {
    async fn keep(&self, _: &StoredMessage) -> Result<(), StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
    async fn edit(&self, _: &Conversation, _: &MessageId, _: &MessageEdit) -> Result<bool, StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
    async fn delete(&self, _: &Conversation, _: &MessageId) -> Result<bool, StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
    async fn message(&self, _: &Conversation, _: &MessageId) -> Result<Option<StoredMessage>, StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
    async fn page(&self, _: &Conversation, _: &Cursor, _: usize) -> Result<Page, StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
    async fn archived_until(&self, _: u8, _: i32) -> Result<Option<i64>, StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
    async fn mark_archived(&self, _: u8, _: i32, _: i64) -> Result<(), StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
    async fn conversations(
        &self,
        _: &UserId,
        _: Option<&MessageId>,
        _: usize,
    ) -> Result<roomcast_core::history::ConversationsPage, StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
}

async fn a_failed_write_fails_the_batch_and_its_redelivery_keeps_it(backends: Backends) {
    let lambdas = signed_in(backends).await;
    let alice = lambdas.sign_in("u-alice", "alice", &[]).await;
    lambdas.room(&alice, "general").await;
    lambdas.ok(&alice, &send("general", "kept in the end"), "ack").await;
    let batch = events::kafka_batch(&lambdas.backends.published().await);
    let failed = kafka_archive::handle(&Unreachable, &Default::default(), &batch).await;
    assert!(failed.is_err(), "the event source mapping must deliver the batch again");
    let diagnostic = lambda_runtime::Diagnostic::from(failed.unwrap_err());
    assert!(
        diagnostic.error_message.contains("connection refused"),
        "{diagnostic:?}"
    );
    kafka_archive::handle(&*lambdas.backends.history, &Default::default(), &batch)
        .await
        .expect("redelivered");
    let history = lambdas
        .ok(&alice, r#"{"action":"history","room":"general"}"#, "history")
        .await;
    assert_eq!(texts(&history), ["kept in the end"]);
}
