//! The Kafka broker for tests: a tansu broker with in-memory storage, started once per test
//! process, or the broker named by `ROOMCAST_TEST_KAFKA_BOOTSTRAP`. Also the helpers that
//! create a fresh topic per test and read records back as core's [`LogRecord`], so a test
//! can hold Kafka and the in-process log to the same expectations.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use roomcast_aws::kafka::{ensure_topic, KafkaPublisher, KafkaSettings};
use roomcast_core::memory::LogRecord;

const INSTALL_HINT: &str = "Install tansu with `cargo install tansu --locked --features dynostore` \
     (about 11 minutes), or set ROOMCAST_TEST_KAFKA_BOOTSTRAP to a broker you run yourself.";

/// Generous, because the first request of a run may wait for tansu to start up and a
/// shared CI machine can be slow; a healthy broker answers in milliseconds.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);

/// `host:port` of the broker the tests use.
pub fn bootstrap() -> &'static str {
    static BOOTSTRAP: OnceLock<String> = OnceLock::new();
    BOOTSTRAP.get_or_init(|| {
        if let Ok(bootstrap) = std::env::var("ROOMCAST_TEST_KAFKA_BOOTSTRAP") {
            if !bootstrap.trim().is_empty() {
                return bootstrap;
            }
        }
        let port = crate::process::free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let args = [
            "broker",
            "--listener-url",
            &url,
            // Clients connect to what the broker advertises: the default (localhost:9092)
            // would send them to a port nobody listens on.
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
        ]
        .map(str::to_owned);
        crate::process::spawn_server(&tansu_program(), &args, port, INSTALL_HINT);
        format!("127.0.0.1:{port}")
    })
}

/// A broker of its own behind a [`FaultProxy`](crate::fault_proxy::FaultProxy), for tests
/// that take the broker away and bring it back with its records: the broker advertises the
/// proxy's address, so every client connection goes through the proxy. Returns the proxy
/// and the bootstrap address (the proxy's).
pub async fn behind_proxy() -> (crate::fault_proxy::FaultProxy, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let advertised = listener.local_addr().expect("a bound listener");
    let port = crate::process::free_port();
    let args = [
        "broker".to_owned(),
        "--listener-url".to_owned(),
        format!("tcp://127.0.0.1:{port}"),
        "--advertised-listener-url".to_owned(),
        format!("tcp://{advertised}"),
        "--storage-engine".to_owned(),
        "memory://tansu/".to_owned(),
    ];
    let program = tansu_program();
    tokio::task::spawn_blocking(move || crate::process::spawn_server(&program, &args, port, INSTALL_HINT))
        .await
        .expect("tansu starts");
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let proxy = crate::fault_proxy::FaultProxy::on(listener, upstream);
    (proxy, advertised.to_string())
}

/// `tansu` from PATH, or from ~/.cargo/bin when that is not on PATH (a fresh install).
fn tansu_program() -> String {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join("tansu").is_file()))
        .unwrap_or(false);
    let in_cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .map(|home| home.join("bin").join("tansu"))
        .filter(|program| program.is_file());
    match (on_path, in_cargo_home) {
        (false, Some(program)) => program.to_string_lossy().into_owned(),
        _ => "tansu".to_owned(),
    }
}

/// A topic no other test uses, with `partitions` partitions.
pub async fn fresh_topic(partitions: i32) -> String {
    let topic = crate::unique_name("roomcast");
    ensure_topic(bootstrap(), &topic, partitions, 1, ADMIN_TIMEOUT)
        .await
        .unwrap_or_else(|error| panic!("cannot create topic {topic} on {}: {error:?}", bootstrap()));
    topic
}

/// A publisher to `topic` on the test broker.
pub fn publisher(topic: &str) -> KafkaPublisher {
    KafkaPublisher::new(&KafkaSettings {
        bootstrap_servers: bootstrap().to_owned(),
        topic: topic.to_owned(),
        delivery_timeout: DELIVERY_TIMEOUT,
        security: Default::default(),
    })
    .expect("cannot create a Kafka producer")
}

/// The first `count` records of `topic`, read by a new consumer group from the earliest
/// offset, in the order they arrive (offset order within each partition). Fails the test
/// if fewer than `count` arrive within `timeout`.
pub async fn read_back(topic: &str, count: usize, timeout: Duration) -> Vec<LogRecord> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", crate::unique_name("roomcast-test-reader"))
        .set("auto.offset.reset", "earliest")
        // A one-off reader: nothing to resume, so nothing to commit.
        .set("enable.auto.commit", "false")
        .create()
        .expect("cannot create a Kafka consumer");
    consumer.subscribe(&[topic]).expect("cannot subscribe to the topic");
    let deadline = tokio::time::Instant::now() + timeout;
    let mut records = Vec::with_capacity(count);
    while records.len() < count {
        let message = match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(message)) => message,
            Ok(Err(error)) => panic!(
                "reading topic {topic} failed after {} records: {error:?}",
                records.len()
            ),
            Err(_) => panic!(
                "read only {} of {count} records from topic {topic} on {} within {timeout:?}",
                records.len(),
                bootstrap()
            ),
        };
        records.push(roomcast_local::kafka_source::to_record(&message));
    }
    records
}
