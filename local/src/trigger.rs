//! Lambda's Kafka event source mapping, emulated: batches of up to `batch_size` records
//! gathered for at most `window`, handed to a function as a `KafkaEvent`, offsets
//! committed only after the function succeeded, a failed batch retried with backoff.
//!
//! The gateway runs one mapping per Kafka-triggered function — kafka-fanout and
//! kafka-archive — each on its own source (its own consumer group, or its own positions in
//! the embedded log) and its own task, so a batch one function keeps failing holds up
//! that function only.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::kafka::KafkaEvent;
use futures::FutureExt as _;
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

/// The Kafka-triggered function a mapping invokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KafkaFunction {
    /// Delivers each record to its audience through `@connections`.
    FanOut,
    /// Keeps messages, edits and deletes in the message history.
    Archive,
}

impl KafkaFunction {
    /// The function's name, as in the SAM template and in every log line of its mapping.
    pub fn name(self) -> &'static str {
        match self {
            KafkaFunction::FanOut => "kafka-fanout",
            KafkaFunction::Archive => "kafka-archive",
        }
    }

    /// One invocation with `event`. A panic fails the invocation, as the Lambda runtime
    /// reports a panicking handler as an error (and the batch is then retried), rather
    /// than ending the mapping.
    async fn invoke(self, functions: &Functions, event: &KafkaEvent) -> anyhow::Result<()> {
        match self {
            KafkaFunction::FanOut => {
                let invocation = AssertUnwindSafe(functions.fan_out(event)).catch_unwind();
                let report = invocation.await.map_err(panicked)??;
                tracing::debug!(function = self.name(), ?report, "batch delivered");
            }
            KafkaFunction::Archive => {
                let invocation = AssertUnwindSafe(functions.archive(event)).catch_unwind();
                let report = invocation.await.map_err(panicked)??;
                tracing::debug!(function = self.name(), ?report, "batch archived");
            }
        }
        Ok(())
    }
}

/// A panic of a function, as the error of its invocation.
fn panicked(panic: Box<dyn std::any::Any + Send>) -> anyhow::Error {
    let message = panic
        .downcast_ref::<&str>()
        .map(|message| (*message).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    anyhow::anyhow!("the function panicked: {message}")
}

/// How often an idle loop looks at the stop signal.
const IDLE_POLL: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One event source mapping: reads `source` and invokes `function` with each batch until
/// `stop` turns true. `ready` turns true once the source has its partitions (reading is
/// what makes a Kafka consumer join its group).
pub async fn run(
    function: KafkaFunction,
    mut source: Box<dyn RecordSource>,
    functions: Arc<Functions>,
    batching: Batching,
    stop: watch::Receiver<bool>,
    ready: watch::Sender<bool>,
) {
    map(function, &mut *source, functions, batching, stop, ready).await;
    // The last batch's commit may still be on its way: a successor resumes after it.
    if let Err(error) = source.settle().await {
        tracing::warn!(
            function = function.name(),
            error = format!("{error:#}"),
            "committing offsets failed"
        );
    }
    tracing::debug!(function = function.name(), "event source mapping stopped");
}

/// [`run`]'s loop, until `stop`.
async fn map(
    function: KafkaFunction,
    source: &mut dyn RecordSource,
    functions: Arc<Functions>,
    batching: Batching,
    mut stop: watch::Receiver<bool>,
    ready: watch::Sender<bool>,
) {
    let name = function.name();
    tracing::debug!(function = name, source = %source.describe(), "event source mapping started");
    let mut failures = 0u32;
    while !*stop.borrow() {
        if !*ready.borrow() && source.assigned() {
            tracing::debug!(function = name, "event source mapping assigned");
            ready.send_replace(true);
        }
        let batch = match source.next_batch(batching.batch_size, batching.window, IDLE_POLL).await {
            Ok(batch) => batch,
            Err(error) => {
                failures += 1;
                tracing::warn!(
                    function = name,
                    error = format!("{error:#}"),
                    "reading records failed; retrying"
                );
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
        let picked_up = roomcast_core::clock::now_ms();
        let handling = std::time::Instant::now();
        let event = kafka_event(&batch, &batching.bootstrap_servers);
        let mut attempt = 0u32;
        loop {
            match function.invoke(&functions, &event).await {
                Ok(()) => break,
                Err(error) => {
                    attempt += 1;
                    tracing::warn!(
                        function = name,
                        error = format!("{error:#}"),
                        records = batch.len(),
                        attempt,
                        "{name} failed; retrying the batch"
                    );
                    if pause(backoff(attempt), &mut stop).await {
                        return;
                    }
                }
            }
        }
        let handled = handling.elapsed();
        if let Err(error) = source.commit(&batch).await {
            // The batch was handled; at worst it is handled again after a restart.
            tracing::warn!(
                function = name,
                error = format!("{error:#}"),
                "committing offsets failed"
            );
        }
        stages(name, &batch, picked_up, handled, handling.elapsed() - handled);
    }
}

/// Where a batch's time went, for the soak's per-stage breakdown (`scripts/soak`, target
/// `roomcast_local::stages` at debug): how long its oldest and newest records waited
/// between their produce (the record's timestamp, taken by the producer) and the batch's
/// hand-out, how long the function took (retries included) and the wait for the commit
/// before its own (its own goes on beside the next batch).
fn stages(
    name: &str,
    batch: &[roomcast_core::memory::LogRecord],
    picked_up: i64,
    handled: Duration,
    committed: Duration,
) {
    // Off by default: no pass over the batch on every record's path unless asked for.
    if !tracing::enabled!(target: "roomcast_local::stages", tracing::Level::DEBUG) {
        return;
    }
    let (oldest, newest) = batch.iter().fold((i64::MAX, i64::MIN), |(oldest, newest), record| {
        (oldest.min(record.timestamp_ms), newest.max(record.timestamp_ms))
    });
    tracing::debug!(
        target: "roomcast_local::stages",
        function = name,
        records = batch.len(),
        waited_oldest_ms = picked_up.saturating_sub(oldest),
        waited_newest_ms = picked_up.saturating_sub(newest),
        handled_ms = handled.as_millis() as u64,
        committed_ms = committed.as_millis() as u64,
        "batch"
    );
}

/// The wait before retry `attempt` (1, 2, ...): 200 ms doubling, at most 30 s.
fn backoff(attempt: u32) -> Duration {
    roomcast_core::backoff::doubling(Duration::from_millis(200), MAX_BACKOFF, attempt.saturating_add(1))
}

/// Sleeps, unless told to stop first (then returns true).
async fn pause(duration: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => false,
        _ = stop.wait_for(|stopped| *stopped) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_bound() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(9), Duration::from_millis(51_200).min(MAX_BACKOFF));
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
