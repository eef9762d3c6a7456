//! What a command runs against: the ports, the settings, and who is asking ([`Context`]);
//! what a WebSocket frame arrives with before its caller is known ([`Frame`]); and the
//! checks every command makes of its caller (tokens, membership, roles).

use crate::config::Config;
use crate::envelope::Stamp;
use crate::error::{ClientError, ErrorCode};
use crate::model::{Caller, ConnectionId, Member, RoomName};
use crate::ports::{Ports, StoreError};
use crate::quota::{Bucket, BucketKey};

/// The role that may delete anyone's message and, when users sign in, send to the
/// broadcast room.
pub const ADMIN_ROLE: &str = "admin";

/// What a command runs against: the ports, the settings, and who is asking.
pub struct Context<'a> {
    pub ports: &'a Ports,
    pub config: &'a Config,
    pub caller: &'a Caller,
    /// Milliseconds since the epoch: API Gateway's `requestTimeEpoch`.
    pub now_ms: i64,
}

impl Context<'_> {
    /// The caller's connection, which the frames it causes skip (it learns from its reply).
    pub(crate) fn except(&self) -> Option<ConnectionId> {
        self.caller.connection.clone()
    }

    /// The stamp of a chat record made now: its position will name it.
    pub(crate) fn stamp(&self) -> Stamp {
        Stamp {
            ts: self.now_ms,
            epoch: self.config.log_epoch,
        }
    }

    /// Takes a token of the caller's bucket `key`, answering `rate_limited` (having changed
    /// nothing) when none is left. `None`: no limit.
    pub(crate) async fn take_token(
        &self,
        key: BucketKey,
        bucket: Option<Bucket>,
        what: &str,
    ) -> Result<(), ClientError> {
        let Some(bucket) = bucket else {
            return Ok(());
        };
        if self.ports.store.take_token(&key, &bucket, self.now_ms).await? {
            return Ok(());
        }
        Err(ClientError::new(
            ErrorCode::RateLimited,
            format!(
                "too many {what}: at most {} at once, then one every {} ms; wait and try again",
                bucket.burst,
                bucket.every.as_millis()
            ),
        ))
    }

    /// The room must be one the caller is a member of.
    pub(crate) async fn require_member(&self, room: &RoomName) -> Result<Member, ClientError> {
        self.ports
            .store
            .member(room, &self.caller.user.user_id)
            .await?
            .ok_or_else(|| ClientError::not_member(room.as_str()))
    }
}

/// The ports and settings a WebSocket frame is handled with.
pub struct Frame<'a> {
    pub ports: &'a Ports,
    pub config: &'a Config,
    /// The connection the frame came on.
    pub connection_id: &'a ConnectionId,
    /// Where it came from (`requestContext.identity.sourceIp`), when known.
    pub source_ip: Option<&'a str>,
    /// Milliseconds since the epoch: API Gateway's `requestTimeEpoch`.
    pub now_ms: i64,
}

/// The answer to a frame on a connection `$connect` did not register (or that is gone).
pub(crate) fn not_registered() -> ClientError {
    ClientError::new(ErrorCode::Forbidden, "this connection is not registered; reconnect")
}

impl From<StoreError> for ClientError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NickTaken => ClientError::new(ErrorCode::Conflict, "nickname is taken"),
            StoreError::RoomExists => ClientError::new(ErrorCode::Conflict, "room already exists"),
            StoreError::CatalogFull => ClientError::new(
                ErrorCode::Conflict,
                "the room catalog is full: join one of the rooms `rooms` lists",
            ),
            StoreError::Unavailable(_) => ClientError::unavailable("the store").caused_by(error),
        }
    }
}
