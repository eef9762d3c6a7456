//! The ports the domain needs from the outside world: where state lives ([`Connections`],
//! [`Rooms`], [`Audience`]; [`Store`] is all three), where messages are kept ([`History`]),
//! where events go ([`Publisher`]), how a frame reaches a connection ([`Notifier`]), and
//! where attachments live ([`Files`]; the [`Uploads`] granted are kept in the [`Store`]).
//! [`Ports`] bundles the four every command may need.
//! The AWS crate implements them with DynamoDB, Kafka, S3 and the `@connections` API;
//! [`crate::memory`] implements them in-process for the embedded local mode.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::envelope::Envelope;
use crate::files::{Download, FileId, PresignedPut, Upload};
use crate::history::{Conversation, ConversationsPage, Cursor, MessageEdit, Page, StoredMessage};
use crate::model::{
    Arrival, Connection, ConnectionId, Departure, LogPosition, Member, MessageId, Nick, OnlineUser, Room, RoomName,
    User, UserId,
};
use crate::quota::{Bucket, BucketKey};
use crate::record::Record;

/// The error of an adapter, kept whole (SDK error and all) as the source.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The nickname belongs to another connected user.
    #[error("nickname is taken")]
    NickTaken,
    #[error("room already exists")]
    RoomExists,
    /// The room catalog holds as many rooms as it may.
    #[error("the room catalog is full")]
    CatalogFull,
    #[error("store unavailable")]
    Unavailable(#[source] BoxError),
}

impl StoreError {
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self::Unavailable(source.into())
    }
}

/// Connections and the users behind them. Each method is a GetItem, a Query or a
/// transaction plus documented follow-ups in the AWS adapter: nothing here may need a Scan.
#[async_trait]
pub trait Connections: Send + Sync {
    /// Registers a connection: claims its nickname for its user (`NickTaken` if another
    /// user's live connection or lease holds it), adds it to the user's live connections
    /// and to the audience of every room the user is a member of (rooms follow the user).
    ///
    /// `first` says whether the user had no other live connection: only one of two
    /// connections arriving at once may see `first`. A call that fails leaves nothing of
    /// the connection behind when the store answers again in time (a `$connect` refused
    /// with 500 gets no `$disconnect`, and a claim left behind would refuse its nickname).
    async fn add_connection(&self, connection: &Connection) -> Result<Arrival, StoreError>;

    /// The connection (one GetItem); `None` if it is not (or no longer) registered.
    async fn connection(&self, id: &ConnectionId) -> Result<Option<Connection>, StoreError>;

    /// Forgets the connection: out of its user's live connections and out of its rooms'
    /// audiences, its claim on its nickname released. Memberships stay (they belong to the
    /// user). `None` if it was not registered: idempotent, and only the call that removed
    /// it reports `last`.
    async fn remove_connection(&self, id: &ConnectionId) -> Result<Option<Departure>, StoreError>;

    /// The user with its live connections (one GetItem); `None` if it has none.
    async fn online_user(&self, user: &UserId) -> Result<Option<OnlineUser>, StoreError>;

    /// The user holding the nickname (one GetItem), if one of its connections is live or
    /// its lease ([`Connections::lease_nick`]) has not lapsed.
    async fn nick_owner(&self, nick: &Nick) -> Result<Option<UserId>, StoreError>;

    /// Holds the user's nickname for it without a connection (an HTTP caller that shows its
    /// name) until `lease` past `now` (seconds since the epoch), in the same claim the
    /// handshake takes: `NickTaken` if another user's live connection or unlapsed lease
    /// holds it. The user's own connections and lease never conflict with it, and a claim
    /// that owns nothing any more is taken over. A lease with at least half of `lease` left
    /// is only read (one GetItem); otherwise it is renewed with one conditional write, so
    /// a caller that keeps calling holds the nickname from half a lease to a whole lease
    /// past its latest call.
    async fn lease_nick(&self, user: &User, now: i64, lease: Duration) -> Result<(), StoreError>;

