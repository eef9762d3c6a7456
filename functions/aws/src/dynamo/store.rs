//! [`DynamoStore`]: the [`Store`] port on one DynamoDB table, with the same rules as
//! [`roomcast_core::memory::MemoryStore`] (the contract tests run both).

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{BuildError, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, Delete, DeleteRequest, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use roomcast_core::model::{Connection, ConnectionId, ConnectionState, Member, Room, RoomName, UserId};
use roomcast_core::ports::{Store, StoreError};
use tokio::task::JoinSet;

use super::item::{self, Item};
use super::keys::{self, attr};

/// Timeouts given to a client that arrives without an operation timeout, so that no call
/// can hang a Lambda until it is killed. DynamoDB answers in milliseconds; a few seconds
/// per attempt leaves room for retries within the operation budget.
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// BatchWriteItem takes at most 25 requests.
const BATCH_LIMIT: usize = 25;
/// Rounds of re-sending a batch's UnprocessedItems (throttling) before giving up.
const BATCH_ATTEMPTS: u32 = 8;
/// Attempts of a transaction cancelled only by contention (conflicts, throttling).
const TRANSACTION_ATTEMPTS: u32 = 5;
/// Rounds of the nickname claim when its item keeps changing under us.
const CLAIM_ATTEMPTS: u32 = 5;

/// A bounded retry loop ran out of attempts.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: gave up after {attempts} attempts ({reason})")]
pub struct GaveUp {
    pub operation: &'static str,
    pub attempts: u32,
    pub reason: &'static str,
}

/// The DynamoDB [`Store`]: connections, memberships, nickname claims and the room catalog
/// in one table laid out as in `infra/tables.json` and [`super::keys`].
///
/// Every method is one GetItem, one (paginated) Query or one transaction, plus the
/// follow-ups documented on it; nothing reads the whole table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    page_size: Option<i32>,
}

