//! Where the emulated Kafka trigger reads records from: a Kafka consumer group, or the
//! embedded in-process log. Both hand out batches and are told when a batch was handled,
//! as Lambda's event source mapping commits offsets only after the function succeeded.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use roomcast_core::memory::{LogRecord, MemoryLog};

#[async_trait]
pub trait RecordSource: Send {
    /// Waits for records, then keeps collecting until `max` records or `window` after the
    /// first one. Returns an empty batch when nothing arrived within `idle` (so callers can
    /// check for shutdown). Records of one partition come in offset order.
    async fn next_batch(&mut self, max: usize, window: Duration, idle: Duration) -> anyhow::Result<Vec<LogRecord>>;

    /// The batch was handled: its offsets may be committed. A source may commit in the
    /// background; an error of that commit is then returned by the next call (or by
    /// [`RecordSource::settle`]).
    async fn commit(&mut self, batch: &[LogRecord]) -> anyhow::Result<()>;

    /// Waits until every commit asked for is done: before a stop, so that a successor
    /// resumes after the last batch handled.
    async fn settle(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    /// What to print at start-up, e.g. `kafka 127.0.0.1:9092 topic roomcast-events group roomcast-fanout`.
    fn describe(&self) -> String;

    /// Whether records can flow: a consumer group member has been given its partitions
    /// (until then a record published waits for the group to settle, seconds on tansu).
    /// The embedded log is always ready.
    fn assigned(&self) -> bool {
        true
    }
}

/// Reads the embedded log from its start, one position per partition.
pub struct MemorySource {
    log: Arc<MemoryLog>,
    positions: HashMap<usize, i64>,
    committed: HashMap<usize, i64>,
    appended: tokio::sync::watch::Receiver<u64>,
}

impl MemorySource {
    pub fn new(log: Arc<MemoryLog>) -> Self {
        let appended = log.subscribe();
        Self {
            log,
            positions: HashMap::new(),
            committed: HashMap::new(),
            appended,
        }
    }

    fn take(&mut self, max: usize, batch: &mut Vec<LogRecord>) {
        for partition in 0..self.log.partition_count() {
            if batch.len() >= max {
                return;
            }
            let position = self.positions.entry(partition).or_insert(0);
            let records = self.log.read(partition, *position, max - batch.len());
            if let Some(last) = records.last() {
                *position = last.offset + 1;
            }
            batch.extend(records);
        }
    }

    /// The offset after the last committed record of each partition (for tests and logs).
    pub fn committed(&self) -> &HashMap<usize, i64> {
        &self.committed
    }
}

#[async_trait]
impl RecordSource for MemorySource {
    async fn next_batch(&mut self, max: usize, window: Duration, idle: Duration) -> anyhow::Result<Vec<LogRecord>> {
        let mut batch = Vec::new();
        self.appended.mark_unchanged();
        self.take(max, &mut batch);
        if batch.is_empty() {
            if tokio::time::timeout(idle, self.appended.changed()).await.is_err() {
                return Ok(batch);
            }
            self.take(max, &mut batch);
        }
        let deadline = tokio::time::Instant::now() + window;
        while !batch.is_empty() && batch.len() < max {
            self.appended.mark_unchanged();
            self.take(max, &mut batch);
            if batch.len() >= max
                || tokio::time::timeout_at(deadline, self.appended.changed())
                    .await
                    .is_err()
            {
                break;
            }
        }
        Ok(batch)
    }

    async fn commit(&mut self, batch: &[LogRecord]) -> anyhow::Result<()> {
        for record in batch {
            let next = self.committed.entry(record.partition as usize).or_insert(0);
            *next = (*next).max(record.offset + 1);
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("embedded in-process log ({} partitions)", self.log.partition_count())
    }
}
