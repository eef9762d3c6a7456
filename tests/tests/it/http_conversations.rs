//! Direct conversations over the HTTP API, through the local gateway with real HTTP
//! clients, on both backends (embedded, and moto + tansu), with sign-in on (users have
//! ids, and one who signed in once is known while offline).
//!
//! What a polling client notices: a dm POSTed to a user who is offline is acknowledged,
//! and they read it over HTTP when they come, in the one order both sides read; their list
//! of conversations names the sender with that message; an edit and a delete over HTTP
//! change what both sides read and list; bad input gets its status and changes nothing.

use roomcast_core::model::MessageId;
use roomcast_local::Running;
use roomcast_tests::each_backend;
use roomcast_tests::gateways::{signed_in_gateway, Mode};
use roomcast_tests::http_client::{path_segment, HttpApi};
use roomcast_tests::tokens::signed_token;
use roomcast_tests::ws_client::Client;
use serde_json::{json, Value};

each_backend!(
    embedded => signed_in_gateway(Mode::Embedded).await,
    real => signed_in_gateway(Mode::Real).await;
    [
        a_dm_to_an_offline_user_is_read_listed_edited_and_deleted_over_http,
        bad_input_gets_its_status_and_changes_nothing,
        a_user_who_only_polls_can_be_sent_a_dm,
    ]
);

/// A WebSocket connection as `token`'s user: the gateway takes the nickname from the
/// token (`?name=` only names the client in failures).
async fn sign_in(gateway: &Running, nick: &str, token: &str) -> Client {
    Client::with_token(gateway, token, nick).await
}

/// `user` as the HTTP API's answers show them (the tokens' nicknames are their ids' ends).
fn user(id: &str) -> Value {
    json!({"userId": id, "nick": id.trim_start_matches("u-")})
}

/// The conversation with `other`, as its messages' path.
fn messages_with(other: &str) -> String {
    format!("/api/users/{}/messages", path_segment(other))
}

/// The message `id` of the conversation with `other`, as its path.
fn message_with(other: &str, id: &str) -> String {
    format!("{}/{}", messages_with(other), path_segment(id))
}

/// Sends a dm to `to` as `token`'s user over HTTP: the `ack`.
async fn dm(api: &HttpApi, token: &str, to: &str, body: Value) -> Value {
    let reply = api
        .call("POST", &messages_with(to), Some(token), Some(&body.to_string()))
        .await;
    assert_eq!((reply.status, &reply.body["type"]), (202, &json!("ack")), "{reply:?}");
    reply.body
}

fn id_of(ack: &Value) -> String {
    ack["id"].as_str().expect("an id").to_owned()
}

/// The ids of a history page, in its order.
fn ids(page: &Value) -> Vec<&str> {
    page["messages"]
        .as_array()
        .expect("a history page")
        .iter()
        .map(|message| message["id"].as_str().expect("an id"))
        .collect()
}

/// The entry of `id` in a history page (`null` if it has none).
fn entry<'a>(page: &'a Value, id: &str) -> &'a Value {
    page["messages"]
        .as_array()
        .expect("a history page")
        .iter()
        .find(|message| message["id"] == id)
        .unwrap_or(&Value::Null)
}

/// The latest message of the conversation with `other` in a `conversations` answer.
fn last_with<'a>(list: &'a Value, other: &str) -> &'a Value {
    list["conversations"]
        .as_array()
        .expect("a conversations answer")
        .iter()
        .find(|conversation| conversation["with"]["userId"] == other)
        .map_or(&Value::Null, |conversation| &conversation["last"])
}

