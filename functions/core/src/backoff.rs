//! The one backoff of the domain: how long to wait before attempt `n` of anything that
//! is tried again (a post, a lookup, a look at the history).

use std::time::Duration;

/// Exponential backoff from `base`, doubling per attempt up to 32 times the base, with
/// jitter (a random half of the wait is taken off) so that many waiters spread out.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let ceiling = base.saturating_mul(1 << attempt.saturating_sub(1).min(5));
    ceiling.mul_f64(0.5 + fastrand::f64() / 2.0)
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
}
