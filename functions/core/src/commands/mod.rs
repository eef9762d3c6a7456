//! Client frames of protocol v1: one type per action, each with `parse` (validate the
//! frame's fields) and `apply` (run it against the ports and answer with a server frame).

mod body;
mod conversation;
mod conversations;
mod create_room;
mod delete;
mod dm;
mod edit;
mod history;
mod join;
mod leave;
mod ping;
mod rooms;
mod send;
mod upload;
mod who;
mod whoami;

pub use conversation::ConversationRef;
pub use conversations::Conversations;
pub use create_room::CreateRoom;
pub use delete::Delete;
pub use dm::{Dm, Recipient};
pub use edit::Edit;
pub use history::History;
pub use join::Join;
pub use leave::Leave;
pub use ping::Ping;
pub use rooms::Rooms;
pub use send::Send;
pub use upload::Upload;
pub use who::Who;
pub use whoami::WhoAmI;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::config::{Config, Limits};
use crate::envelope::{Envelope, Stamp};
use crate::error::{ClientError, ErrorCode};
use crate::model::{Caller, ConnectionId, LogPosition, RoomName, UserId};
use crate::ports::{Files, History as HistoryPort, PublishError, Publisher, Store, StoreError};
use crate::protocol::ServerFrame;
use crate::quota::{Bucket, BucketKey};

/// Every route key (`action`) of protocol v1 that this version serves. API Gateway gets a
/// route for each; anything else reaches `$default` and is answered `unknown_action`.
pub const ACTIONS: &[&str] = &[
    "join",
    "leave",
    "send",
    "dm",
    "edit",
    "delete",
    "history",
    "conversations",
    "rooms",
    "createRoom",
    "upload",
    "who",
    "whoami",
    "ping",
];

/// The role that may delete anyone's message and, when users sign in, send to the
/// broadcast room.
pub const ADMIN_ROLE: &str = "admin";

/// What a command runs against: the ports, the settings, and who is asking.
pub struct Context<'a> {
    pub store: &'a dyn Store,
    pub history: &'a dyn HistoryPort,
    pub publisher: &'a dyn Publisher,
    /// Where attachments live.
    pub files: &'a dyn Files,
    pub config: &'a Config,
    pub caller: &'a Caller,
    /// Milliseconds since the epoch: API Gateway's `requestTimeEpoch`.
    pub now_ms: i64,
}

