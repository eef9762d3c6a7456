//! The one retry loop of the adapter: a bounded number of attempts with the project's
//! backoff (`roomcast_core::backoff`), for what the SDK does not retry itself (transactions cancelled by contention, a nickname
//! claim that keeps changing under us).

use std::time::Duration;

/// A bounded retry loop ran out of attempts.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: gave up after {attempts} attempts ({reason})")]
pub struct GaveUp {
    pub operation: &'static str,
    pub attempts: u32,
    pub reason: &'static str,
}

/// Attempts of one operation: `retry` sleeps before the next one (20 ms, then doubling, at
/// most 1 s) or says that the attempts are spent.
#[derive(Debug)]
pub struct Backoff {
    operation: &'static str,
    attempts: u32,
    attempt: u32,
}

const FIRST_DELAY: Duration = Duration::from_millis(20);
const MAX_DELAY: Duration = Duration::from_secs(1);

impl Backoff {
    pub fn new(operation: &'static str, attempts: u32) -> Self {
        Self {
            operation,
            attempts,
            attempt: 1,
        }
    }

    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Waits before another attempt; `false` (at once) when none is left.
    pub async fn retry(&mut self) -> bool {
        if self.attempt >= self.attempts {
            return false;
        }
        self.attempt += 1;
        tokio::time::sleep(roomcast_core::backoff::doubling(FIRST_DELAY, MAX_DELAY, self.attempt)).await;
        true
    }

    /// The error for a loop that ran out of attempts without an error of its own.
    pub fn gave_up(&self, reason: &'static str) -> GaveUp {
        GaveUp {
            operation: self.operation,
            attempts: self.attempt,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn attempts_are_bounded() {
        let mut backoff = Backoff::new("op", 3);
        assert!(backoff.retry().await);
        assert!(backoff.retry().await);
        assert!(!backoff.retry().await, "three attempts, two retries");
        assert_eq!(backoff.attempt(), 3);
        let error = backoff.gave_up("busy");
        assert_eq!(error.attempts, 3);
        assert_eq!(error.to_string(), "op: gave up after 3 attempts (busy)");
    }
}
