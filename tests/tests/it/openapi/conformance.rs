//! Real requests for every route's success and every way it can fail, as tables of cases
//! (a [`Request`] and the [`Answer`] it must get) run in order on one gateway, then on one
//! with small quotas and one with sign-in on (`conformance/limits.rs`): each answer's
//! status is one the document declares for that operation, and its body validates against
//! the schema declared for that status; every declared status is produced by some request
//! (but [`NOT_PRODUCED`]). Edits, deletes, direct messages and files are in
//! `conformance/messages.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use roomcast_core::http::{OPENAPI_PATH, ROUTES};
use roomcast_local::http_api::DEV_TOKEN_PATH;
use serde_json::json;

use crate::openapi::api::{
    entry, request, status, Api, Auth, Body, Request, BAD_REQUEST, CONFLICT, FORBIDDEN, MEMBERS, MESSAGES, NOT_FOUND,
    NOT_MEMBER, PUBLISH, ROOMS, TOO_LARGE, WHO,
};
use crate::openapi::document::Document;
use crate::openapi::{dev_settings, http_client, start};
use roomcast_tests::ws_client::Client;

mod limits;
mod messages;

/// Declared statuses not every operation can produce here: 503 `unavailable` needs the store
/// or the event log to fail, which the embedded backends never do.
const NOT_PRODUCED: &[u16] = &[503];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_of_every_route_is_declared_and_matches_its_schema() {
    let doc = Document::load();
    let seen = Mutex::new(BTreeSet::new());
    let gateway = start(dev_settings()).await;
    let api = Api {
        http: http_client(),
        origin: gateway.http_url(),
        doc: &doc,
        seen: &seen,
    };
    use Auth::{Bearer, Header, Nobody};
    use Body::{Empty, Json, Text};
    let (get, post, put, delete) = ("GET", "POST", "PUT", "DELETE");

    // The document itself, and dev tokens.
    let reply = api.call(get, OPENAPI_PATH, "", "", Nobody, Empty).await;
    assert_eq!(reply.status, 200);
    let alice = api.dev_token("alice", &[]).await;
    let bob = api.dev_token("bob", &[]).await;
    let service = api.dev_token("billing", &["service"]).await;
    let dev_token = |body: Body| request(post, DEV_TOKEN_PATH, &[], Nobody).body(body);
    api.check([
        (dev_token(Text("not json".into())), BAD_REQUEST),
        (dev_token(Json(json!({"nick": "bad nick"}))), BAD_REQUEST),
        (dev_token(Json(json!({"nick": "carol", "roles": ["a,b"]}))), BAD_REQUEST),
        (dev_token(Json(json!({"nick": "carol", "admin": true}))), BAD_REQUEST),
    ])
    .await;

    // Every route refuses a request without a valid token: API Gateway's own answer without
    // the header, an error frame with a header that holds no valid bearer token.
    let forged = format!("{}.{}.c2lnbmF0dXJl", "eyJhbGciOiJIUzI1NiJ9", "eyJzdWIiOiJ4In0");
    let some_id = roomcast_core::MessageId::generate().to_string();
    let parameters = [("room", "general"), ("userId", "dev-bob"), ("id", some_id.as_str())];
    for route in ROUTES {
        for auth in [
            Nobody,
            Bearer("not-a-jwt"),
            Bearer(&forged),
            Header("Basic YWxpY2U6c2VjcmV0"),
        ] {
            let body = match route.method {
                "POST" | "PATCH" => Json(json!({"room": "general", "text": "hi"})),
                _ => Empty,
            };
            let reply = api.call_at(route.method, route.path, &parameters, "", auth, body).await;
            assert_eq!(reply.status, 401, "{} {}: {reply:?}", route.method, route.path);
            match auth {
                Nobody => assert_eq!(reply.body, json!({"message": "Unauthorized"})),
                _ => assert_eq!(reply.code(), Some("unauthorized"), "{reply:?}"),
            }
        }
    }

    // The catalog, and creating rooms.
    let room = format!("openapi-{}", ulid::Ulid::new().to_string().to_lowercase());
    let created = api
        .call(post, ROOMS, "", "", Bearer(&alice), Json(json!({"room": room})))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let reply = api.call(get, ROOMS, "", "", Bearer(&alice), Empty).await;
    assert_eq!(reply.status, 200);
    assert!(reply.body["rooms"].as_array().unwrap().contains(&json!({"name": room})));
    let create = |body: Body| request(post, ROOMS, &[], Bearer(&alice)).body(body);
    api.check([
        (create(Json(json!({"room": room}))), CONFLICT),
        (create(Json(json!({"room": "admin"}))), CONFLICT),
        (create(Text("not json".into())), BAD_REQUEST),
        (create(Text("[1]".into())), BAD_REQUEST),
        (create(Json(json!({}))), BAD_REQUEST),
        (create(Json(json!({"room": "bad name"}))), BAD_REQUEST),
        (create(Json(json!({"room": "x".repeat(65)}))), BAD_REQUEST),
        (create(Json(json!({"room": 5}))), BAD_REQUEST),
        // Over the 32 KB frame limit: `too_large`.
        (
            create(Json(json!({"room": "big", "padding": "x".repeat(40 * 1024)}))),
            TOO_LARGE,
        ),
    ])
    .await;
    // Over API Gateway's 10 MB: its own answer.
    let huge = Json(json!({"room": "huge", "padding": "x".repeat(10 * 1024 * 1024 + 1)}));
    let reply = api.call(post, ROOMS, "", "", Bearer(&alice), huge).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.body, json!({"message": "Request Entity Too Large"}));

    // Joining and leaving; sending.
    let members = |method, room, token| request(method, MEMBERS, &[("room", room)], Bearer(token));
    let send = |room, token, body: serde_json::Value| {
        request(post, MESSAGES, &[("room", room)], Bearer(token)).body(Json(body))
    };
    let unknown = roomcast_core::MessageId::generate().to_string();
    api.check([
        (members(put, "no-such-room", &alice), NOT_FOUND),
        (members(put, "bad%20name", &alice), BAD_REQUEST),
        (members(delete, "bad%20name", &alice), BAD_REQUEST),
        (members(delete, &room, &bob), NOT_MEMBER),
        // Joining again answers the same.
        (members(put, &room, &alice), status(200)),
        (members(put, &room, &alice), status(200)),
        (send(&room, &bob, json!({"text": "hi"})), NOT_MEMBER),
        (
            request(post, MESSAGES, &[("room", &room)], Bearer(&alice)).body(Text("not json".into())),
            BAD_REQUEST,
        ),
        (send(&room, &alice, json!({"text": " \n\t"})), BAD_REQUEST),
        (send(&room, &alice, json!({"clientMsgId": "c1"})), BAD_REQUEST),
        (
            send(&room, &alice, json!({"text": "hi", "replyTo": "not-an-id"})),
            BAD_REQUEST,
        ),
        (
            send(&room, &alice, json!({"text": "hi", "clientMsgId": ""})),
            BAD_REQUEST,
        ),
        (
            send(&room, &alice, json!({"text": "hi", "clientMsgId": "c".repeat(65)})),
            BAD_REQUEST,
        ),
        (send("bad%20name", &alice, json!({"text": "hi"})), status(400)),
        (send(&room, &alice, json!({"text": "x".repeat(4097)})), TOO_LARGE),
        (
            send(&room, &alice, json!({"text": "x", "padding": "x".repeat(40 * 1024)})),
            TOO_LARGE,
        ),
        (
            send(&room, &alice, json!({"text": "hi", "replyTo": unknown})),
            NOT_FOUND,
        ),
    ])
    .await;
    let sent = api
        .ask(send(
            &room,
            &alice,
            json!({"text": "over HTTP", "clientMsgId": "c1", "replyTo": null}),
        ))
        .await;
    assert_eq!(sent.status, 202, "{sent:?}");
    assert_eq!(sent.body["clientMsgId"], "c1");
    let http_id = sent.body["id"].as_str().unwrap().to_owned();

    // A WebSocket member sends, edits and deletes, so that a history page holds every
    // kind of entry: a message, a reply, an edited one and a deleted one.
    let mut ws = Client::connect(&gateway, "wsmember").await;
    ws.join(&room).await;
    let first = ws
        .ask_for(json!({"action": "send", "room": room, "text": "first"}), "ack")
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let gone = ws
        .ask_for(json!({"action": "send", "room": room, "text": "to delete"}), "ack")
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.history_until(&alice, &room, |messages| {
        entry(messages, &first).is_some() && entry(messages, &gone).is_some()
    })
    .await;
    ws.ask_for(
        json!({"action": "edit", "room": room, "id": first, "text": "first, edited"}),
        "ack",
    )
    .await;
    ws.ask_for(json!({"action": "delete", "room": room, "id": gone}), "ack")
        .await;
    let reply = api
        .ask(send(
            &room,
            &alice,
            json!({"text": "a reply", "replyTo": first.to_lowercase()}),
        ))
        .await;
    assert_eq!(reply.status, 202, "{reply:?}");
    let reply_id = reply.body["id"].as_str().unwrap().to_owned();
    let messages = api
        .history_until(&alice, &room, |messages| {
            entry(messages, &first).is_some_and(|m| m["editedAt"].is_i64())
                && entry(messages, &gone).is_some_and(|m| m["deleted"] == true)
                && entry(messages, &reply_id).is_some_and(|m| m["replyTo"] == first.as_str())
                && entry(messages, &http_id).is_some()
        })
        .await;
    assert_eq!(entry(&messages, &gone), Some(&json!({"id": gone, "deleted": true})));

    // Reading: paging with each cursor, and its refusals; who is online (the WebSocket
    // member, checked below).
    let read = |template, room, token| request(get, template, &[("room", room)], Bearer(token));
    let page = |query: String| read(MESSAGES, &room, &alice).query(query);
    api.check([
        (page(format!("?after={first}&limit=1")), status(200)),
        (page(format!("?before={reply_id}&limit=2")), status(200)),
        (page("?limit=100".to_owned()), status(200)),
        (page("?limit=0".to_owned()), BAD_REQUEST),
        (page("?limit=101".to_owned()), BAD_REQUEST),
        (page("?limit=ten".to_owned()), BAD_REQUEST),
        (page("?after=nope".to_owned()), BAD_REQUEST),
        (page(format!("?after={first}&before={reply_id}")), BAD_REQUEST),
        (read(MESSAGES, "bad%20name", &alice), status(400)),
        (read(MESSAGES, &room, &bob), NOT_MEMBER),
    ])
    .await;
    let reply = api.ask(read(WHO, &room, &alice)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["users"][0]["nick"], "wsmember", "{reply:?}");
    api.check([
        (read(WHO, &room, &bob), NOT_MEMBER),
        (read(WHO, "bad%20name", &alice), status(400)),
    ])
    .await;

    // Files: upload slots, a message carrying one, and the history page showing it.
    messages::file_cases(&api, &room, &alice, &bob).await;

    // Edits and deletes over HTTP, direct messages and the caller's conversations.
    let messages = messages::RoomMessages {
        room: &room,
        own: &http_id,
        reply: &reply_id,
        others: &first,
        deleted: &gone,
    };
    messages::edit_delete_and_direct_cases(&api, &mut ws, &messages, &alice, &bob).await;

    // Publishing: every kind of target, and the refusals.
    let publish = |token, body: serde_json::Value| request(post, PUBLISH, &[], Bearer(token)).body(Json(body));
    let notice = json!({"type": "notice"});
    let to_all = |frame: &serde_json::Value| json!({"target": {"all": true}, "frame": frame});
    let targets: Vec<(Request, _)> = [
        json!({"room": room}),
        json!({"user": "dev-alice"}),
        json!({"connection": "AbCdEfGhIjKlMnO="}),
        json!({"all": true}),
        json!({"all": true, "room": null}),
    ]
    .into_iter()
    .map(|target| {
        let body = json!({"target": target, "frame": {"type": "notice", "text": "hello"}});
        (publish(&service, body), status(202))
    })
    .collect();
    api.check(targets).await;
    api.check([
        (publish(&alice, to_all(&notice)), FORBIDDEN),
        (
            request(post, PUBLISH, &[], Bearer(&service)).body(Text("not json".into())),
            BAD_REQUEST,
        ),
        (publish(&service, json!({"target": {"all": true}})), BAD_REQUEST),
        (publish(&service, json!({"frame": notice})), BAD_REQUEST),
        (
            publish(&service, json!({"target": {"all": true}, "frame": notice, "extra": 1})),
            BAD_REQUEST,
        ),
        (
            publish(&service, json!({"target": {"room": "a", "user": "b"}, "frame": notice})),
            BAD_REQUEST,
        ),
        (
            publish(&service, json!({"target": {"all": false}, "frame": notice})),
            BAD_REQUEST,
        ),
        (
            publish(&service, json!({"target": {"room": "bad name"}, "frame": notice})),
            BAD_REQUEST,
        ),
        (
            publish(&service, json!({"target": {"user": ""}, "frame": notice})),
            BAD_REQUEST,
        ),
        (publish(&service, to_all(&json!("text"))), BAD_REQUEST),
        (publish(&service, to_all(&json!({"text": "no type"}))), BAD_REQUEST),
        (
            publish(
                &service,
                to_all(&json!({"type": "notice", "text": "x".repeat(40 * 1024)})),
            ),
            TOO_LARGE,
        ),
        // Leaving.
        (members(delete, &room, &alice), status(200)),
    ])
    .await;

    // A request no route takes: API Gateway's own 404, whatever the method.
    for (method, path) in [(get, "/api/nothing"), ("PATCH", ROOMS), (get, "/api/rooms/general")] {
        let reply = api.send(method, path, Bearer(&alice), Empty).await;
        assert_eq!(reply.status, 404, "{method} {path}");
        if let Some(why) = doc.invalid(doc.schema("GatewayMessage"), &reply.body) {
            panic!("{method} {path}: {why}");
        }
    }
    drop(ws);
    gateway.shutdown().await;

    limits::quota_cases(&api).await;
    limits::signed_in_cases(&api).await;

    // Every status the document declares was answered by some request above.
    let seen = seen.into_inner().unwrap();
    let mut missing = BTreeMap::new();
    for (method, path, _) in doc.operations() {
        for status in doc.statuses(&method, &path) {
            if !NOT_PRODUCED.contains(&status) && !seen.contains(&(method.clone(), path.clone(), status)) {
                missing
                    .entry(format!("{method} {path}"))
                    .or_insert_with(Vec::new)
                    .push(status);
            }
        }
    }
    assert!(missing.is_empty(), "declared but never answered: {missing:?}");
}
