//! Lambda's Kafka event source mapping, emulated: batches of up to `batch_size` records
//! gathered for at most `window`, handed to kafka-fanout as a `KafkaEvent`, offsets
//! committed only after the function succeeded, a failed batch retried with backoff.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::events::kafka_event;
use crate::functions::Functions;
use crate::source::RecordSource;

#[derive(Debug, Clone)]
pub struct Batching {
    /// AWS's default for Kafka event sources: 100 records.
    pub batch_size: usize,
    /// AWS's default for Kafka event sources: 500 ms.
    pub window: Duration,
    /// What the event says in `bootstrapServers`.
    pub bootstrap_servers: String,
}

/// How often an idle loop looks at the stop signal.
const IDLE_POLL: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub async fn run(
    mut source: Box<dyn RecordSource>,
    functions: Arc<Functions>,
    batching: Batching,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures = 0u32;
    while !*stop.borrow() {
        let batch = match source.next_batch(batching.batch_size, batching.window, IDLE_POLL).await {
            Ok(batch) => batch,
            Err(error) => {
                failures += 1;
                tracing::warn!(error = %error, "reading records failed; retrying");
                if pause(backoff(failures), &mut stop).await {
                    return;
                }
                continue;
            }
        };
        failures = 0;
        if batch.is_empty() {
            continue;
        }
        let event = kafka_event(&batch, &batching.bootstrap_servers);
        let mut attempt = 0u32;
        loop {
            match functions.fan_out(&event).await {
                Ok(_) => break,
                Err(error) => {
                    attempt += 1;
                    tracing::warn!(error = %error, records = batch.len(), attempt, "kafka-fanout failed; retrying the batch");
                    if pause(backoff(attempt), &mut stop).await {
                        return;
                    }
                }
            }
        }
        if let Err(error) = source.commit(&batch).await {
            // The batch was delivered; at worst it is delivered again after a restart.
            tracing::warn!(error = %error, "committing offsets failed");
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100)
        .saturating_mul(1 << attempt.min(9))
        .min(MAX_BACKOFF)
}

/// Sleeps, unless told to stop first (then returns true).
async fn pause(duration: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => false,
        _ = stop.wait_for(|stopped| *stopped) => true,
    }
}
