//! The gateway's flags, each also readable from an environment variable (`--help` lists
//! them). The protocol's own limits and sign-in come from the same variables the Lambda
//! functions read (`ROOMCAST_MAX_TEXT_BYTES`, `ROOMCAST_AUTH`, ...; see docs/configuration.md).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "roomcast-local",
    version,
    about = "roomcast's local gateway: API Gateway's WebSocket API, @connections and the Kafka trigger, emulated around the Lambda handlers",
    long_about = None
)]
pub struct Settings {
    /// Address for WebSocket clients and the @connections API. Anything but loopback lets
    /// other machines in: the gateway then warns, and signs no dev tokens unless
    /// --dev-tokens-beyond-loopback says so.
    #[arg(long, env = "ROOMCAST_LISTEN", default_value = "127.0.0.1:3001")]
    pub listen: SocketAddr,

    /// A host name the gateway answers for besides localhost and IP addresses (the `Host`
    /// header of every request is checked, against DNS rebinding); repeat or comma-separate
    /// for several.
    #[arg(long = "allowed-host", env = "ROOMCAST_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// Sign dev tokens (`POST /api/dev/token`, any nickname, any role) even though the
    /// listen address is not loopback: anyone who reaches the gateway can then be admin.
    #[arg(long, env = "ROOMCAST_DEV_TOKENS_BEYOND_LOOPBACK")]
    pub dev_tokens_beyond_loopback: bool,

    /// API Gateway stage name (events' requestContext.stage; @connections also under /{stage}).
    #[arg(long, env = "ROOMCAST_STAGE", default_value = "local")]
    pub stage: String,

    /// DynamoDB endpoint (LocalStack, DynamoDB Local, moto). Without it: the embedded in-memory store.
    #[arg(long, env = "ROOMCAST_DYNAMODB_ENDPOINT")]
    pub dynamodb_endpoint: Option<String>,

    /// DynamoDB table, created at start when missing.
    #[arg(long, env = "ROOMCAST_TABLE", default_value = "roomcast")]
    pub table: String,

    /// An S3 API for attachments (moto, MinIO, LocalStack), addressed path-style. Without
    /// it: the embedded file store, a directory the gateway serves itself under `/files`.
    #[arg(long, env = "ROOMCAST_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// The bucket of attachments at --s3-endpoint, created at start when missing.
    #[arg(long, env = "ROOMCAST_FILES_BUCKET", default_value = "roomcast-files")]
    pub s3_bucket: String,

    /// The embedded file store's directory. Without it: a new directory under the system's
    /// temporary directory (the files go with the process, as the embedded store's
    /// messages do).
    #[arg(long, env = "ROOMCAST_FILES_DIR")]
    pub files_dir: Option<std::path::PathBuf>,

    /// Kafka bootstrap servers. Without them: the embedded in-process log.
    #[arg(long, env = "ROOMCAST_KAFKA_BOOTSTRAP")]
    pub kafka_bootstrap: Option<String>,

    /// Kafka topic, created at start when missing.
    #[arg(long, env = "ROOMCAST_TOPIC", default_value = roomcast_aws::kafka::DEFAULT_TOPIC)]
    pub topic: String,

    /// Partitions of the topic when it has to be created (and of the embedded log).
    #[arg(long, env = "ROOMCAST_PARTITIONS", default_value_t = roomcast_aws::kafka::DEFAULT_PARTITIONS)]
    pub partitions: i32,

    /// Consumer group of the emulated event source mapping of kafka-fanout.
    #[arg(long, env = "ROOMCAST_CONSUMER_GROUP", default_value = "roomcast-fanout")]
    pub consumer_group: String,

    /// Consumer group of the emulated event source mapping of kafka-archive (the message
    /// history): a group of its own, so that each function reads every record.
    #[arg(long, env = "ROOMCAST_ARCHIVE_CONSUMER_GROUP", default_value = "roomcast-archive")]
    pub archive_consumer_group: String,

    /// Days a message is kept in the history (as kafka-archive's ROOMCAST_HISTORY_DAYS).
    #[arg(long, env = "ROOMCAST_HISTORY_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub history_days: u64,

    /// Most records per kafka-fanout or kafka-archive invocation (AWS's default: 100).
    #[arg(long, env = "ROOMCAST_BATCH_SIZE", default_value_t = 100)]
    pub batch_size: usize,

