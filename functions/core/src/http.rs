//! The HTTP API (docs/protocol.md, "HTTP API") on the very commands of the WebSocket protocol:
//! each route becomes the client frame it stands for (path and query give `room`,
//! `before`, …, the body the rest), so it is parsed, checked and applied exactly as over
//! WebSocket; the answer is that command's server frame with an HTTP status. Framework-free:
//! the http-api Lambda and the local gateway turn their requests into [`Request`].

use serde_json::{Map, Value};

use crate::commands::{
    Command, Context, Conversations, CreateRoom, Delete, Dm, Edit, Join, Leave, ListRooms, ParseError, Publish,
    ReadHistory, SendToRoom, Upload, Who,
};
use crate::config::Config;
use crate::error::{ClientError, ErrorCode};
use crate::ports::StoreError;
use crate::protocol::ServerFrame;

/// An HTTP request, as far as the API looks at it.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path, from `/api` on: `/api/rooms/general/messages`.
    pub path: &'a str,
    /// The query parameters, decoded.
    pub query: Vec<(String, String)>,
    pub body: Option<&'a str>,
}

/// The answer: a status and a JSON body (a server frame, an error frame on failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// What a route asks for, before it runs.
#[derive(Debug)]
pub enum Operation {
    /// A protocol command, and the status of its success.
    Command(Command, u16),
    /// `POST /api/publish`: an envelope's target and frame.
    Publish(Publish),
}

/// A route that matched no operation, or a request it could not parse.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub error: ClientError,
    pub action: Option<String>,
}

/// The HTTP status of each protocol error code.
pub fn status_of(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::BadRequest => 400,
        ErrorCode::UnknownAction | ErrorCode::NotFound => 404,
        ErrorCode::NotMember | ErrorCode::Forbidden => 403,
        ErrorCode::TooLarge => 413,
        ErrorCode::Conflict => 409,
        ErrorCode::RateLimited => 429,
        ErrorCode::Unavailable => 503,
        ErrorCode::Unauthorized => 401,
    }
}

impl Refused {
    fn new(error: ClientError, action: Option<&str>) -> Self {
        Self {
            status: status_of(error.code),
            error,
            action: action.map(str::to_owned),
        }
    }

    pub fn into_response(self) -> Response {
        Response {
            status: self.status,
            body: ServerFrame::error(self.error, self.action.as_deref()).to_json(),
        }
    }
}

/// One route of the HTTP API (docs/protocol.md's table): the action it stands for and the status
/// of its success. The SAM template, the local gateway and the OpenAPI document all follow
/// this list, and tests hold them to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// As API Gateway and OpenAPI write it: `/api/rooms/{room}/who`.
    pub path: &'static str,
    /// The protocol action, or `publish`.
    pub action: &'static str,
    pub status: u16,
}

/// Every route that needs a signed-in caller.
pub const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/api/rooms",
        action: ListRooms::ACTION,
        status: 200,
    },
    Route {
        method: "POST",
        path: "/api/rooms",
        action: CreateRoom::ACTION,
        status: 201,
    },
    Route {
        method: "PUT",
        path: "/api/rooms/{room}/members/me",
        action: Join::ACTION,
        status: 200,
    },
    Route {
        method: "DELETE",
        path: "/api/rooms/{room}/members/me",
        action: Leave::ACTION,
        status: 200,
    },
    Route {
        method: "GET",
        path: "/api/rooms/{room}/messages",
        action: ReadHistory::ACTION,
        status: 200,
    },
    Route {
        method: "POST",
        path: "/api/rooms/{room}/messages",
        action: SendToRoom::ACTION,
        status: 202,
    },
    Route {
        method: "GET",
        path: "/api/rooms/{room}/who",
        action: Who::ACTION,
        status: 200,
    },
    Route {
        method: "PATCH",
        path: "/api/rooms/{room}/messages/{id}",
        action: Edit::ACTION,
        status: 200,
    },
    Route {
        method: "DELETE",
        path: "/api/rooms/{room}/messages/{id}",
        action: Delete::ACTION,
        status: 200,
    },
    Route {
        method: "GET",
        path: "/api/conversations",
        action: Conversations::ACTION,
        status: 200,
    },
    Route {
        method: "GET",
        path: "/api/users/{userId}/messages",
        action: ReadHistory::ACTION,
        status: 200,
    },
    Route {
        method: "POST",
        path: "/api/users/{userId}/messages",
        action: Dm::ACTION,
        status: 202,
    },
    Route {
        method: "PATCH",
        path: "/api/users/{userId}/messages/{id}",
        action: Edit::ACTION,
        status: 200,
    },
    Route {
        method: "DELETE",
        path: "/api/users/{userId}/messages/{id}",
        action: Delete::ACTION,
        status: 200,
    },
    Route {
        method: "POST",
        path: "/api/rooms/{room}/files",
        action: Upload::ACTION,
        status: 201,
    },
    Route {
        method: "POST",
        path: "/api/users/{userId}/files",
        action: Upload::ACTION,
        status: 201,
    },
    Route {
        method: "POST",
        path: "/api/publish",
        action: Publish::ACTION,
        status: 202,
    },
];