/// Makes `token`'s user a member of `general` over HTTP, to watch who is online there.
async fn join_general(api: &HttpApi, token: &str) {
    let reply = api
        .call("PUT", "/api/rooms/general/members/me", Some(token), None)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

/// Whether `nick` is online in `general`, by a `who` answer.
fn online(who: &Value, nick: &str) -> bool {
    who["users"]
        .as_array()
        .expect("a who answer")
        .iter()
        .any(|member| member["nick"] == nick)
}

/// The user of `token` signs in once over WebSocket, as someone who opened the page once,
/// and leaves; `watcher` (a member of `general`) sees them online, then gone.
async fn signed_in_once(gateway: &Running, api: &HttpApi, watcher: &str, nick: &str, token: &str) {
    let mut ws = sign_in(gateway, nick, token).await;
    ws.join("general").await;
    let who = "/api/rooms/general/who";
    api.get_until(watcher, who, |answer| online(answer, nick)).await;
    drop(ws);
    api.get_until(watcher, who, |answer| !online(answer, nick)).await;
}

async fn a_dm_to_an_offline_user_is_read_listed_edited_and_deleted_over_http(gateway: Running) {
    let api = HttpApi::new(gateway.http_url());
    let alice = signed_token("u-alice", "alice", &[]);
    let bob = signed_token("u-bob", "bob", &[]);
    join_general(&api, &alice).await;
    signed_in_once(&gateway, &api, &alice, "bob", &bob).await;

    // Alice writes twice to bob, who is offline: both are acknowledged.
    let first = dm(
        &api,
        &alice,
        "u-bob",
        json!({"text": "are you there?", "clientMsgId": "c1"}),
    )
    .await;
    assert_eq!(first["to"], user("u-bob"), "{first}");
    assert_eq!(first["clientMsgId"], "c1", "{first}");
    let second = dm(
        &api,
        &alice,
        "u-bob",
        json!({"text": "call me", "replyTo": first["id"], "to": "mallory"}),
    )
    .await;
    let (first_id, second_id) = (id_of(&first), id_of(&second));
    assert!(
        first_id < second_id,
        "ids follow the conversation's order: {first_id} {second_id}"
    );

    // Bob reads them over HTTP. Once the later one is there, the earlier one is too (one
    // order), and alice reads the very same page.
    let bobs = api
        .get_until(&bob, &messages_with("u-alice"), |page| {
            ids(page).contains(&second_id.as_str())
        })
        .await;
    assert_eq!(
        bobs,
        json!({"type": "history", "with": "u-alice", "more": false, "messages": [
            {"id": first_id, "from": user("u-alice"), "to": user("u-bob"), "text": "are you there?", "ts": first["ts"]},
            {"id": second_id, "from": user("u-alice"), "to": user("u-bob"), "text": "call me", "ts": second["ts"],
             "replyTo": first_id},
        ]})
    );
    let alices = api.call("GET", &messages_with("u-bob"), Some(&alice), None).await;
    assert_eq!(alices.status, 200, "{alices:?}");
    assert_eq!(alices.body["with"], "u-bob");
    assert_eq!(alices.body["messages"], bobs["messages"], "one order for both sides");
    // Polling after the first gives exactly the second.
    let after = api
        .call(
            "GET",
            &format!("{}?after={first_id}", messages_with("u-alice")),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(
        (after.status, ids(&after.body)),
        (200, vec![second_id.as_str()]),
        "{after:?}"
    );

    // Bob's conversations list alice with her latest message; alice's list bob.
    let list = api
        .get_until(&bob, "/api/conversations", |list| {
            last_with(list, "u-alice")["id"] == second_id
        })
        .await;
    assert_eq!(
        list,
        json!({"type": "conversations", "more": false, "conversations": [
            {"with": user("u-alice"), "last": {"id": second_id, "from": user("u-alice"), "text": "call me", "ts": second["ts"]}},
        ]})
    );
    api.get_until(&alice, "/api/conversations", |list| {
        list["conversations"][0]["with"] == user("u-bob") && last_with(list, "u-bob")["id"] == second_id
    })
    .await;

    // Alice edits her latest message over HTTP: both read the new text, and bob's list
    // shows it.
    let edit = json!({"text": "call me, please"}).to_string();
    let edited = api
        .call("PATCH", &message_with("u-bob", &second_id), Some(&alice), Some(&edit))
        .await;
    assert_eq!(edited.status, 200, "{edited:?}");
    assert_eq!(
        (&edited.body["type"], &edited.body["with"], &edited.body["id"]),
        (&json!("ack"), &json!("u-bob"), &json!(second_id)),
        "{edited:?}"
    );
    for (token, other) in [(&bob, "u-alice"), (&alice, "u-bob")] {
        let page = api
            .get_until(token, &messages_with(other), |page| {
                entry(page, &second_id)["text"] == "call me, please"
            })
            .await;
        assert!(entry(&page, &second_id)["editedAt"].is_i64(), "{page}");
        assert_eq!(entry(&page, &first_id)["text"], "are you there?", "{page}");
        assert!(entry(&page, &first_id).get("editedAt").is_none(), "{page}");
    }
    let list = api
        .get_until(&bob, "/api/conversations", |list| {
            last_with(list, "u-alice")["text"] == "call me, please"
        })
        .await;
    assert!(last_with(&list, "u-alice")["editedAt"].is_i64(), "{list}");

    // Then deletes it: both read a tombstone, and bob's list shows the message deleted.
    let deleted = api
        .call("DELETE", &message_with("u-bob", &second_id), Some(&alice), None)
        .await;
    assert_eq!(deleted.status, 200, "{deleted:?}");
    assert_eq!(
        (&deleted.body["type"], &deleted.body["with"], &deleted.body["id"]),
        (&json!("ack"), &json!("u-bob"), &json!(second_id)),
        "{deleted:?}"
    );
    for (token, other) in [(&bob, "u-alice"), (&alice, "u-bob")] {
        let page = api
            .get_until(token, &messages_with(other), |page| {
                entry(page, &second_id)["deleted"] == true
            })
            .await;
        assert_eq!(entry(&page, &second_id), &json!({"id": second_id, "deleted": true}));
        assert_eq!(ids(&page), [first_id.as_str(), second_id.as_str()]);
        assert_eq!(entry(&page, &first_id)["text"], "are you there?", "{page}");
    }
    let list = api
        .get_until(&bob, "/api/conversations", |list| {
            last_with(list, "u-alice")["deleted"] == true
        })
        .await;
    let last = last_with(&list, "u-alice");
    assert_eq!((&last["id"], last.get("text")), (&json!(second_id), None), "{list}");
    gateway.shutdown().await;
}

/// A request and how it is refused: method, path, body, and `(status, code)`.
type Refused = (&'static str, String, Option<String>, (u16, &'static str));

async fn bad_input_gets_its_status_and_changes_nothing(gateway: Running) {
    let api = HttpApi::new(gateway.http_url());
    let alice = signed_token("u-alice", "alice", &[]);
    let bob = signed_token("u-bob", "bob", &[]);
    // Both are online, so each can write to the other.
    let _alice_ws = sign_in(&gateway, "alice", &alice).await;
    let _bob_ws = sign_in(&gateway, "bob", &bob).await;
    let mine = id_of(&dm(&api, &alice, "u-bob", json!({"text": "mine"})).await);
    let his = id_of(&dm(&api, &bob, "u-alice", json!({"text": "his"})).await);
    let before = api
        .get_until(&alice, &messages_with("u-bob"), |page| {
            ids(page).contains(&his.as_str())
        })
        .await;
    assert_eq!(ids(&before), [mine.as_str(), his.as_str()]);

    // A well-formed id that names no message: the position of `mine`, which the archive
    // has passed, with another time.
    let mine_id = MessageId::parse(&mine).expect("a message id");
    let (epoch, position) = mine_id.position().expect("an id made from a log position");
    let unknown = MessageId::at(epoch, position, mine_id.timestamp_ms() - 1).to_string();
    let long_user = "u".repeat(257);
    let text = |text: &str| Some(json!({ "text": text }).to_string());
    let cases: Vec<Refused> = vec![
        // Someone else's message.
        (
            "PATCH",
            message_with("u-bob", &his),
            text("mine now"),
            (403, "forbidden"),
        ),
        ("DELETE", message_with("u-bob", &his), None, (403, "forbidden")),
        // A bad message id.
        (
            "PATCH",
            message_with("u-bob", "not-an-id"),
            text("x"),
            (400, "bad_request"),
        ),
        ("DELETE", message_with("u-bob", "not-an-id"), None, (400, "bad_request")),
        (
            "DELETE",
            message_with("u-bob", "8ZZZZZZZZZZZZZZZZZZZZZZZZZ"),
            None,
            (400, "bad_request"),
        ),
        (
            "GET",
            format!("{}?after=not-an-id", messages_with("u-bob")),
            None,
            (400, "bad_request"),
        ),
        (
            "GET",
            "/api/conversations?before=not-an-id".into(),
            None,
            (400, "bad_request"),
        ),
        ("GET", "/api/conversations?limit=0".into(), None, (400, "bad_request")),
        // A bad user id: over 256 bytes.
        ("POST", messages_with(&long_user), text("hi"), (400, "bad_request")),
        ("GET", messages_with(&long_user), None, (400, "bad_request")),
        (
            "PATCH",
            message_with(&long_user, &mine),
            text("x"),
            (400, "bad_request"),
        ),
        ("DELETE", message_with(&long_user, &mine), None, (400, "bad_request")),
        // Empty text, or no text at all.
        ("POST", messages_with("u-bob"), text(""), (400, "bad_request")),
        ("POST", messages_with("u-bob"), text(" \n\t"), (400, "bad_request")),
        ("POST", messages_with("u-bob"), Some("{}".into()), (400, "bad_request")),
        (
            "POST",
            messages_with("u-bob"),
            Some("not json".into()),
            (400, "bad_request"),
        ),
        ("PATCH", message_with("u-bob", &mine), text(""), (400, "bad_request")),
        (
            "PATCH",
            message_with("u-bob", &mine),
            Some("{}".into()),
            (400, "bad_request"),
        ),
        // A text over the limit.
        (
            "POST",
            messages_with("u-bob"),
            text(&"x".repeat(4097)),
            (413, "too_large"),
        ),
        (
            "PATCH",
            message_with("u-bob", &mine),
            text(&"x".repeat(4097)),
            (413, "too_large"),
        ),
        // An id that names no message of this conversation, and a user nobody knows.
        ("PATCH", message_with("u-bob", &unknown), text("x"), (404, "not_found")),
        ("DELETE", message_with("u-bob", &unknown), None, (404, "not_found")),
        ("PATCH", message_with("u-carol", &mine), text("x"), (404, "not_found")),
        ("DELETE", message_with("u-carol", &mine), None, (404, "not_found")),
        ("POST", messages_with("u-nobody"), text("hi"), (404, "not_found")),
        (
            "POST",
            messages_with("u-bob"),
            Some(json!({"text": "hi", "replyTo": unknown}).to_string()),
            (404, "not_found"),
        ),
    ];
    for (method, path, body, expected) in &cases {
        let reply = api.call(method, path, Some(&alice), body.as_deref()).await;
        let got = (reply.status, reply.body["code"].as_str());
        assert_eq!(got, (expected.0, Some(expected.1)), "{method} {path}: {reply:?}");
    }

    // Nothing changed. A last message, which both read after anything sent before it (one
    // order), shows it: the others are as they were, and alice's only conversation is
    // still bob's.
    let marker = id_of(&dm(&api, &alice, "u-bob", json!({"text": "marker"})).await);
    let page = api
        .get_until(&bob, &messages_with("u-alice"), |page| {
            ids(page).contains(&marker.as_str())
        })
        .await;
    let texts: Vec<(&str, &Value, bool)> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| {
            (
                message["id"].as_str().unwrap(),
                &message["text"],
                message.get("editedAt").is_some() || message.get("deleted").is_some(),
            )
        })
        .collect();
    assert_eq!(
        texts,
        [
            (mine.as_str(), &json!("mine"), false),
            (his.as_str(), &json!("his"), false),
            (marker.as_str(), &json!("marker"), false)
        ]
    );
    let list = api
        .get_until(&alice, "/api/conversations", |list| {
            last_with(list, "u-bob")["id"] == marker
        })
        .await;
    let partners: Vec<&Value> = list["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|conversation| &conversation["with"])
        .collect();
    assert_eq!(partners, [&user("u-bob")], "{list}");
    gateway.shutdown().await;
}

/// A user who only ever uses the HTTP API (the page in polling mode) never has a
/// connection for `$connect` to register: looking for its conversations (or joining,
/// sending) makes it known, so it can be sent a dm by id like a user who connected once.
async fn a_user_who_only_polls_can_be_sent_a_dm(gateway: Running) {
    let api = HttpApi::new(gateway.http_url());
    let alice = signed_token("u-alice", "alice", &[]);
    let bob = signed_token("u-bob", "bob", &[]);
    // Bob polls his conversations, as the page does, and has never connected.
    let list = api.call("GET", "/api/conversations", Some(&bob), None).await;
    assert_eq!(list.status, 200, "{list:?}");
    let sent = id_of(&dm(&api, &alice, "u-bob", json!({"text": "are you there?"})).await);
    api.get_until(&bob, &messages_with("u-alice"), |page| {
        ids(page).contains(&sent.as_str())
    })
    .await;
    gateway.shutdown().await;
}