    /// Longest time, in ms, a Kafka fetch may wait at the broker for records to arrive
    /// (`fetch.wait.max.ms`; Kafka's default is 500). Kafka answers a waiting fetch as soon
    /// as a record arrives, so a short wait only costs idle fetch requests; some brokers
    /// (tansu 0.6) hold every fetch for its whole wait, which then adds to every delivery.
    #[arg(long, env = "ROOMCAST_KAFKA_FETCH_WAIT_MS", default_value_t = 10)]
    pub kafka_fetch_wait_ms: u64,

    /// Longest wait to fill a batch, in ms (AWS's default: 500).
    #[arg(long, env = "ROOMCAST_BATCH_WINDOW_MS", default_value_t = 500)]
    pub batch_window_ms: u64,

    /// Largest WebSocket frame, in bytes (API Gateway: 32 KB).
    #[arg(long, env = "ROOMCAST_WS_FRAME_BYTES", default_value_t = 32 * 1024)]
    pub frame_bytes: usize,

    /// Largest WebSocket message; larger closes the connection with 1009 (API Gateway: 128 KB).
    #[arg(long, env = "ROOMCAST_WS_MESSAGE_BYTES", default_value_t = 128 * 1024)]
    pub message_bytes: usize,

    /// Seconds without a frame before the connection is closed (API Gateway: 10 minutes).
    #[arg(long, env = "ROOMCAST_IDLE_TIMEOUT_SECS", default_value_t = 600)]
    pub idle_timeout_secs: u64,

    /// Seconds a connection may live (API Gateway: 2 hours).
    #[arg(long, env = "ROOMCAST_MAX_CONNECTION_SECS", default_value_t = 7200)]
    pub max_connection_secs: u64,

    /// Milliseconds every `@connections` request waits before it is answered: the round
    /// trip a function in AWS sees to API Gateway's management API (some 10-30 ms), so that
    /// fan-out can be measured as in the cloud. 0: answer at once.
    #[arg(long, env = "ROOMCAST_CONNECTIONS_DELAY_MS", default_value_t = 0)]
    pub connections_delay_ms: u64,

    /// Check the SigV4 signature of every `@connections` request, as API Gateway does,
    /// against the gateway's own AWS credentials (those its kafka-fanout signs with: the
    /// environment's, else access key `local`, secret `local`), and answer a missing or
    /// wrong one 403. Off by default, so that any client may post locally unsigned.
    #[arg(long, env = "ROOMCAST_VERIFY_SIGNATURES")]
    pub verify_signatures: bool,

    /// How kafka-fanout posts to `@connections`: `signed`, its own SigV4-signing notifier,
    /// as the Lambda function does; `sdk`, the official SDK client it used before (the
    /// benchmarks' "before").
    #[arg(long, env = "ROOMCAST_CONNECTIONS_CLIENT", value_enum, default_value_t = ConnectionsClient::Signed)]
    pub connections_client: ConnectionsClient,

    /// Rooms to create at start when missing, comma-separated.
    #[arg(long, env = "ROOMCAST_ROOMS", value_delimiter = ',', default_value = "general")]
    pub rooms: Vec<String>,

    /// Sign-in: the same settings as the ws-authorizer Lambda (`ROOMCAST_AUTH`,
    /// `ROOMCAST_JWT_*`, `ROOMCAST_JWKS_URL`), which `main` reads from the environment with
    /// `ws_authorizer::Settings::from_lookup`. With `optional` or `required` the gateway runs
    /// the authorizer before `$connect`; by default (`none`) it does not.
    #[arg(skip = ws_authorizer::Settings::new(roomcast_core::config::AuthMode::None))]
    pub auth: ws_authorizer::Settings,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionsClient {
    Signed,
    Sdk,
}

/// API Gateway's WebSocket quotas, as configured.
#[derive(Debug, Clone)]
pub struct Quotas {
    pub frame_bytes: usize,
    pub message_bytes: usize,
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
}

impl Settings {
    /// How long a message is kept in the history.
    pub fn history_retention(&self) -> Duration {
        Duration::from_secs(self.history_days.saturating_mul(24 * 3600))
    }

    pub fn quotas(&self) -> Quotas {
        Quotas {
            frame_bytes: self.frame_bytes,
            message_bytes: self.message_bytes,
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            max_lifetime: Duration::from_secs(self.max_connection_secs),
        }
    }
}