impl DynamoStore {
    /// A store on `table` (created by the SAM template, or by [`super::ensure_table`]).
    ///
    /// Timeouts belong to the client: build it with a `TimeoutConfig` (operation, attempt
    /// and connect timeouts). If it has no operation timeout, this adds 10 s per operation,
    /// 3 s per attempt and 3.1 s to connect, keeping whatever else was configured.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client: with_timeouts(client),
            table: table.into(),
            page_size: None,
        }
    }

    /// Caps the items per Query page (by default a page holds up to 1 MB). Only useful to
    /// make tests walk through many pages with a small table.
    pub fn with_page_size(mut self, items: i32) -> Self {
        self.page_size = Some(items);
        self
    }

    fn query(&self) -> QueryFluentBuilder {
        self.client.query().table_name(&self.table).set_limit(self.page_size)
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.item)
    }

    /// The connection's partition (one consistent Query): its `#META` and the rooms it is in.
    async fn partition(&self, id: &ConnectionId) -> Result<(Option<Connection>, Vec<RoomName>), StoreError> {
        let query = self
            .query()
            .consistent_read(true)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_values(":pk", item::s(keys::connection(id)));
        let mut connection = None;
        let mut rooms = Vec::new();
        for found in query_all(query).await? {
            let sk = item::Reader(&found).sk().map_err(corrupt)?;
            if sk == keys::META {
                connection = Some(item::parse_connection(&found).map_err(corrupt)?);
            } else if sk.starts_with(keys::IN_ROOM_PREFIX) {
                rooms.push(item::parse_reverse_room(&found).map_err(corrupt)?);
            }
        }
        Ok((connection, rooms))
    }

    /// Deletes both directions of the connection's memberships: every room's side first,
    /// then the connection's side. The connection's side is how a removal finds its rooms,
    /// so if this stops half-way, the next removal still finds what is left.
    async fn forget_rooms(&self, id: &ConnectionId, rooms: &[RoomName]) -> Result<(), StoreError> {
        let room_side = rooms.iter().map(|room| item::key(keys::room(room), keys::member(id)));
        self.delete_all(room_side.collect()).await?;
        let connection_side = rooms
            .iter()
            .map(|room| item::key(keys::connection(id), keys::in_room(room)));
        self.delete_all(connection_side.collect()).await
    }

    /// Runs a transaction. Conflicts with concurrent transactions are retried; a failed
    /// condition comes back as `Ok(Err(cancelled))` for the caller to interpret.
    async fn transact(
        &self,
        operation: &'static str,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Cancelled>, StoreError> {
        let mut delay = Duration::from_millis(20);
        let mut attempt = 1;
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
            // The SDK retries throttled calls, but not a transaction cancelled because one
            // of its items was throttled or busy in another transaction.
            let transient = code_is("TransactionConflict") || code_is("ThrottlingError");
            if !transient || attempt >= TRANSACTION_ATTEMPTS {
                return Err(unavailable(error));
            }
            tracing::debug!(
                operation,
                attempt,
                ?reasons,
                "transaction cancelled by contention; retrying"
            );
            tokio::time::sleep(delay).await;
            delay *= 2;
            attempt += 1;
        }
    }

    /// Deletes items in batches of 25, re-sending what DynamoDB left unprocessed.
    async fn delete_all(&self, keys: Vec<Item>) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(keys.len());
        for key in keys {
            let delete = DeleteRequest::builder()
                .set_key(Some(key))
                .build()
                .map_err(build_error)?;
            requests.push(WriteRequest::builder().delete_request(delete).build());
        }
        let mut rest = requests.as_slice();
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rest.len().min(BATCH_LIMIT));
            rest = tail;
            let mut pending = chunk.to_vec();
            let mut delay = Duration::from_millis(25);
            for attempt in 1.. {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(unavailable)?;
                pending = output
                    .unprocessed_items
                    .and_then(|mut left| left.remove(&self.table))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if attempt >= BATCH_ATTEMPTS {
                    return Err(StoreError::unavailable(GaveUp {
                        operation: "BatchWriteItem",
                        attempts: attempt,
                        reason: "items stayed unprocessed",
                    }));
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
        }
        Ok(())
    }

    /// Takes the connection out of its nickname claim, and deletes the claim once no
    /// connection holds it. Both writes are conditional so they never touch a claim that
    /// another user has taken over, nor one the same user re-joined in between.
    async fn release_nick(&self, connection: &Connection) -> Result<(), StoreError> {
        let nick_key = item::key(keys::nick(&connection.user.nick), keys::NICK_SK);
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(nick_key.clone()))
            .update_expression("DELETE #c :c")
            .condition_expression("#u = :u")
            .expression_attribute_names("#c", attr::CONNECTIONS)
            .expression_attribute_names("#u", attr::USER_ID)
            .expression_attribute_values(":c", AttributeValue::Ss(vec![connection.id.as_str().to_owned()]))
            .expression_attribute_values(":u", item::s(connection.user.user_id.as_str()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let remaining = match updated {
            Ok(output) => output.attributes.unwrap_or_default(),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(UpdateItemError::is_conditional_check_failed_exception) =>
            {
                return Ok(());
            }
            Err(error) => return Err(unavailable(error)),
        };
        // DynamoDB drops a set attribute that becomes empty.
        if remaining.contains_key(attr::CONNECTIONS) {
            return Ok(());
        }
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(nick_key))
            .condition_expression("attribute_not_exists(#c)")
            .expression_attribute_names("#c", attr::CONNECTIONS)
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(DeleteItemError::is_conditional_check_failed_exception) =>
            {
                Ok(())
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    fn put(&self, item: Item) -> PutBuilder {
        PutBuilder(Put::builder().table_name(&self.table).set_item(Some(item)))
    }

    fn nick_update(&self, connection: &Connection) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(item::key(keys::nick(&connection.user.nick), keys::NICK_SK)))
            .expression_attribute_names("#u", attr::USER_ID)
            .expression_attribute_names("#c", attr::CONNECTIONS)
            .expression_attribute_values(":u", item::s(connection.user.user_id.as_str()))
            .expression_attribute_values(":c", AttributeValue::Ss(vec![connection.id.as_str().to_owned()]))
    }
}

/// A small wrapper so that the conditional puts read as one expression.
struct PutBuilder(aws_sdk_dynamodb::types::builders::PutBuilder);

impl PutBuilder {
    fn only_if_new(self) -> Self {
        Self(
            self.0
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", attr::PK),
        )
    }

    fn transact(self) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .put(self.0.build().map_err(build_error)?)
            .build())
    }
}

const CONDITION_FAILED: &str = "ConditionalCheckFailed";

/// A transaction DynamoDB cancelled because a condition failed (or for an unstated reason).
struct Cancelled {
    reasons: Vec<CancellationReason>,
    error: SdkError<TransactWriteItemsError>,
}

