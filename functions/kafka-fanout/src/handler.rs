//! The Kafka-triggered function: decodes a `KafkaEvent` batch and fans each envelope out
//! to its connections (see [`roomcast_core::fan_out`] for the rules). It fails the batch
//! only when it could not look up an audience, before anything was posted, so the
//! redelivery Lambda makes on failure cannot duplicate frames.

use aws_lambda_events::kafka::KafkaEvent;
#[cfg(feature = "lambda")]
use lambda_runtime::Diagnostic;
#[cfg(feature = "lambda")]
use roomcast_aws::event_source::batch_failed;
use roomcast_aws::event_source::records;
use roomcast_core::fan_out::{fan_out, FanOutConfig, FanOutError, FanOutReport};
use roomcast_core::{Notifier, Publisher, Store};

/// The batch must be retried: nothing of it was delivered.
#[derive(Debug, thiserror::Error)]
#[error("batch not delivered, to be retried")]
pub struct BatchFailed(#[from] pub FanOutError);

/// What the Lambda runtime reports (needs the `lambda` feature).
#[cfg(feature = "lambda")]
impl From<BatchFailed> for Diagnostic {
    fn from(error: BatchFailed) -> Self {
        batch_failed("BatchFailed", &error)
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
