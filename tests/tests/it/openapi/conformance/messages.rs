//! The conformance cases of a room's messages once sent (edits and deletes), of direct
//! messages and the caller's conversations, and of file uploads.

use roomcast_tests::http_client::path_segment;
use serde_json::{json, Value};

use crate::openapi::api::{
    entry, request, status, Api, Auth, Body, Request, BAD_REQUEST, CONVERSATIONS, FORBIDDEN, MESSAGES, NOT_FOUND,
    NOT_MEMBER, ROOM_FILES, ROOM_MESSAGE, TOO_LARGE, USER_FILES, USER_MESSAGE, USER_MESSAGES,
};
use roomcast_tests::ws_client::Client;

/// The upload routes' answers, and `files` on a message and its history page: `alice` is
/// a member of `room`, `bob` is not.
pub(super) async fn file_cases(api: &Api<'_>, room: &str, alice: &str, bob: &str) {
    use Auth::Bearer;
    use Body::{Json, Text};
    let upload = |size: u64| json!({"name": "cat.png", "contentType": "image/png", "size": size});
    let reply = api
        .call("POST", ROOM_FILES, room, "", Bearer(alice), Json(upload(4)))
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let headers: Vec<(String, String)> = reply.body["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
        .collect();
    let stored = roomcast_tests::files::put(reply.body["url"].as_str().unwrap(), &headers, b"\x89PNG".to_vec()).await;
    assert_eq!(stored, 200);
    let file = reply.body["fileId"].as_str().unwrap().to_owned();

    // Each row is asked in a room and in the direct conversation with bob.
    let in_room = |token, body: Body| request("POST", ROOM_FILES, &[("room", room)], Bearer(token)).body(body);
    let direct = |token, body: Body| request("POST", USER_FILES, &[("userId", "dev-bob")], Bearer(token)).body(body);
    let refused = [
        (Json(upload(25 * 1024 * 1024 + 1)), TOO_LARGE),
        (Text("not json".into()), BAD_REQUEST),
        (
            Json(json!({"name": "a/b", "contentType": "image/png", "size": 4})),
            BAD_REQUEST,
        ),
        (Json(json!({"name": "a", "contentType": "png", "size": 4})), BAD_REQUEST),
        (
            Json(json!({"name": "a", "contentType": "image/png", "size": 0})),
            BAD_REQUEST,
        ),
        (Json(json!({"name": "a", "contentType": "image/png"})), BAD_REQUEST),
    ];
    let mut cases = vec![
        (direct(alice, Json(upload(4))), status(201)),
        (in_room(bob, Json(upload(4))), NOT_MEMBER),
    ];
    for (body, answer) in refused {
        cases.push((in_room(alice, body.clone()), answer));
        cases.push((direct(alice, body), answer));
    }
    api.check(cases).await;

    let reply = api
        .call(
            "POST",
            MESSAGES,
            room,
            "",
            Bearer(alice),
            Json(json!({"text": "a cat", "files": [file]})),
        )
        .await;
    assert_eq!(reply.status, 202, "{reply:?}");
    let id = reply.body["id"].as_str().unwrap().to_owned();
    // Alice's file is not bob's to send, in a dm either.
    let hers = request("POST", USER_MESSAGES, &[("userId", "dev-alice")], Bearer(bob))
        .body(Json(json!({"text": "hers", "files": [file]})));
    api.check([(hers, FORBIDDEN)]).await;
    let messages = api
        .history_until(alice, room, |messages| entry(messages, &id).is_some())
        .await;
    let kept = entry(&messages, &id).unwrap();
    assert_eq!(kept["files"][0]["id"], file.as_str(), "{kept}");
    let (status, _, body) = roomcast_tests::files::get(kept["files"][0]["url"].as_str().unwrap()).await;
    assert_eq!((status, body.as_slice()), (200, &b"\x89PNG"[..]));
}

/// A route's method, path template and parameters.
pub(super) type Write<'a> = (&'static str, &'static str, Vec<(&'static str, &'a str)>);

/// The routes that write or change a message, each with its parameters: a dm to `user`, and
/// an edit and a delete of `id` in `room` and in the conversation with `user`.
pub(super) fn message_writes<'a>(room: &'a str, user: &'a str, id: &'a str) -> [Write<'a>; 5] {
    [
        ("POST", USER_MESSAGES, vec![("userId", user)]),
        ("PATCH", ROOM_MESSAGE, vec![("room", room), ("id", id)]),
        ("DELETE", ROOM_MESSAGE, vec![("room", room), ("id", id)]),
        ("PATCH", USER_MESSAGE, vec![("userId", user), ("id", id)]),
        ("DELETE", USER_MESSAGE, vec![("userId", user), ("id", id)]),
    ]
}

