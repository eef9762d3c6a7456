//! Where the API once did not do what the document says, each kept as a check of its own.

use std::collections::BTreeSet;
use std::sync::Mutex;

use roomcast_local::Running;
use serde_json::json;

use crate::openapi::api::{
    entry, request, Api, Auth, Body, BAD_REQUEST, MEMBERS, MESSAGES, PUBLISH, ROOMS, ROOM_MESSAGE, USER_MESSAGE,
};
use crate::openapi::document::Document;
use crate::openapi::{dev_settings, http_client, start};
use roomcast_tests::ws_client::Client;

/// A gateway and a member of `general` on it, for the checks below, with the document its
/// answers are checked against (loaded for each check, and kept till the end of the run).
async fn member_of_general() -> (Running, Api<'static>, String) {
    let doc: &'static Document = Box::leak(Box::new(Document::load()));
    let seen: &'static Mutex<_> = Box::leak(Box::new(Mutex::new(BTreeSet::new())));
    let gateway = start(dev_settings()).await;
    let api = Api {
        http: http_client(),
        origin: gateway.http_url(),
        doc,
        seen,
    };
    let token = api.dev_token("alice", &[]).await;
    let reply = api
        .call("PUT", MEMBERS, "general", "", Auth::Bearer(&token), Body::Empty)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    (gateway, api, token)
}

/// A message id is 128 bits written as a ULID is, so its first character is `0` to `7`;
/// only `0` (a ULID) and `1` (a log position) are ever made (the document's
/// `MessageIdInput`). ulid 1.2's `from_string` takes 26 base32 characters starting with
/// `8` to `Z` as well, dropping the bits past 128: `after=ZZZ…Z` read after `7ZZ…Z` until
/// `MessageId::parse` refused them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_id_past_128_bits_is_refused() {
    let (gateway, api, token) = member_of_general().await;
    for id in [
        "2ZZZZZZZZZZZZZZZZZZZZZZZZZ",
        "7ZZZZZZZZZZZZZZZZZZZZZZZZZ",
        "8ZZZZZZZZZZZZZZZZZZZZZZZZZ",
    ] {
        let schema = json!({"$ref": "#/components/schemas/MessageIdInput"});
        assert!(
            api.doc.invalid(&schema, &json!(id)).is_some(),
            "the document refuses {id}"
        );
        let read = request("GET", MESSAGES, &[("room", "general")], Auth::Bearer(&token));
        api.check([(read.query(format!("?after={id}")), BAD_REQUEST)]).await;
    }
    gateway.shutdown().await;
}

/// The path names the conversation and the message, and a body cannot say otherwise
/// (`EditRequest`: other fields are ignored): a body's `with` beside the path's `room`, or
/// its `room` beside the path's `userId`, is dropped as a dm body's `to` is, so the edit is
/// the path's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_body_cannot_name_another_conversation() {
    let (gateway, api, token) = member_of_general().await;
    let text = Body::Json(json!({"text": "hi"}));
    let sent = api
        .call("POST", MESSAGES, "general", "", Auth::Bearer(&token), text)
        .await;
    assert_eq!(sent.status, 202, "{sent:?}");
    let id = sent.body["id"].as_str().unwrap().to_owned();
    api.history_until(&token, "general", |page| entry(page, &id).is_some())
        .await;
    let in_room = [("room", "general"), ("id", id.as_str())];
    let body = Body::Json(json!({"text": "edited", "with": "dev-bob"}));
    let reply = api
        .call_at("PATCH", ROOM_MESSAGE, &in_room, "", Auth::Bearer(&token), body)
        .await;
    assert_eq!(reply.status, 200, "the path's room, not the body's `with`: {reply:?}");
    // Named in the conversation with bob, it is not found there, whatever the body's `room`.
    let with_bob = [("userId", "dev-bob"), ("id", id.as_str())];
    let body = Body::Json(json!({"text": "edited", "room": "general"}));
    let reply = api
        .call_at("PATCH", USER_MESSAGE, &with_bob, "", Auth::Bearer(&token), body)
        .await;
    assert_eq!((reply.status, reply.code()), (404, Some("not_found")), "{reply:?}");
    gateway.shutdown().await;
}

/// No HTTP route can name a room `.` or `..`: URL paths drop such segments (reqwest, curl
/// and browsers before sending; lambda_http's URI even when the raw path has them, so the
/// local gateway answered `404 not_found` "no route PUT /api/rooms/members/me"). So room
/// names made only of dots are refused (400), as the document's `RoomName` says; they were
/// once created and then unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_the_paths_cannot_name_is_not_created() {
    let (gateway, api, token) = member_of_general().await;
    for room in [".", "..", "..."] {
        let schema = json!({"$ref": "#/components/schemas/RoomName"});
        assert!(
            api.doc.invalid(&schema, &json!(room)).is_some(),
            "the document refuses {room}"
        );
        let create = request("POST", ROOMS, &[], Auth::Bearer(&token));
        api.check([(create.body(Body::Json(json!({"room": room}))), BAD_REQUEST)])
            .await;
    }
    gateway.shutdown().await;
}

/// A route that takes no body ignores the body it gets, UTF-8 or not: http-api once
/// refused a non-UTF-8 body before routing (`GET /api/rooms` with the bytes `ff fe`: 400
/// `bad_request`), a status the document does not give the routes without a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_without_a_body_ignores_any_body() {
    let (gateway, api, token) = member_of_general().await;
    let response = api
        .http
        .get(format!("{}{ROOMS}", api.origin))
        .header("authorization", format!("Bearer {token}"))
        .body(vec![0xff, 0xfe])
        .send()
        .await
        .expect("GET /api/rooms");
    let status = response.status().as_u16();
    assert!(
        status == 200,
        "GET /api/rooms with a non-UTF-8 body: {status} {}",
        response.text().await.unwrap_or_default()
    );
    gateway.shutdown().await;
}

/// A bug schemathesis found (the gateway logged "skipping record"), now fixed: `POST
/// /api/publish` takes any frame with a string `type` (202 `published`), but
/// `Envelope::decode`, which kafka-fanout and kafka-archive read records with, reads `type`
/// as a borrowed `&str`, which serde_json cannot give for a string with an escape in its
/// JSON (a quote, a backslash, a control character, or any `\uXXXX`, which producers such as
/// Python's `json.dumps` write for every non-ASCII character): such a record is skipped as
/// malformed, and the frame reaches no one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_frame_reaches_its_target_whatever_its_type() {
    let (gateway, api, _) = member_of_general().await;
    let service = api.dev_token("billing", &["service"]).await;
    let mut ws = Client::connect(&gateway, "reader").await;
    ws.join("general").await;
    let kind = "notice \"quoted\"";
    let body = json!({"target": {"room": "general"}, "frame": {"type": kind}});
    let reply = api
        .call("POST", PUBLISH, "", "", Auth::Bearer(&service), Body::Json(body))
        .await;
    assert_eq!(reply.status, 202, "{reply:?}");
    // Fails after the client's wait for a frame (20 s) while the bug lasts.
    ws.wait_for(kind).await;
    drop(ws);
    gateway.shutdown().await;
}
