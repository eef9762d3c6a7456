//! The error frame every client sees, and the codes of the protocol.

use std::error::Error as StdError;
use std::sync::Arc;

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
///
/// A refusal caused by a dependency (the store, the log) keeps that cause as its `source`:
/// it is logged once, where the refusal becomes a frame or a response
/// ([`crate::protocol::ServerFrame::error`]), and never shown to the client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ClientError {
    pub code: ErrorCode,
    pub message: String,
    #[source]
    pub source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

/// What the client sees: the code and the message (the cause is the operator's).
impl PartialEq for ClientError {
    fn eq(&self, other: &Self) -> bool {
        (self.code, &self.message) == (other.code, &other.message)
    }
}

impl Eq for ClientError {}

impl ClientError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            source: None,
        }
    }

    /// The same refusal, caused by `source` (kept for the log, not for the client).
    pub fn caused_by(mut self, source: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        self.source = Some(Arc::from(source.into()));
        self
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

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// The cause stays with the refusal for the log, while the client's view (and so
    /// equality) is the code and message alone.
    #[test]
    fn a_refusal_keeps_its_cause_apart_from_what_the_client_sees() {
        let cause = std::io::Error::new(std::io::ErrorKind::TimedOut, "the table did not answer");
        let refusal = ClientError::unavailable("the store").caused_by(cause);
        assert_eq!(refusal, ClientError::unavailable("the store"));
        let source = refusal.source().expect("the cause is kept");
        assert_eq!(source.to_string(), "the table did not answer");
        let frame = crate::protocol::ServerFrame::error(refusal, Some("send")).to_json();
        assert!(
            !frame.contains("did not answer"),
            "the cause is not the client's: {frame}"
        );
    }
}
