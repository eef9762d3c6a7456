//! Contract tests of the [`Publisher`] port, run against both implementations: the
//! in-process [`MemoryLog`] of the embedded mode and the [`KafkaPublisher`] against a tansu
//! broker. Fan-out relies on what they check (keys, per-room order), so the embedded mode
//! is only a faithful stand-in while both pass the same tests.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use roomcast_aws::kafka::{ensure_topic, KafkaPublisher, KafkaSettings};
use roomcast_core::memory::{LogRecord, MemoryLog};
use roomcast_core::model::LogPosition;
use roomcast_core::ports::PublishError;
use roomcast_core::{ConnectionId, Envelope, MessageId, Nick, Publisher, RoomName, ServerFrame, Target, User, UserId};
use roomcast_tests::{each_backend, tansu, unique_name};

/// Covers a consumer group's first join and a slow shared CI machine; tansu itself
/// answers in milliseconds.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A log that envelopes are published to and read back from.
#[async_trait]
trait Backend: Send + Sync {
    fn topic(&self) -> &str;
    fn publisher(&self) -> &dyn Publisher;
    /// Every record published so far (`count` of them), in offset order per partition.
    async fn records(&self, count: usize) -> Vec<LogRecord>;
}

struct Memory(MemoryLog);

impl Memory {
    fn new(partitions: i32) -> Self {
        Self(MemoryLog::new(unique_name("roomcast"), partitions as usize, 10_000))
    }
}

#[async_trait]
impl Backend for Memory {
    fn topic(&self) -> &str {
        self.0.topic()
    }

    fn publisher(&self) -> &dyn Publisher {
        &self.0
    }

    async fn records(&self, count: usize) -> Vec<LogRecord> {
        let records: Vec<LogRecord> = (0..self.0.partition_count())
            .flat_map(|partition| self.0.read(partition, 0, usize::MAX))
            .collect();
        assert_eq!(
            records.len(),
            count,
            "the in-memory log holds {} records, expected {count}",
            records.len()
        );
        records
    }
}

struct Kafka {
    topic: String,
    publisher: KafkaPublisher,
}

impl Kafka {
    async fn new(partitions: i32) -> Self {
        let topic = tansu::fresh_topic(partitions).await;
        Self {
            publisher: tansu::publisher(&topic),
            topic,
        }
    }
}

#[async_trait]
impl Backend for Kafka {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn publisher(&self) -> &dyn Publisher {
        &self.publisher
    }

    async fn records(&self, count: usize) -> Vec<LogRecord> {
        tansu::read_back(&self.topic, count, READ_TIMEOUT).await
    }
}

// Each contract test on both backends (`memory::NAME`, `kafka::NAME`), with a fresh
// 3-partition log each.
each_backend!(
    memory => &Memory::new(3),
    kafka => &Kafka::new(3).await;
    [
        a_published_envelope_comes_back_keyed_by_its_target,
        one_rooms_envelopes_come_back_in_publish_order,
        each_room_keeps_to_one_partition,
        the_position_publish_returns_is_where_the_record_is,
        the_record_at_a_position_is_the_one_published_there_and_none_past_the_end,
    ]
);

fn chat_message(room: &str, text: &str, sender: &ConnectionId) -> Envelope {
    let id = MessageId::generate();
    let frame = ServerFrame::Message {
        room: RoomName::trusted(room),
        id: Some(id.clone()),
        from: User {
            user_id: UserId::new("u-alice"),
            nick: Nick::trusted("alice"),
        },
        text: text.to_owned(),
        ts: 1_700_000_000_000,
        reply_to: None,
        files: vec![],
    };
    Envelope::new(
        id.as_str(),
        Target::Room(RoomName::trusted(room)),
        Some(sender.clone()),
        &frame,
    )
}

fn decode(record: &LogRecord) -> Envelope {
    Envelope::decode(&record.value).unwrap_or_else(|error| {
        panic!(
            "record at {}/{} is not an envelope: {error}: {}",
            record.partition,
            record.offset,
            String::from_utf8_lossy(&record.value)
        )
    })
}

fn key(record: &LogRecord) -> String {
    String::from_utf8(record.key.clone().expect("every record has a key")).expect("keys are UTF-8")
}

async fn publish(backend: &dyn Backend, envelope: &Envelope) {
    backend
        .publisher()
        .publish(envelope)
        .await
        .unwrap_or_else(|error| panic!("publishing {} to {} failed: {error:?}", envelope.id, backend.topic()));
}