impl Cancelled {
    /// Whether the condition on the `index`th item failed; `None` when the server gave no
    /// usable reasons. Reasons come in the order of the transaction's items.
    fn condition_failed(&self, index: usize, item_count: usize) -> Option<bool> {
        if self.reasons.len() != item_count {
            return None;
        }
        self.reasons
            .get(index)
            .map(|reason| reason.code() == Some(CONDITION_FAILED))
    }

    /// The item as it was when its condition failed (`ReturnValuesOnConditionCheckFailure`).
    fn old_item(&self, index: usize) -> Option<&Item> {
        self.reasons.get(index).and_then(CancellationReason::item)
    }

    fn into_error(self) -> StoreError {
        unavailable(self.error)
    }
}

fn unavailable<E>(error: SdkError<E>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StoreError::Unavailable(Box::new(error))
}

fn build_error(error: BuildError) -> StoreError {
    StoreError::unavailable(error)
}

fn corrupt(error: item::CorruptItem) -> StoreError {
    StoreError::unavailable(error)
}

/// Every item of a Query, page after page.
async fn query_all(query: QueryFluentBuilder) -> Result<Vec<Item>, StoreError> {
    let mut pages = query.into_paginator().send();
    let mut items = Vec::new();
    while let Some(page) = pages.next().await {
        items.extend(page.map_err(unavailable)?.items.unwrap_or_default());
    }
    Ok(items)
}

fn with_timeouts(client: Client) -> Client {
    let configured = client
        .config()
        .timeout_config()
        .cloned()
        .unwrap_or_else(|| TimeoutConfig::builder().build());
    if configured.operation_timeout().is_some() {
        return client;
    }
    let defaults = TimeoutConfig::builder()
        .operation_timeout(DEFAULT_OPERATION_TIMEOUT)
        .operation_attempt_timeout(DEFAULT_ATTEMPT_TIMEOUT)
        .connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    let timeouts = configured.to_builder().take_unset_from(defaults).build();
    tracing::debug!(
        ?timeouts,
        "the DynamoDB client had no operation timeout; adding defaults"
    );
    Client::from_conf(client.config().to_builder().timeout_config(timeouts).build())
}

