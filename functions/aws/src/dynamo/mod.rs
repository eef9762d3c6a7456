//! The DynamoDB adapter: [`DynamoStore`] implements the domain's
//! [`Store`](roomcast_core::Store) on one table, defined once in `infra/tables.json`
//! ([`ensure_table`] creates it for local mode and tests).
//!
//! The layout (see [`keys`]): connections, memberships in both directions, nickname claims
//! and the room catalog share the table; `gsi1` serves user → connections, the room
//! catalog and the broadcast audience. Every access is a GetItem, a Query or a
//! transaction: nothing reads the whole table.

mod item;
pub mod keys;
mod schema;
mod store;

pub use item::CorruptItem;
pub use schema::{ensure_table, DynamoError, TableDefinition, TABLE_JSON};
pub use store::{DynamoStore, GaveUp};
