//! In-process stand-ins for the embedded local mode: a store and an event log that behave
//! like the DynamoDB and Kafka adapters (and pass the same contract tests), so `cargo run`
//! alone gives a working chat server.

mod log;
mod store;

pub use log::{LogRecord, MemoryLog};
pub use store::MemoryStore;
