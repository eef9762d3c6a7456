//! Rate limits as token buckets, and the names of the buckets a caller draws from. A bucket
//! is kept as one number, the time at which it is full again (the "theoretical arrival
//! time" of GCRA), so that the DynamoDB adapter can take a token with one conditional
//! write and every Lambda instance sees the same bucket.

use std::time::Duration;

use crate::model::{Caller, UserId};

/// A token bucket: up to `burst` tokens, one more every `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub burst: u32,
    pub every: Duration,
}

impl Bucket {
    /// `burst` tokens, refilled at `per_second`: `None` (no limit) when either is 0.
    pub fn per_second(per_second: f64, burst: u32) -> Option<Bucket> {
        if per_second <= 0.0 || !per_second.is_finite() || burst == 0 {
            return None;
        }
        Some(Bucket {
            burst,
            every: Duration::from_secs_f64(1.0 / per_second),
        })
    }

    fn every_ms(&self) -> i64 {
        i64::try_from(self.every.as_millis()).unwrap_or(i64::MAX).max(1)
    }

    /// Taking a token at `now_ms` from a bucket full again at `full_at` (none: full): the
    /// bucket's new `full_at`, or `None` when it holds no token.
    pub fn take(&self, full_at: Option<i64>, now_ms: i64) -> Option<i64> {
        let every = self.every_ms();
        let full_at = full_at.unwrap_or(now_ms).max(now_ms);
        // A bucket full again within `burst - 1` refills still holds a token.
        let spare = every.saturating_mul(i64::from(self.burst) - 1);
        (full_at - now_ms <= spare).then(|| full_at.saturating_add(every))
    }

    /// Whether a bucket full again at `full_at` is full at `now_ms`: taking from it needs no
    /// knowledge of its state.
    pub fn is_full(full_at: Option<i64>, now_ms: i64) -> bool {
        full_at.is_none_or(|full_at| full_at <= now_ms)
    }

    /// How long after `full_at` the bucket's record can be forgotten: it is full by then.
    pub fn forget_after(&self, full_at: i64) -> i64 {
        full_at.saturating_add(self.every_ms())
    }
}

/// What a bucket limits, for whom: the key the store keeps it under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketKey(String);

impl BucketKey {
    /// `kind`'s bucket of whoever the caller is: the user when signed in (all its
    /// connections and HTTP requests share it, so opening more connections buys no more),
    /// else the connection (an anonymous user lives as long as its one connection).
    fn of_caller(kind: &str, caller: &Caller) -> Self {
        match (&caller.connection, caller.expires_at) {
            (Some(connection), Some(_)) => Self(format!("{kind}:connection:{connection}")),
            _ => Self(format!("{kind}:user:{}", caller.user.user_id)),
        }
    }

    /// The messages the caller writes: `send`, `dm`, `edit` and `delete`, and the files it
    /// `upload`s for them.
    pub fn messages(caller: &Caller) -> Self {
        Self::of_caller("messages", caller)
    }

    /// The reads the caller makes: `history`, `who`, `rooms` and `whoami`.
    pub fn reads(caller: &Caller) -> Self {
        Self::of_caller("reads", caller)
    }

    /// The caller's changes of membership, `join` and `leave`: each is announced to a room.
    pub fn memberships(caller: &Caller) -> Self {
        Self::of_caller("memberships", caller)
    }

    /// The rooms a user creates; an anonymous caller's count against its source IP
    /// address, since a new connection is a new anonymous user.
    pub fn room_creations(caller: &Caller) -> Self {
        match (&caller.source_ip, caller.expires_at) {
            (Some(ip), Some(_)) => Self(format!("rooms:ip:{ip}")),
            _ => Self(format!("rooms:user:{}", caller.user.user_id)),
        }
    }

    /// The connections a signed-in user opens: each one that comes online is announced
    /// to every room of the user.
    pub fn arrivals(user: &UserId) -> Self {
        Self(format!("arrivals:user:{user}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BucketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_one_token_per_interval() {
        let bucket = Bucket::per_second(10.0, 3).unwrap();
        let mut full_at = None;
        for _ in 0..3 {
            full_at = Some(bucket.take(full_at, 1_000).expect("a token of the burst"));
        }
        assert_eq!(full_at, Some(1_300));
        assert_eq!(bucket.take(full_at, 1_000), None, "the burst is spent");
        assert_eq!(bucket.take(full_at, 1_099), None, "no token refilled yet");
        assert_eq!(bucket.take(full_at, 1_100), Some(1_400), "one token after 100 ms");
        assert!(Bucket::is_full(Some(1_300), 1_300));
        assert!(!Bucket::is_full(Some(1_300), 1_299));
        assert_eq!(bucket.take(Some(500), 1_000), Some(1_100), "full long ago: full");
    }

    #[test]
    fn zero_means_no_limit() {
        assert_eq!(Bucket::per_second(0.0, 10), None);
        assert_eq!(Bucket::per_second(5.0, 0), None);
        assert_eq!(Bucket::per_second(f64::NAN, 10), None);
    }
}
