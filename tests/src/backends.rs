//! The two sets of backends every behaviour is tested on: the in-process stand-ins of the
//! embedded mode, and the real ones (moto's DynamoDB and S3 APIs and a tansu Kafka broker).

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use roomcast_core::{Envelope, ServerFrame, Target};

use roomcast_core::memory::{LogRecord, MemoryLog};
use roomcast_core::{Ports, Publisher, Store};

/// The id prefix of the records `published` appends to find the end of the log.
const SENTINEL: &str = "sentinel";

/// The ports (`backends.store`, ... through `Deref`) and where their log can be read back.
pub struct Backends {
    /// The message history is the same table as the store on the real backends;
    /// attachments go to a scratch directory store (whose URLs nothing serves here), or a
    /// bucket of moto's S3.
    pub ports: Ports,
    log: Log,
}

impl Deref for Backends {
    type Target = Ports;

    fn deref(&self) -> &Ports {
        &self.ports
    }
}

#[derive(Clone)]
enum Log {
    Memory(Arc<MemoryLog>),
    Kafka { topic: String },
}

impl Backends {
    pub async fn memory() -> Self {
        crate::init_tracing();
        // One partition, like the real topic here, so `published` keeps publish order.
        let log = Arc::new(MemoryLog::new("roomcast-events", 1, 100_000));
        Self {
            ports: roomcast_core::memory::ports(
                log.clone(),
                crate::files::scratch_directory("http://127.0.0.1:9/files"),
            ),
            log: Log::Memory(log),
        }
    }

    pub async fn real() -> Self {
        crate::init_tracing();
        let store = Arc::new(crate::moto::fresh_store().await);
        // One partition, so `published` sees everything before its sentinel in order.
        let topic = crate::tansu::fresh_topic(1).await;
        let publisher = crate::tansu::publisher(&topic);
        Self {
            ports: Ports {
                store: store.clone(),
                history: store,
                publisher: Arc::new(publisher),
                files: Arc::new(crate::moto::fresh_files().await),
            },
            log: Log::Kafka { topic },
        }
    }

    /// The same store and log, publishing through `publisher` instead: to simulate a
    /// broken event log.
    pub fn with_publisher(&self, publisher: Arc<dyn Publisher>) -> Self {
        Self {
            ports: Ports {
                publisher,
                ..self.ports.clone()
            },
            log: self.log.clone(),
        }
    }

    /// The same history and log, with `store` for the connections, rooms and members: to
    /// reach the same table through a fault proxy.
    pub fn with_store(&self, store: Arc<dyn Store>) -> Self {
        Self {
            ports: Ports {
                store,
                ..self.ports.clone()
            },
            log: self.log.clone(),
        }
    }

    /// Everything published so far, in publish order. A sentinel record is appended and
    /// read up to, so "nothing else was published" can be asserted without waiting; the
    /// sentinels of earlier calls are left out.
    pub async fn published(&self) -> Vec<LogRecord> {
        let sentinel_id = crate::unique_name(SENTINEL);
        let sentinel = Envelope::new(sentinel_id.clone(), Target::All, None, &ServerFrame::Pong);
        self.publisher.publish(&sentinel).await.expect("sentinel published");
        let is_sentinel =
            |record: &LogRecord| Envelope::decode(&record.value).is_ok_and(|envelope| envelope.id == sentinel_id);
        let mut records = match &self.log {
            Log::Memory(log) => log.read(0, 0, usize::MAX),
            Log::Kafka { topic } => read_until(topic, &is_sentinel).await,
        };
        let end = records.iter().position(is_sentinel).expect("sentinel read back");
        records.truncate(end);
        records.retain(|record| {
            !Envelope::decode(&record.value).is_ok_and(|envelope| envelope.id.starts_with(&format!("{SENTINEL}-")))
        });
        records
    }

    /// Only the envelopes of what was published so far.
    /// Each published record's envelope, with its frame as fan-out posts it: a chat
    /// message with the id its log position names.
    pub async fn frames(&self) -> Vec<(Envelope, serde_json::Value)> {
        self.published()
            .await
            .iter()
            .map(|record| {
                let envelope = Envelope::decode(&record.value).expect("roomcast writes envelopes");
                let position = roomcast_core::model::LogPosition {
                    partition: record.partition,
                    offset: record.offset,
                };
                let frame = serde_json::from_str(&envelope.frame_at(position)).expect("frames are JSON");
                (envelope, frame)
            })
            .collect()
    }

    pub async fn envelopes(&self) -> Vec<Envelope> {
        self.published()
            .await
            .iter()
            .map(|record| Envelope::decode(&record.value).expect("roomcast writes envelopes"))
            .collect()
    }
}

/// Reads the one-partition topic from the start until `stop` matches a record.
async fn read_until(topic: &str, stop: &(dyn Fn(&LogRecord) -> bool + Sync)) -> Vec<LogRecord> {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", crate::tansu::bootstrap())
        .set("group.id", crate::unique_name("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = rdkafka::TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .expect("partition 0");
    consumer.assign(&assignment).expect("assign");
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("no sentinel on {topic} within 30 s; read {records:#?}"))
            .expect("kafka read");
        let record = roomcast_local::kafka_source::to_record(&message);
        let done = stop(&record);
        records.push(record);
        if done {
            return records;
        }
    }
}

/// Runs each named test once per backend: for every `module => setup`, a module of
/// `#[tokio::test]`s in which each `name` is called with `setup` (an expression evaluated in
/// the test, `.await` allowed, with the caller's items in scope).
///
/// ```ignore
/// each_backend!(memory => Backends::memory().await, real => Backends::real().await;
///               [sends_are_acked, leaving_is_announced]);
/// ```
#[macro_export]
macro_rules! each_backend {
    ($($module:ident => $setup:expr),+ ; $names:tt) => {
        $( $crate::each_backend!(@module $module => $setup; $names); )+
    };
    (@module $module:ident => $setup:expr; [$($name:ident),* $(,)?]) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::init_tracing();
                    super::$name($setup).await
                }
            )*
        }
    };
}
