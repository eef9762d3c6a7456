//! The Kafka record source: a consumer group member that hands out batches and commits them
//! only when told to, as Lambda's Kafka event source mapping does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};
use roomcast_core::memory::LogRecord;

use crate::source::RecordSource;

/// How long the group coordinator keeps this member's place after its last heartbeat. The
/// members are static ([`instance_id`]): a restarted gateway takes its previous process's
/// place without waiting for this, so it can be long, and should be: on tansu 0.6 a
/// restarted member whose first heartbeat comes later than this after its predecessor's
/// last one is dropped and must join again (about 6 s more without delivery). 45 s is
/// librdkafka's default, well within brokers' bounds (`group.min.session.timeout.ms` 6 s,
/// `group.max.session.timeout.ms` 30 min).
const SESSION_TIMEOUT: Duration = Duration::from_secs(45);

/// A third of the session timeout, as Kafka recommends, so two heartbeats can be lost.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);

/// A broker behind a firewall that drops packets would otherwise hold each connection
/// attempt for librdkafka's default of 30 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bounds every request to the brokers (fetches, commits, group requests).
const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);

/// librdkafka's synchronous commit waits for the result without a deadline of its own (the
/// request is bounded by the socket timeout, but the wait for a group coordinator is not),
/// so the caller is bounded here, a little past the socket timeout.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(35);

/// Reads one topic as a member of a consumer group. Offsets are committed only through
/// [`RecordSource::commit`], so after a restart the group resumes after the last committed
/// batch, and a batch that was read but never committed is delivered again: at-least-once,
/// as with AWS.
pub struct KafkaSource {
    /// In an `Arc` so a blocking commit can run on tokio's blocking pool.
    consumer: Arc<StreamConsumer>,
    bootstrap_servers: String,
    topic: String,
    group_id: String,
    /// The offsets of the last batch committed, until a synchronous commit has stored
    /// them (see [`RecordSource::commit`] and [`RecordSource::settle`]).
    unsettled: Option<TopicPartitionList>,
}

impl KafkaSource {
    /// Joins `group_id` and subscribes to `topic`. Connecting and joining happen in the
    /// background, so this succeeds while the brokers are unreachable; `next_batch` then
    /// returns empty batches (or an error, once librdkafka gives up on the brokers).
    ///
    /// `fetch_wait` bounds how long the broker may hold a fetch while it has no records
    /// (`fetch.wait.max.ms`): Kafka answers as soon as one arrives, but tansu 0.6 holds every
    /// fetch for its whole wait (half of it past 250 ms), so with Kafka's default of 500 ms
    /// each record waited 250-500 ms there before fan-out saw it.
    ///
    /// Must be called within a tokio runtime: the consumer spawns a task on it.
    pub fn new(bootstrap_servers: &str, topic: &str, group_id: &str, fetch_wait: Duration) -> anyhow::Result<Self> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap_servers)
            .set("group.id", group_id)
            .set("client.id", "roomcast-local")
            // Offsets are committed only after the batch was handled (`commit`), never on a
            // timer: an automatic commit could mark records as done that the function has
            // not handled yet, and a crash would then lose them.
            .set("enable.auto.commit", "false")
            // Where a group without committed offsets starts: at the oldest record kept, like
            // an event source mapping created with StartingPosition TRIM_HORIZON. A group
            // that has committed resumes after its last commit whatever this says.
            .set("auto.offset.reset", "earliest")
            .set("group.instance.id", instance_id(group_id))
            .set("session.timeout.ms", millis(SESSION_TIMEOUT))
            .set("heartbeat.interval.ms", millis(HEARTBEAT_INTERVAL))
            .set("socket.connection.setup.timeout.ms", millis(CONNECT_TIMEOUT))
            .set("socket.timeout.ms", millis(SOCKET_TIMEOUT))
            .set("fetch.wait.max.ms", millis(fetch_wait))
            .create()
            .with_context(|| format!("cannot create a Kafka consumer for {bootstrap_servers}"))?;
        consumer
            .subscribe(&[topic])
            .with_context(|| format!("cannot subscribe to Kafka topic {topic}"))?;
        Ok(Self {
            consumer: Arc::new(consumer),
            bootstrap_servers: bootstrap_servers.to_owned(),
            topic: topic.to_owned(),
            group_id: group_id.to_owned(),
            unsettled: None,
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }
}

