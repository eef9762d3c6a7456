//! Contract tests of the [`RecordSource`] the local gateway's emulated Kafka trigger reads
//! from, run against both implementations: [`MemorySource`] over the embedded
//! [`MemoryLog`] and [`KafkaSource`] in a consumer group on a tansu broker. Batching,
//! per-partition order and exactly-once delivery under commits are what fan-out relies on,
//! so the embedded mode is only a faithful stand-in while both pass the same tests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use roomcast_aws::kafka::KafkaPublisher;
use roomcast_core::memory::{LogRecord, MemoryLog};
use roomcast_core::{Envelope, MessageId, Publisher, RoomName, ServerFrame, Target};
use roomcast_local::kafka_source::KafkaSource;
use roomcast_local::source::{MemorySource, RecordSource};
use roomcast_tests::{each_backend, tansu, unique_name};

/// How long a test waits for everything it published to come out of a source: covers a
/// consumer group's join and a slow shared CI machine; both sources answer in milliseconds
/// once running.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(60);

/// The `idle` of each `next_batch` call: short, so loops notice their deadline.
const IDLE: Duration = Duration::from_millis(300);

/// The Kafka source's `fetch.wait.max.ms`, as the gateway's default.
const FETCH_WAIT: Duration = Duration::from_millis(10);

/// How long a source gets to show records it should not have (duplicates, redeliveries).
const QUIET: Duration = Duration::from_secs(2);

/// Added to the longest a `next_batch` call may legitimately take (`idle` + `window`)
/// before a test calls it hung. A bound, not a timing assertion.
const HANG_MARGIN: Duration = Duration::from_secs(15);

/// A log that envelopes are published to and that sources read.
#[async_trait]
trait Backend: Send + Sync {
    fn name(&self) -> String;
    fn publisher(&self) -> &dyn Publisher;
    /// A new source on the log. For Kafka, a new member of the backend's one consumer group.
    fn source(&self) -> Box<dyn RecordSource>;
}

struct Memory(Arc<MemoryLog>);

impl Memory {
    fn new(partitions: i32) -> Self {
        Self(Arc::new(MemoryLog::new(
            unique_name("roomcast"),
            partitions as usize,
            10_000,
        )))
    }
}

impl Backend for Memory {
    fn name(&self) -> String {
        format!("memory log {}", self.0.topic())
    }

    fn publisher(&self) -> &dyn Publisher {
        &*self.0
    }

    fn source(&self) -> Box<dyn RecordSource> {
        Box::new(MemorySource::new(Arc::clone(&self.0)))
    }
}

struct Kafka {
    topic: String,
    group: String,
    publisher: KafkaPublisher,
}

impl Kafka {
    async fn new(partitions: i32) -> Self {
        let topic = tansu::fresh_topic(partitions).await;
        Self {
            publisher: tansu::publisher(&topic),
            group: unique_name("roomcast-fanout"),
            topic,
        }
    }
}

impl Backend for Kafka {
    fn name(&self) -> String {
        format!("kafka topic {} group {}", self.topic, self.group)
    }

    fn publisher(&self) -> &dyn Publisher {
        &self.publisher
    }

    fn source(&self) -> Box<dyn RecordSource> {
        Box::new(
            KafkaSource::new(tansu::bootstrap(), &self.topic, &self.group, FETCH_WAIT)
                .expect("cannot create a KafkaSource"),
        )
    }
}

// Each contract test on both backends (`memory::NAME`, `kafka::NAME`), with a fresh
// 3-partition log each.
each_backend!(
    memory => &Memory::new(3),
    kafka => &Kafka::new(3).await;
    [
        a_batch_never_exceeds_max,
        one_partitions_records_come_in_offset_order_across_batches,
        everything_published_arrives_exactly_once_when_batches_are_committed,
        an_empty_batch_comes_back_after_idle_when_nothing_is_published,
    ]
);

const ROOMS: [&str; 6] = ["general", "random", "rust", "kafka", "lambda", "ops"];

fn envelope(room: &str) -> Envelope {
    Envelope::new(
        MessageId::generate().as_str(),
        Target::Room(RoomName::trusted(room)),
        None,
        &ServerFrame::Pong,
    )
}

