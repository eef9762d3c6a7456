//! Client frames of protocol v1: one type per action, each with `parse` (validate the
//! frame's fields) and `apply` (run it against the ports and answer with a server frame).

mod create_room;
mod join;
mod leave;
mod ping;
mod rooms;
mod send;
mod whoami;

pub use create_room::CreateRoom;
pub use join::Join;
pub use leave::Leave;
pub use ping::Ping;
pub use rooms::Rooms;
pub use send::Send;
pub use whoami::WhoAmI;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::config::Config;
use crate::envelope::Envelope;
use crate::error::{ClientError, ErrorCode};
use crate::model::{ConnectionId, ConnectionState};
use crate::ports::{PublishError, Publisher, Store, StoreError};
use crate::protocol::ServerFrame;

/// Every route key (`action`) of protocol v1 that this version serves. API Gateway gets a
/// route for each; anything else reaches `$default` and is answered `unknown_action`.
pub const ACTIONS: &[&str] = &["join", "leave", "send", "rooms", "createRoom", "whoami", "ping"];

/// What a command runs against: the ports, the settings, and who is asking.
pub struct Context<'a, S: ?Sized, P: ?Sized> {
    pub store: &'a S,
    pub publisher: &'a P,
    pub config: &'a Config,
    pub connection_id: &'a ConnectionId,
    /// Milliseconds since the epoch: API Gateway's `requestTimeEpoch`.
    pub now_ms: i64,
}

#[derive(Debug)]
pub enum Command {
    Join(Join),
    Leave(Leave),
    Send(Send),
    Rooms(Rooms),
    CreateRoom(CreateRoom),
    WhoAmI(WhoAmI),
    Ping(Ping),
}

/// A frame that could not be parsed, and the action it named if it got that far.
#[derive(Debug)]
pub struct ParseError {
    pub action: Option<String>,
    pub error: ClientError,
}

impl Command {
    /// Parses a client text frame. Every way a frame can be wrong ends here, before any
    /// state is read or changed.
    pub fn parse(body: &str, config: &Config) -> Result<Command, ParseError> {
        let limits = &config.limits;
        let fail = |action: Option<&str>, error| ParseError {
            action: action.map(str::to_owned),
            error,
        };
        if body.len() > limits.frame_bytes {
            return Err(fail(
                None,
                ClientError::new(
                    ErrorCode::TooLarge,
                    format!("frame is {} bytes; the limit is {}", body.len(), limits.frame_bytes),
                ),
            ));
        }
        let fields: Map<String, Value> = match serde_json::from_str(body) {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => return Err(fail(None, ClientError::bad_request("frame must be a JSON object"))),
            Err(_) => return Err(fail(None, ClientError::bad_request("frame is not valid JSON"))),
        };
        let action = match fields.get("action") {
            Some(Value::String(action)) => action.clone(),
            Some(_) => return Err(fail(None, ClientError::bad_request("`action` must be a string"))),
            None => return Err(fail(None, ClientError::bad_request("frame has no `action` field"))),
        };
        let fields = Value::Object(fields);
        let command = match action.as_str() {
            "join" => Join::parse(fields, config).map(Command::Join),
            "leave" => Leave::parse(fields, config).map(Command::Leave),
            "send" => Send::parse(fields, config).map(Command::Send),
            "rooms" => Ok(Command::Rooms(Rooms)),
            "createRoom" => CreateRoom::parse(fields, config).map(Command::CreateRoom),
            "whoami" => Ok(Command::WhoAmI(WhoAmI)),
            "ping" => Ok(Command::Ping(Ping)),
            other => Err(ClientError::new(
                ErrorCode::UnknownAction,
                format!(
                    "unknown action `{}`; known actions: {}",
                    truncate(other, 64),
                    ACTIONS.join(", ")
                ),
            )),
        };
        command.map_err(|error| fail(Some(&action), error))
    }

    pub fn action(&self) -> &'static str {
        match self {
            Command::Join(_) => "join",
            Command::Leave(_) => "leave",
            Command::Send(_) => "send",
            Command::Rooms(_) => "rooms",
            Command::CreateRoom(_) => "createRoom",
            Command::WhoAmI(_) => "whoami",
            Command::Ping(_) => "ping",
        }
    }

    pub async fn apply<S, P>(self, ctx: &Context<'_, S, P>) -> Result<ServerFrame, ClientError>
    where
        S: Store + ?Sized,
        P: Publisher + ?Sized,
    {
        match self {
            Command::Join(cmd) => cmd.apply(ctx).await,
            Command::Leave(cmd) => cmd.apply(ctx).await,
            Command::Send(cmd) => cmd.apply(ctx).await,
            Command::Rooms(cmd) => cmd.apply(ctx).await,
            Command::CreateRoom(cmd) => cmd.apply(ctx).await,
            Command::WhoAmI(cmd) => cmd.apply(ctx).await,
            Command::Ping(cmd) => Ok(cmd.apply()),
        }
    }
}

/// Handles one client frame end to end. Always has an answer: a reply or an error frame.
pub async fn handle_frame<S, P>(ctx: &Context<'_, S, P>, body: &str) -> ServerFrame
where
    S: Store + ?Sized,
    P: Publisher + ?Sized,
{
    match Command::parse(body, ctx.config) {
        Ok(command) => {
            let action = command.action();
            command
                .apply(ctx)
                .await
                .unwrap_or_else(|error| ServerFrame::error(error, Some(action)))
        }
        Err(ParseError { action, error }) => ServerFrame::error(error, action.as_deref()),
    }
}

/// Deserialises the fields of one action; serde's messages ("missing field `room`",
/// "invalid type: integer `5`, expected a string") are clear enough to pass on.
fn fields<T: DeserializeOwned>(fields: Value) -> Result<T, ClientError> {
    serde_json::from_value(fields).map_err(|error| ClientError::bad_request(error.to_string()))
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The caller's connection and rooms; a connection the store does not know (its
/// `$connect` failed, or it was cleaned up) may not act.
async fn current_connection<S, P>(ctx: &Context<'_, S, P>) -> Result<ConnectionState, ClientError>
where
    S: Store + ?Sized,
    P: ?Sized,
{
    ctx.store
        .connection(ctx.connection_id)
        .await?
        .ok_or_else(not_registered)
}

fn not_registered() -> ClientError {
    ClientError::new(ErrorCode::Forbidden, "this connection is not registered; reconnect")
}

/// Publishes, turning a failure into the `unavailable` answer after logging its cause.
async fn publish<P: Publisher + ?Sized>(publisher: &P, envelope: &Envelope) -> Result<(), ClientError> {
    publisher.publish(envelope).await.map_err(|error: PublishError| {
        tracing::error!(error = &error as &dyn std::error::Error, envelope = %envelope.id, "publish failed");
        ClientError::unavailable("the message log")
    })
}

impl From<StoreError> for ClientError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NickTaken => ClientError::new(ErrorCode::Conflict, "nickname is taken"),
            StoreError::RoomExists => ClientError::new(ErrorCode::Conflict, "room already exists"),
            StoreError::NotConnected => not_registered(),
            StoreError::Unavailable(_) => {
                tracing::error!(error = &error as &dyn std::error::Error, "store failed");
                ClientError::unavailable("the store")
            }
        }
    }
}