/// The gateway's member name in `group_id` (`group.instance.id`: static membership,
/// KIP-345), the same at every start, so a restarted gateway takes its previous process's
/// place in the group, partitions and committed offsets and all.
///
/// With dynamic membership a restart after a crash or SIGKILL joined as a new member while
/// the dead one still held the partitions: on Kafka that costs the session timeout and a
/// rebalance; on tansu 0.6 the dead member was the group's leader, and once it timed out
/// the group could settle with every partition assigned to nobody, so the restarted
/// gateway delivered nothing (not within the 180 s a test waited) until the next
/// rebalance. Static members also skip the leave on a clean stop; the restart takes the
/// place the same way. On tansu each join of a static member takes about 6 s (it pauses
/// for other static members), which is what a first start or a restart now takes before
/// the first delivery.
///
/// A gateway is the only member of its groups, so a name per group is unique; a second
/// gateway started by mistake on the same groups fences the first one out of them on
/// Kafka (`FENCED_INSTANCE_ID`).
fn instance_id(group_id: &str) -> String {
    format!("roomcast-local/{group_id}")
}

fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

/// A consumed Kafka message as the trigger hands it on, headers included.
pub fn to_record(message: &BorrowedMessage<'_>) -> LogRecord {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|header| (header.key.to_owned(), header.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    LogRecord {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp_ms: message.timestamp().to_millis().unwrap_or(0),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().unwrap_or_default().to_vec(),
        headers,
    }
}

/// For each partition in the batch, the offset after its highest record: Kafka's committed
/// offset is the next record to read, not the last one read.
fn offsets_to_commit(batch: &[LogRecord]) -> BTreeMap<(&str, i32), i64> {
    let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for record in batch {
        let offset = next.entry((record.topic.as_str(), record.partition)).or_insert(0);
        *offset = (*offset).max(record.offset + 1);
    }
    next
}