    /// A signed-in user as last seen, online or not (one GetItem, or two when offline): the
    /// nickname its latest connection had. `None` for a user never seen, or an anonymous
    /// one that is gone (its user ends with its connection).
    async fn known_user(&self, user: &UserId) -> Result<Option<User>, StoreError>;

    /// Records a signed-in user's nickname for [`Connections::known_user`] (one
    /// UpdateItem): `add_connection` does it for every signed-in connection; the HTTP API
    /// does it for a caller who joins or writes, so a user who only polls can be sent a
    /// `dm` too. Idempotent.
    async fn remember_user(&self, user: &User) -> Result<(), StoreError>;
}

/// The room catalog and the memberships of users. A membership belongs to a user, so all
/// the user's connections, present and future, are in the room.
#[async_trait]
pub trait Rooms: Send + Sync {
    /// Adds a room to the catalog; `RoomExists` if the name is taken, `CatalogFull` if the
    /// catalog already holds `max_rooms` rooms (the `rooms` answer lists them all).
    async fn create_room(&self, room: &Room, max_rooms: usize) -> Result<(), StoreError>;

    async fn room(&self, name: &RoomName) -> Result<Option<Room>, StoreError>;

    /// The room catalog, sorted by name.
    async fn rooms(&self) -> Result<Vec<Room>, StoreError>;

    /// Makes the user a member, its live connections part of the room's audience.
    /// `Ok(false)` if it already was. `expires_at` (seconds since the epoch) bounds the
    /// membership of an anonymous user, which ends with its one connection. Does not check
    /// the catalog.
    async fn join(&self, room: &RoomName, user: &User, expires_at: Option<i64>) -> Result<bool, StoreError>;

    /// Ends the user's membership, for all its connections; returns it, or `None` if
    /// there was none.
    async fn leave(&self, room: &RoomName, user: &UserId) -> Result<Option<Member>, StoreError>;

    /// One membership (one GetItem), with the member's live connections.
    async fn member(&self, room: &RoomName, user: &UserId) -> Result<Option<Member>, StoreError>;

    /// Every member of the room with its live connections (one paginated Query).
    async fn members(&self, room: &RoomName) -> Result<Vec<Member>, StoreError>;

    /// The rooms the user is a member of, sorted by name (one Query).
    async fn rooms_of(&self, user: &UserId) -> Result<Vec<RoomName>, StoreError>;
}

/// Who a record reaches: what fan-out looks up once per distinct target per batch.
#[async_trait]
pub trait Audience: Send + Sync {
    /// The live connections of every member of the room (one paginated Query).
    async fn room_audience(&self, room: &RoomName) -> Result<Vec<ConnectionId>, StoreError>;

    /// Every live connection of a user who is in at least one room, each once.
    async fn broadcast_audience(&self) -> Result<Vec<ConnectionId>, StoreError>;

    /// Every live connection of the user (one GetItem).
    async fn user_audience(&self, user: &UserId) -> Result<Vec<ConnectionId>, StoreError>;
}

/// Rate limits kept where every function instance sees them (see [`crate::quota`]).
#[async_trait]
pub trait Quotas: Send + Sync {
    /// Takes one token from the bucket `key` at `now_ms` (milliseconds since the epoch):
    /// `false`, and nothing taken, when it holds none.
    async fn take_token(&self, key: &BucketKey, bucket: &Bucket, now_ms: i64) -> Result<bool, StoreError>;
}

/// The uploads granted and not yet forgotten (see [`crate::files`]): what `send` and `dm`
/// check a message's `files` against.
#[async_trait]
pub trait Uploads: Send + Sync {
    /// Records a granted upload until its `expires_at` (one PutItem). A file id is new
    /// each time, so nothing is overwritten.
    async fn add_upload(&self, upload: &Upload) -> Result<(), StoreError>;

