//! Client frames of protocol v1: one type per action, each with `parse` (validate the
//! frame's fields) and `apply` (run it against the ports and answer with a server frame),
//! and the one [`dispatch`] table that names them. [`context`] is what a command runs
//! against, [`fields`] the field readers they share, [`publish`] how they reach the event
//! log (and the HTTP API's `publish`, a command of its own).

mod body;
mod context;
mod conversation;
mod conversations;
mod create_room;
mod delete;
mod dispatch;
mod dm;
mod edit;
mod fields;
mod history;
mod join;
mod leave;
mod ping;
mod publish;
mod rooms;
mod send;
mod upload;
mod who;
mod whoami;

pub use context::{Context, Frame, ADMIN_ROLE};
pub use conversation::ConversationRef;
pub use conversations::Conversations;
pub use create_room::CreateRoom;
pub use delete::Delete;
pub use dispatch::{handle_frame, Command, ParseError, ACTIONS};
pub use dm::{Dm, Recipient};
pub use edit::Edit;
pub use history::ReadHistory;
pub use join::Join;
pub use leave::Leave;
pub use ping::Ping;
pub use publish::{chat_frame_types, Publish, PUBLISH_ROLES};
pub use rooms::ListRooms;
pub use send::SendToRoom;
pub use upload::Upload;
pub use who::Who;
pub use whoami::WhoAmI;
