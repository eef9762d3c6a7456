//! The one backoff of the project: how long to wait before attempt `n` of anything that is
//! tried again (a post, a store transaction, a Kafka batch). Every retry loop takes its
//! waits from here, so they all double the same way and stay bounded.

use std::time::Duration;

/// The wait before attempt `attempt` (2, 3, ...; 1 and 0 give `first` too): `first`,
/// doubling with each attempt, at most `max`.
pub fn doubling(first: Duration, max: Duration, attempt: u32) -> Duration {
    first.saturating_mul(1 << attempt.saturating_sub(2).min(20)).min(max)
}

/// Exponential backoff from `base`, doubling per attempt up to 32 times the base, with
/// jitter (a random half of the wait is taken off) so that many waiters spread out: for
/// retries many callers make at once (fan-out's posts).
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    doubling(base, base.saturating_mul(32), attempt.saturating_add(1)).mul_f64(0.5 + fastrand::f64() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_32_times_the_base_with_jitter() {
        let base = Duration::from_millis(10);
        for (attempt, ceiling) in [(1, 10), (2, 20), (3, 40), (6, 320), (60, 320)] {
            let wait = backoff(base, attempt);
            let ceiling = Duration::from_millis(ceiling);
            assert!(wait <= ceiling && wait >= ceiling / 2, "attempt {attempt}: {wait:?}");
        }
    }

    #[test]
    fn doubling_starts_at_the_first_wait_and_stops_at_the_bound() {
        let (first, max) = (Duration::from_millis(20), Duration::from_secs(1));
        let waits: Vec<u128> = (1..=8)
            .map(|attempt| doubling(first, max, attempt).as_millis())
            .collect();
        assert_eq!(waits, [20, 20, 40, 80, 160, 320, 640, 1000]);
        assert_eq!(doubling(first, max, u32::MAX), max);
    }
}
