//! A real WebSocket client of a gateway (one started in this process or the gateway
//! binary), as a chat client uses it: frames are JSON, every read has a timeout, and a
//! test reads frames one by one or up to the one it waits for.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::gateway_process::GatewayProcess;

/// Longest wait for any one frame or handshake: generous for a loaded CI machine, never
/// hit when things work.
pub const FRAME_WAIT: Duration = Duration::from_secs(20);
/// Longest wait for the archive to show what a test sent: covers a consumer group's join
/// on a slow shared machine; the archive is there in milliseconds once running.
pub const CATCH_UP: Duration = Duration::from_secs(60);

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A gateway a client can connect to: one started in this process or the binary.
pub trait Gateway {
    /// `ws://127.0.0.1:PORT`.
    fn ws_url(&self) -> String;
}

impl Gateway for roomcast_local::Running {
    fn ws_url(&self) -> String {
        roomcast_local::Running::ws_url(self)
    }
}

impl Gateway for GatewayProcess {
    fn ws_url(&self) -> String {
        GatewayProcess::ws_url(self).to_owned()
    }
}

/// One WebSocket connection to a gateway; `name` names it in failures.
pub struct Client {
    pub socket: Socket,
    pub name: String,
}

impl Client {
    /// An anonymous connection named `name` (`?name=`).
    pub async fn connect(gateway: &impl Gateway, name: &str) -> Client {
        Self::try_connect(gateway, name)
            .await
            .unwrap_or_else(|error| panic!("{name}: {error}"))
    }

    /// An anonymous connection, or why the handshake failed.
    pub async fn try_connect(gateway: &impl Gateway, name: &str) -> Result<Client, tungstenite::Error> {
        Self::try_open(gateway, &format!("?name={name}"), &[], name).await
    }

    /// A connection as `token`'s user (`?token=`).
    pub async fn with_token(gateway: &impl Gateway, token: &str, name: &str) -> Client {
        Self::open(gateway, &format!("?token={token}"), name).await
    }

    /// A connection of `user` named `nick`, with a token of [`crate::tokens::signed_token`].
    pub async fn sign_in(gateway: &impl Gateway, user: &str, nick: &str) -> Client {
        Self::with_token(gateway, &crate::tokens::signed_token(user, nick, &[]), nick).await
    }

    /// A connection with `query` (`?name=…`, `?token=…`).
    pub async fn open(gateway: &impl Gateway, query: &str, name: &str) -> Client {
        Self::try_open(gateway, query, &[], name)
            .await
            .unwrap_or_else(|error| panic!("{name}: {error}"))
    }