#[async_trait]
impl Store for DynamoStore {
    /// One transaction: claim (or extend) the nickname and put the connection's `#META`.
    /// When the claim's condition fails, the claim is read (from the cancellation reason,
    /// else a GetItem) and either joined by the same user, taken over when stale, or refused.
    async fn add_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        let meta = || self.put(item::connection_meta(connection)).transact();
        for _ in 0..CLAIM_ATTEMPTS {
            // `expiresAt` is only ever raised: the claim must outlive every connection in it.
            // An update expression cannot take a maximum, so the condition lets the SET
            // through only when it raises the value; otherwise the second round adds the
            // connection without touching `expiresAt`.
            let claim = self
                .nick_update(connection)
                .update_expression("SET #u = :u, #e = :e ADD #c :c")
                .condition_expression("attribute_not_exists(#pk) OR (#u = :u AND #e <= :e)")
                .expression_attribute_names("#pk", attr::PK)
                .expression_attribute_names("#e", attr::EXPIRES_AT)
                .expression_attribute_values(":e", item::n(connection.expires_at))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .build()
                .map_err(build_error)?;
            let cancelled = match self
                .transact(
                    "add_connection",
                    vec![TransactWriteItem::builder().update(claim).build(), meta()?],
                )
                .await?
            {
                Ok(()) => return Ok(()),
                Err(cancelled) => cancelled,
            };
            let seen = match cancelled.old_item(0) {
                Some(old) => Some(old.clone()),
                None => {
                    tracing::debug!(reasons = ?cancelled.reasons, "no claim in the cancellation reasons; reading it");
                    self.get(item::key(keys::nick(&connection.user.nick), keys::NICK_SK))
                        .await?
                }
            };
            // Released in between: claim it afresh.
            let Some(seen) = seen else { continue };
            let claim = item::parse_nick_claim(&seen).map_err(corrupt)?;
            let second = if claim.user == connection.user.user_id {
                self.nick_update(connection)
                    .update_expression("ADD #c :c")
                    .condition_expression("#u = :u")
                    .build()
                    .map(|update| TransactWriteItem::builder().update(update).build())
                    .map_err(build_error)?
            } else if claim.expires_at < roomcast_core::clock::now_secs() {
                // A stale claim: its connections ended without `$disconnect` running. Replace
                // it whole, but only if it is still the claim we judged stale.
                tracing::info!(nick = %connection.user.nick, "taking over a stale nickname claim");
                let mut fresh = item::key(keys::nick(&connection.user.nick), keys::NICK_SK);
                fresh.insert(attr::USER_ID.to_owned(), item::s(connection.user.user_id.as_str()));
                fresh.insert(
                    attr::CONNECTIONS.to_owned(),
                    AttributeValue::Ss(vec![connection.id.as_str().to_owned()]),
                );
                fresh.insert(attr::EXPIRES_AT.to_owned(), item::n(connection.expires_at));
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(fresh))
                    .condition_expression("#e = :seen")
                    .expression_attribute_names("#e", attr::EXPIRES_AT)
                    .expression_attribute_values(":seen", item::n(claim.expires_at))
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().put(put).build()
            } else {
                return Err(StoreError::NickTaken);
            };
            match self.transact("add_connection", vec![second, meta()?]).await? {
                Ok(()) => return Ok(()),
                // The claim changed since we read it: look again.
                Err(_) => continue,
            }
        }
        Err(StoreError::unavailable(GaveUp {
            operation: "add_connection",
            attempts: CLAIM_ATTEMPTS,
            reason: "the nickname claim kept changing",
        }))
    }

    /// One consistent Query: `#META` and the room items share the connection's partition.
    async fn connection(&self, id: &ConnectionId) -> Result<Option<ConnectionState>, StoreError> {
        let (connection, rooms) = self.partition(id).await?;
        Ok(connection.map(|connection| ConnectionState { connection, rooms }))
    }

    /// The connection's partition (one Query), then batched deletes of both directions of
    /// every membership, then the `#META`, then the release of the nickname.
    async fn remove_connection(&self, id: &ConnectionId) -> Result<Option<ConnectionState>, StoreError> {
        let (connection, rooms) = self.partition(id).await?;
        // Rooms without a `#META` are left by a join that raced an earlier removal; clear
        // them too, or the fan-out would keep posting to a gone connection until the TTL.
        self.forget_rooms(id, &rooms).await?;
        let Some(connection) = connection else {
            return Ok(None);
        };
        // The `#META` goes last, so a removal that failed part-way is retried in full by the
        // next one (a redelivered `$disconnect`, a 410 in the fan-out).
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(item::key(keys::connection(id), keys::META)))
            .send()
            .await
            .map_err(unavailable)?;
        self.release_nick(&connection).await?;
        Ok(Some(ConnectionState { connection, rooms }))
    }

    async fn create_room(&self, room: &Room) -> Result<(), StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item::room_meta(room)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", attr::PK);
        match put.send().await {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::RoomExists)
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn room(&self, name: &RoomName) -> Result<Option<Room>, StoreError> {
        let found = self.get(item::key(keys::room(name), keys::META)).await?;
        found.as_ref().map(item::parse_room).transpose().map_err(corrupt)
    }

    /// One paginated Query on `gsi1` (eventually consistent: a room created an instant ago
    /// may be missing; [`Store::room`] reads consistently).
    async fn rooms(&self) -> Result<Vec<Room>, StoreError> {
        let query = self
            .query()
            .index_name(keys::GSI1)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", attr::GSI1_PK)
            .expression_attribute_values(":pk", item::s(keys::CATALOG));
        // gsi1sk is `ROOM#{name}`, so the index returns the catalog sorted by name.
        query_all(query)
            .await?
            .iter()
            .map(item::parse_room)
            .collect::<Result<_, _>>()
            .map_err(corrupt)
    }

    /// One transaction: the connection's `#META` must exist, the membership must not, and
    /// both directions are written together.
    async fn join(&self, room: &RoomName, member: &Member) -> Result<bool, StoreError> {
        let id = &member.connection_id;
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(item::key(keys::connection(id), keys::META)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", attr::PK)
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().condition_check(check).build(),
            self.put(item::membership(room, member)).only_if_new().transact()?,
            self.put(item::reverse_membership(room, member)).transact()?,
        ];
        let count = items.len();
        let cancelled = match self.transact("join", items).await? {
            Ok(()) => return Ok(true),
            Err(cancelled) => cancelled,
        };
        match (
            cancelled.condition_failed(0, count),
            cancelled.condition_failed(1, count),
        ) {
            (Some(true), _) => return Err(StoreError::NotConnected),
            (Some(false), Some(true)) => return Ok(false),
            _ => {}
        }
        // No usable reasons: find out which condition failed by reading both items.
        tracing::debug!(reasons = ?cancelled.reasons, "join cancelled without usable reasons; reading back");
        if self.get(item::key(keys::connection(id), keys::META)).await?.is_none() {
            return Err(StoreError::NotConnected);
        }
        if self.get(item::key(keys::room(room), keys::member(id))).await?.is_some() {
            return Ok(false);
        }
        Err(cancelled.into_error())
    }

    /// A consistent GetItem for the member to return, then one transaction deleting both
    /// directions (the membership on condition that it still exists).
    async fn leave(&self, room: &RoomName, connection: &ConnectionId) -> Result<Option<Member>, StoreError> {
        let member_key = item::key(keys::room(room), keys::member(connection));
        let reverse_key = item::key(keys::connection(connection), keys::in_room(room));
        let Some(found) = self.get(member_key.clone()).await? else {
            // Nothing to return, but a reverse item left by an interrupted removal would keep
            // the connection in the broadcast audience: delete it (a no-op if absent).
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(reverse_key))
                .send()
                .await
                .map_err(unavailable)?;
            return Ok(None);
        };
        let member = item::parse_member(&found).map_err(corrupt)?;
        let delete_member = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(member_key))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", attr::PK)
            .build()
            .map_err(build_error)?;
        let delete_reverse = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(reverse_key))
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().delete(delete_member).build(),
            TransactWriteItem::builder().delete(delete_reverse).build(),
        ];
        match self.transact("leave", items).await? {
            Ok(()) => Ok(Some(member)),
            // A concurrent leave (or removal) took both directions first: it returns the member.
            Err(_) => Ok(None),
        }
    }

    async fn member(&self, room: &RoomName, connection: &ConnectionId) -> Result<Option<Member>, StoreError> {
        let found = self.get(item::key(keys::room(room), keys::member(connection))).await?;
        found.as_ref().map(item::parse_member).transpose().map_err(corrupt)
    }

    async fn members(&self, room: &RoomName) -> Result<Vec<Member>, StoreError> {
        // Consistent: a member who just joined must get the very next message.
        let query = self
            .query()
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .expression_attribute_values(":pk", item::s(keys::room(room)))
            .expression_attribute_values(":prefix", item::s(keys::MEMBER_PREFIX));
        query_all(query)
            .await?
            .iter()
            .map(item::parse_member)
            .collect::<Result<_, _>>()
            .map_err(corrupt)
    }

    /// One paginated Query per audience shard on `gsi1`, all at once; a connection in
    /// several rooms appears once per room, hence the set. Like every `gsi1` read, it is
    /// eventually consistent: a join of the last instant (usually well under a second) may
    /// be missing.
    async fn broadcast_audience(&self) -> Result<Vec<ConnectionId>, StoreError> {
        let mut shards = JoinSet::new();
        for shard in 0..keys::AUDIENCE_SHARDS {
            let query = self
                .query()
                .index_name(keys::GSI1)
                .key_condition_expression("#pk = :pk")
                .projection_expression("#id")
                .expression_attribute_names("#pk", attr::GSI1_PK)
                .expression_attribute_names("#id", attr::CONNECTION_ID)
                .expression_attribute_values(":pk", item::s(keys::audience_shard(shard)));
            shards.spawn(query_all(query));
        }
        let mut audience = BTreeSet::new();
        while let Some(joined) = shards.join_next().await {
            for found in joined.map_err(StoreError::unavailable)?? {
                let id = item::Reader(&found).s(attr::CONNECTION_ID).map_err(corrupt)?;
                audience.insert(ConnectionId::new(id));
            }
        }
        Ok(audience.into_iter().collect())
    }

    /// One paginated Query on `gsi1` (eventually consistent, as [`Self::broadcast_audience`]).
    async fn user_connections(&self, user: &UserId) -> Result<Vec<ConnectionId>, StoreError> {
        let query = self
            .query()
            .index_name(keys::GSI1)
            .key_condition_expression("#pk = :pk")
            .projection_expression("#id")
            .expression_attribute_names("#pk", attr::GSI1_PK)
            .expression_attribute_names("#id", attr::CONNECTION_ID)
            .expression_attribute_values(":pk", item::s(keys::user(user)));
        // gsi1sk is `CONN#{id}`: already sorted by connection id.
        query_all(query)
            .await?
            .iter()
            .map(|found| item::Reader(found).s(attr::CONNECTION_ID).map(ConnectionId::new))
            .collect::<Result<_, _>>()
            .map_err(corrupt)
    }
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
}