/// Publishes `count` envelopes round-robin over `rooms` and returns their ids by room, in
/// publish order.
async fn publish(backend: &dyn Backend, rooms: &[&str], count: usize) -> BTreeMap<String, Vec<String>> {
    let mut sent: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in 0..count {
        let room = rooms[n % rooms.len()];
        let envelope = envelope(room);
        backend
            .publisher()
            .publish(&envelope)
            .await
            .unwrap_or_else(|error| panic!("publishing to {} failed: {error:?}", backend.name()));
        sent.entry(room.to_owned()).or_default().push(envelope.id);
    }
    sent
}

fn id(record: &LogRecord) -> String {
    Envelope::decode(&record.value)
        .unwrap_or_else(|error| {
            panic!(
                "record at {}/{} is not an envelope: {error}",
                record.partition, record.offset
            )
        })
        .id
}

fn room(record: &LogRecord) -> String {
    String::from_utf8(record.key.clone().expect("every record has a key")).expect("keys are UTF-8")
}

fn ids(records: &[LogRecord]) -> Vec<String> {
    records.iter().map(id).collect()
}

/// One `next_batch`, failing the test if it errs or takes longer than it may.
async fn next_batch(source: &mut dyn RecordSource, max: usize, window: Duration, idle: Duration) -> Vec<LogRecord> {
    let bound = idle + window + HANG_MARGIN;
    let batch = tokio::time::timeout(bound, source.next_batch(max, window, idle))
        .await
        .unwrap_or_else(|_| panic!("next_batch on {} hung for {bound:?}", source.describe()))
        .unwrap_or_else(|error| panic!("next_batch on {} failed: {error:?}", source.describe()));
    assert!(
        batch.len() <= max,
        "a batch of {} records from {} with max {max}",
        batch.len(),
        source.describe()
    );
    batch
}

/// Reads batches until `count` records arrived in all, committing each batch if `commit`.
/// Returns the non-empty batches in the order they came.
async fn read_batches(
    source: &mut dyn RecordSource,
    count: usize,
    max: usize,
    window: Duration,
    commit: bool,
) -> Vec<Vec<LogRecord>> {
    let deadline = tokio::time::Instant::now() + DELIVERY_DEADLINE;
    let mut batches = Vec::new();
    let mut received = 0;
    while received < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {received} of {count} records came from {} within {DELIVERY_DEADLINE:?}",
            source.describe()
        );
        let batch = next_batch(source, max, window, IDLE).await;
        if batch.is_empty() {
            continue;
        }
        if commit {
            tokio::time::timeout(HANG_MARGIN, source.commit(&batch))
                .await
                .unwrap_or_else(|_| panic!("commit on {} hung", source.describe()))
                .unwrap_or_else(|error| panic!("commit on {} failed: {error:?}", source.describe()));
        }
        received += batch.len();
        batches.push(batch);
    }
    batches
}

/// Fails the test if the source hands out anything within [`QUIET`].
async fn assert_nothing_more(source: &mut dyn RecordSource) {
    let deadline = tokio::time::Instant::now() + QUIET;
    while tokio::time::Instant::now() < deadline {
        let batch = next_batch(source, 100, Duration::from_millis(100), IDLE).await;
        assert!(
            batch.is_empty(),
            "{} handed out {} records more than were published: {:?}",
            source.describe(),
            batch.len(),
            batch.iter().map(|r| (r.partition, r.offset)).collect::<Vec<_>>()
        );
    }
}

async fn a_batch_never_exceeds_max(backend: &dyn Backend) {
    publish(backend, &ROOMS, 30).await;
    let mut source = backend.source();
    // A window long enough for every batch to fill up: only `max` may cut it short.
    let batches = read_batches(&mut *source, 30, 4, Duration::from_secs(2), true).await;
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    assert!(sizes.iter().all(|&size| size <= 4), "batch sizes {sizes:?} with max 4");
    assert!(
        sizes.contains(&4),
        "no batch reached max 4 with 30 records waiting: {sizes:?}"
    );
    assert_eq!(sizes.iter().sum::<usize>(), 30, "batch sizes {sizes:?}");
}

