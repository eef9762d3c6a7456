//! The Kafka [`Publisher`]: appends envelopes to the roomcast topic with librdkafka and
//! answers only once the broker has acknowledged them, plus topic creation for set-up.

use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use roomcast_core::envelope::Envelope;
use roomcast_core::ports::{PublishError, Publisher};

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

/// Publishes envelopes to one topic. Build it once per cold start: it holds the broker
/// connections and librdkafka's threads.
pub struct KafkaPublisher {
    producer: FutureProducer,
    topic: String,
    delivery_timeout: Duration,
}

impl std::fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaPublisher")
            .field("topic", &self.topic)
            .field("delivery_timeout", &self.delivery_timeout)
            .finish_non_exhaustive()
    }
}

impl KafkaPublisher {
    /// Creates the producer. It connects lazily, so this succeeds even while the brokers
    /// are unreachable; the first `publish` then times out.
    pub fn new(settings: &KafkaSettings) -> Result<Self, KafkaError> {
        // librdkafka reads 0 as "forever", which would leave only the tokio bound below.
        let delivery_ms = settings.delivery_timeout.as_millis().clamp(10, i32::MAX as u128);
        // A request that outlives the delivery timeout is wasted; librdkafka caps it at 900 s.
        let request_ms = delivery_ms.min(900_000);
        // A broker behind a dropping firewall (an MSK cluster in a VPC the function cannot
        // reach) would otherwise hold each connection attempt for the default 30 s.
        let connect_ms = delivery_ms.clamp(1_000, 10_000);
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &settings.bootstrap_servers)
            .set("client.id", "roomcast")
            // No duplicates or reordering within a partition when librdkafka retries after
            // a lost acknowledgement: one room's messages stay in order, each once.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", delivery_ms.to_string())
            .set("request.timeout.ms", request_ms.to_string())
            .set("socket.connection.setup.timeout.ms", connect_ms.to_string())
            .set("socket.timeout.ms", request_ms.clamp(10, 300_000).to_string())
            // A Lambda awaits each record's delivery report before it answers, so there is
            // never a second record of its own to batch with: waiting for one (librdkafka's
            // default is 5 ms) would only add latency to every message. 1 ms still lets
            // concurrent publishers in one process (the local gateway) share a request.
            .set("linger.ms", "1")
            // The Java client's partitioner: another service producing with a Java client
            // puts the same room on the same partition, so the room's order holds across
            // producers. librdkafka's default (CRC32) would pick a different partition.
            .set("partitioner", "murmur2_random")
            .create()
            .map_err(KafkaError::Client)?;
        Ok(Self {
            producer,
            topic: settings.topic.clone(),
            delivery_timeout: settings.delivery_timeout,
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }
}

#[async_trait]
impl Publisher for KafkaPublisher {
    async fn publish(&self, envelope: &Envelope) -> Result<(), PublishError> {
        let key = envelope.target.record_key();
        let value = envelope.to_json();
        let record = FutureRecord::to(&self.topic).key(&key).payload(&value);
        // If the report never comes, the record stays queued in librdkafka and may still
        // be delivered after the sender was told `unavailable`; receivers de-duplicate by
        // envelope id.
        let delivery = tokio::time::timeout(
            self.delivery_timeout + DELIVERY_MARGIN,
            self.producer.send(record, Timeout::After(self.delivery_timeout)),
        )
        .await;
        match delivery {
            Ok(Ok(delivery)) => {
                tracing::debug!(
                    topic = %self.topic, key = %key, id = %envelope.id,
                    partition = delivery.partition, offset = delivery.offset,
                    "envelope published"
                );
                Ok(())
            }
            Ok(Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut), _))) => {
                tracing::warn!(
                    topic = %self.topic, key = %key, id = %envelope.id,
                    timeout = ?self.delivery_timeout,
                    "Kafka did not acknowledge the envelope in time"
                );
                Err(PublishError::Timeout)
            }
            Ok(Err((error, _))) => {
                tracing::warn!(
                    topic = %self.topic, key = %key, id = %envelope.id, error = %error,
                    "Kafka refused the envelope"
                );
                Err(PublishError::Refused(Box::new(error)))
            }
            Err(_elapsed) => {
                tracing::warn!(
                    topic = %self.topic, key = %key, id = %envelope.id,
                    timeout = ?self.delivery_timeout,
                    "no delivery report from librdkafka in time"
                );
                Err(PublishError::Timeout)
            }
        }
    }
}

/// Creates the topic if it does not exist. An existing topic is left as it is, whatever its
/// partition count, because repartitioning would move rooms between partitions.
pub async fn ensure_topic(
    bootstrap_servers: &str,
    topic: &str,
    partitions: i32,
    replication: i32,
    timeout: Duration,
) -> Result<(), KafkaError> {
    let timeout_ms = timeout.as_millis().clamp(1, i32::MAX as u128);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("client.id", "roomcast-admin")
        .set(
            "socket.connection.setup.timeout.ms",
            timeout_ms.clamp(1_000, 10_000).to_string(),
        )
        .create()
        .map_err(KafkaError::Client)?;
    let options = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    // The admin request has its own timeout, but it only starts once a broker is
    // connected: the outer bound covers brokers that never answer at all.
    let results = tokio::time::timeout(timeout + DELIVERY_MARGIN, admin.create_topics([&new_topic], &options))
        .await
        .map_err(|_| KafkaError::CreateTopicTimeout {
            topic: topic.to_owned(),
            timeout,
        })?
        .map_err(|source| KafkaError::CreateTopic {
            topic: topic.to_owned(),
            source,
        })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(KafkaError::TopicRefused {
                    topic: name,
                    source: code,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use roomcast_core::envelope::Target;
    use roomcast_core::protocol::ServerFrame;

    use super::*;

    fn settings(delivery_timeout: Duration) -> KafkaSettings {
        // Port 9 (discard) on the loopback: nothing listens, so nothing is ever delivered.
        KafkaSettings {
            bootstrap_servers: "127.0.0.1:9".to_owned(),
            topic: DEFAULT_TOPIC.to_owned(),
            delivery_timeout,
        }
    }

    #[test]
    fn long_delivery_timeouts_make_a_valid_producer() {
        for delivery_timeout in [Duration::from_secs(5), Duration::from_secs(86_400)] {
            if let Err(error) = KafkaPublisher::new(&settings(delivery_timeout)) {
                panic!("delivery timeout {delivery_timeout:?}: {error:?}");
            }
        }
    }

    /// librdkafka reads a message timeout of 0 as "forever": tiny timeouts must still end
    /// in a plain `Timeout`, not a hang or a configuration error.
    #[tokio::test]
    async fn tiny_delivery_timeouts_still_time_out() {
        let envelope = Envelope::new("m1", Target::All, None, &ServerFrame::Pong);
        for delivery_timeout in [Duration::ZERO, Duration::from_millis(1)] {
            let publisher = KafkaPublisher::new(&settings(delivery_timeout)).expect("valid config");
            let outcome = tokio::time::timeout(Duration::from_secs(10), publisher.publish(&envelope))
                .await
                .unwrap_or_else(|_| panic!("delivery timeout {delivery_timeout:?}: publish hung"));
            assert!(
                matches!(outcome, Err(PublishError::Timeout)),
                "delivery timeout {delivery_timeout:?}: {outcome:?}"
            );
        }
    }
}
