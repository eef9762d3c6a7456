//! The in-process event log: partitioned and offset-ordered like a Kafka topic, so the
//! embedded mode feeds the very same fan-out path that Kafka records take.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::envelope::Envelope;
use crate::model::LogPosition;
use crate::ports::{PublishError, Publisher};
use crate::record::Record;

/// One record of the log, shaped like a Kafka record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    /// Record headers, in order (Kafka allows repeated keys).
    pub headers: Vec<(String, Vec<u8>)>,
}

pub struct MemoryLog {
    topic: String,
    partitions: Vec<Mutex<Partition>>,
    retention: usize,
    appended: watch::Sender<u64>,
}

#[derive(Default)]
struct Partition {
    /// Offset of `records[0]`; older records were dropped by retention.
    base_offset: i64,
    records: VecDeque<LogRecord>,
}

impl MemoryLog {
    /// A log of `partitions` partitions keeping the newest `retention` records of each.
    pub fn new(topic: impl Into<String>, partitions: usize, retention: usize) -> Self {
        assert!(
            partitions > 0 && retention > 0,
            "a log needs a partition and room for a record"
        );
        Self {
            topic: topic.into(),
            partitions: (0..partitions).map(|_| Mutex::default()).collect(),
            retention,
            appended: watch::Sender::new(0),
        }
    }

    /// The same log with every partition's first offset at `offset`. The embedded gateway
    /// starts at the time in microseconds, so that a restarted gateway never hands out a
    /// position (and so a message id) it gave before, when the history outlives it (a
    /// DynamoDB history behind the embedded log).
    pub fn starting_at(self, offset: i64) -> Self {
        for partition in &self.partitions {
            let mut partition = partition.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            partition.base_offset = partition.base_offset.max(offset);
        }
        self
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// The partition a key lands on: equal keys, equal partition (FNV-1a).
    pub fn partition_for(&self, key: &[u8]) -> usize {
        let hash = key.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        });
        (hash % self.partitions.len() as u64) as usize
    }

    fn partition(&self, index: usize) -> MutexGuard<'_, Partition> {
        self.partitions[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends a record and returns its offset.
    pub fn append(&self, key: Option<&[u8]>, value: &[u8]) -> (i32, i64) {
        let index = key.map_or(0, |key| self.partition_for(key));
        let offset = {
            let mut partition = self.partition(index);
            let offset = partition.base_offset + partition.records.len() as i64;
            partition.records.push_back(LogRecord {
                topic: self.topic.clone(),
                partition: index as i32,
                offset,
                timestamp_ms: crate::clock::now_ms(),
                key: key.map(<[u8]>::to_vec),
                value: value.to_vec(),
                headers: Vec::new(),
            });
            if partition.records.len() > self.retention {
                partition.records.pop_front();
                partition.base_offset += 1;
            }
            offset
        };
        self.appended.send_modify(|count| *count += 1);
        (index as i32, offset)
    }

    /// Up to `max` records of a partition from `offset` on (from the oldest kept record if
    /// `offset` was already dropped), in offset order.
    pub fn read(&self, partition: usize, offset: i64, max: usize) -> Vec<LogRecord> {
        let partition = self.partition(partition);
        let skip = (offset - partition.base_offset).max(0) as usize;
        partition.records.iter().skip(skip).take(max).cloned().collect()
    }

    /// The offset the next record of the partition will get.
    pub fn end_offset(&self, partition: usize) -> i64 {
        let partition = self.partition(partition);
        partition.base_offset + partition.records.len() as i64
    }

    /// A receiver that changes whenever a record is appended, for consumers to wait on.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }
}

#[async_trait]
impl Publisher for MemoryLog {
    async fn publish(&self, envelope: &Envelope) -> Result<LogPosition, PublishError> {
        let (partition, offset) = self.append(
            Some(envelope.target.record_key().as_bytes()),
            envelope.to_json().as_bytes(),
        );
        Ok(LogPosition { partition, offset })
    }

    async fn record_at(&self, position: LogPosition) -> Result<Option<Record>, PublishError> {
        let Ok(partition) = usize::try_from(position.partition) else {
            return Ok(None);
        };
        if partition >= self.partitions.len() || position.offset < 0 {
            return Ok(None);
        }
        Ok(self
            .read(partition, position.offset, 1)
            .into_iter()
            .find(|record| record.offset == position.offset)
            .map(|record| Record {
                topic: record.topic,
                partition: record.partition,
                offset: record.offset,
                value: record.value,
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_keeps_offsets_monotonic() {
        let log = MemoryLog::new("t", 1, 2);
        for value in [b"a", b"b", b"c"] {
            log.append(None, value);
        }
        let kept = log.read(0, 0, 10);
        assert_eq!(kept.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(log.end_offset(0), 3);
        assert_eq!(log.read(0, 2, 10)[0].value, b"c");
    }
}