async fn one_partitions_records_come_in_offset_order_across_batches(backend: &dyn Backend) {
    let sent = publish(backend, &ROOMS, 60).await;
    let mut source = backend.source();
    let batches = read_batches(&mut *source, 60, 7, Duration::from_millis(200), true).await;
    assert!(
        batches.len() > 1,
        "everything came in one batch: nothing crossed a batch boundary"
    );
    let records: Vec<&LogRecord> = batches.iter().flatten().collect();

    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let mut received: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for record in &records {
        offsets.entry(record.partition).or_default().push(record.offset);
        received.entry(room(record)).or_default().push(id(record));
    }
    assert!(offsets.len() > 1, "six rooms all on partitions {:?}", offsets.keys());
    for (partition, offsets) in &offsets {
        assert!(
            offsets.windows(2).all(|pair| pair[0] < pair[1]),
            "partition {partition} came out of offset order: {offsets:?}"
        );
    }
    // And so each room's messages come in the order they were sent.
    assert_eq!(received, sent);
}

async fn everything_published_arrives_exactly_once_when_batches_are_committed(backend: &dyn Backend) {
    let mut sent: BTreeSet<String> = publish(backend, &ROOMS, 40).await.into_values().flatten().collect();
    let mut source = backend.source();
    let mut records: Vec<LogRecord> = read_batches(&mut *source, 20, 5, Duration::from_millis(200), true)
        .await
        .concat();
    // More records while the source is running, not only those waiting when it started.
    sent.extend(publish(backend, &ROOMS, 25).await.into_values().flatten());
    let remaining = sent.len() - records.len();
    records.extend(
        read_batches(&mut *source, remaining, 5, Duration::from_millis(200), true)
            .await
            .concat(),
    );
    assert_nothing_more(&mut *source).await;

    let received = ids(&records);
    let distinct: BTreeSet<String> = received.iter().cloned().collect();
    assert_eq!(
        received.len(),
        distinct.len(),
        "some records came more than once from {}",
        source.describe()
    );
    assert_eq!(
        distinct,
        sent,
        "what came out of {} is not what was published",
        source.describe()
    );
}

async fn an_empty_batch_comes_back_after_idle_when_nothing_is_published(backend: &dyn Backend) {
    let mut source = backend.source();
    let started = tokio::time::Instant::now();
    let batch = next_batch(&mut *source, 10, Duration::from_secs(1), IDLE).await;
    assert!(batch.is_empty(), "records from an empty log: {batch:?}");
    // A lower bound only: returning before `idle` would make the caller spin.
    assert!(started.elapsed() >= IDLE, "returned after {:?}", started.elapsed());

    // Also once it has handed out everything there was.
    publish(backend, &ROOMS, 3).await;
    read_batches(&mut *source, 3, 10, Duration::from_millis(100), true).await;
    let batch = next_batch(&mut *source, 10, Duration::from_secs(1), IDLE).await;
    assert!(batch.is_empty(), "records after the log was drained: {batch:?}");
}

// Kafka only: the in-memory log does not outlive its process, so there is no restart to
// resume from; only Kafka keeps committed offsets for the next member of the group.

