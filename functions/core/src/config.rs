//! Settings of the domain rules: input limits, the broadcast room, connection lifetime.

use std::time::Duration;

/// Input limits. Defaults follow the protocol documentation in the README.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest room name, in characters of `[A-Za-z0-9_.-]`.
    pub room_name_chars: usize,
    /// Longest nickname, in characters of `[A-Za-z0-9_.-]`.
    pub nick_chars: usize,
    /// Largest message text, in UTF-8 bytes.
    pub text_bytes: usize,
    /// Largest client frame we parse at all; API Gateway's own frame limit is 32 KB.
    pub frame_bytes: usize,
    /// Longest `clientMsgId`, which we echo back and so must bound.
    pub client_msg_id_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            room_name_chars: 64,
            nick_chars: 32,
            text_bytes: 4096,
            frame_bytes: 32 * 1024,
            client_msg_id_chars: 64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub limits: Limits,
    /// A message sent here reaches every connection that is in any room.
    pub broadcast_room: String,
    /// How long items tied to a connection live: a little past API Gateway's 2-hour
    /// connection limit, because `$disconnect` is best-effort.
    pub connection_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            broadcast_room: "admin".to_owned(),
            connection_ttl: Duration::from_secs(2 * 3600 + 15 * 60),
        }
    }
}
