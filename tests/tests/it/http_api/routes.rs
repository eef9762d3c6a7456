//! Every route of the HTTP API answers as the WebSocket command it stands for, with its
//! status; refused requests get their status and change nothing.

use std::collections::BTreeSet;

use roomcast_core::http::ROUTES;
use roomcast_local::Running;
use roomcast_tests::each_backend;
use roomcast_tests::gateways::{gateway, Mode};
use roomcast_tests::http_client::HttpApi as Api;
use roomcast_tests::tokens::{alg_none, hs256, now_secs};
use roomcast_tests::ws_client::Client;
use serde_json::{json, Value};

use super::{has_id, ids, is_message};

each_backend!(
    embedded => gateway(Mode::Embedded).await,
    real => gateway(Mode::Real).await;
    [
        every_route_answers_as_its_command,
        refused_requests_get_their_status_and_change_nothing,
    ]
);

async fn every_route_answers_as_its_command(gateway: Running) {
    let api = Api::of(&gateway);
    let alice = api.dev_token("alice", &[]).await;
    // Roles asked for are in the token.
    api.dev_token("opal", &["ops", "service"]).await;

    let created = api
        .call("POST", "/api/rooms", Some(&alice), Some(r#"{"room":"lobby"}"#))
        .await;
    assert_eq!(
        (created.status, &created.body),
        (201, &json!({"type": "roomCreated", "room": "lobby"}))
    );
    let again = api
        .call("POST", "/api/rooms", Some(&alice), Some(r#"{"room":"lobby"}"#))
        .await;
    assert_eq!(again.error(), (409, Some("conflict")), "{again:?}");

    let rooms = api.call("GET", "/api/rooms", Some(&alice), None).await;
    assert_eq!((rooms.status, &rooms.body["type"]), (200, &json!("rooms")), "{rooms:?}");
    for room in ["lobby", "general", "random"] {
        assert!(
            rooms.body["rooms"]
                .as_array()
                .unwrap()
                .contains(&json!({ "name": room })),
            "{room}: {rooms:?}"
        );
    }

    // A WebSocket member of the room, online for `who`.
    let mut wes = Client::connect(&gateway, "wes").await;
    let wes_id = wes.whoami().await["userId"].clone();
    wes.join("lobby").await;

    for _ in 0..2 {
        // Joining twice is answered `joined` both times.
        let joined = api.call("PUT", "/api/rooms/lobby/members/me", Some(&alice), None).await;
        assert_eq!(
            (joined.status, &joined.body),
            (200, &json!({"type": "joined", "room": "lobby"}))
        );
    }

    let sent = api
        .call(
            "POST",
            "/api/rooms/lobby/messages",
            Some(&alice),
            Some(r#"{"text":"hello lobby","clientMsgId":"c-1"}"#),
        )
        .await;
    assert_eq!(sent.status, 202, "{sent:?}");
    let ack = &sent.body;
    assert_eq!(
        (&ack["type"], &ack["room"], &ack["clientMsgId"]),
        (&json!("ack"), &json!("lobby"), &json!("c-1")),
        "{ack}"
    );
    assert!(
        ack["id"].as_str().is_some_and(|id| ulid::Ulid::from_string(id).is_ok()),
        "{ack}"
    );
    assert!(ack["ts"].as_i64().is_some_and(|ts| ts > 0), "{ack}");
    // Wes, online in the room, gets it.
    let (_, message) = wes.until(is_message(&ack["id"])).await;
    assert_eq!(message["from"], json!({"userId": "dev-alice", "nick": "alice"}));

    let page = api
        .history_until(&alice, "/api/rooms/lobby/messages", has_id(&ack["id"]))
        .await;
    assert_eq!(
        page,
        json!({
            "type": "history",
            "room": "lobby",
            "messages": [{
                "id": ack["id"],
                "from": {"userId": "dev-alice", "nick": "alice"},
                "text": "hello lobby",
                "ts": ack["ts"],
            }],
            "more": false,
        })
    );
    for cursor in ["before", "after"] {
        let path = format!(
            "/api/rooms/lobby/messages?{cursor}={}&limit=10",
            ack["id"].as_str().unwrap()
        );
        let page = api.call("GET", &path, Some(&alice), None).await;
        assert_eq!(
            (page.status, &page.body["messages"], &page.body["more"]),
            (200, &json!([]), &json!(false)),
            "{cursor}: {page:?}"
        );
    }

    // Online members: wes (alice holds no connection, so she is not online).
    let who = api.call("GET", "/api/rooms/lobby/who", Some(&alice), None).await;
    assert_eq!(
        (who.status, &who.body),
        (
            200,
            &json!({
                "type": "who",
                "room": "lobby",
                "users": [{"userId": wes_id, "nick": "wes", "connections": 1}],
                "more": false,
            })
        )
    );

    let left = api
        .call("DELETE", "/api/rooms/lobby/members/me", Some(&alice), None)
        .await;
    assert_eq!(
        (left.status, &left.body),
        (200, &json!({"type": "left", "room": "lobby"}))
    );
    // Left: no longer a member.
    let refused = api
        .call(
            "POST",
            "/api/rooms/lobby/messages",
            Some(&alice),
            Some(r#"{"text":"still here?"}"#),
        )
        .await;
    assert_eq!(refused.error(), (403, Some("not_member")), "{refused:?}");
    gateway.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Errors

async fn refused_requests_get_their_status_and_change_nothing(gateway: Running) {
    let api = Api::of(&gateway);
    let olga = api.dev_token("olga", &[]).await;
    let nina = api.dev_token("nina", &[]).await;
    // A WebSocket member sees every message of the room.
    let mut wendy = Client::connect(&gateway, "wendy").await;
    wendy.join("general").await;
    let joined = api
        .call("PUT", "/api/rooms/general/members/me", Some(&olga), None)
        .await;
    assert_eq!(joined.status, 200, "{joined:?}");
    let first = api.send_message(&olga, "general", "before the refusals").await;
    let history = "/api/rooms/general/messages";
    api.history_until(&olga, history, has_id(&first["id"])).await;
    let send = |text: &str| json!({ "text": text }).to_string();

    // No Authorization header (or an empty one): API Gateway's own 401, on every route.
    for route in ROUTES {
        let path = route.path.replace("{room}", "general");
        let body = (route.method == "POST").then(|| send("no token"));
        for headers in [&[][..], &[("authorization", "")][..]] {
            let reply = api
                .send(route.method, &path, headers, body.clone().map(String::into_bytes))
                .await;
            assert_eq!(
                (reply.status, &reply.body),
                (401, &json!({"message": "Unauthorized"})),
                "{} {path} {headers:?}",
                route.method
            );
        }
    }

    // Tokens the authorizer lets through, refused: 401 `unauthorized` from http-api.
    let claims = json!({"sub": "dev-olga", "nickname": "olga", "exp": now_secs() + 600});
    let bad_tokens = [
        ("garbage", "Bearer not-a-jwt".to_owned()),
        (
            "wrong signature",
            format!(
                "Bearer {}",
                hs256(b"not-the-gateway-dev-secret-but-32-bytes-long", &claims)
            ),
        ),
        ("alg none", format!("Bearer {}", alg_none(&claims))),
        ("not a bearer token", "Basic b2xnYTpzZWNyZXQ=".to_owned()),
        ("bearer without a token", "Bearer".to_owned()),
    ];
    for (case, header) in &bad_tokens {
        let body = send(case);
        let reply = api
            .send(
                "POST",
                "/api/rooms/general/messages",
                &[("authorization", header)],
                Some(body.into_bytes()),
            )
            .await;
        assert_eq!(reply.error(), (401, Some("unauthorized")), "{case}: {reply:?}");
    }

    // Not a member: send, history and who.
    for (method, path, body) in [
        ("POST", "/api/rooms/general/messages", Some(send("nina was here"))),
        ("GET", "/api/rooms/general/messages", None),
        ("GET", "/api/rooms/general/who", None),
    ] {
        let reply = api.call(method, path, Some(&nina), body.as_deref()).await;
        assert_eq!(reply.error(), (403, Some("not_member")), "{method} {path}: {reply:?}");
    }
    // An unknown room.
    let reply = api
        .call("PUT", "/api/rooms/nowhere/members/me", Some(&nina), None)
        .await;
    assert_eq!(reply.error(), (404, Some("not_found")), "{reply:?}");

    // Bodies that are not what the route takes (from a member, who may send).
    let huge_body = json!({ "text": "x".repeat(40 * 1024) }).to_string();
    let long_text = send(&"x".repeat(5000));
    for (path, body, status, code) in [
        ("/api/rooms/general/messages", "not json", 400, "bad_request"),
        ("/api/rooms/general/messages", r#"{"text":"cut"#, 400, "bad_request"),
        ("/api/rooms/general/messages", r#"["text"]"#, 400, "bad_request"),
        ("/api/rooms/general/messages", "", 400, "bad_request"),
        ("/api/rooms/general/messages", "{}", 400, "bad_request"),
        ("/api/rooms/general/messages", r#"{"text":5}"#, 400, "bad_request"),
        ("/api/rooms/general/messages", r#"{"text":""}"#, 400, "bad_request"),
        (
            "/api/rooms/general/messages",
            r#"{"text":"hi","replyTo":"not-an-id"}"#,
            400,
            "bad_request",
        ),
        ("/api/rooms/general/messages", &huge_body, 413, "too_large"),
        ("/api/rooms/general/messages", &long_text, 413, "too_large"),
        ("/api/rooms", "not json", 400, "bad_request"),
        ("/api/rooms", r#"{"room":"bad name"}"#, 400, "bad_request"),
        ("/api/rooms", r#"{"name":"misnamed"}"#, 400, "bad_request"),
    ] {
        let reply = api.call("POST", path, Some(&olga), Some(body)).await;
        assert_eq!(reply.error(), (status, Some(code)), "POST {path} {body:.40}: {reply:?}");
    }

    let bearer = format!("Bearer {olga}");
    let reply = api
        .send(
            "POST",
            "/api/rooms/general/messages",
            &[("authorization", &bearer)],
            Some(vec![0xff, 0xfe, b'{']),
        )
        .await;
    assert_eq!(reply.error(), (400, Some("bad_request")), "not UTF-8: {reply:?}");
    // Dev tokens for what no token may say.
    for body in [
        r#"{"nick":"bad name"}"#,
        r#"{"nick":""}"#,
        r#"{"nick":"ok","roles":["a b"]}"#,
        r#"{"nick":"ok","roles":"admin"}"#,
        r#"{"nick":"ok","sub":"someone-else"}"#,
        r#"{"roles":["admin"]}"#,
        "not json",
    ] {
        let reply = api
            .send("POST", "/api/dev/token", &[], Some(body.as_bytes().to_vec()))
            .await;
        assert_eq!(reply.error(), (400, Some("bad_request")), "dev token {body}: {reply:?}");
    }

    // No route: API Gateway's own 404, whatever the token.
    for (method, path) in [
        ("GET", "/api/nothing"),
        ("GET", "/api"),
        ("GET", "/api/rooms/general"),
        ("GET", "/api/rooms/general/messages/extra"),
        ("GET", "/api/rooms//messages"),
        ("PATCH", "/api/rooms"),
        ("DELETE", "/api/rooms"),
        ("POST", "/api/rooms/general/who"),
        ("DELETE", "/api/rooms/general/messages"),
        ("GET", "/api/publish"),
        ("GET", "/api/rooms/general/members/me"),
    ] {
        let body = (method == "POST").then(|| send("lost"));
        let reply = api.call(method, path, Some(&olga), body.as_deref()).await;
        assert_eq!(
            (reply.status, &reply.body),
            (404, &json!({"message": "Not Found"})),
            "{method} {path}"
        );
    }

    // A bad room name in the path.
    let long_name = "n".repeat(200);
    for (method, room) in [
        ("PUT", "bad%20name"),
        ("PUT", "a%2Fb"),
        ("PUT", long_name.as_str()),
        ("GET", "bad%20name"),
        ("POST", "bad%20name"),
    ] {
        let path = match method {
            "PUT" => format!("/api/rooms/{room}/members/me"),
            _ => format!("/api/rooms/{room}/messages"),
        };
        let body = (method == "POST").then(|| send("to a bad room"));
        let reply = api.call(method, &path, Some(&olga), body.as_deref()).await;
        assert_eq!(
            reply.error(),
            (400, Some("bad_request")),
            "{method} {path:.60}: {reply:?}"
        );
    }

    // Bad pages.
    let id = first["id"].as_str().unwrap();
    for query in [
        "limit=0".to_owned(),
        "limit=ten".to_owned(),
        "limit=101".to_owned(),
        "limit=-1".to_owned(),
        "limit=".to_owned(),
        "after=not-an-id".to_owned(),
        "before=42".to_owned(),
        format!("before={id}&after={id}"),
    ] {
        let reply = api.call("GET", &format!("{history}?{query}"), Some(&olga), None).await;
        assert_eq!(reply.error(), (400, Some("bad_request")), "{query}: {reply:?}");
    }

    // Nothing refused got through: the next message follows the first, for wendy over
    // WebSocket and in the history alike.
    let last = api.send_message(&olga, "general", "after the refusals").await;
    let (before, _) = wendy.until(is_message(&last["id"])).await;
    let pushed: Vec<&Value> = before.iter().filter(|frame| frame["type"] == "message").collect();
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    assert_eq!(pushed[0]["id"], first["id"]);
    let page = api.history_until(&olga, history, has_id(&last["id"])).await;
    assert_eq!(
        ids(page["messages"].as_array().unwrap()),
        [&first["id"], &last["id"]].map(|id| id.as_str().unwrap().to_owned())
    );
    // No room was made, and nina is still no member.
    let rooms = api.call("GET", "/api/rooms", Some(&olga), None).await;
    let names: BTreeSet<&str> = rooms.body["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|room| room["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["admin", "general", "random"]), "{rooms:?}");
    let reply = api.call("GET", "/api/rooms/general/who", Some(&nina), None).await;
    assert_eq!(reply.error(), (403, Some("not_member")));
    gateway.shutdown().await;
}

/// A body of a few megabytes is over the frame limit like any other: API Gateway (10 MB
/// payloads) hands it to http-api, which answers 413 `too_large` as JSON. Over 10 MB, API
/// Gateway refuses it itself, with its own body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_megabytes_gets_413_too_large_as_json() {
    roomcast_tests::init_tracing();
    let gateway = gateway(Mode::Embedded).await;
    let api = Api::of(&gateway);
    let olga = api.dev_token("olga", &[]).await;
    api.call("PUT", "/api/rooms/general/members/me", Some(&olga), None)
        .await;
    let body = json!({ "text": "x".repeat(3 * 1024 * 1024) }).to_string();
    let reply = api
        .call("POST", "/api/rooms/general/messages", Some(&olga), Some(&body))
        .await;
    assert_eq!(reply.error(), (413, Some("too_large")), "{reply:?}");
    let body = json!({ "text": "x".repeat(11 * 1024 * 1024) }).to_string();
    let reply = api
        .call("POST", "/api/rooms/general/messages", Some(&olga), Some(&body))
        .await;
    assert_eq!(
        (reply.status, &reply.body),
        (413, &json!({"message": "Request Entity Too Large"}))
    );
    gateway.shutdown().await;
}
