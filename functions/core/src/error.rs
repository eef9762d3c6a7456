//! The error frame every client sees, and the codes of the protocol.

use serde::{Deserialize, Serialize};

/// The `code` of an error frame (client protocol v1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    UnknownAction,
    NotMember,
    Forbidden,
    NotFound,
    TooLarge,
    Conflict,
    RateLimited,
    Unavailable,
    /// HTTP API only: no token, or one that did not verify. (A WebSocket handshake is
    /// refused with 401 instead; a connection is always signed in or anonymous.)
    Unauthorized,
}

/// Why a client's frame was refused. Becomes an error frame; never closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ClientError {
    pub code: ErrorCode,
    pub message: String,
}

impl ClientError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn not_member(room: &str) -> Self {
        Self::new(
            ErrorCode::NotMember,
            format!("you are not a member of room `{room}`; join it first"),
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// HTTP API only: the request has no valid token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// A dependency (store, Kafka) failed: the client's action did not happen.
    pub fn unavailable(what: &str) -> Self {
        Self::new(
            ErrorCode::Unavailable,
            format!("{what} is unavailable right now; nothing was changed, try again"),
        )
    }
}
