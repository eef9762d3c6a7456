//! [`DynamoStore`]: the one type that offers the [`Connections`], [`Rooms`], [`Audience`]
//! and [`History`] ports on one DynamoDB table (their methods live in `connections`,
//! `rooms`, `audience`, `nicks` and `history`), with the default timeouts of its client.
//!
//! [`Connections`]: roomcast_core::ports::Connections
//! [`Rooms`]: roomcast_core::ports::Rooms
//! [`Audience`]: roomcast_core::ports::Audience
//! [`History`]: roomcast_core::ports::History

use std::time::Duration;

use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;

use super::table::Table;

/// Timeouts given to a client that arrives without an operation timeout, so that no call
/// can hang a Lambda until it is killed. DynamoDB answers in milliseconds; a few seconds
/// per attempt leaves room for retries within the operation budget.
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// The DynamoDB store: connections, users, memberships, nickname claims and the room
/// catalog in one table laid out as in `infra/tables.json` and [`super::keys`], with the
/// same rules as [`roomcast_core::memory::MemoryStore`] (the contract tests run both).
///
/// Every read is one GetItem or one (paginated) Query, never a Scan; each method documents
/// what it costs and how consistent it is.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    pub(super) table: Table,
}

impl DynamoStore {
    /// A store on `table` (created by the SAM template, or by [`super::ensure_table`]).
    ///
    /// Timeouts belong to the client: build it with a `TimeoutConfig` (operation, attempt
    /// and connect timeouts). If it has no operation timeout, this adds 10 s per operation,
    /// 3 s per attempt and 3.1 s to connect, keeping whatever else was configured.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(with_timeouts(client), table.into()),
        }
    }

    /// Caps the items per Query page (by default a page holds up to 1 MB). Only useful to
    /// make tests walk through many pages with a small table.
    pub fn with_page_size(mut self, items: i32) -> Self {
        self.table = self.table.with_page_size(items);
        self
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        self.table.name()
    }
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
