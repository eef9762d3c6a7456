//! The conformance cases that need a gateway of their own: small quotas (429), and sign-in
//! on with a key (no dev tokens, roles, other users' messages and nicknames).

use roomcast_local::http_api::DEV_TOKEN_PATH;
use serde_json::json;
use ws_authorizer::NewToken;

use super::messages::{message_writes, text_body};
use crate::openapi::api::{
    entry, request, status, Api, Auth, Body, CONFLICT, CONVERSATIONS, FORBIDDEN, MEMBERS, MESSAGES, RATE_LIMITED,
    ROOMS, ROOM_FILES, USER_FILES, USER_MESSAGE, USER_MESSAGES, WHO,
};
use crate::openapi::{signed_in_settings, start, start_with};
use roomcast_tests::gateways::Mode;
use roomcast_tests::tokens::{signed_in_auth, signed_token};
use roomcast_tests::ws_client::Client;

/// Quotas, on a gateway with small ones: one message, one new room, one membership, two
/// joins or leaves, one read.
pub(super) async fn quota_cases(api: &Api<'_>) {
    use Auth::Bearer;
    use Body::Json;
    let (get, post, put, delete) = ("GET", "POST", "PUT", "DELETE");
    let gateway = start_with(
        roomcast_tests::gateways::settings(Mode::Embedded, &[]),
        &[
            ("ROOMCAST_MESSAGES_PER_SECOND", "0.001"),
            ("ROOMCAST_MESSAGE_BURST", "1"),
            ("ROOMCAST_ROOMS_CREATED_PER_HOUR", "1"),
            ("ROOMCAST_ROOM_CREATION_BURST", "1"),
            ("ROOMCAST_ROOMS_PER_USER", "1"),
            ("ROOMCAST_MEMBERSHIPS_PER_SECOND", "0.001"),
            ("ROOMCAST_MEMBERSHIP_BURST", "2"),
            ("ROOMCAST_READS_PER_SECOND", "0.001"),
            ("ROOMCAST_READ_BURST", "1"),
        ],
    )
    .await;
    let api = api.on(&gateway);
    let frank = api.dev_token("frank", &[]).await;
    let create = |room: &str| request(post, ROOMS, &[], Bearer(&frank)).body(Json(json!({"room": room})));
    let members = |method, room| request(method, MEMBERS, &[("room", room)], Bearer(&frank));
    api.check([
        (create("frank1"), status(201)),
        (create("frank2"), RATE_LIMITED),
        (members(put, "frank1"), status(200)),
        (members(put, "general"), CONFLICT),
    ])
    .await;
    let send = || request(post, MESSAGES, &[("room", "frank1")], Bearer(&frank)).body(Json(json!({"text": "hi"})));
    let reply = api.ask(send()).await;
    assert_eq!((reply.status, reply.code()), (202, None), "{reply:?}");
    let sent = reply.body["id"]
        .as_str()
        .expect("the first message was taken")
        .to_owned();
    let mut cases = vec![(send(), RATE_LIMITED)];
    // Dms, edits and deletes take from the same bucket as sends.
    for (method, template, parameters) in message_writes("frank1", "dev-alice", &sent) {
        cases.push((
            request(method, template, &parameters, Bearer(&frank)).body(text_body(method)),
            RATE_LIMITED,
        ));
    }
    // Uploads too.
    let upload = Json(json!({"name": "a.png", "contentType": "image/png", "size": 3}));
    for (template, parameter) in [(ROOM_FILES, ("room", "frank1")), (USER_FILES, ("userId", "dev-alice"))] {
        cases.push((
            request(post, template, &[parameter], Bearer(&frank)).body(upload.clone()),
            RATE_LIMITED,
        ));
    }
    // Frank's two joins are spent.
    cases.push((members(put, "frank1"), RATE_LIMITED));
    cases.push((members(delete, "frank1"), RATE_LIMITED));
    api.check(cases).await;

    // Every read draws from one bucket.
    let gina = api.dev_token("gina", &[]).await;
    let read =
        |template, parameters: &[(&'static str, &'static str)]| request(get, template, parameters, Bearer(&gina));
    api.check([
        (read(ROOMS, &[]), status(200)),
        (read(ROOMS, &[]), RATE_LIMITED),
        (read(MESSAGES, &[("room", "frank1")]), RATE_LIMITED),
        (read(WHO, &[("room", "frank1")]), RATE_LIMITED),
        (read(CONVERSATIONS, &[]), RATE_LIMITED),
        (read(USER_MESSAGES, &[("userId", "dev-frank")]), RATE_LIMITED),
    ])
    .await;
    gateway.shutdown().await;
}