/// The API's OpenAPI document, served to anyone (no token).
pub const OPENAPI_PATH: &str = "/api/openapi.json";

/// The parameters a route's path holds, each as it came (still percent-encoded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathParameters<'p>(pub Vec<(&'static str, &'p str)>);

impl<'p> PathParameters<'p> {
    pub fn get(&self, name: &str) -> Option<&'p str> {
        self.0.iter().find(|(key, _)| *key == name).map(|(_, value)| *value)
    }
}

impl Route {
    /// The route of `method` (case-sensitive, as API Gateway's route keys) and `path`, with
    /// its `{room}`, `{userId}` and `{id}` segments as they came (still percent-encoded);
    /// `None` for a request no route takes, which API Gateway answers 404 itself.
    pub fn find<'p>(method: &str, path: &'p str) -> Option<(&'static Route, PathParameters<'p>)> {
        let segments: Vec<&str> = path.split('/').collect();
        ROUTES.iter().filter(|route| route.method == method).find_map(|route| {
            let pattern: Vec<&'static str> = route.path.split('/').collect();
            if pattern.len() != segments.len() {
                return None;
            }
            let mut parameters = PathParameters::default();
            for (want, got) in pattern.iter().zip(&segments) {
                match want.strip_prefix('{').and_then(|name| name.strip_suffix('}')) {
                    Some(name) if !got.is_empty() => parameters.0.push((name, *got)),
                    None if want == got => {}
                    _ => return None,
                }
            }
            Some((route, parameters))
        })
    }
}

/// The query parameters each action takes.
fn query_fields(action: &str) -> &'static [&'static str] {
    match action {
        ReadHistory::ACTION => &["before", "after", "limit"],
        Conversations::ACTION => &["before", "limit"],
        _ => &[],
    }
}

/// Matches a request to its operation and parses it. Nothing is read or changed yet.
pub fn route(request: &Request<'_>, config: &Config) -> Result<Operation, Refused> {
    let Some((route, parameters)) = Route::find(request.method, request.path) else {
        return Err(Refused::new(
            ClientError::not_found(format!("no route {} {}", request.method, request.path)),
            None,
        ));
    };
    let (action, status) = (route.action, route.status);
    if action == Publish::ACTION {
        let body = json_body(request.body, config, action)?;
        return Publish::parse(Value::Object(body), config)
            .map(Operation::Publish)
            .map_err(|error| Refused::new(error, Some(action)));
    }
    let mut frame = match route.method {
        "POST" | "PATCH" => json_body(request.body, config, action)?,
        _ => Map::new(),
    };
    for (name, value) in &request.query {
        if query_fields(action).contains(&name.as_str()) {
            // `limit` is a number; anything else is left a string for the check to refuse.
            let value = match name.as_str() {
                "limit" => value
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| Value::from(value.as_str())),
                _ => Value::from(value.as_str()),
            };
            frame.insert(name.clone(), value);
        }
    }
    // The path names the room, the other user and the message; a body cannot say
    // otherwise. The other user is the recipient of a `dm`, the `with` of the rest.
    for (name, value) in &parameters.0 {
        let field = match *name {
            "userId" if action == Dm::ACTION => "toUser",
            "userId" => "with",
            name => name,
        };
        frame.insert(field.to_owned(), Value::from(percent_decoded(value)));
    }
    // The path names the one conversation: a body's other name for it goes.
    if action == Dm::ACTION {
        frame.remove("to");
    }
    if parameters.get("room").is_some() {
        frame.remove("with");
    }
    if parameters.get("userId").is_some() {
        frame.remove("room");
    }
    frame.insert("action".to_owned(), Value::from(action));
    let text = Value::Object(frame).to_string();
    match Command::parse(&text, config) {
        Ok(command) => Ok(Operation::Command(command, status)),
        Err(ParseError { action, error }) => Err(Refused::new(error, action.as_deref())),
    }
}

