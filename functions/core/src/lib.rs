//! roomcast's domain: the client protocol, the rules of rooms, connections and messages,
//! the fan-out and the archive of Kafka records, presence, message history, and the ports
//! (connections, rooms, audience, history, publisher, notifier) that the AWS adapters and
//! the in-memory stand-ins implement.
//! Nothing here knows about AWS or Kafka.

pub mod archive;
pub mod backoff;
pub mod clock;
pub mod commands;
pub mod config;
pub mod envelope;
pub mod error;
pub mod fan_out;
pub mod files;
pub mod history;
pub mod http;
pub mod memory;
pub mod model;
pub mod ports;
pub mod presence;
pub mod protocol;
pub mod quota;
pub mod record;
pub mod session;

pub use config::{Config, Limits};
pub use envelope::{Envelope, Target};
pub use error::{ClientError, ErrorCode};
pub use model::{Caller, ConnectionId, MessageId, Nick, RoomName, User, UserId};
pub use ports::{Audience, Connections, Files, History, Notifier, Ports, Publisher, Quotas, Rooms, Store, Uploads};
pub use protocol::ServerFrame;