    /// The upload (one GetItem); `None` if unknown or expired.
    async fn upload(&self, file: &FileId) -> Result<Option<Upload>, StoreError>;
}

/// All the state ports, as one adapter (the DynamoDB table, the in-memory store) offers
/// them. Code that needs only one port asks for that one.
pub trait Store: Connections + Rooms + Audience + Quotas + Uploads {}

impl<T: Connections + Rooms + Audience + Quotas + Uploads + ?Sized> Store for T {}

/// The ports a command runs against: the state ([`Store`]), the kept messages ([`History`]),
/// the event log ([`Publisher`]) and the attachments ([`Files`]). Built once per cold start
/// (a Lambda's `main`, the local gateway, a test's backends) and lent to every request as
/// `&Ports`. Shared, so that one adapter can be two ports (the DynamoDB table is both
/// `store` and `history`) and a copy costs four reference counts. What one function alone
/// needs (fan-out's [`Notifier`], the gateway's record sources) stays beside it; code that
/// needs only one port asks for that one.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn Store>,
    /// Kept messages: the same DynamoDB table as `store`, or an in-memory history.
    pub history: Arc<dyn History>,
    pub publisher: Arc<dyn Publisher>,
    /// Where attachments live: S3, or the local gateway's directory.
    pub files: Arc<dyn Files>,
}

impl Ports {
    /// The ports of a store that keeps the message history too (the DynamoDB table).
    pub fn one_store<S: Store + History + 'static>(
        store: S,
        publisher: impl Publisher + 'static,
        files: impl Files + 'static,
    ) -> Self {
        let store = Arc::new(store);
        Self {
            store: store.clone(),
            history: store,
            publisher: Arc::new(publisher),
            files: Arc::new(files),
        }
    }
}

/// Kept messages: kafka-archive writes them, in log order within each conversation;
/// `history`, `conversations`, `edit`, `delete` and replies read them. Every write is one
/// conditional write (for a direct message, plus one per user on that user's
/// conversations list) and every read one GetItem or one Query, so redelivered records
/// change nothing.
#[async_trait]
pub trait History: Send + Sync {
    /// Keeps a message unless one with its id is there already (a redelivery): never
    /// overwrites an edit or a tombstone. A direct message also becomes the latest of its
    /// conversation on both users' lists, unless a later one is there already.
    async fn keep(&self, message: &StoredMessage) -> Result<(), StoreError>;

    /// Changes the text of a kept message. `Ok(false)`, and nothing changes, if there is no
    /// such message, it is deleted, or it has an edit with a later `edit_id`. The
    /// conversations lists follow when it is their latest message.
    async fn edit(&self, conversation: &Conversation, id: &MessageId, edit: &MessageEdit) -> Result<bool, StoreError>;

    /// Turns a kept message into a tombstone without its text. `Ok(false)` if there is no
    /// such message or it was deleted already. The conversations lists follow when it is
    /// their latest message.
    async fn delete(&self, conversation: &Conversation, id: &MessageId) -> Result<bool, StoreError>;

    /// Where the archive is in partition `partition` of the log (epoch `epoch`, see
    /// `MessageId::at`): every chat record before this offset has been applied (one
    /// GetItem). `None` before its first batch there.
    async fn archived_until(&self, epoch: u8, partition: i32) -> Result<Option<i64>, StoreError>;

    /// Records that every chat record of the partition before `next` has been applied;
    /// never moves it back (a redelivered batch changes nothing).
    async fn mark_archived(&self, epoch: u8, partition: i32, next: i64) -> Result<(), StoreError>;

    /// The user's direct conversations, latest first, each with its latest message: up to
    /// `limit` of them, older than the one whose latest message is `before` (one Query).
    async fn conversations(
        &self,
        user: &UserId,
        before: Option<&MessageId>,
        limit: usize,
    ) -> Result<ConversationsPage, StoreError>;

