//! The [`RecordReader`]: reads back the one record at a position of the roomcast topic, for
//! `edit`, `delete` and replies that name a message kafka-archive has not applied yet.
//!
//! Why a consumer in the request functions: a message id is its record's position, so the
//! log itself answers "is there a message there, of this conversation, and whose" the
//! moment the sender had its `ack`, however far the archive lags. Waiting for the archive
//! instead held the function for seconds and then refused the reply.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use roomcast_core::model::LogPosition;
use roomcast_core::ports::PublishError;
use roomcast_core::record::Record;

use super::{KafkaContext, KafkaSettings};

/// The consumer group the reader names and never joins (see `RecordReader::consumer`).
pub const READ_BACK_GROUP: &str = "roomcast-read-back";

// The producer's context signs in to MSK with IAM; the reader signs in the same way.
impl ConsumerContext for KafkaContext {}

/// Reads single records by position. Made once per cold start with the publisher; its
/// consumer (librdkafka's threads and connections) only on first use, which most function
/// instances never need.
pub struct RecordReader {
    settings: KafkaSettings,
    /// The consumer, behind a lock: each read points it at its position (`assign`), so two
    /// reads at once (the local gateway's concurrent requests) take turns.
    consumer: OnceLock<Result<Arc<Mutex<BaseConsumer<KafkaContext>>>, String>>,
}

impl RecordReader {
    pub fn new(settings: &KafkaSettings) -> Self {
        Self {
            settings: settings.clone(),
            consumer: OnceLock::new(),
        }
    }

    fn consumer(&self) -> Result<Arc<Mutex<BaseConsumer<KafkaContext>>>, PublishError> {
        let made = self.consumer.get_or_init(|| {
            let settings = &self.settings;
            let timeout_ms = settings.delivery_timeout.as_millis().clamp(10, 300_000).to_string();
            let mut config = ClientConfig::new();
            settings.security.apply(&mut config);
            config
                .set("bootstrap.servers", &settings.bootstrap_servers)
                .set("client.id", "roomcast-reader")
                // librdkafka assigns partitions only to a consumer with a group, though this
                // one never joins it or commits: it is pointed at one position at a time.
                // It still looks up the group's coordinator (IAM: DescribeGroup on it).
                .set("group.id", READ_BACK_GROUP)
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                // A position that is gone is an answer (`None`), not a jump elsewhere.
                .set("auto.offset.reset", "error")
                // One record is wanted: fetch little ahead of it, and do not let the broker
                // hold the fetch (tansu 0.6 holds every fetch for its whole wait).
                .set("fetch.wait.max.ms", "10")
                .set("queued.max.messages.kbytes", "1024")
                .set("socket.connection.setup.timeout.ms", timeout_ms.clone())
                .set("socket.timeout.ms", timeout_ms);
            config
                .create_with_context(KafkaContext::new(&settings.security))
                .map(|consumer| Arc::new(Mutex::new(consumer)))
                .map_err(|error| error.to_string())
        });
        made.clone()
            .map_err(|error| PublishError::Refused(format!("cannot create the Kafka reader: {error}").into()))
    }

    /// The record at `position`, as [`roomcast_core::ports::Publisher::record_at`] promises.
    pub async fn record_at(&self, position: LogPosition) -> Result<Option<Record>, PublishError> {
        if position.partition < 0 || position.offset < 0 {
            return Ok(None);
        }
        let consumer = self.consumer()?;
        let topic = self.settings.topic.clone();
        let timeout = self.settings.delivery_timeout.max(Duration::from_millis(10));
        // librdkafka's calls block: on a thread of the blocking pool, not a runtime worker.
        tokio::task::spawn_blocking(move || {
            let consumer = consumer.lock().unwrap_or_else(PoisonError::into_inner);
            read(&consumer, &topic, position, timeout)
        })
        .await
        .map_err(|error| PublishError::Refused(Box::new(error)))?
    }
}

/// One read, within `timeout` in all.
fn read(
    consumer: &BaseConsumer<KafkaContext>,
    topic: &str,
    position: LogPosition,
    timeout: Duration,
) -> Result<Option<Record>, PublishError> {
    let deadline = Instant::now() + timeout;
    let refused = |error: KafkaError| PublishError::Refused(Box::new(error));
    // Where the partition starts and ends now: outside, there is no record to wait for.
    let (low, high) = match consumer.fetch_watermarks(topic, position.partition, timeout) {
        Ok(watermarks) => watermarks,
        // A partition the topic does not have holds no record (a made-up id's).
        Err(KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownPartition)) => return Ok(None),
        Err(KafkaError::MetadataFetch(RDKafkaErrorCode::OperationTimedOut)) => return Err(PublishError::Timeout),
        Err(error) => return Err(refused(error)),
    };
    if position.offset < low || position.offset >= high {
        return Ok(None);
    }
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, position.partition, Offset::Offset(position.offset))
        .map_err(refused)?;
    consumer.assign(&assignment).map_err(refused)?;
    let found = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err(PublishError::Timeout);
        }
        match consumer.poll(left) {
            None => break Err(PublishError::Timeout),
            Some(Ok(message)) if message.partition() == position.partition && message.offset() == position.offset => {
                break Ok(Some(Record {
                    topic: message.topic().to_owned(),
                    partition: message.partition(),
                    offset: message.offset(),
                    value: message.payload().unwrap_or_default().to_vec(),
                }));
            }
            // A record of an earlier assignment still queued, or one past a compacted gap:
            // the one asked for is not there.
            Some(Ok(message)) if message.partition() == position.partition && message.offset() > position.offset => {
                break Ok(None)
            }
            Some(Ok(_)) => continue,
            Some(Err(error)) => break Err(refused(error)),
        }
    };
    // Stop fetching until the next read.
    let _ = consumer.unassign();
    found
}
