//! In-process stand-ins for the embedded local mode: a store, a message history, an event log
//! and a file store (a directory) that behave
//! like the DynamoDB and Kafka adapters (and pass the same contract tests), so `cargo run`
//! alone gives a working chat server.

pub mod files;
mod history;
mod log;
mod store;

pub use files::DirectoryFiles;
pub use history::MemoryHistory;
pub use log::{LogRecord, MemoryLog};
pub use store::MemoryStore;
