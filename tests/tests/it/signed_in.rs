//! Signed-in users end to end through the local gateway, with real WebSocket clients and
//! tokens, in both modes (embedded backends; moto + tansu): one user on two connections is
//! one user for presence and `who`, a dm reaches both of its connections, an abrupt drop
//! and a clean close together announce `offline` once, and a reconnect is in the user's
//! rooms at once.

use roomcast_core::config::AuthMode;
use roomcast_local::Running;
use roomcast_tests::each_backend;
use roomcast_tests::gateways::{settings, start, Mode};
use roomcast_tests::tokens::hs256_auth;
use roomcast_tests::ws_client::Client;
use serde_json::{json, Value};

each_backend!(
    embedded => gateway(Mode::Embedded).await,
    real => gateway(Mode::Real).await;
    [one_user_on_two_connections_is_one_user_from_arrival_to_reconnect]
);

/// A gateway with sign-in `required`.
async fn gateway(mode: Mode) -> Running {
    let mut settings = settings(mode, &[]);
    settings.auth = hs256_auth(AuthMode::Required);
    start(settings).await
}

fn presence_of(nick: &'static str, event: &'static str) -> impl Fn(&Value) -> bool {
    move |frame| frame["type"] == "presence" && frame["user"]["nick"] == nick && frame["event"] == event
}

async fn one_user_on_two_connections_is_one_user_from_arrival_to_reconnect(gateway: Running) {
    let mut bob = Client::sign_in(&gateway, "u-bob", "bob").await;
    let mut carol = Client::sign_in(&gateway, "u-carol", "carol").await;
    bob.ask_for(json!({"action": "join", "room": "general"}), "joined")
        .await;
    carol
        .ask_for(json!({"action": "join", "room": "general"}), "joined")
        .await;
    bob.until(presence_of("carol", "joined")).await;

    let mut laptop = Client::sign_in(&gateway, "u-alice", "alice").await;
    laptop
        .ask_for(json!({"action": "join", "room": "general"}), "joined")
        .await;
    bob.until(presence_of("alice", "joined")).await;
    // The second device: already in the room, and no second announcement.
    let mut phone = Client::sign_in(&gateway, "u-alice", "alice").await;
    let me = phone.ask_for(json!({"action": "whoami"}), "whoami").await;
    assert_eq!(
        (me["userId"].as_str(), me["rooms"].clone()),
        (Some("u-alice"), json!(["general"]))
    );

    bob.ask_for(json!({"action": "send", "room": "general", "text": "hi alice"}), "ack")
        .await;
    bob.ask_for(json!({"action": "dm", "to": "alice", "text": "psst"}), "ack")
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
    let who = bob.ask_for(json!({"action": "who", "room": "general"}), "who").await;
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
        .ask_for(json!({"action": "send", "room": "general", "text": "marker"}), "ack")
        .await;
    let (between, _) = bob.until(|frame| frame["text"] == "marker").await;
    assert!(
        !between.iter().any(|frame| frame["type"] == "presence"),
        "offline was announced once: {between:?}"
    );
    let who = bob.ask_for(json!({"action": "who", "room": "general"}), "who").await;
    assert_eq!(who["users"].as_array().unwrap().len(), 2, "{who}");

    // Back the next morning: online, and in the room without joining.
    let mut desktop = Client::sign_in(&gateway, "u-alice", "alice").await;
    bob.until(presence_of("alice", "online")).await;
    let me = desktop.ask_for(json!({"action": "whoami"}), "whoami").await;
    assert_eq!(me["rooms"], json!(["general"]));
    carol
        .ask_for(
            json!({"action": "send", "room": "general", "text": "welcome back"}),
            "ack",
        )
        .await;
    let (_, message) = desktop.until(|frame| frame["type"] == "message").await;
    assert_eq!(message["text"], "welcome back");
    gateway.shutdown().await;
}
