//! Kafka for the functions: the [`Publisher`](roomcast_core::ports::Publisher) that
//! appends envelopes to the roomcast topic with librdkafka and answers only once the
//! broker has acknowledged them ([`publisher`]) and reads back the record at a position
//! ([`reader`]), how it signs in ([`security`], with
//! Amazon MSK's IAM tokens in [`msk_iam`]), and topic creation for set-up ([`topic`]).

mod msk_iam;
mod publisher;
mod reader;
mod security;
mod topic;

use std::time::Duration;

pub use msk_iam::{msk_iam_token, KafkaContext};
pub use publisher::KafkaPublisher;
pub use reader::READ_BACK_GROUP;
pub use security::{KafkaAuth, KafkaSecurity, SaslMechanism};
pub use topic::ensure_topic;

use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};

/// The topic every envelope goes to unless configured otherwise.
pub const DEFAULT_TOPIC: &str = "roomcast-events";

/// Partitions of the default topic, as in the seed cluster.
pub const DEFAULT_PARTITIONS: i32 = 3;

/// librdkafka looks for expired messages about once a second, so its own timeout can
/// report up to a second late. The tokio bound sits just past that: it only has to catch
/// a delivery report that never comes, and librdkafka's own error says more when it wins.
const DELIVERY_MARGIN: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    pub topic: String,
    /// How long `publish` may take before the sender is told the log is unavailable.
    pub delivery_timeout: Duration,
    /// TLS and SASL: plaintext by default.
    pub security: KafkaSecurity,
}

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("cannot create the Kafka client")]
    Client(#[source] RdKafkaError),
    #[error("cannot create topic `{topic}`")]
    CreateTopic {
        topic: String,
        #[source]
        source: RdKafkaError,
    },
    #[error("the broker refused to create topic `{topic}`")]
    TopicRefused {
        topic: String,
        #[source]
        source: RDKafkaErrorCode,
    },
    #[error("creating topic `{topic}` took longer than {timeout:?}")]
    CreateTopicTimeout { topic: String, timeout: Duration },
}