/// A valid body for `method` on [`message_writes`]'s routes: a text, or none to delete.
pub(super) fn text_body(method: &str) -> Body {
    match method {
        "DELETE" => Body::Empty,
        _ => Body::Json(json!({"text": "hi"})),
    }
}

/// Messages of the room that [`edit_delete_and_direct_cases`] edits, deletes or is refused.
pub(super) struct RoomMessages<'a> {
    pub(super) room: &'a str,
    /// Alice's, over HTTP.
    pub(super) own: &'a str,
    /// Alice's reply to `others`.
    pub(super) reply: &'a str,
    /// The WebSocket member's.
    pub(super) others: &'a str,
    /// The WebSocket member's, deleted.
    pub(super) deleted: &'a str,
}

/// An edit (`PATCH`, a new text) or a delete (`DELETE`) of the message at `template` with
/// `parameters`, by `token`.
fn change<'a>(
    method: &'static str,
    template: &'static str,
    parameters: &[(&'static str, &'a str)],
    token: &'a str,
) -> Request<'a> {
    let request = request(method, template, parameters, Auth::Bearer(token));
    match method {
        "PATCH" => request.body(Body::Json(json!({"text": "over HTTP, edited"}))),
        _ => request,
    }
}

/// The success and every refusal of the edit and delete routes of a room, and of the
/// direct message routes and `GET /api/conversations`, for `alice` (a member of the room)
/// and `bob` (not one), with `ws` the room's WebSocket member (online, so a dm can name it
/// by its id). 403 `forbidden` in a direct conversation needs a second user with an id: see
/// the signed-in part of the test; 429 the part with small quotas.
pub(super) async fn edit_delete_and_direct_cases(
    api: &Api<'_>,
    ws: &mut Client,
    messages: &RoomMessages<'_>,
    alice: &str,
    bob: &str,
) {
    use Auth::Bearer;
    use Body::{Json, Text};
    let (get, post, patch, delete) = ("GET", "POST", "PATCH", "DELETE");
    let room = messages.room;
    let unknown = roomcast_core::MessageId::generate().to_string();
    let long_user = "u".repeat(257);
    // An id of a position the archive has not reached (the last an id can name): the log
    // has no record there, so there is no such message (404 at once, without waiting for
    // the archive), in a room and in a direct conversation alike.
    let ahead = roomcast_core::model::MessageId::at(
        0,
        roomcast_core::model::LogPosition {
            partition: 0,
            offset: (1 << 56) - 1,
        },
        roomcast_core::clock::now_ms(),
    )
    .to_string();

    // A room's messages: alice edits her own, and deletes her reply (naming it in lower
    // case); her edits of another's message, of a deleted one or as a non-member are
    // refused.
    let own = [("room", room), ("id", messages.own)];
    let reply = api.ask(change(patch, ROOM_MESSAGE, &own, alice)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        (&reply.body["room"], &reply.body["id"]),
        (&json!(room), &json!(messages.own))
    );
    let reply_id = messages.reply.to_lowercase();
    let in_room = |method, id, token| change(method, ROOM_MESSAGE, &[("room", room), ("id", id)], token);
    let edit_own = |body: Body| request(patch, ROOM_MESSAGE, &own, Bearer(alice)).body(body);
    let send = |body: Value| request(post, MESSAGES, &[("room", room)], Bearer(alice)).body(Json(body));
    api.check([
        (in_room(delete, &reply_id, alice), status(200)),
        (edit_own(Text("not json".into())), BAD_REQUEST),
        (edit_own(Json(json!({}))), BAD_REQUEST),
        (edit_own(Json(json!({"text": " "}))), BAD_REQUEST),
        (in_room(patch, "nope", alice), BAD_REQUEST),
        (in_room(delete, "nope", alice), BAD_REQUEST),
        (
            change(
                patch,
                ROOM_MESSAGE,
                &[("room", "bad%20name"), ("id", messages.own)],
                alice,
            ),
            BAD_REQUEST,
        ),
        (
            change(
                delete,
                ROOM_MESSAGE,
                &[("room", "bad%20name"), ("id", messages.own)],
                alice,
            ),
            BAD_REQUEST,
        ),
        (in_room(patch, messages.own, bob), NOT_MEMBER),
        (in_room(delete, messages.own, bob), NOT_MEMBER),
        (in_room(patch, messages.others, alice), FORBIDDEN),
        (in_room(delete, messages.others, alice), FORBIDDEN),
        (in_room(patch, &ahead, alice), NOT_FOUND),
        (in_room(delete, &ahead, alice), NOT_FOUND),
        (send(json!({"text": "hi", "replyTo": ahead})), NOT_FOUND),
        (in_room(patch, messages.deleted, alice), NOT_FOUND),
        (in_room(delete, messages.deleted, alice), NOT_FOUND),
        (in_room(patch, &unknown, alice), NOT_FOUND),
        (in_room(delete, &unknown, alice), NOT_FOUND),
        (edit_own(Json(json!({"text": "x".repeat(4097)}))), TOO_LARGE),
        (
            edit_own(Json(json!({"text": "x", "padding": "x".repeat(40 * 1024)}))),
            TOO_LARGE,
        ),
    ])
    .await;
    api.history_until(alice, room, |page| {
        entry(page, messages.own).is_some_and(|m| m["text"] == "over HTTP, edited" && m["editedAt"].is_i64())
            && entry(page, messages.reply).is_some_and(|m| m["deleted"] == true)
    })
    .await;

    // A dm to the WebSocket member, by its user id: acknowledged, delivered, kept.
    let whoami = ws.ask_for(json!({"action": "whoami"}), "whoami").await;
    let member = whoami["userId"].as_str().expect("a user id").to_owned();
    let with_member = path_segment(&member);
    let to_member = [("userId", with_member.as_str())];
    let sent = api
        .call_at(
            post,
            USER_MESSAGES,
            &to_member,
            "",
            Bearer(alice),
            Json(json!({"text": "hello", "clientMsgId": "d1"})),
        )
        .await;
    assert_eq!(sent.status, 202, "{sent:?}");
    assert_eq!(
        (&sent.body["to"]["userId"], &sent.body["clientMsgId"]),
        (&json!(member), &json!("d1"))
    );
    let dm_id = sent.body["id"].as_str().unwrap().to_owned();
    assert_eq!(ws.wait_for("dm").await["id"], dm_id.as_str());
    let dm = |user, body: Body| request(post, USER_MESSAGES, &[("userId", user)], Bearer(alice)).body(body);
    let hi = || Json(json!({"text": "hi"}));
    api.check([
        (dm(&with_member, Text("not json".into())), BAD_REQUEST),
        (dm(&with_member, Json(json!({}))), BAD_REQUEST),
        (dm(&with_member, Json(json!({"text": " "}))), BAD_REQUEST),
        (
            dm(&with_member, Json(json!({"text": "hi", "replyTo": "not-an-id"}))),
            BAD_REQUEST,
        ),
        (
            dm(&with_member, Json(json!({"text": "hi", "clientMsgId": ""}))),
            BAD_REQUEST,
        ),
        (dm(&long_user, hi()), BAD_REQUEST),
        (dm("dev-nobody", hi()), NOT_FOUND),
        (
            dm(&with_member, Json(json!({"text": "hi", "replyTo": unknown}))),
            NOT_FOUND,
        ),
        (dm(&with_member, Json(json!({"text": "x".repeat(4097)}))), TOO_LARGE),
        (
            dm(
                &with_member,
                Json(json!({"text": "x", "padding": "x".repeat(40 * 1024)})),
            ),
            TOO_LARGE,
        ),
    ])
    .await;

    // Reading the conversation: paging with each cursor, and its refusals.
    api.page_until(alice, USER_MESSAGES, &to_member, "messages", |page| {
        entry(page, &dm_id).is_some()
    })
    .await;
    let read = |user, query: String| request(get, USER_MESSAGES, &[("userId", user)], Bearer(alice)).query(query);
    api.check([
        (read(&with_member, format!("?after={dm_id}&limit=1")), status(200)),
        (read(&with_member, format!("?before={dm_id}")), status(200)),
        (read(&with_member, "?limit=100".to_owned()), status(200)),
        (read(&with_member, "?limit=0".to_owned()), BAD_REQUEST),
        (read(&with_member, "?limit=101".to_owned()), BAD_REQUEST),
        (read(&with_member, "?after=nope".to_owned()), BAD_REQUEST),
        (
            read(&with_member, format!("?after={dm_id}&before={dm_id}")),
            BAD_REQUEST,
        ),
        (read(&long_user, String::new()), BAD_REQUEST),
    ])
    .await;

    // Editing and deleting the dm, and the refusals.
    let the_dm = [("userId", with_member.as_str()), ("id", dm_id.as_str())];
    let reply = api.ask(change(patch, USER_MESSAGE, &the_dm, alice)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        (&reply.body["with"], &reply.body["id"]),
        (&json!(member), &json!(dm_id))
    );
    let with = |method, user, id| change(method, USER_MESSAGE, &[("userId", user), ("id", id)], alice);
    let edit_dm = |body: Body| request(patch, USER_MESSAGE, &the_dm, Bearer(alice)).body(body);
    api.check([
        (edit_dm(Text("not json".into())), BAD_REQUEST),
        (edit_dm(Json(json!({"text": ""}))), BAD_REQUEST),
        (with(patch, &with_member, "nope"), BAD_REQUEST),
        (with(delete, &with_member, "nope"), BAD_REQUEST),
        (with(patch, &long_user, &dm_id), BAD_REQUEST),
        (with(delete, &long_user, &dm_id), BAD_REQUEST),
        (edit_dm(Json(json!({"text": "x".repeat(4097)}))), TOO_LARGE),
        // An id of a position past the log's end: 404, as in the room.
        (with(patch, &with_member, &ahead), NOT_FOUND),
        (with(delete, &with_member, &ahead), NOT_FOUND),
        (
            dm(&with_member, Json(json!({"text": "hi", "replyTo": ahead}))),
            NOT_FOUND,
        ),
        // An unknown id, and the dm named in another conversation.
        (with(patch, &with_member, &unknown), NOT_FOUND),
        (with(delete, &with_member, &unknown), NOT_FOUND),
        (with(patch, "dev-bob", &dm_id), NOT_FOUND),
        (with(delete, "dev-bob", &dm_id), NOT_FOUND),
    ])
    .await;
    let reply = api.ask(change(delete, USER_MESSAGE, &the_dm, alice)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        (&reply.body["with"], &reply.body["id"]),
        (&json!(member), &json!(dm_id))
    );
    api.page_until(alice, USER_MESSAGES, &to_member, "messages", |page| {
        entry(page, &dm_id).is_some_and(|m| m["deleted"] == true)
    })
    .await;
    api.check([
        (change(patch, USER_MESSAGE, &the_dm, alice), NOT_FOUND),
        (change(delete, USER_MESSAGE, &the_dm, alice), NOT_FOUND),
    ])
    .await;

    // The conversations: the member's, with the deleted dm last; pages, and refusals.
    let listed = api
        .page_until(alice, CONVERSATIONS, &[], "conversations", |list| {
            list.iter()
                .any(|c| c["with"]["userId"] == member.as_str() && c["last"]["deleted"] == true)
        })
        .await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let list = |query: &str| request(get, CONVERSATIONS, &[], Bearer(alice)).query(query);
    api.check([
        (list("?limit=1"), status(200)),
        (list(&format!("?before={dm_id}&limit=100")), status(200)),
        (list("?before=nope"), BAD_REQUEST),
        (list("?limit=0"), BAD_REQUEST),
        (list("?limit=101"), BAD_REQUEST),
        (list("?limit=ten"), BAD_REQUEST),
    ])
    .await;
}
