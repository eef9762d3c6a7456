//! Dispatch: the one table of protocol v1's actions (each action's name on the wire, its
//! command type, what its frames cost and whether they show the caller), and what is
//! derived from it: [`Command`], [`ACTIONS`], parsing a frame into its command, and
//! applying it for a caller.

use serde_json::{Map, Value};

use super::context::{not_registered, Context, Frame};
use super::{
    Conversations, CreateRoom, Delete, Dm, Edit, Join, Leave, ListRooms, Ping, ReadHistory, SendToRoom, Upload, Who,
    WhoAmI,
};
use crate::config::Config;
use crate::error::{ClientError, ErrorCode};
use crate::model::Caller;
use crate::protocol::ServerFrame;
use crate::quota::BucketKey;

/// What every frame of an action costs, whatever it turns out to do: a flood of refused
/// frames costs the store as much as accepted ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cost {
    /// A token of the caller's message bucket.
    Message,
    /// A token of the caller's read bucket.
    Read,
    /// A token of the caller's joins-and-leaves bucket.
    Membership,
    /// No token here.
    Free,
}

/// Declares the table: for each row, `"action" => CommandType, cost, shows caller;`.
/// Each command type has `parse(fields, config)` and `apply(self, ctx)`.
macro_rules! actions {
    ($($name:literal => $command:ident, $cost:ident, $shows_caller:literal;)+) => {
        /// A client frame, parsed: one variant per action of the table.
        #[derive(Debug)]
        pub enum Command {
            $($command($command),)+
        }

        /// Every route key (`action`) of protocol v1 that this version serves. API Gateway
        /// gets a route for each; anything else reaches `$default` and is answered
        /// `unknown_action`.
        pub const ACTIONS: &[&str] = &[$($name),+];

        $(impl $command {
            /// The action's name on the wire.
            pub const ACTION: &'static str = $name;
        })+

        impl Command {
            /// The command `action` names, its fields parsed; `None` for an action the
            /// table does not have.
            fn parse_action(action: &str, fields: Value, config: &Config) -> Option<Result<Command, ClientError>> {
                match action {
                    $($name => Some($command::parse(fields, config).map(Command::$command)),)+
                    _ => None,
                }
            }

            /// The action's name on the wire.
            pub fn action(&self) -> &'static str {
                match self {
                    $(Command::$command(_) => $name,)+
                }
            }

            fn cost(&self) -> Cost {
                match self {
                    $(Command::$command(_) => Cost::$cost,)+
                }
            }

            /// Whether the frames this causes show the caller (`from`, `by`, a presence's
            /// `user`) to others, nickname and all.
            pub fn shows_caller(&self) -> bool {
                match self {
                    $(Command::$command(_) => $shows_caller,)+
                }
            }

            /// Runs the command itself, its token taken.
            async fn run(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
                match self {
                    $(Command::$command(command) => command.apply(ctx).await,)+
                }
            }
        }
    };
}