impl Context<'_> {
    /// The caller's connection, which the frames it causes skip (it learns from its reply).
    fn except(&self) -> Option<ConnectionId> {
        self.caller.connection.clone()
    }

    /// The stamp of a chat record made now: its position will name it.
    fn stamp(&self) -> Stamp {
        Stamp {
            ts: self.now_ms,
            epoch: self.config.log_epoch,
        }
    }

    /// Takes a token of the caller's bucket `key`, answering `rate_limited` (having changed
    /// nothing) when none is left. `None`: no limit.
    async fn take_token(&self, key: BucketKey, bucket: Option<Bucket>, what: &str) -> Result<(), ClientError> {
        let Some(bucket) = bucket else {
            return Ok(());
        };
        if self.store.take_token(&key, &bucket, self.now_ms).await? {
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
    async fn require_member(&self, room: &RoomName) -> Result<crate::model::Member, ClientError> {
        self.store
            .member(room, &self.caller.user.user_id)
            .await?
            .ok_or_else(|| ClientError::not_member(room.as_str()))
    }
}

#[derive(Debug)]
pub enum Command {
    Join(Join),
    Leave(Leave),
    Send(Send),
    Dm(Dm),
    Edit(Edit),
    Delete(Delete),
    History(History),
    Conversations(Conversations),
    Rooms(Rooms),
    CreateRoom(CreateRoom),
    Upload(Upload),
    Who(Who),
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
            "dm" => Dm::parse(fields, config).map(Command::Dm),
            "edit" => Edit::parse(fields, config).map(Command::Edit),
            "delete" => Delete::parse(fields, config).map(Command::Delete),
            "history" => History::parse(fields, config).map(Command::History),
            "conversations" => Conversations::parse(fields, config).map(Command::Conversations),
            "rooms" => Ok(Command::Rooms(Rooms)),
            "createRoom" => CreateRoom::parse(fields, config).map(Command::CreateRoom),
            "upload" => Upload::parse(fields, config).map(Command::Upload),
            "who" => Who::parse(fields, config).map(Command::Who),
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
        // An unknown action is echoed cut short, as in its message: a frame of 32 KB would
        // otherwise come back whole in the error's `action`.
        command.map_err(|error| fail(Some(&truncate(&action, 64)), error))
    }

    pub fn action(&self) -> &'static str {
        match self {
            Command::Join(_) => "join",
            Command::Leave(_) => "leave",
            Command::Send(_) => "send",
            Command::Dm(_) => "dm",
            Command::Edit(_) => "edit",
            Command::Delete(_) => "delete",
            Command::History(_) => "history",
            Command::Conversations(_) => "conversations",
            Command::Rooms(_) => "rooms",
            Command::CreateRoom(_) => "createRoom",
            Command::Upload(_) => "upload",
            Command::Who(_) => "who",
            Command::WhoAmI(_) => "whoami",
            Command::Ping(_) => "ping",
        }
    }

    /// The client's id for the message a `send` or `dm` carries.
    pub fn client_msg_id(&self) -> Option<&str> {
        match self {
            Command::Send(cmd) => cmd.body.client_msg_id.as_deref(),
            Command::Dm(cmd) => cmd.body.client_msg_id.as_deref(),
            _ => None,
        }
    }

    /// Whether the frames this causes show the caller (`from`, `by`, a presence's `user`)
    /// to others, nickname and all.
    pub fn shows_caller(&self) -> bool {
        matches!(
            self,
            Command::Send(_)
                | Command::Dm(_)
                | Command::Edit(_)
                | Command::Delete(_)
                | Command::Join(_)
                | Command::Leave(_)
        )
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
        // Whatever an action turns out to do, it costs a token: a flood of refused ones
        // costs the store as much as accepted ones. (`createRoom` draws from its own bucket
        // once its name is checked; `ping` reads nothing.)
        let limits = &ctx.config.limits;
        let quota = match self {
            // An upload writes a table item and leads to a message: it costs as one.
            Command::Send(_) | Command::Dm(_) | Command::Edit(_) | Command::Delete(_) | Command::Upload(_) => {
                Some((BucketKey::messages(ctx.caller), limits.messages, "messages"))
            }
            Command::History(_)
            | Command::Conversations(_)
            | Command::Who(_)
            | Command::Rooms(_)
            | Command::WhoAmI(_) => Some((BucketKey::reads(ctx.caller), limits.reads, "reads")),
            Command::Join(_) | Command::Leave(_) => Some((
                BucketKey::memberships(ctx.caller),
                limits.memberships,
                "joins and leaves",
            )),
            Command::CreateRoom(_) | Command::Ping(_) => None,
        };
        if let Some((key, bucket, what)) = quota {
            ctx.take_token(key, bucket, what).await?;
        }
        // A caller with no connection (the HTTP API) holds its nickname by a lease, and
        // becomes known (for a `dm` while it is away), by what it shows of itself, or by
        // looking for its conversations, as a client that only polls does.
        if ctx.caller.connection.is_none() && (self.shows_caller() || matches!(self, Command::Conversations(_))) {
            crate::http::hold_own_nick(ctx).await?;
            if ctx.caller.expires_at.is_none() {
                ctx.store.remember_user(&ctx.caller.user).await?;
            }
        }
        match self {
            Command::Join(cmd) => cmd.apply(ctx).await,
            Command::Leave(cmd) => cmd.apply(ctx).await,
            Command::Send(cmd) => cmd.apply(ctx).await,
            Command::Dm(cmd) => cmd.apply(ctx).await,
            Command::Edit(cmd) => cmd.apply(ctx).await,
            Command::Delete(cmd) => cmd.apply(ctx).await,
            Command::History(cmd) => cmd.apply(ctx).await,
            Command::Conversations(cmd) => cmd.apply(ctx).await,
            Command::Rooms(cmd) => cmd.apply(ctx).await,
            Command::CreateRoom(cmd) => cmd.apply(ctx).await,
            Command::Upload(cmd) => cmd.apply(ctx).await,
            Command::Who(cmd) => cmd.apply(ctx).await,
            Command::WhoAmI(cmd) => cmd.apply(ctx).await,
            Command::Ping(cmd) => Ok(cmd.apply()),
        }
    }
}

/// The ports and settings a WebSocket frame is handled with.
pub struct Frame<'a> {
    pub store: &'a dyn Store,
    pub history: &'a dyn HistoryPort,
    pub publisher: &'a dyn Publisher,
    pub files: &'a dyn Files,
    pub config: &'a Config,
    /// The connection the frame came on.
    pub connection_id: &'a ConnectionId,
    /// Where it came from (`requestContext.identity.sourceIp`), when known.
    pub source_ip: Option<&'a str>,
    /// Milliseconds since the epoch: API Gateway's `requestTimeEpoch`.
    pub now_ms: i64,
}