/// A gateway that stopped after committing some batches and reading one more: its
/// successor in the group gets the uncommitted batch again and none of the committed ones.
#[tokio::test]
async fn kafka_a_new_group_member_resumes_after_the_last_commit() {
    roomcast_tests::init_tracing();
    let backend = Kafka::new(3).await;
    let sent: Vec<String> = publish(&backend, &ROOMS, 30).await.into_values().flatten().collect();

    let mut first = backend.source();
    let committed = read_batches(&mut *first, 10, 5, Duration::from_millis(500), true)
        .await
        .concat();
    let uncommitted = read_batches(&mut *first, 5, 5, Duration::from_millis(500), false)
        .await
        .concat();
    // As the trigger does when it stops: the last commit may still be on its way.
    tokio::time::timeout(HANG_MARGIN, first.settle())
        .await
        .expect("the last commit settles")
        .expect("the last commit is stored");
    // Leaves the group, so the next member is given the partitions at once.
    drop(first);

    let mut second = backend.source();
    let expected = sent.len() - committed.len();
    let resumed = read_batches(&mut *second, expected, 100, Duration::from_millis(500), true)
        .await
        .concat();
    assert_nothing_more(&mut *second).await;

    let committed_ids: BTreeSet<String> = ids(&committed).into_iter().collect();
    let resumed_ids: Vec<String> = ids(&resumed);
    let redelivered: Vec<&String> = resumed_ids.iter().filter(|id| committed_ids.contains(*id)).collect();
    assert!(
        redelivered.is_empty(),
        "{} committed records were delivered again: {redelivered:?}",
        redelivered.len()
    );
    for record in &uncommitted {
        assert!(
            resumed_ids.contains(&id(record)),
            "record {}/{} was read but not committed, and the next member did not get it again",
            record.partition,
            record.offset
        );
    }
    let everything: BTreeSet<String> = committed_ids.into_iter().chain(resumed_ids).collect();
    assert_eq!(
        everything,
        sent.into_iter().collect::<BTreeSet<_>>(),
        "records were lost across the restart"
    );
}

/// Nothing committed at all: the next member starts over from the beginning.
#[tokio::test]
async fn kafka_a_batch_read_but_not_committed_is_delivered_again() {
    roomcast_tests::init_tracing();
    let backend = Kafka::new(3).await;
    publish(&backend, &ROOMS, 12).await;

    let mut first = backend.source();
    let read: BTreeSet<String> = ids(&read_batches(&mut *first, 12, 100, Duration::from_millis(500), false)
        .await
        .concat())
    .into_iter()
    .collect();
    drop(first);

    let mut second = backend.source();
    let again: BTreeSet<String> = ids(&read_batches(&mut *second, 12, 100, Duration::from_millis(500), true)
        .await
        .concat())
    .into_iter()
    .collect();
    assert_eq!(again, read);

    // Committed now: a third member gets only what is published after. (Waiting for a
    // new record proves it has joined; an empty wait alone could just be a slow join.)
    drop(second);
    let mut third = backend.source();
    let after: Vec<String> = publish(&backend, &ROOMS, 1).await.into_values().flatten().collect();
    let records = read_batches(&mut *third, 1, 100, Duration::from_millis(500), true)
        .await
        .concat();
    assert_nothing_more(&mut *third).await;
    assert_eq!(ids(&records), after, "committed records were delivered again");
}

/// What another service puts in record headers reaches kafka-fanout's event as AWS sends
/// it: one object per header, its value as (signed) bytes. (The in-process log has no
/// headers: roomcast's own publisher writes none.)
#[tokio::test]
async fn kafka_headers_reach_the_event_as_byte_arrays() {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};

    roomcast_tests::init_tracing();
    let topic = tansu::fresh_topic(1).await;
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", tansu::bootstrap())
        .set("message.timeout.ms", "10000")
        .create()
        .expect("producer");
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "traceparent",
            value: Some("00-ab".as_bytes()),
        })
        .insert(Header {
            key: "raw",
            value: Some(&[0xff_u8, 0x01][..]),
        });
    let value = envelope("general").to_json();
    producer
        .send(
            FutureRecord::to(&topic).key("general").payload(&value).headers(headers),
            Duration::from_secs(10),
        )
        .await
        .expect("produced");

    let mut source = KafkaSource::new(tansu::bootstrap(), &topic, &unique_name("group"), FETCH_WAIT).expect("source");
    let batch = next_batch(&mut source, 10, Duration::from_millis(100), Duration::from_secs(20)).await;
    assert_eq!(batch.len(), 1);
    let event = serde_json::to_value(roomcast_local::events::kafka_event(&batch, tansu::bootstrap())).unwrap();
    let record = &event["records"][format!("{topic}-0")][0];
    assert_eq!(
        record["headers"],
        serde_json::json!([{ "traceparent": [48, 48, 45, 97, 98] }, { "raw": [-1, 1] }])
    );
}
