//! The Kafka-triggered function: decodes a `KafkaEvent` batch and fans each envelope out
//! to its connections (see [`roomcast_core::fan_out`] for the rules). It fails the batch
//! only when it could not look up an audience, before anything was posted, so the
//! redelivery Lambda makes on failure cannot duplicate frames.

use aws_lambda_events::kafka::KafkaEvent;
use base64::Engine as _;
use lambda_runtime::Diagnostic;
use roomcast_core::fan_out::{fan_out, FanOutConfig, FanOutError, FanOutReport, Record};
use roomcast_core::{Notifier, Publisher, Store};

/// The batch must be retried: nothing of it was delivered.
#[derive(Debug, thiserror::Error)]
#[error("batch not delivered, to be retried: {0}")]
pub struct BatchFailed(#[from] pub FanOutError);

impl From<BatchFailed> for Diagnostic {
    fn from(error: BatchFailed) -> Self {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error.0);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Diagnostic {
            error_type: "BatchFailed".to_owned(),
            error_message: message,
        }
    }
}

pub async fn handle<S, P, N>(
    store: &S,
    publisher: &P,
    notifier: &N,
    config: &FanOutConfig,
    event: &KafkaEvent,
) -> Result<FanOutReport, BatchFailed>
where
    S: Store + ?Sized,
    P: Publisher + ?Sized,
    N: Notifier + ?Sized,
{
    Ok(fan_out(store, publisher, notifier, config, records(event)).await?)
}

/// The batch's records with their values decoded from base64. A value that is not base64
/// becomes an empty record, which fan-out counts as skipped.
pub fn records(event: &KafkaEvent) -> Vec<Record> {
    let base64 = base64::engine::general_purpose::STANDARD;
    event
        .records
        .values()
        .flatten()
        .map(|record| {
            let value = record.value.as_deref().unwrap_or_default();
            let value = base64.decode(value).unwrap_or_else(|error| {
                tracing::warn!(%error, partition = record.partition, offset = record.offset, "record value is not base64");
                Vec::new()
            });
            Record {
                topic: record.topic.clone().unwrap_or_default(),
                partition: record.partition as i32,
                offset: record.offset,
                value,
            }
        })
        .collect()
}
