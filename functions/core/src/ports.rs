//! The ports the domain needs from the outside world: where state lives ([`Store`]), where
//! events go ([`Publisher`]) and how a frame reaches a connection ([`Notifier`]). The AWS
//! crate implements them with DynamoDB, Kafka and the `@connections` API; [`crate::memory`]
//! implements them in-process for the embedded local mode.

use std::error::Error as StdError;

use async_trait::async_trait;

use crate::envelope::Envelope;
use crate::model::{Connection, ConnectionId, ConnectionState, Member, Room, RoomName, UserId};

/// The error of an adapter, kept whole (SDK error and all) as the source.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The nickname belongs to another connected user.
    #[error("nickname is taken")]
    NickTaken,
    #[error("room already exists")]
    RoomExists,
    /// The connection is not (or no longer) registered.
    #[error("connection is not registered")]
    NotConnected,
    #[error("store unavailable: {0}")]
    Unavailable(#[source] BoxError),
}

impl StoreError {
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self::Unavailable(source.into())
    }
}

/// Connections, rooms and memberships. Each method is one DynamoDB Query, GetItem or
/// transaction in the AWS adapter: nothing here may need a Scan.
#[async_trait]
pub trait Store: Send + Sync {
    /// Registers a connection and claims its nickname for its user, atomically.
    /// `NickTaken` if another user's live connection holds the nickname.
    async fn add_connection(&self, connection: &Connection) -> Result<(), StoreError>;

    /// The connection and the rooms it is in (one Query).
    async fn connection(&self, id: &ConnectionId) -> Result<Option<ConnectionState>, StoreError>;

    /// Forgets the connection, its memberships and its claim on its nickname. Returns
    /// what was removed; `None` if it was not registered. Idempotent.
    async fn remove_connection(&self, id: &ConnectionId) -> Result<Option<ConnectionState>, StoreError>;

    /// Adds a room to the catalog; `RoomExists` if the name is taken.
    async fn create_room(&self, room: &Room) -> Result<(), StoreError>;

    async fn room(&self, name: &RoomName) -> Result<Option<Room>, StoreError>;

    /// The room catalog, sorted by name.
    async fn rooms(&self) -> Result<Vec<Room>, StoreError>;

    /// Makes the connection a member of the room. `Ok(false)` if it already was;
    /// `NotConnected` if the connection is not registered. Does not check the catalog.
    async fn join(&self, room: &RoomName, member: &Member) -> Result<bool, StoreError>;

    /// Ends the membership; returns it, or `None` if there was none.
    async fn leave(&self, room: &RoomName, connection: &ConnectionId) -> Result<Option<Member>, StoreError>;

    /// One membership (one GetItem): checks membership and gives the sender's identity.
    async fn member(&self, room: &RoomName, connection: &ConnectionId) -> Result<Option<Member>, StoreError>;

    /// Every member connection of the room (one paginated Query).
    async fn members(&self, room: &RoomName) -> Result<Vec<Member>, StoreError>;

    /// Every connection that is in at least one room, each once: the broadcast audience.
    async fn broadcast_audience(&self) -> Result<Vec<ConnectionId>, StoreError>;

    /// Every connection of the user (one Query).
    async fn user_connections(&self, user: &UserId) -> Result<Vec<ConnectionId>, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the event log did not confirm the record in time")]
    Timeout,
    #[error("the event log refused the record: {0}")]
    Refused(#[source] BoxError),
}

/// Appends envelopes to the event log (Kafka, or the in-process log).
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Returns once the log has durably accepted the record (the delivery report), so a
    /// Lambda can answer its client: a frozen Lambda would never deliver a queued record.
    async fn publish(&self, envelope: &Envelope) -> Result<(), PublishError>;
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The connection is closed for good (HTTP 410): forget it.
    #[error("connection is gone")]
    Gone,
    /// Throttled (429), a server error (5xx) or a timeout: worth another try.
    #[error("temporary failure: {0}")]
    Retryable(#[source] BoxError),
    /// Anything else (403, 413, ...): this frame will never get through.
    #[error("refused: {0}")]
    Failed(#[source] BoxError),
}

/// Delivers one frame to one connection (`POST @connections/{id}`).
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn send(&self, connection: &ConnectionId, frame: &[u8]) -> Result<(), NotifyError>;
}
