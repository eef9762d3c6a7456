//! `POST /api/publish` reaches exactly its target, and needs a role.

use std::collections::BTreeSet;

use roomcast_local::Running;
use roomcast_tests::each_backend;
use roomcast_tests::gateways::{gateway, Mode};
use roomcast_tests::http_client::HttpApi as Api;
use roomcast_tests::ws_client::Client;
use serde_json::{json, Value};

each_backend!(
    embedded => gateway(Mode::Embedded).await,
    real => gateway(Mode::Real).await;
    [publish_reaches_exactly_its_target_and_needs_a_role]
);

async fn publish_reaches_exactly_its_target_and_needs_a_role(gateway: Running) {
    let api = Api::of(&gateway);
    let service = api.dev_token("svc", &["service"]).await;
    let admin = api.dev_token("boss", &["admin"]).await;
    let plain = api.dev_token("plain", &[]).await;
    let reader = api.dev_token("reads", &["reader"]).await;

    // Ann and ben in general, cat in random, dan in no room.
    let mut clients = Vec::new();
    for (nick, room) in [
        ("ann", Some("general")),
        ("ben", Some("general")),
        ("cat", Some("random")),
        ("dan", None),
    ] {
        let mut client = Client::connect(&gateway, nick).await;
        if let Some(room) = room {
            client.join(room).await;
        }
        let me = client.whoami().await;
        clients.push((client, me));
    }
    let user_of = |n: usize| clients[n].1["userId"].clone();
    let connection_of = |n: usize| clients[n].1["connectionId"].clone();
    let publish = |target: Value, n: u32| json!({"target": target, "frame": {"type": "notice", "n": n}}).to_string();

    // Without the role: 403, and nothing goes out (notice 0 must reach nobody).
    for token in [&plain, &reader] {
        let reply = api
            .call(
                "POST",
                "/api/publish",
                Some(token),
                Some(&publish(json!({"all": true}), 0)),
            )
            .await;
        assert_eq!(reply.error(), (403, Some("forbidden")), "{reply:?}");
    }
    // Bad targets and frames: 400.
    for body in [
        json!({"target": {}, "frame": {"type": "notice"}}),
        json!({"target": {"room": "general", "user": user_of(0)}, "frame": {"type": "notice"}}),
        json!({"target": {"all": false}, "frame": {"type": "notice"}}),
        json!({"target": {"everyone": true}, "frame": {"type": "notice"}}),
        json!({"target": "general", "frame": {"type": "notice"}}),
        json!({"frame": {"type": "notice"}}),
        json!({"target": {"all": true}}),
        json!({"target": {"all": true}, "frame": "notice"}),
        json!({"target": {"all": true}, "frame": {"text": "no type"}}),
        json!({"target": {"all": true}, "frame": {"type": "notice"}, "except": connection_of(0)}),
    ] {
        let reply = api
            .call("POST", "/api/publish", Some(&service), Some(&body.to_string()))
            .await;
        assert_eq!(reply.error(), (400, Some("bad_request")), "{body}: {reply:?}");
    }
    let reply = api.call("POST", "/api/publish", Some(&service), Some("not json")).await;
    assert_eq!(reply.error(), (400, Some("bad_request")), "{reply:?}");
    // Frames of the chat protocol: a service cannot speak as a user nor rewrite history
    // (were one let through, everyone would get it below, where only notices are allowed).
    let from = json!({"userId": user_of(0), "nick": "ann"});
    for frame in [
        json!({"type": "message", "room": "general", "id": "01HZY3J5Q6V9W8X7Y6Z5A4B3C2", "from": from, "text": "forged", "ts": 1}),
        json!({"type": "dm", "id": "01HZY3J5Q6V9W8X7Y6Z5A4B3C2", "from": from, "to": from, "text": "forged", "ts": 1}),
        json!({"type": "edited", "room": "general", "id": "01HZY3J5Q6V9W8X7Y6Z5A4B3C2", "text": "x", "editedAt": 1, "by": from}),
        json!({"type": "deleted", "room": "general", "id": "01HZY3J5Q6V9W8X7Y6Z5A4B3C2", "by": from}),
        json!({"type": "presence", "room": "general", "event": "left", "user": from}),
        json!({"type": "ack", "id": "01HZY3J5Q6V9W8X7Y6Z5A4B3C2", "ts": 1}),
        json!({"type": "error", "code": "forbidden", "message": "x"}),
        json!({"type": "history", "room": "general", "messages": [], "more": false}),
        json!({"type": "Message", "text": "another case"}),
    ] {
        let kind = frame["type"].as_str().unwrap().to_lowercase();
        let body = json!({"target": {"all": true}, "frame": frame}).to_string();
        let reply = api.call("POST", "/api/publish", Some(&service), Some(&body)).await;
        assert_eq!(reply.error(), (400, Some("bad_request")), "{body}: {reply:?}");
        let message = reply.body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("\"{kind}\"")),
            "the refusal names {kind}: {reply:?}"
        );
    }

    // A room, a user, a connection and everyone in a room, by the service and the admin.
    let cases = [
        (&service, json!({"room": "general"}), 1, [true, true, false, false]),
        (&service, json!({"user": user_of(2)}), 2, [false, false, true, false]),
        (
            &admin,
            json!({"connection": connection_of(3)}),
            3,
            [false, false, false, true],
        ),
        (&admin, json!({"all": true}), 4, [true, true, true, false]),
    ];
    let mut published_ids = BTreeSet::new();
    for (token, target, n, _) in &cases {
        let reply = api
            .call("POST", "/api/publish", Some(token), Some(&publish(target.clone(), *n)))
            .await;
        assert_eq!(
            (reply.status, &reply.body["type"]),
            (202, &json!("published")),
            "{target}: {reply:?}"
        );
        let id = reply.body["id"].as_str().expect("an id").to_owned();
        assert!(ulid::Ulid::from_string(&id).is_ok(), "{reply:?}");
        published_ids.insert(id);
    }
    assert_eq!(published_ids.len(), cases.len(), "each publish has its own id");

    // Each client gets exactly its notices, each once (in any order: targets are keyed
    // apart, so their records may be on different partitions). First wait for every
    // notice a client is due, then send each a sentinel on its own connection and read up
    // to it, so that a notice it must not get would have come by then.
    let due = |client: usize| -> Vec<u32> { cases.iter().filter(|case| case.3[client]).map(|case| case.2).collect() };
    let mut received: Vec<Vec<Value>> = Vec::new();
    for (index, (client, _)) in clients.iter_mut().enumerate() {
        let mut frames: Vec<Value> = Vec::new();
        let mut waiting = due(index);
        while !waiting.is_empty() {
            let frame = client.next().await;
            waiting.retain(|n| !(frame["type"] == "notice" && frame["n"] == *n));
            frames.push(frame);
        }
        received.push(frames);
    }
    for (index, (client, me)) in clients.iter_mut().enumerate() {
        let sentinel = json!({"target": {"connection": me["connectionId"]}, "frame": {"type": "sentinel"}});
        let reply = api
            .call("POST", "/api/publish", Some(&service), Some(&sentinel.to_string()))
            .await;
        assert_eq!(reply.status, 202, "{reply:?}");
        let (before, _) = client.until(|frame| frame["type"] == "sentinel").await;
        received[index].extend(before);
        let mut notices: Vec<u32> = received[index]
            .iter()
            .filter(|frame| frame["type"] != "presence")
            .map(|frame| {
                assert_eq!(frame["type"], "notice", "{}: {frame}", client.name);
                // The frame arrives as it was published.
                assert_eq!(frame.as_object().unwrap().len(), 2, "{}: {frame}", client.name);
                frame["n"].as_u64().unwrap() as u32
            })
            .collect();
        notices.sort_unstable();
        assert_eq!(notices, due(index), "{}", client.name);
    }
    gateway.shutdown().await;
}

/// A publish to a target that names nothing that can exist (an empty user id, a room
/// name the protocol refuses) is a bad target, as the same name is in a `join`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_a_malformed_target_name_is_400() {
    roomcast_tests::init_tracing();
    let gateway = gateway(Mode::Embedded).await;
    let api = Api::of(&gateway);
    let service = api.dev_token("svc", &["service"]).await;
    for target in [
        json!({"room": ""}),
        json!({"room": "bad name"}),
        json!({"room": "n".repeat(200)}),
        json!({"user": ""}),
        json!({"connection": ""}),
    ] {
        let body = json!({"target": target, "frame": {"type": "notice"}}).to_string();
        let reply = api.call("POST", "/api/publish", Some(&service), Some(&body)).await;
        assert_eq!(reply.error(), (400, Some("bad_request")), "{target}: {reply:?}");
    }
    gateway.shutdown().await;
}