// An upload writes a table item and leads to a message: it costs as one. `createRoom`
// draws from a bucket of its own once its name is checked; `ping` reads nothing.
actions! {
    // action       => command,       cost,       shows the caller;
    "join"          => Join,          Membership, true;
    "leave"         => Leave,         Membership, true;
    "send"          => SendToRoom,    Message,    true;
    "dm"            => Dm,            Message,    true;
    "edit"          => Edit,          Message,    true;
    "delete"        => Delete,        Message,    true;
    "history"       => ReadHistory,   Read,       false;
    "conversations" => Conversations, Read,       false;
    "rooms"         => ListRooms,     Read,       false;
    "createRoom"    => CreateRoom,    Free,       false;
    "upload"        => Upload,        Message,    false;
    "who"           => Who,           Read,       false;
    "whoami"        => WhoAmI,        Read,       false;
    "ping"          => Ping,          Free,       false;
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
        let command = Command::parse_action(&action, Value::Object(fields), config).unwrap_or_else(|| {
            Err(ClientError::new(
                ErrorCode::UnknownAction,
                format!(
                    "unknown action `{}`; known actions: {}",
                    truncate(&action, 64),
                    ACTIONS.join(", ")
                ),
            ))
        });
        // An unknown action is echoed cut short, as in its message: a frame of 32 KB would
        // otherwise come back whole in the error's `action`.
        command.map_err(|error| fail(Some(&truncate(&action, 64)), error))
    }

    /// The client's id for the message a `send` or `dm` carries.
    pub fn client_msg_id(&self) -> Option<&str> {
        match self {
            Command::SendToRoom(cmd) => cmd.body.client_msg_id.as_deref(),
            Command::Dm(cmd) => cmd.body.client_msg_id.as_deref(),
            _ => None,
        }
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
        let limits = &ctx.config.limits;
        let caller = ctx.caller;
        let quota = match self.cost() {
            Cost::Message => Some((BucketKey::messages(caller), limits.messages, "messages")),
            Cost::Read => Some((BucketKey::reads(caller), limits.reads, "reads")),
            Cost::Membership => Some((BucketKey::memberships(caller), limits.memberships, "joins and leaves")),
            Cost::Free => None,
        };
        if let Some((key, bucket, what)) = quota {
            ctx.take_token(key, bucket, what).await?;
        }
        // A caller with no connection (the HTTP API) holds its nickname by a lease, and
        // becomes known (for a `dm` while it is away), by what it shows of itself, or by
        // looking for its conversations, as a client that only polls does.
        if caller.connection.is_none() && (self.shows_caller() || matches!(self, Command::Conversations(_))) {
            crate::http::hold_own_nick(ctx).await?;
            if caller.expires_at.is_none() {
                ctx.ports.store.remember_user(&caller.user).await?;
            }
        }
        self.run(ctx).await
    }
}

/// Handles one client frame end to end. Always has an answer: a reply or an error frame.
/// The frame is parsed before anything is read, so a bad frame costs nothing; the caller
/// is the user behind the connection, as registered by `$connect`.
pub async fn handle_frame(frame: &Frame<'_>, body: &str) -> ServerFrame {
    let command = match Command::parse(body, frame.config) {
        // A ping touches nothing, not even the connection's item.
        Ok(Command::Ping(ping)) => return ping.answer(),
        Ok(command) => command,
        Err(ParseError { action, error }) => return ServerFrame::error(error, action.as_deref()),
    };
    let action = command.action();
    let client_msg_id = command.client_msg_id().map(str::to_owned);
    let refused = |error| ServerFrame::error(error, Some(action)).for_message(client_msg_id.as_deref());
    let caller = match frame.ports.store.connection(frame.connection_id).await {
        Ok(Some(connection)) => Caller::of(&connection).from_address(frame.source_ip),
        Ok(None) => return refused(not_registered()),
        Err(error) => return refused(error.into()),
    };
    let ctx = Context {
        ports: frame.ports,
        config: frame.config,
        caller: &caller,
        now_ms: frame.now_ms,
    };
    command.apply(&ctx).await.unwrap_or_else(refused)
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn every_action_of_the_table_parses_to_its_own_command() {
        let config = Config::default();
        for action in ACTIONS {
            // Most actions need fields this frame lacks: their refusal names the action.
            match Command::parse(&format!(r#"{{"action":"{action}"}}"#), &config) {
                Ok(command) => assert_eq!(command.action(), *action),
                Err(ParseError { action: named, error }) => {
                    assert_ne!(error.code, ErrorCode::UnknownAction, "{action}");
                    assert_eq!(named.as_deref(), Some(*action));
                }
            }
        }
        let unknown = Command::parse(r#"{"action":"shout"}"#, &config).unwrap_err();
        assert_eq!(unknown.error.code, ErrorCode::UnknownAction);
        assert!(
            unknown.error.message.ends_with(&ACTIONS.join(", ")),
            "{}",
            unknown.error.message
        );
    }
}