    /// A connection with `query` and extra handshake `headers`, or why the handshake failed.
    pub async fn try_open(
        gateway: &impl Gateway,
        query: &str,
        headers: &[(&str, &str)],
        name: &str,
    ) -> Result<Client, tungstenite::Error> {
        let mut request = format!("{}/{query}", gateway.ws_url())
            .into_client_request()
            .expect("a valid request");
        for (header, value) in headers {
            request.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(header.as_bytes()).expect("a header name"),
                value.parse().expect("a header value"),
            );
        }
        let (socket, _) = tokio::time::timeout(FRAME_WAIT, tokio_tungstenite::connect_async(request))
            .await
            .unwrap_or_else(|_| panic!("{name}: no handshake within {FRAME_WAIT:?}"))?;
        Ok(Client {
            socket,
            name: name.to_owned(),
        })
    }

    /// The HTTP status that refused a handshake with `query` and `headers`.
    pub async fn refused_status(gateway: &impl Gateway, query: &str, headers: &[(&str, &str)]) -> u16 {
        match Self::try_open(gateway, query, headers, query).await {
            Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
            Err(other) => panic!("{query}: expected an HTTP refusal, got {other}"),
            Ok(_) => panic!("{query}: the handshake was accepted"),
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.socket
            .send(Message::text(text))
            .await
            .unwrap_or_else(|error| panic!("{}: {error}", self.name));
    }

    /// The next text frame, as JSON.
    pub async fn next(&mut self) -> Value {
        self.next_within(FRAME_WAIT).await
    }

    /// The next text frame, as JSON, within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Value {
        loop {
            let message = tokio::time::timeout(wait, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("{}: no frame within {wait:?}", self.name))
                .unwrap_or_else(|| panic!("{}: connection ended", self.name))
                .unwrap_or_else(|error| panic!("{}: {error}", self.name));
            match message {
                Message::Text(text) => return serde_json::from_str(&text).expect("frames are JSON"),
                Message::Close(frame) => panic!("{}: closed: {frame:?}", self.name),
                _ => continue,
            }
        }
    }

    /// The next frame that is not a presence event.
    pub async fn next_non_presence(&mut self) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] != "presence" {
                return frame;
            }
        }
    }

    /// Reads up to and including the first frame `wanted` accepts: the frames before it,
    /// and it.
    pub async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> (Vec<Value>, Value) {
        let mut before = Vec::new();
        loop {
            let frame = self.next().await;
            if wanted(&frame) {
                return (before, frame);
            }
            before.push(frame);
        }
    }

    /// As [`Client::until`], within `wait` in all.
    pub async fn until_within(&mut self, wait: Duration, wanted: impl Fn(&Value) -> bool) -> (Vec<Value>, Value) {
        let deadline = tokio::time::Instant::now() + wait;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.next_within(left).await;
            if wanted(&frame) {
                return (before, frame);
            }
            before.push(frame);
        }
    }

    /// The next frame of type `kind`, skipping others (presence, pushed messages); an error
    /// frame fails the test.
    pub async fn wait_for(&mut self, kind: &str) -> Value {
        self.wait_for_pushed(kind).await.1
    }

    /// As [`Client::wait_for`]: the frames skipped, and the frame of type `kind`.
    async fn wait_for_pushed(&mut self, kind: &str) -> (Vec<Value>, Value) {
        let mut pushed = Vec::new();
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return (pushed, frame);
            }
            assert_ne!(frame["type"], "error", "{}: waiting for {kind}, got {frame}", self.name);
            pushed.push(frame);
        }
    }

    /// Sends `frame` and returns the reply, skipping pushed presence events.
    pub async fn ask(&mut self, frame: Value) -> Value {
        self.send(frame).await;
        self.next_non_presence().await
    }

    /// Sends `frame`; the reply of type `kind`, skipping frames pushed meanwhile. An error
    /// frame fails the test.
    pub async fn ask_for(&mut self, frame: Value, kind: &str) -> Value {
        self.send(frame).await;
        self.wait_for(kind).await
    }

    pub async fn join(&mut self, room: &str) {
        self.ask_for(json!({"action": "join", "room": room}), "joined").await;
    }

    /// The `whoami` answer.
    pub async fn whoami(&mut self) -> Value {
        self.ask_for(json!({"action": "whoami"}), "whoami").await
    }

    pub async fn connection_id(&mut self) -> String {
        self.whoami().await["connectionId"]
            .as_str()
            .expect("a connection id")
            .to_owned()
    }

    /// Sends `text` to `room` (its own `clientMsgId`); the acknowledged id, and any frames
    /// pushed meanwhile.
    pub async fn say(&mut self, room: &str, text: &str) -> (String, Vec<Value>) {
        self.send(json!({"action": "send", "room": room, "text": text, "clientMsgId": text}))
            .await;
        let (pushed, ack) = self.wait_for_pushed("ack").await;
        (ack["id"].as_str().expect("an ack has an id").to_owned(), pushed)
    }

    /// The ids of `room`'s history after `after` (all of it without), every page.
    pub async fn history_ids(&mut self, room: &str, mut after: Option<String>) -> Vec<String> {
        let mut ids = Vec::new();
        loop {
            let mut request = json!({"action": "history", "room": room, "limit": 100});
            if let Some(after) = &after {
                request["after"] = json!(after);
            }
            let page = self.ask_for(request, "history").await;
            let messages = page["messages"].as_array().expect("a history page has messages");
            ids.extend(
                messages
                    .iter()
                    .map(|message| message["id"].as_str().unwrap().to_owned()),
            );
            if page["more"] != true || messages.is_empty() {
                return ids;
            }
            after = ids.last().cloned();
        }
    }

    /// Asks for `room`'s latest history until its messages satisfy `done` (bounded by
    /// [`CATCH_UP`]); those messages.
    pub async fn history_until(&mut self, room: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        loop {
            let page = self
                .ask_for(json!({"action": "history", "room": room}), "history")
                .await;
            let messages = page["messages"].as_array().cloned().unwrap_or_default();
            if done(&messages) {
                return messages;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: history of {room} still {messages:?} after {CATCH_UP:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Reads until the server closes the connection; the close code.
    pub async fn close_code(&mut self) -> CloseCode {
        loop {
            let message = tokio::time::timeout(FRAME_WAIT, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("{}: not closed within {FRAME_WAIT:?}", self.name));
            match message {
                Some(Ok(Message::Close(frame))) => return frame.map_or(CloseCode::Status, |frame| frame.code),
                Some(Ok(_)) => continue,
                other => panic!("{}: ended without a close frame: {other:?}", self.name),
            }
        }
    }

    /// Every frame received until the connection ends (the gateway died): what this
    /// client had been delivered before.
    pub async fn rest(&mut self) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            let message = tokio::time::timeout(FRAME_WAIT, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("{}: the connection did not end within {FRAME_WAIT:?}", self.name));
            match message {
                Some(Ok(Message::Text(text))) => frames.push(serde_json::from_str(&text).expect("frames are JSON")),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return frames,
                Some(Ok(_)) => continue,
            }
        }
    }
}
