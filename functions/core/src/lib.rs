//! roomcast's domain: the client protocol, the rules of rooms, connections and messages,
//! the fan-out of Kafka records, and the ports (store, publisher, notifier) that the AWS
//! adapters and the in-memory stand-ins implement. Nothing here knows about AWS or Kafka.

pub mod clock;
pub mod commands;
pub mod config;
pub mod envelope;
pub mod error;
pub mod fan_out;
pub mod memory;
pub mod model;
pub mod ports;
pub mod protocol;
pub mod session;

pub use config::{Config, Limits};
pub use envelope::{Envelope, Target};
pub use error::{ClientError, ErrorCode};
pub use model::{ConnectionId, MessageId, Nick, RoomName, User, UserId};
pub use ports::{Notifier, Publisher, Store};
pub use protocol::ServerFrame;
