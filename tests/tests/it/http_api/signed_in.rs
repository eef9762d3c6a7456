//! A signed-in user is one user over WebSocket and HTTP; refused tokens get 401.

use roomcast_local::Running;
use roomcast_tests::each_backend;
use roomcast_tests::gateways::{signed_in_gateway, Mode};
use roomcast_tests::http_client::HttpApi as Api;
use roomcast_tests::tokens::{alg_none, hs256, now_secs, signed_token, SECRET};
use roomcast_tests::ws_client::Client;
use serde_json::json;

use super::{has_id, ids, is_message};

each_backend!(
    signed_in_embedded => signed_in_gateway(Mode::Embedded).await,
    signed_in_real => signed_in_gateway(Mode::Real).await;
    [
        a_signed_in_user_is_one_user_over_websocket_and_http,
        refused_tokens_get_401_unauthorized,
    ]
);

async fn a_signed_in_user_is_one_user_over_websocket_and_http(gateway: Running) {
    let api = Api::of(&gateway);
    // With a key configured, no dev tokens.
    let reply = api
        .call("POST", "/api/dev/token", None, Some(r#"{"nick":"mallory"}"#))
        .await;
    assert_eq!((reply.status, &reply.body), (404, &json!({"message": "Not Found"})));

    let alice = signed_token("u-alice", "alice", &[]);
    let bob = signed_token("u-bob", "bob", &[]);
    let mut laptop = Client::with_token(&gateway, &alice, "alice's laptop").await;
    let mut bob_ws = Client::with_token(&gateway, &bob, "bob").await;
    bob_ws.join("general").await;

    // Alice joins over HTTP: her open connection is in the room at once.
    let joined = api
        .call("PUT", "/api/rooms/general/members/me", Some(&alice), None)
        .await;
    assert_eq!(
        (joined.status, &joined.body),
        (200, &json!({"type": "joined", "room": "general"}))
    );
    let (_, frame) = laptop.until(|frame| frame["type"] == "joined").await;
    assert_eq!(frame, json!({"type": "joined", "room": "general"}));
    let me = laptop.whoami().await;
    assert_eq!(
        (&me["userId"], &me["rooms"]),
        (&json!("u-alice"), &json!(["general"])),
        "{me}"
    );
    let (_, presence) = bob_ws
        .until(|frame| frame["type"] == "presence" && frame["user"]["userId"] == "u-alice")
        .await;
    assert_eq!(presence["event"], "joined", "{presence}");
    // Online through her connection, as `who` over HTTP shows.
    let who = api.call("GET", "/api/rooms/general/who", Some(&alice), None).await;
    assert_eq!(
        who.body["users"],
        json!([
            {"userId": "u-alice", "nick": "alice", "connections": 1},
            {"userId": "u-bob", "nick": "bob", "connections": 1},
        ]),
        "{who:?}"
    );

    // Her connection gets the room's messages, and what she sends over HTTP (she sent
    // it from no connection, so every one of hers shows it).
    let hello = bob_ws
        .ask_for(json!({"action": "send", "room": "general", "text": "hi alice"}), "ack")
        .await;
    let (_, message) = laptop.until(is_message(&hello["id"])).await;
    assert_eq!(message["from"], json!({"userId": "u-bob", "nick": "bob"}));
    let ack = api.send_message(&alice, "general", "hi bob, from my phone").await;
    for client in [&mut bob_ws, &mut laptop] {
        let (_, message) = client.until(is_message(&ack["id"])).await;
        assert_eq!(
            message["from"],
            json!({"userId": "u-alice", "nick": "alice"}),
            "{}",
            client.name
        );
    }
    // Bob's message is in her history too.
    let page = api
        .history_until(&alice, "/api/rooms/general/messages", has_id(&ack["id"]))
        .await;
    assert_eq!(
        ids(page["messages"].as_array().unwrap()),
        [&hello["id"], &ack["id"]].map(|id| id.as_str().unwrap().to_owned())
    );

    // Leaving over HTTP takes her connection out of the room as well.
    let left = api
        .call("DELETE", "/api/rooms/general/members/me", Some(&alice), None)
        .await;
    assert_eq!(left.status, 200, "{left:?}");
    let (_, frame) = laptop.until(|frame| frame["type"] == "left").await;
    assert_eq!(frame, json!({"type": "left", "room": "general"}));
    let me = laptop.whoami().await;
    assert_eq!(me["rooms"], json!([]), "{me}");
    gateway.shutdown().await;
}

async fn refused_tokens_get_401_unauthorized(gateway: Running) {
    let api = Api::of(&gateway);
    let good = json!({"sub": "u-mallory", "nickname": "mallory", "exp": now_secs() + 600});
    let mut expired = good.clone();
    expired["exp"] = json!(now_secs() - 3600);
    let mut not_yet = good.clone();
    not_yet["nbf"] = json!(now_secs() + 3600);
    let cases = [
        ("expired", hs256(SECRET, &expired)),
        ("not yet valid", hs256(SECRET, &not_yet)),
        (
            "wrong signature",
            hs256(b"not-the-gateway-secret-but-also-32-bytes-long", &good),
        ),
        ("alg none", alg_none(&good)),
        ("garbage", "not-a-jwt".to_owned()),
    ];
    // The same claims, rightly signed, are let in: each case fails for its one reason.
    let rooms = api.call("GET", "/api/rooms", Some(&hs256(SECRET, &good)), None).await;
    assert_eq!(rooms.status, 200, "{rooms:?}");
    for (case, token) in &cases {
        for (method, path, body) in [
            ("GET", "/api/rooms", None),
            ("PUT", "/api/rooms/general/members/me", None),
            (
                "POST",
                "/api/publish",
                Some(r#"{"target":{"all":true},"frame":{"type":"x"}}"#),
            ),
        ] {
            let reply = api.call(method, path, Some(token), body).await;
            assert_eq!(reply.error(), (401, Some("unauthorized")), "{case}: {method} {path}");
        }
    }
    // None of them joined: mallory is nobody's member.
    let who = api
        .call("GET", "/api/rooms/general/who", Some(&hs256(SECRET, &good)), None)
        .await;
    assert_eq!(who.error(), (403, Some("not_member")));
    gateway.shutdown().await;
}
