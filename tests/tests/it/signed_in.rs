//! Signed-in users end to end through the local gateway, with real WebSocket clients and
//! tokens, in both modes (embedded backends; moto + tansu): one user on two connections is
//! one user for presence and `who`, a dm reaches both of its connections, an abrupt drop
//! and a clean close together announce `offline` once, and a reconnect is in the user's
//! rooms at once.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use roomcast_aws::config::Env;
use roomcast_core::config::AuthMode;
use roomcast_local::Running;
use roomcast_tests::each_backend;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use ws_authorizer::{HmacKey, NewToken, Secret};

use crate::gateway::Mode;

const SECRET: &[u8] = b"signed-in-end-to-end-secret-of-32-bytes+";
/// Longest wait for any one frame: generous for a loaded CI machine.
const WAIT: Duration = Duration::from_secs(20);

each_backend!(
    embedded => gateway(Mode::Embedded).await,
    real => gateway(Mode::Real).await;
    [one_user_on_two_connections_is_one_user_from_arrival_to_reconnect]
);

fn auth() -> ws_authorizer::Settings {
    let mut auth = ws_authorizer::Settings::new(AuthMode::Required);
    auth.hmac = Some(HmacKey::Secret(Secret::new(SECRET)));
    auth
}

async fn gateway(mode: Mode) -> Running {
    let mut settings = crate::gateway::settings(mode, &[]);
    settings.auth = auth();
    let env = Env::new(|_: &str| None);
    roomcast_local::start(settings, env.domain().unwrap(), env.fan_out().unwrap())
        .await
        .expect("gateway starts")
}

struct Client {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    name: &'static str,
}

impl Client {
    async fn sign_in(gateway: &Running, user: &str, name: &'static str) -> Client {
        let token = ws_authorizer::sign_hs256(SECRET, &NewToken::new(user).nick(name).matching(&auth())).unwrap();
        let url = format!("{}/?token={token}", gateway.ws_url());
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        Client { socket, name }
    }

    async fn send(&mut self, frame: Value) {
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .expect("frame sent");
    }

    async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("{}: no frame within {WAIT:?}", self.name))
                .unwrap_or_else(|| panic!("{}: connection ended", self.name))
                .unwrap_or_else(|error| panic!("{}: {error}", self.name));
            if let Message::Text(text) = message {
                return serde_json::from_str(&text).expect("frames are JSON");
            }
        }
    }

    /// Reads up to and including the first frame `wanted` accepts; returns the frames
    /// that came before it, and it.
    async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> (Vec<Value>, Value) {
        let mut before = Vec::new();
        loop {
            let frame = self.next().await;
            if wanted(&frame) {
                return (before, frame);
            }
            before.push(frame);
        }
    }

    /// Sends `frame` and returns the reply of type `expected` (skipping pushed frames).
    async fn ask(&mut self, frame: Value, expected: &str) -> Value {
        self.send(frame).await;
        self.until(|reply| reply["type"] == expected || reply["type"] == "error")
            .await
            .1
    }
}

fn presence_of(nick: &'static str, event: &'static str) -> impl Fn(&Value) -> bool {
    move |frame| frame["type"] == "presence" && frame["user"]["nick"] == nick && frame["event"] == event
}

async fn one_user_on_two_connections_is_one_user_from_arrival_to_reconnect(gateway: Running) {
    let mut bob = Client::sign_in(&gateway, "u-bob", "bob").await;
    let mut carol = Client::sign_in(&gateway, "u-carol", "carol").await;
    bob.ask(json!({"action": "join", "room": "general"}), "joined").await;
    carol.ask(json!({"action": "join", "room": "general"}), "joined").await;
    bob.until(presence_of("carol", "joined")).await;

    let mut laptop = Client::sign_in(&gateway, "u-alice", "alice").await;
    laptop.ask(json!({"action": "join", "room": "general"}), "joined").await;
    bob.until(presence_of("alice", "joined")).await;
    // The second device: already in the room, and no second announcement.
    let mut phone = Client::sign_in(&gateway, "u-alice", "alice").await;
    let me = phone.ask(json!({"action": "whoami"}), "whoami").await;
    assert_eq!(
        (me["userId"].as_str(), me["rooms"].clone()),
        (Some("u-alice"), json!(["general"]))
    );

    bob.ask(json!({"action": "send", "room": "general", "text": "hi alice"}), "ack")
        .await;
    bob.ask(json!({"action": "dm", "to": "alice", "text": "psst"}), "ack")
        .await;
    for device in [&mut laptop, &mut phone] {
        // The room's records and alice's are keyed apart: they may arrive in either order.
        let (mut message, mut dm) = (None, None);
        while message.is_none() || dm.is_none() {
            let frame = device.next().await;
            match frame["type"].as_str() {
                Some("message") => message = Some(frame),
                Some("dm") => dm = Some(frame),
                _ => {}
            }
        }
        assert_eq!(message.unwrap()["text"], "hi alice");
        let dm = dm.unwrap();
        assert_eq!(
            (dm["text"].as_str(), dm["from"]["nick"].as_str()),
            (Some("psst"), Some("bob"))
        );
    }
    let who = bob.ask(json!({"action": "who", "room": "general"}), "who").await;
    assert_eq!(
        who["users"],
        json!([
            {"userId": "u-alice", "nick": "alice", "connections": 2},
            {"userId": "u-bob", "nick": "bob", "connections": 1},
            {"userId": "u-carol", "nick": "carol", "connections": 1},
        ])
    );

    // The phone loses signal (no close frame), the laptop closes: offline, once.
    drop(phone);
    laptop.socket.close(None).await.expect("close sent");
    let (before, _) = bob.until(presence_of("alice", "offline")).await;
    assert!(
        !before
            .iter()
            .any(|frame| frame["type"] == "presence" && frame["user"]["nick"] == "alice"),
        "alice's second connection was announced: {before:?}"
    );
    // A message carol sends now reaches bob after anything published before it.
    carol
        .ask(json!({"action": "send", "room": "general", "text": "marker"}), "ack")
        .await;
    let (between, _) = bob.until(|frame| frame["text"] == "marker").await;
    assert!(
        !between.iter().any(|frame| frame["type"] == "presence"),
        "offline was announced once: {between:?}"
    );
    let who = bob.ask(json!({"action": "who", "room": "general"}), "who").await;
    assert_eq!(who["users"].as_array().unwrap().len(), 2, "{who}");

    // Back the next morning: online, and in the room without joining.
    let mut desktop = Client::sign_in(&gateway, "u-alice", "alice").await;
    bob.until(presence_of("alice", "online")).await;
    let me = desktop.ask(json!({"action": "whoami"}), "whoami").await;
    assert_eq!(me["rooms"], json!(["general"]));
    carol
        .ask(
            json!({"action": "send", "room": "general", "text": "welcome back"}),
            "ack",
        )
        .await;
    let (_, message) = desktop.until(|frame| frame["type"] == "message").await;
    assert_eq!(message["text"], "welcome back");
    gateway.shutdown().await;
}
