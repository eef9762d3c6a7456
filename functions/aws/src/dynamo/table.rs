//! The table client the ports are built from: [`Table`] holds the SDK client and the table
//! name and offers the few calls every port uses — a consistent GetItem, a paginated Query,
//! conditional writes whose failed condition is an answer rather than an error, a
//! transaction retried on contention, bounded concurrency for follow-up writes — and turns
//! SDK errors into [`StoreError`]s that keep them whole as their source.

use std::future::Future;

use aws_sdk_dynamodb::error::{BuildError, SdkError};
use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{CancellationReason, Delete, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use roomcast_core::ports::StoreError;
use tokio::task::JoinSet;

use super::item::{CorruptItem, Item};
use super::keys::attr;
use super::retry::Backoff;

/// Attempts of a transaction cancelled only by contention (conflicts, throttling).
const TRANSACTION_ATTEMPTS: u32 = 5;

const CONDITION_FAILED: &str = "ConditionalCheckFailed";

/// The SDK client on one table, with the page size of its Queries.
#[derive(Debug, Clone)]
pub(super) struct Table {
    client: Client,
    name: String,
    page_size: Option<i32>,
}

impl Table {
    pub fn new(client: Client, name: String) -> Self {
        Self {
            client,
            name,
            page_size: None,
        }
    }

    pub fn with_page_size(mut self, items: i32) -> Self {
        self.page_size = Some(items);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One strongly consistent GetItem, of the whole item or of `attributes` only.
    pub async fn get(&self, key: Item, attributes: &[&str]) -> Result<Option<Item>, StoreError> {
        let mut get = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key))
            .consistent_read(true);
        if !attributes.is_empty() {
            let mut projection = Vec::with_capacity(attributes.len());
            for (i, attribute) in attributes.iter().enumerate() {
                let placeholder = format!("#p{i}");
                get = get.expression_attribute_names(&placeholder, *attribute);
                projection.push(placeholder);
            }
            get = get.projection_expression(projection.join(", "));
        }
        Ok(get.send().await.map_err(unavailable)?.item)
    }

    /// A Query on the table, its pages capped by [`Self::with_page_size`].
    pub fn query(&self) -> QueryFluentBuilder {
        self.client.query().table_name(&self.name).set_limit(self.page_size)
    }

    /// The strongly consistent Query of the items of partition `pk` whose sort key starts
    /// with `prefix`, in sort-key order.
    pub fn query_prefix(&self, pk: String, prefix: &str) -> QueryFluentBuilder {
        self.query()
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .expression_attribute_values(":pk", super::item::s(pk))
            .expression_attribute_values(":prefix", super::item::s(prefix))
    }

    pub fn update(&self, key: Item) -> UpdateItemFluentBuilder {
        self.client.update_item().table_name(&self.name).set_key(Some(key))
    }

    pub fn delete(&self, key: Item) -> DeleteItemFluentBuilder {
        self.client.delete_item().table_name(&self.name).set_key(Some(key))
    }

    pub fn put(&self, item: Item) -> PutItemFluentBuilder {
        self.client.put_item().table_name(&self.name).set_item(Some(item))
    }

    /// A transaction's Put of `item`; `only_if` adds a condition (with its names and values
    /// given by `build`).
    pub fn transact_put(
        &self,
        item: Item,
        build: impl FnOnce(aws_sdk_dynamodb::types::builders::PutBuilder) -> aws_sdk_dynamodb::types::builders::PutBuilder,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = build(Put::builder().table_name(&self.name).set_item(Some(item)))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    pub fn transact_update(
        &self,
        key: Item,
        build: impl FnOnce(
            aws_sdk_dynamodb::types::builders::UpdateBuilder,
        ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = build(Update::builder().table_name(&self.name).set_key(Some(key)))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    pub fn transact_delete(
        &self,
        key: Item,
        build: impl FnOnce(
            aws_sdk_dynamodb::types::builders::DeleteBuilder,
        ) -> aws_sdk_dynamodb::types::builders::DeleteBuilder,
    ) -> Result<TransactWriteItem, StoreError> {
        let delete = build(Delete::builder().table_name(&self.name).set_key(Some(key)))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Runs a transaction. Cancellations by contention (another transaction on one of its
    /// items, throttling) are retried with backoff, as the SDK does not; a failed condition
    /// comes back as `Ok(Err(cancelled))` for the caller to interpret.
    pub async fn transact(
        &self,
        operation: &'static str,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Cancelled>, StoreError> {
        let mut backoff = Backoff::new(operation, TRANSACTION_ATTEMPTS);
        loop {
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let error = match sent {
                Ok(_) => return Ok(Ok(())),
                Err(error) => error,
            };
            let reasons = match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    cancelled.cancellation_reasons().to_vec()
                }
                _ => return Err(unavailable(error)),
            };
            let code_is = |code: &str| reasons.iter().any(|reason| reason.code() == Some(code));
            // Without reasons (some DynamoDB look-alikes) the caller reads the items instead.
            if reasons.is_empty() || code_is(CONDITION_FAILED) {
                return Ok(Err(Cancelled { reasons, error }));
            }
            let transient = code_is("TransactionConflict") || code_is("ThrottlingError");
            if !transient {
                return Err(unavailable(error));
            }
            tracing::debug!(
                operation,
                attempt = backoff.attempt(),
                ?reasons,
                "transaction cancelled by contention"
            );
            if !backoff.retry().await {
                return Err(unavailable(error));
            }
        }
    }
}

/// A write whose condition failed is an answer (`None`), not an error.
pub(super) trait ConditionalWrite {
    fn condition_failed(&self) -> bool;
}

impl ConditionalWrite for UpdateItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionalWrite for DeleteItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionalWrite for PutItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

/// The output of a conditional write, or `None` when its condition failed.
pub(super) fn unless_condition_failed<T, E>(sent: Result<T, SdkError<E>>) -> Result<Option<T>, StoreError>
where
    E: ConditionalWrite + std::error::Error + Send + Sync + 'static,
{
    match sent {
        Ok(output) => Ok(Some(output)),
        Err(error) if error.as_service_error().is_some_and(E::condition_failed) => Ok(None),
        Err(error) => Err(unavailable(error)),
    }
}

/// A transaction DynamoDB cancelled because a condition failed (or for an unstated reason).
pub(super) struct Cancelled {
    pub reasons: Vec<CancellationReason>,
    error: SdkError<TransactWriteItemsError>,
}

impl Cancelled {
    /// Whether the condition on the `index`th item failed; `None` when the server gave no
    /// usable reasons. Reasons come in the order of the transaction's items.
    pub fn condition_failed(&self, index: usize, item_count: usize) -> Option<bool> {
        if self.reasons.len() != item_count {
            return None;
        }
        self.reasons
            .get(index)
            .map(|reason| reason.code() == Some(CONDITION_FAILED))
    }

    /// The item as it was when its condition failed (`ReturnValuesOnConditionCheckFailure`).
    pub fn old_item(&self, index: usize) -> Option<&Item> {
        self.reasons.get(index).and_then(CancellationReason::item)
    }

    pub fn into_error(self) -> StoreError {
        unavailable(self.error)
    }
}

/// Every item of a Query, page after page.
pub(super) async fn query_all(query: QueryFluentBuilder) -> Result<Vec<Item>, StoreError> {
    let mut pages = query.into_paginator().send();
    let mut items = Vec::new();
    while let Some(page) = pages.next().await {
        items.extend(page.map_err(unavailable)?.items.unwrap_or_default());
    }
    Ok(items)
}

/// Runs `task` on every input, at most `limit` at once, and collects the results in no
/// particular order. The first error is returned and the tasks still running are dropped:
/// every caller's steps may be repeated.
pub(super) async fn bounded<I, T, F, Fut>(inputs: I, limit: usize, mut task: F) -> Result<Vec<T>, StoreError>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    T: Send + 'static,
{
    let mut running = JoinSet::new();
    let mut results = Vec::new();
    for input in inputs {
        if running.len() >= limit.max(1) {
            if let Some(done) = running.join_next().await {
                results.push(finished(done)?);
            }
        }
        running.spawn(task(input));
    }
    while let Some(done) = running.join_next().await {
        results.push(finished(done)?);
    }
    Ok(results)
}

fn finished<T>(done: Result<Result<T, StoreError>, tokio::task::JoinError>) -> Result<T, StoreError> {
    match done {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => Err(StoreError::unavailable(error)),
    }
}

pub(super) fn unavailable<E>(error: SdkError<E>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StoreError::Unavailable(Box::new(error))
}

pub(super) fn build_error(error: BuildError) -> StoreError {
    StoreError::unavailable(error)
}

pub(super) fn corrupt(error: CorruptItem) -> StoreError {
    StoreError::unavailable(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cancelled(codes: &[&str]) -> Cancelled {
        Cancelled {
            reasons: codes
                .iter()
                .map(|code| CancellationReason::builder().code(*code).build())
                .collect(),
            error: SdkError::construction_failure("test"),
        }
    }

    #[test]
    fn cancellation_reasons_are_read_by_position() {
        let both = cancelled(&["None", CONDITION_FAILED, "None"]);
        assert_eq!(both.condition_failed(0, 3), Some(false));
        assert_eq!(both.condition_failed(1, 3), Some(true));
        assert_eq!(both.condition_failed(2, 3), Some(false));
        // Reasons that do not line up with the items are not guessed at.
        assert_eq!(cancelled(&[]).condition_failed(0, 3), None);
        assert_eq!(cancelled(&[CONDITION_FAILED]).condition_failed(0, 3), None);
        assert!(cancelled(&[]).old_item(0).is_none());
    }

    #[tokio::test]
    async fn bounded_runs_every_task_and_stops_at_the_first_error() {
        let mut squares = bounded(1..=10, 3, |i| async move { Ok::<_, StoreError>(i * i) })
            .await
            .unwrap();
        squares.sort();
        assert_eq!(squares, [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]);
        let failed = bounded(1..=10, 3, |i| async move {
            if i == 4 {
                Err(StoreError::RoomExists)
            } else {
                Ok(i)
            }
        })
        .await;
        assert!(matches!(failed, Err(StoreError::RoomExists)), "{failed:?}");
    }
}