/// With sign-in on (a key configured): tokens of that key; no dev tokens; only the `admin`
/// role may send to the broadcast room; another user's dm is not the recipient's to edit or
/// delete; a nickname in use is not another user's to show itself under.
pub(super) async fn signed_in_cases(api: &Api<'_>) {
    use Auth::{Bearer, Nobody};
    use Body::{Empty, Json};
    let (get, post, delete) = ("GET", "POST", "DELETE");
    let gateway = start(signed_in_settings()).await;
    let api = api.on(&gateway);
    let dana = signed_token("u-dana", "dana", &[]);
    api.check([
        // No dev tokens with a key.
        (
            request(post, DEV_TOKEN_PATH, &[], Nobody).body(Json(json!({"nick": "alice"}))),
            status(404),
        ),
        (request(get, ROOMS, &[], Bearer(&dana)), status(200)),
        (
            request(post, MESSAGES, &[("room", "admin")], Bearer(&dana)).body(Json(json!({"text": "to all"}))),
            FORBIDDEN,
        ),
    ])
    .await;
    // Another user's dm may not be edited or deleted by its recipient. Dana signs in over
    // WebSocket, so that a dm can name her by her id.
    let erin = signed_token("u-erin", "erin", &[]);
    let dana_ws = Client::connect(&gateway, &format!("dana&token={dana}")).await;
    let reply = api
        .call_at(
            post,
            USER_MESSAGES,
            &[("userId", "u-dana")],
            "",
            Bearer(&erin),
            Json(json!({"text": "for dana"})),
        )
        .await;
    assert_eq!(reply.status, 202, "{reply:?}");
    let erins = reply.body["id"].as_str().unwrap().to_owned();
    api.page_until(&dana, USER_MESSAGES, &[("userId", "u-erin")], "messages", |page| {
        entry(page, &erins).is_some()
    })
    .await;
    let parameters = [("userId", "u-erin"), ("id", erins.as_str())];
    api.check([
        (
            request("PATCH", USER_MESSAGE, &parameters, Bearer(&dana)).body(Json(json!({"text": "mine now"}))),
            FORBIDDEN,
        ),
        (request(delete, USER_MESSAGE, &parameters, Bearer(&dana)), FORBIDDEN),
    ])
    .await;
    drop(dana_ws);
    let stranger = ws_authorizer::sign_hs256(
        b"another-secret-another-secret-another-secret",
        &NewToken::new("u-eve").nick("eve").matching(&signed_in_auth()),
    )
    .expect("signing works");
    let reply = api.call(get, ROOMS, "", "", Bearer(&stranger), Empty).await;
    assert_eq!((reply.status, reply.code()), (401, Some("unauthorized")), "{reply:?}");

    // Another user's token cannot show itself under the nickname of someone online: not in
    // a room, not listing its conversations (which makes one known under the nickname), nor
    // as the author of a dm, an edit or a delete (refused before the id is looked at).
    let _zoe = Client::connect(&gateway, "zoe").await;
    let borrowed = signed_token("u-not-zoe", "zoe", &[]);
    let mut cases = vec![
        (
            request(post, MESSAGES, &[("room", "general")], Bearer(&borrowed)).body(Json(json!({"text": "zoe here"}))),
            CONFLICT,
        ),
        (
            request(delete, MEMBERS, &[("room", "general")], Bearer(&borrowed)),
            CONFLICT,
        ),
        (request(get, CONVERSATIONS, &[], Bearer(&borrowed)), CONFLICT),
    ];
    let any_id = roomcast_core::MessageId::generate().to_string();
    for (method, template, parameters) in message_writes("general", "u-dana", &any_id) {
        cases.push((
            request(method, template, &parameters, Bearer(&borrowed)).body(text_body(method)),
            CONFLICT,
        ));
    }
    api.check(cases).await;
    gateway.shutdown().await;
}
