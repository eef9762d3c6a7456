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

/// Ports all in process: a fresh store and history, `log` as the publisher, and `files`.
pub fn ports(log: std::sync::Arc<MemoryLog>, files: impl crate::Files + 'static) -> crate::ports::Ports {
    crate::ports::Ports {
        store: std::sync::Arc::new(MemoryStore::new()),
        history: std::sync::Arc::new(MemoryHistory::default()),
        publisher: log,
        files: std::sync::Arc::new(files),
    }
}
