//! The [`KafkaPublisher`]: appends envelopes to the roomcast topic and answers only once
//! the broker has acknowledged them; a producer broken for good is replaced.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use roomcast_core::envelope::Envelope;
use roomcast_core::model::LogPosition;
use roomcast_core::ports::{PublishError, Publisher};
use roomcast_core::record::Record;

use super::reader::RecordReader;
use super::{KafkaContext, KafkaError, KafkaSecurity, KafkaSettings, DELIVERY_MARGIN};

/// Publishes envelopes to one topic. Build it once per cold start: it holds the broker
/// connections and librdkafka's threads.
pub struct KafkaPublisher {
    /// Replaced when it fails fatally (an idempotent producer fenced or out of sequence
    /// stays failed for good): the next `publish` uses a new one.
    producer: RwLock<Arc<FutureProducer<KafkaContext>>>,
    /// What the producer was made from, to make another.
    config: ClientConfig,
    security: KafkaSecurity,
    topic: String,
    delivery_timeout: Duration,
    /// Reads back single records (`record_at`).
    reader: RecordReader,
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
    /// Creates the producer with the settings' TLS and SASL sign-in. It connects lazily, so
    /// this succeeds even while the brokers are unreachable; the first `publish` then times
    /// out.
    pub fn new(settings: &KafkaSettings) -> Result<Self, KafkaError> {
        let security = &settings.security;
        // librdkafka reads 0 as "forever", which would leave only the tokio bound below.
        let delivery_ms = settings.delivery_timeout.as_millis().clamp(10, i32::MAX as u128);
        // A request that outlives the delivery timeout is wasted; librdkafka caps it at 900 s.
        let request_ms = delivery_ms.min(900_000);
        // A broker behind a dropping firewall (an MSK cluster in a VPC the function cannot
        // reach) would otherwise hold each connection attempt for the default 30 s.
        let connect_ms = delivery_ms.clamp(1_000, 10_000);
        let mut config = ClientConfig::new();
        security.apply(&mut config);
        config
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
            .set("partitioner", "murmur2_random");
        let producer = config
            .create_with_context(KafkaContext::new(security))
            .map_err(KafkaError::Client)?;
        Ok(Self {
            producer: RwLock::new(Arc::new(producer)),
            config,
            security: security.clone(),
            topic: settings.topic.clone(),
            delivery_timeout: settings.delivery_timeout,
            reader: RecordReader::new(settings),
        })
    }

    fn producer(&self) -> Arc<FutureProducer<KafkaContext>> {
        self.producer.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces `failed` with a new producer if it is broken for good: failed fatally, or
    /// refused with `refusal`, an error of the idempotent producer's identity that no retry
    /// of its own recovers from (seen after a broker outage: every later record was
    /// refused `ProducerFenced`). Of many publishes that saw it fail, one replaces it.
    fn replace_if_broken(&self, failed: &Arc<FutureProducer<KafkaContext>>, refusal: Option<RDKafkaErrorCode>) {
        let broken_identity = matches!(
            refusal,
            Some(
                RDKafkaErrorCode::ProducerFenced
                    | RDKafkaErrorCode::InvalidProducerEpoch
                    | RDKafkaErrorCode::InvalidProducerIdMapping
                    | RDKafkaErrorCode::UnknownProducerId
                    | RDKafkaErrorCode::OutOfOrderSequenceNumber
                    | RDKafkaErrorCode::Fatal
            )
        );
        let reason = match failed.client().fatal_error() {
            Some((code, reason)) => format!("{code:?}: {reason}"),
            None if broken_identity => format!("{refusal:?}"),
            None => return,
        };
        let mut current = self.producer.write().unwrap_or_else(PoisonError::into_inner);
        if !Arc::ptr_eq(&current, failed) {
            return;
        }
        match self.config.create_with_context(KafkaContext::new(&self.security)) {
            Ok(fresh) => {
                tracing::warn!(%reason, "the Kafka producer is broken for good; a new one takes its place");
                *current = Arc::new(fresh);
            }
            Err(error) => tracing::error!(
                error = &error as &dyn std::error::Error,
                "the Kafka producer is broken for good and a new one could not be made"
            ),
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }
}

#[async_trait]
impl Publisher for KafkaPublisher {
    async fn publish(&self, envelope: &Envelope) -> Result<LogPosition, PublishError> {
        let key = envelope.target.record_key();
        let value = envelope.to_json();
        let record = FutureRecord::to(&self.topic).key(&key).payload(&value);
        // If the report never comes, the record stays queued in librdkafka and may still be
        // delivered after the sender was told it may (`PublishError::Timeout`); receivers
        // de-duplicate by envelope id.
        let producer = self.producer();
        let delivery = tokio::time::timeout(
            self.delivery_timeout + DELIVERY_MARGIN,
            producer.send(record, Timeout::After(self.delivery_timeout)),
        )
        .await;
        match &delivery {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => self.replace_if_broken(&producer, error.rdkafka_error_code()),
            Err(_) => self.replace_if_broken(&producer, None),
        }
        match delivery {
            Ok(Ok(delivery)) => {
                tracing::debug!(
                    topic = %self.topic, key = %key, id = %envelope.id,
                    partition = delivery.partition, offset = delivery.offset,
                    "envelope published"
                );
                Ok(LogPosition {
                    partition: delivery.partition,
                    offset: delivery.offset,
                })
            }
            // Logged where the failure is answered (once, with its cause), not here too.
            Ok(Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut), _))) | Err(_) => {
                Err(PublishError::Timeout)
            }
            Ok(Err((error, _))) => Err(PublishError::Refused(Box::new(error))),
        }
    }

    async fn record_at(&self, position: LogPosition) -> Result<Option<Record>, PublishError> {
        self.reader.record_at(position).await
    }
}

#[cfg(test)]
mod tests {
    use roomcast_core::envelope::Target;
    use roomcast_core::protocol::ServerFrame;

    use super::*;
    use crate::kafka::{KafkaAuth, SaslMechanism, DEFAULT_TOPIC};

    fn settings(delivery_timeout: Duration) -> KafkaSettings {
        // Port 9 (discard) on the loopback: nothing listens, so nothing is ever delivered.
        KafkaSettings {
            bootstrap_servers: "127.0.0.1:9".to_owned(),
            topic: DEFAULT_TOPIC.to_owned(),
            delivery_timeout,
            security: KafkaSecurity::default(),
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

    /// Each security setting makes a producer: librdkafka was built with TLS, SCRAM and
    /// OAUTHBEARER, and takes the settings as given.
    #[test]
    fn every_security_setting_makes_a_valid_producer() {
        let password = |mechanism| KafkaAuth::Password {
            mechanism,
            username: "roomcast".into(),
            password: "secret".into(),
        };
        let cases = [
            KafkaSecurity::default(),
            KafkaSecurity {
                auth: KafkaAuth::None,
                tls: true,
            },
            KafkaSecurity {
                auth: password(SaslMechanism::ScramSha512),
                tls: true,
            },
            KafkaSecurity {
                auth: password(SaslMechanism::ScramSha256),
                tls: false,
            },
            KafkaSecurity {
                auth: password(SaslMechanism::Plain),
                tls: true,
            },
            KafkaSecurity {
                auth: KafkaAuth::MskIam {
                    region: "eu-west-1".into(),
                },
                tls: true,
            },
        ];
        for security in cases {
            let settings = KafkaSettings {
                security: security.clone(),
                ..settings(Duration::from_secs(5))
            };
            if let Err(error) = KafkaPublisher::new(&settings) {
                panic!("{security:?}: {error:?}");
            }
        }
    }
}
