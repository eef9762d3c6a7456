//! The archive function, on its own consumer group of the topic: decodes a `KafkaEvent`
//! batch and keeps its messages, edits and deletes in the history (see
//! [`roomcast_core::archive`] for the rules). A record it cannot use is skipped; a failed
//! write fails the batch, which is then delivered again, harmlessly: every write is
//! idempotent.

use aws_lambda_events::kafka::KafkaEvent;
use lambda_runtime::Diagnostic;
use roomcast_aws::event_source::{batch_failed, records};
use roomcast_core::archive::{archive, ArchiveConfig, ArchiveError, ArchiveReport};
use roomcast_core::History;

/// The batch must be retried: a write to the history failed.
#[derive(Debug, thiserror::Error)]
#[error("batch not archived, to be retried")]
pub struct BatchFailed(#[from] pub ArchiveError);

impl From<BatchFailed> for Diagnostic {
    fn from(error: BatchFailed) -> Self {
        batch_failed("BatchFailed", &error)
    }
}

pub async fn handle<H: History + ?Sized>(
    history: &H,
    config: &ArchiveConfig,
    event: &KafkaEvent,
) -> Result<ArchiveReport, BatchFailed> {
    Ok(archive(history, config, records(event)).await?)
}
