//! Topic creation for set-up: the local gateway and the tests make the topic they use.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;

use super::{KafkaError, DELIVERY_MARGIN};

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