async fn a_published_envelope_comes_back_keyed_by_its_target(backend: &dyn Backend) {
    let to_room = chat_message("general", "hello, room", &ConnectionId::new("conn-A="));
    let to_user = Envelope::new(
        MessageId::generate().as_str(),
        Target::User(UserId::new("u-42")),
        None,
        &ServerFrame::Pong,
    );
    publish(backend, &to_room).await;
    publish(backend, &to_user).await;

    let records = backend.records(2).await;
    for (expected_key, sent) in [("general", &to_room), ("user:u-42", &to_user)] {
        let record = records
            .iter()
            .find(|record| key(record) == expected_key)
            .unwrap_or_else(|| panic!("no record keyed {expected_key:?} in {records:?}"));
        assert_eq!(record.topic, backend.topic());
        let received = decode(record);
        assert_eq!(received.id, sent.id);
        assert_eq!(received.target, sent.target);
        assert_eq!(received.except, sent.except);
        // Fan-out posts the frame byte for byte, so it must survive the log unchanged.
        assert_eq!(received.frame.get(), sent.frame.get());
    }
}

async fn one_rooms_envelopes_come_back_in_publish_order(backend: &dyn Backend) {
    let sender = ConnectionId::new("conn-B=");
    let mut sent = Vec::new();
    // One at a time, as a Lambda does: each publish returns only once the log has it.
    for n in 0..50 {
        let envelope = chat_message("lobby", &format!("message {n}"), &sender);
        publish(backend, &envelope).await;
        sent.push(envelope.id);
    }

    let records = backend.records(50).await;
    let partitions: BTreeSet<i32> = records.iter().map(|record| record.partition).collect();
    assert_eq!(
        partitions.len(),
        1,
        "one room's records spread over partitions {partitions:?}"
    );
    let offsets: Vec<i64> = records.iter().map(|record| record.offset).collect();
    assert!(
        offsets.windows(2).all(|pair| pair[0] < pair[1]),
        "offsets are not ascending: {offsets:?}"
    );
    let received: Vec<String> = records.iter().map(|record| decode(record).id).collect();
    assert_eq!(received, sent, "the room's messages came back out of publish order");
}

/// The position a publish returns names a chat record (its message id, docs/protocol.md
/// "One order"), so it must be where the record is, also when many go at once and the
/// producer batches them.
async fn the_position_publish_returns_is_where_the_record_is(backend: &dyn Backend) {
    let envelopes: Vec<Envelope> = (0..40)
        .map(|n| {
            let room = format!("room-{}", n % 4);
            Envelope::new(
                format!("e{n}"),
                Target::Room(RoomName::trusted(room)),
                None,
                &ServerFrame::Pong,
            )
        })
        .collect();
    let positions = futures::future::join_all(envelopes.iter().map(|envelope| backend.publisher().publish(envelope)))
        .await
        .into_iter()
        .map(|position| position.expect("published"))
        .collect::<Vec<_>>();
    let records = backend.records(envelopes.len()).await;
    let at: BTreeMap<String, (i32, i64)> = records
        .iter()
        .map(|record| {
            let envelope = Envelope::decode(&record.value).expect("an envelope");
            (envelope.id, (record.partition, record.offset))
        })
        .collect();
    for (envelope, position) in envelopes.iter().zip(positions) {
        assert_eq!(
            at[&envelope.id],
            (position.partition, position.offset),
            "{}: where the log has it, and where publish said",
            envelope.id
        );
    }
}

/// An edit or a reply of a message the archive has not stored reads its record back by
/// position (docs/protocol.md, "One order"): it must be that record, byte for byte, also
/// when reads of several positions run at once; a position past a partition's end, or of a
/// partition the log does not have, holds nothing.
async fn the_record_at_a_position_is_the_one_published_there_and_none_past_the_end(backend: &dyn Backend) {
    let sender = ConnectionId::new("conn-R=");
    let envelopes: Vec<Envelope> = (0..12)
        .map(|n| chat_message(&format!("room-{}", n % 3), &format!("message {n}"), &sender))
        .collect();
    let mut positions = Vec::new();
    for envelope in &envelopes {
        positions.push(backend.publisher().publish(envelope).await.expect("published"));
    }
    let reads = futures::future::join_all(
        positions
            .iter()
            .map(|position| backend.publisher().record_at(*position)),
    )
    .await;
    for ((envelope, position), read) in envelopes.iter().zip(&positions).zip(reads) {
        let record = read
            .unwrap_or_else(|error| panic!("{position:?}: {error:?}"))
            .unwrap_or_else(|| panic!("{position:?}: no record where {} was published", envelope.id));
        assert_eq!((record.partition, record.offset), (position.partition, position.offset));
        assert_eq!(record.topic, backend.topic());
        assert_eq!(record.value, envelope.to_json().into_bytes(), "{position:?}");
    }
    let last = positions
        .iter()
        .max_by_key(|position| position.offset)
        .expect("published");
    let nowhere = [
        LogPosition {
            offset: last.offset + 1_000,
            ..*last
        },
        LogPosition {
            partition: 3,
            offset: last.offset,
        },
        LogPosition {
            partition: -1,
            offset: 0,
        },
    ];
    for position in nowhere {
        let read = backend.publisher().record_at(position).await;
        assert!(matches!(read, Ok(None)), "{position:?}: {read:?}");
    }
}

