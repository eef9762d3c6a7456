//! The wall clock, read the one way every part of roomcast stamps times: Unix time, UTC.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 on a clock set before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// Seconds since the Unix epoch, as DynamoDB's TTL attribute counts them.
pub fn now_secs() -> i64 {
    now_ms() / 1000
}