/// Handles one client frame end to end. Always has an answer: a reply or an error frame.
/// The frame is parsed before anything is read, so a bad frame costs nothing; the caller
/// is the user behind the connection, as registered by `$connect`.
pub async fn handle_frame(frame: &Frame<'_>, body: &str) -> ServerFrame {
    let command = match Command::parse(body, frame.config) {
        Ok(Command::Ping(ping)) => return ping.apply(),
        Ok(command) => command,
        Err(ParseError { action, error }) => return ServerFrame::error(error, action.as_deref()),
    };
    let action = command.action();
    let client_msg_id = command.client_msg_id().map(str::to_owned);
    let refused = |error| ServerFrame::error(error, Some(action)).for_message(client_msg_id.as_deref());
    let caller = match frame.store.connection(frame.connection_id).await {
        Ok(Some(connection)) => Caller::of(&connection).from_address(frame.source_ip),
        Ok(None) => return refused(not_registered()),
        Err(error) => return refused(error.into()),
    };
    let ctx = Context {
        store: frame.store,
        history: frame.history,
        publisher: frame.publisher,
        files: frame.files,
        config: frame.config,
        caller: &caller,
        now_ms: frame.now_ms,
    };
    command.apply(&ctx).await.unwrap_or_else(refused)
}

/// Deserialises the fields of one action; serde's messages ("missing field `room`",
/// "invalid type: integer `5`, expected a string") are clear enough to pass on.
fn fields<T: DeserializeOwned>(fields: Value) -> Result<T, ClientError> {
    serde_json::from_value(fields).map_err(|error| ClientError::bad_request(error.to_string()))
}

/// The `room` field, the one field of `join`, `leave`, `who` and `createRoom`.
fn room_field(frame: Value, config: &Config) -> Result<RoomName, ClientError> {
    #[derive(serde::Deserialize)]
    struct Fields {
        room: String,
    }
    let Fields { room } = fields(frame)?;
    RoomName::parse(&room, config.limits.room_name_chars)
}

/// The `text` of a message: not blank, at most `Limits::text_bytes`.
fn parse_text(text: String, limits: &Limits) -> Result<String, ClientError> {
    if text.trim().is_empty() {
        return Err(ClientError::bad_request("text must not be empty"));
    }
    if text.len() > limits.text_bytes {
        return Err(ClientError::new(
            ErrorCode::TooLarge,
            format!("text is {} bytes; the limit is {}", text.len(), limits.text_bytes),
        ));
    }
    Ok(text)
}

/// The client's own id for a message, echoed in the `ack`: bounded, as we send it back.
fn parse_client_msg_id(id: Option<String>, limits: &Limits) -> Result<Option<String>, ClientError> {
    match id {
        Some(id) if id.is_empty() || id.chars().count() > limits.client_msg_id_chars => Err(ClientError::bad_request(
            format!("clientMsgId must be 1 to {} characters", limits.client_msg_id_chars),
        )),
        id => Ok(id),
    }
}

/// A user id is opaque (a JWT `sub`), but it is echoed and used in keys: bound it.
const USER_ID_BYTES: usize = 256;

/// A user id the client named in `field`.
pub(crate) fn parse_user_id(field: &str, user: String) -> Result<UserId, ClientError> {
    if user.is_empty() || user.len() > USER_ID_BYTES {
        return Err(ClientError::bad_request(format!(
            "{field} must be 1 to {USER_ID_BYTES} bytes"
        )));
    }
    Ok(UserId::new(user))
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn not_registered() -> ClientError {
    ClientError::new(ErrorCode::Forbidden, "this connection is not registered; reconnect")
}

/// Publishes an envelope for the caller of `ctx` (the HTTP API's `publish`), answering
/// `unavailable` if the log did not take it.
pub async fn publish_envelope(ctx: &Context<'_>, envelope: &Envelope) -> Result<(), ClientError> {
    publish(ctx.publisher, envelope).await.map(|_| ())
}

/// Publishes, turning a failure into the `unavailable` answer, its cause kept (and logged
/// where the answer is sent). The position names a chat record (see [`Stamp`]).
async fn publish(publisher: &dyn Publisher, envelope: &Envelope) -> Result<LogPosition, ClientError> {
    publisher.publish(envelope).await.map_err(|error: PublishError| {
        let refusal = match &error {
            // A record the log did not confirm in time may still be written (a Kafka
            // producer's request can land after its answer was given up on), so the
            // client must not be told that nothing happened: sending it again blindly
            // could show it twice.
            PublishError::Timeout => ClientError::new(
                ErrorCode::Unavailable,
                "the message log did not confirm this in time; it may still go through, \
                 so look for it before trying again",
            ),
            PublishError::Refused(_) => ClientError::unavailable("the message log"),
        };
        refusal.caused_by(error)
    })
}

/// Publishes a frame about a conversation's message (`edited`, `deleted`) where the
/// message went and keyed as it was, so that the record follows its message in the
/// conversation's one order and kafka-archive always has the message before it: to the
/// room, or to both users of a direct conversation (fan-out tells each side the other as
/// `with`).
async fn publish_about(
    ctx: &Context<'_>,
    conversation: &ConversationRef,
    frame: &ServerFrame,
) -> Result<(), ClientError> {
    let target = conversation.target(&ctx.caller.user.user_id);
    publish(
        ctx.publisher,
        &Envelope::stamped(target, ctx.except(), ctx.stamp(), frame),
    )
    .await?;
    Ok(())
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