async fn each_room_keeps_to_one_partition(backend: &dyn Backend) {
    let rooms = [
        "general", "random", "rust", "kafka", "lambda", "ops", "design", "music", "books", "games", "sports", "news",
    ];
    let sender = ConnectionId::new("conn-C=");
    let mut sent: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    // Interleaved, so per-room order is not just publish order of the whole run.
    for round in 0..4 {
        for room in rooms {
            let envelope = chat_message(room, &format!("round {round}"), &sender);
            publish(backend, &envelope).await;
            sent.entry(room).or_default().push(envelope.id);
        }
    }

    let records = backend.records(rooms.len() * 4).await;
    let mut by_room: BTreeMap<String, Vec<&LogRecord>> = BTreeMap::new();
    for record in &records {
        assert!(
            (0..3).contains(&record.partition),
            "partition {} of a 3-partition topic",
            record.partition
        );
        by_room.entry(key(record)).or_default().push(record);
    }
    assert_eq!(
        by_room.keys().map(String::as_str).collect::<Vec<_>>(),
        sent.keys().copied().collect::<Vec<_>>()
    );
    for (room, mut room_records) in by_room {
        let partitions: BTreeSet<i32> = room_records.iter().map(|record| record.partition).collect();
        assert_eq!(partitions.len(), 1, "room {room} spread over partitions {partitions:?}");
        room_records.sort_by_key(|record| record.offset);
        let received: Vec<String> = room_records.iter().map(|record| decode(record).id).collect();
        assert_eq!(
            received,
            sent[room.as_str()],
            "room {room}'s messages came back out of publish order"
        );
    }
    let used: BTreeSet<i32> = records.iter().map(|record| record.partition).collect();
    assert!(
        used.len() > 1,
        "twelve rooms all landed on partition {used:?}: the topic is not really partitioned"
    );
}

// Kafka only: the in-memory log lives in the caller's process and cannot be down.
#[tokio::test]
async fn kafka_publish_fails_instead_of_hanging_when_kafka_is_unreachable() {
    roomcast_tests::init_tracing();
    let publisher = KafkaPublisher::new(&KafkaSettings {
        bootstrap_servers: format!("127.0.0.1:{}", roomcast_tests::process::free_port()),
        topic: "roomcast-events".to_owned(),
        delivery_timeout: Duration::from_millis(1_500),
        security: Default::default(),
    })
    .expect("creating a producer does not need a broker");
    let envelope = chat_message("general", "anyone there?", &ConnectionId::new("conn-D="));

    // This is what lets ws-message answer the sender `unavailable` instead of timing out.
    let outcome = tokio::time::timeout(Duration::from_secs(15), publisher.publish(&envelope))
        .await
        .expect("publish to an unreachable broker hung instead of failing");
    match outcome {
        Err(PublishError::Timeout | PublishError::Refused(_)) => {}
        Ok(_) => panic!("publish to an unreachable broker reported success"),
    }
}

#[tokio::test]
async fn kafka_ensure_topic_creates_the_partitions_and_accepts_an_existing_topic() {
    roomcast_tests::init_tracing();
    let topic = tansu::fresh_topic(3).await;
    ensure_topic(tansu::bootstrap(), &topic, 3, 1, Duration::from_secs(30))
        .await
        .expect("an existing topic is fine");

    let partitions = tokio::task::spawn_blocking(move || {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let client: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", tansu::bootstrap())
            .create()
            .expect("cannot create a metadata client");
        let metadata = client
            .fetch_metadata(Some(&topic), Duration::from_secs(30))
            .expect("no metadata");
        metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map(|t| t.partitions().len())
    })
    .await
    .expect("metadata task panicked");
    assert_eq!(partitions, Some(3));
}