#[async_trait]
impl RecordSource for KafkaSource {
    async fn next_batch(&mut self, max: usize, window: Duration, idle: Duration) -> anyhow::Result<Vec<LogRecord>> {
        let mut batch = Vec::new();
        if max == 0 {
            return Ok(batch);
        }
        // The first record: up to `idle`, so the caller gets control back to check for
        // shutdown. `recv` is cancellation safe: a timed-out wait loses no record.
        match tokio::time::timeout(idle, self.consumer.recv()).await {
            Err(_elapsed) => return Ok(batch),
            Ok(Ok(message)) => batch.push(to_record(&message)),
            Ok(Err(error)) => {
                tracing::warn!(
                    topic = %self.topic, group = %self.group_id, error = %error,
                    "Kafka error while waiting for records"
                );
                return Err(error).with_context(|| format!("reading Kafka topic {}", self.topic));
            }
        }
        // Then more, until the batch is full or the batching window after the first record
        // has passed, like an event source mapping's MaximumBatchingWindowInSeconds.
        let deadline = tokio::time::Instant::now() + window;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Err(_elapsed) => break,
                Ok(Ok(message)) => batch.push(to_record(&message)),
                Ok(Err(error)) => {
                    // The consumer's position is already past the records in hand, so
                    // dropping them for an error would skip them until the next restart
                    // (and for good once a later batch is committed). They go out now; the
                    // error is reported, and if it persists the next call returns it.
                    tracing::warn!(
                        topic = %self.topic, group = %self.group_id, error = %error, records = batch.len(),
                        "Kafka error while filling a batch; handing out the records received so far"
                    );
                    break;
                }
            }
        }
        Ok(batch)
    }

    fn assigned(&self) -> bool {
        self.consumer
            .assignment()
            .is_ok_and(|assignment| assignment.count() > 0)
    }

    /// Commits the batch's offsets asynchronously: librdkafka sends the commit and the
    /// next batch is fetched meanwhile. A commit is a round trip to the group's coordinator
    /// (tens of ms on a busy tansu, hundreds at its worst): waiting for each put it on every
    /// record's path, and a mapping that fell behind by it delayed deliveries by up to a
    /// second and more in the soak. Offsets only move forward, so a commit lost in a
    /// failure means records delivered again after a restart (at-least-once, as ever);
    /// [`RecordSource::settle`] stores the last batch's offsets synchronously at a stop.
    async fn commit(&mut self, batch: &[LogRecord]) -> anyhow::Result<()> {
        let offsets = offsets_to_commit(batch);
        if offsets.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::with_capacity(offsets.len());
        for ((topic, partition), offset) in &offsets {
            list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .with_context(|| format!("invalid offset {offset} for {topic}/{partition}"))?;
        }
        let sent = self.consumer.commit(&list, CommitMode::Async);
        self.unsettled = Some(list);
        sent.map_err(|error| {
            tracing::warn!(topic = %self.topic, group = %self.group_id, ?offsets, error = %error, "Kafka refused the offset commit");
            error
        })
        .context("committing Kafka offsets")
    }

    /// Stores the last batch's offsets with a synchronous commit, so that `Ok` means the
    /// broker has them; it blocks its thread until the broker answers, hence the blocking
    /// pool, bounded by [`COMMIT_TIMEOUT`]. If the bound is hit the commit may still land
    /// later, which only means fewer records are delivered again after a restart.
    async fn settle(&mut self) -> anyhow::Result<()> {
        let Some(list) = self.unsettled.take() else {
            return Ok(());
        };
        let consumer = Arc::clone(&self.consumer);
        let commit = tokio::task::spawn_blocking(move || consumer.commit(&list, CommitMode::Sync));
        match tokio::time::timeout(COMMIT_TIMEOUT, commit).await {
            Ok(Ok(Ok(()))) => {
                tracing::debug!(topic = %self.topic, group = %self.group_id, "offsets committed");
                Ok(())
            }
            Ok(Ok(Err(error))) => {
                // Typically the partitions were given to another member in a rebalance:
                // that member reads them again from the last commit.
                tracing::warn!(
                    topic = %self.topic, group = %self.group_id, error = %error,
                    "Kafka refused the offset commit"
                );
                Err(error).context("committing Kafka offsets")
            }
            Ok(Err(join_error)) => Err(join_error).context("the Kafka commit task failed"),
            Err(_elapsed) => {
                tracing::warn!(
                    topic = %self.topic, group = %self.group_id, timeout = ?COMMIT_TIMEOUT,
                    "no answer to the offset commit in time"
                );
                anyhow::bail!("committing Kafka offsets took longer than {COMMIT_TIMEOUT:?}")
            }
        }
    }

    fn describe(&self) -> String {
        format!(
            "kafka {} topic {} group {}",
            self.bootstrap_servers, self.topic, self.group_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(partition: i32, offset: i64) -> LogRecord {
        LogRecord {
            topic: "t".to_owned(),
            partition,
            offset,
            timestamp_ms: 0,
            key: None,
            value: Vec::new(),
            headers: Vec::new(),
        }
    }

    #[test]
    fn commits_the_offset_after_the_highest_record_of_each_partition() {
        let batch = [record(0, 4), record(2, 7), record(0, 5), record(2, 6)];
        let offsets = offsets_to_commit(&batch);
        assert_eq!(offsets, BTreeMap::from([(("t", 0), 6), (("t", 2), 8)]));
    }
}
