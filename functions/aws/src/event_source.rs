//! What the Kafka-triggered functions share: the records of a Lambda `KafkaEvent`, and
//! the error that fails a batch so that the event source mapping delivers it again.

use aws_lambda_events::kafka::KafkaEvent;
use base64::Engine as _;
#[cfg(feature = "lambda")]
use lambda_runtime::Diagnostic;
use roomcast_core::record::Record;

/// The batch's records with their values decoded from base64. A value that is not base64
/// becomes an empty record, which fan-out and the archive count as skipped.
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

/// The Lambda error of a failed batch: `error_type`, and the message of `error` followed by
/// those of its sources, since the runtime reports only this one string. Needs the
/// `lambda` feature (the Lambda runtime).
#[cfg(feature = "lambda")]
pub fn batch_failed(error_type: &str, error: &dyn std::error::Error) -> Diagnostic {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    Diagnostic {
        error_type: error_type.to_owned(),
        error_message: message,
    }
}
