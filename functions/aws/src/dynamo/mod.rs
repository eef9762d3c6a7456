//! The DynamoDB adapter: [`DynamoStore`] implements the domain's
//! [`Connections`](roomcast_core::ports::Connections), [`Rooms`](roomcast_core::ports::Rooms),
//! [`Audience`](roomcast_core::ports::Audience) and [`History`](roomcast_core::ports::History)
//! ports on one table, defined once in `infra/tables.json` ([`ensure_table`] creates it for
//! local mode and tests).
//!
//! The layout is in [`keys`]: connections, users' live connections, memberships in both
//! directions, nickname claims, the room catalog and each conversation's messages share
//! the table; `gsi1` serves the room catalog and the broadcast audience. Every read is one
//! GetItem or one Query, every write one item or one transaction: nothing reads the whole
//! table.
//!
//! Modules: [`keys`] (layout), `item` (items to and from domain values), `table` (the
//! client calls everything is built from), `retry` (the one backoff loop), `store` (the
//! type), `connections`, `rooms`, `audience`, `history`, `quotas`, `uploads` (one port each), `conversations`
//! (the users' lists of direct conversations, kept with the history), `nicks` (nickname
//! claims), `schema` (the table definition).

mod audience;
mod connections;
mod conversations;
mod history;
mod item;
pub mod keys;
mod nicks;
mod quotas;
mod retry;
mod rooms;
mod schema;
mod store;
mod table;
mod uploads;

pub use item::CorruptItem;
pub use retry::GaveUp;
pub use schema::{ensure_table, DynamoError, TableDefinition, TABLE_JSON};
pub use store::DynamoStore;
