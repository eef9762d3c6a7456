//! Nicknames cannot be borrowed (issue 22, item 3): two different users never show under
//! the same nickname at once, over WebSocket or HTTP. Through the local gateway with sign-in
//! (embedded backends; moto + tansu), real WebSocket and HTTP clients: a token that names
//! another online user's nickname is refused with 409 `conflict` on every HTTP action that
//! would show the name, and nothing it tried reaches the room; the user who holds the
//! nickname uses it over HTTP as well.

use roomcast_local::Running;
use roomcast_tests::each_backend;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite;

use crate::gateway::Mode;
use crate::http_api::{signed_in_gateway, signed_token, Api, Ws};

each_backend!(
    embedded => signed_in_gateway(Mode::Embedded).await,
    real => signed_in_gateway(Mode::Real).await;
    [an_online_users_nickname_cannot_be_borrowed_over_http_or_websocket]
);

async fn an_online_users_nickname_cannot_be_borrowed_over_http_or_websocket(gateway: Running) {
    let api = Api::new(&gateway);
    let alice = signed_token("u-alice", "alice", &[]);
    let mallory = signed_token("u-mallory", "alice", &[]);
    let mut laptop = Ws::connect(&gateway, &format!("?token={alice}"), "alice").await;
    laptop.join("general").await;

    // Over HTTP, every action that shows its caller is refused while alice is online.
    let send = json!({"text": "it is me, alice"}).to_string();
    for (method, path, body) in [
        ("PUT", "/api/rooms/general/members/me", None),
        ("POST", "/api/rooms/general/messages", Some(send.as_str())),
        ("DELETE", "/api/rooms/general/members/me", None),
    ] {
        let reply = api.call(method, path, Some(&mallory), body).await;
        assert_eq!(reply.error(), (409, Some("conflict")), "{method} {path}: {reply:?}");
        let message = reply.body["message"].as_str().unwrap_or_default();
        assert!(message.contains("nickname `alice` is taken"), "{reply:?}");
    }
    // Reads show no one: they still work.
    let rooms = api.call("GET", "/api/rooms", Some(&mallory), None).await;
    assert_eq!(rooms.status, 200, "{rooms:?}");

    // Over WebSocket, the handshake is refused as it always was, with or without a token.
    for query in [format!("?token={mallory}"), "?name=alice".to_owned()] {
        let url = format!("{}/{query}", gateway.ws_url());
        match tokio_tungstenite::connect_async(url).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 409, "{query}"),
            other => panic!("{query}: expected HTTP 409, got {other:?}"),
        }
    }

    // Alice herself uses her nickname over HTTP too; hers is the first message the room
    // sees, so nothing of mallory's reached it.
    let joined = api
        .call("PUT", "/api/rooms/general/members/me", Some(&alice), None)
        .await;
    assert_eq!(joined.status, 200, "{joined:?}");
    let sent = api
        .call(
            "POST",
            "/api/rooms/general/messages",
            Some(&alice),
            Some(r#"{"text":"from my phone"}"#),
        )
        .await;
    assert_eq!(sent.status, 202, "{sent:?}");
    let (_, message) = laptop.until(|frame: &Value| frame["type"] == "message").await;
    assert_eq!(
        (&message["from"], &message["text"]),
        (&json!({"userId": "u-alice", "nick": "alice"}), &json!("from my phone")),
        "{message}"
    );
    gateway.shutdown().await;
}