    /// One message, deleted or not (one strongly consistent GetItem).
    async fn message(&self, conversation: &Conversation, id: &MessageId) -> Result<Option<StoredMessage>, StoreError>;

    /// Up to `limit` messages from `cursor` on, oldest first (one Query).
    async fn page(&self, conversation: &Conversation, cursor: &Cursor, limit: usize) -> Result<Page, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("file store unavailable")]
    Unavailable(#[source] BoxError),
}

impl FileError {
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self::Unavailable(source.into())
    }
}

/// Where attachments' bytes live (S3, or the local gateway's directory): the clients PUT
/// and GET them with URLs signed here, so no file passes through a function. Signing is
/// local work (no request); the other two methods are one request each.
#[async_trait]
pub trait Files: Send + Sync {
    /// A URL to PUT the file `file` to: valid from `now_ms` for `valid_for`, and only for
    /// a body of exactly `size` bytes of `content_type` (the headers it returns must be
    /// sent as they are). No request.
    async fn presign_put(
        &self,
        file: &FileId,
        content_type: &str,
        size: u64,
        now_ms: i64,
        valid_for: std::time::Duration,
    ) -> Result<PresignedPut, FileError>;

    /// A URL to GET the file with, served as `download` says: valid from `now_ms` for
    /// `valid_for`. No request.
    async fn presign_get(
        &self,
        file: &FileId,
        download: &Download,
        now_ms: i64,
        valid_for: std::time::Duration,
    ) -> Result<String, FileError>;

    /// The size of the uploaded file, `None` while nothing was uploaded (one HeadObject).
    async fn uploaded_size(&self, file: &FileId) -> Result<Option<u64>, FileError>;

    /// Deletes the file (one DeleteObject); deleting a missing one is no error.
    async fn delete(&self, file: &FileId) -> Result<(), FileError>;
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the event log did not confirm the record in time")]
    Timeout,
    #[error("the event log refused the record")]
    Refused(#[source] BoxError),
}

/// The event log (Kafka, or the in-process log): appends envelopes, and reads back the one
/// record at a position.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Returns once the log has durably accepted the record (the delivery report), so a
    /// Lambda can answer its client: a frozen Lambda would never deliver a queued record.
    /// The position it returns names a chat record ([`crate::envelope::Stamp`]).
    async fn publish(&self, envelope: &Envelope) -> Result<LogPosition, PublishError>;

    /// The record at `position` of this log's topic: `None` past the partition's end (no
    /// record is there yet) or before its oldest kept record (dropped by retention).
    ///
    /// For `edit`, `delete` and replies that name a message the archive has not applied
    /// yet: the log itself says whether it is there and whose it is. Kafka: a ListOffsets
    /// and one Fetch of that offset on a consumer made on first use, bounded by the
    /// delivery timeout (`Timeout`); the in-process log: a lookup. Read-only.
    async fn record_at(&self, position: LogPosition) -> Result<Option<Record>, PublishError>;
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The connection is closed for good (HTTP 410): forget it.
    #[error("connection is gone")]
    Gone,
    /// Throttled (429), a server error (5xx) or a timeout: worth another try.
    #[error("temporary failure")]
    Retryable(#[source] BoxError),
    /// Anything else (403, 413, ...): this frame will never get through.
    #[error("refused")]
    Failed(#[source] BoxError),
}

/// Delivers one frame to one connection (`POST @connections/{id}`).
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn send(&self, connection: &ConnectionId, frame: &[u8]) -> Result<(), NotifyError>;

    /// The same, for a frame shared by many posts (fan-out's, one per record): a notifier
    /// whose transport must own the body (an HTTP client's) keeps a reference to it instead
    /// of a copy per connection.
    async fn send_shared(&self, connection: &ConnectionId, frame: &bytes::Bytes) -> Result<(), NotifyError> {
        self.send(connection, frame).await
    }
}