/// Runs a request for the caller of `ctx` (signed in, with no connection).
pub async fn handle(ctx: &Context<'_>, request: &Request<'_>) -> Response {
    match route(request, ctx.config) {
        Ok(Operation::Command(command, status)) => {
            let action = command.action();
            match command.apply(ctx).await {
                Ok(frame) => Response {
                    status,
                    body: frame.to_json(),
                },
                Err(error) => Refused::new(error, Some(action)).into_response(),
            }
        }
        Ok(Operation::Publish(publish)) => match publish.apply(ctx).await {
            Ok(frame) => Response {
                status: 202,
                body: frame.to_json(),
            },
            Err(error) => Refused::new(error, Some(Publish::ACTION)).into_response(),
        },
        Err(refused) => refused.into_response(),
    }
}

/// Nicknames are one user's at a time across WebSocket and HTTP. WebSocket callers hold
/// theirs from the handshake on; an HTTP caller, whose nickname comes from its token, takes
/// or renews a lease on it ([`crate::config::Config::nick_lease`]) in the same claim, so
/// that another user's token with that nickname is refused, over HTTP and at the
/// handshake, until it lapses (one GetItem, and one conditional write when the lease is
/// past half its life).
pub(crate) async fn hold_own_nick(ctx: &Context<'_>) -> Result<(), ClientError> {
    let user = &ctx.caller.user;
    match ctx
        .ports
        .store
        .lease_nick(user, ctx.now_ms.div_euclid(1000), ctx.config.nick_lease)
        .await
    {
        Err(StoreError::NickTaken) => Err(ClientError::new(
            ErrorCode::Conflict,
            format!(
                "nickname `{}` is taken by another user (connected, or using it over HTTP within the \
                 last {} s); use a token with another nickname",
                user.nick,
                ctx.config.nick_lease.as_secs()
            ),
        )),
        other => Ok(other?),
    }
}

/// The body as a JSON object, within the frame limit.
fn json_body(body: Option<&str>, config: &Config, action: &str) -> Result<Map<String, Value>, Refused> {
    let body = body.unwrap_or_default();
    if body.len() > config.limits.frame_bytes {
        return Err(Refused::new(
            ClientError::new(
                ErrorCode::TooLarge,
                format!(
                    "body is {} bytes; the limit is {}",
                    body.len(),
                    config.limits.frame_bytes
                ),
            ),
            Some(action),
        ));
    }
    match serde_json::from_str(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(Refused::new(
            ClientError::bad_request("body must be a JSON object"),
            Some(action),
        )),
        Err(_) => Err(Refused::new(
            ClientError::bad_request("body is not valid JSON"),
            Some(action),
        )),
    }
}

/// A path segment with its `%XX` escapes decoded; left as it is if they are malformed
/// (the room name check then refuses it).
fn percent_decoded(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(byte) = segment
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                decoded.push(byte);
                i += 3;
                continue;
            }
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(decoded).unwrap_or_else(|_| segment.to_owned())
}

#[cfg(test)]
mod tests;
