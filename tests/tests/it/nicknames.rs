//! Nicknames cannot be borrowed (issue 22, item 3): two different users never show under
//! the same nickname at once, over WebSocket or HTTP. Through the local gateway with sign-in
//! (embedded backends; moto + tansu), real WebSocket and HTTP clients: a token that names
//! another online user's nickname is refused with 409 `conflict` on every HTTP action that
//! would show the name, and nothing it tried reaches the room; the user who holds the
//! nickname uses it over HTTP as well. A user who only uses HTTP holds its nickname by a
//! lease: refused to others over HTTP and at the handshake until it lapses.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use roomcast_aws::config::Env;
use roomcast_core::clock::now_secs;
use roomcast_core::model::{Nick, User, UserId};
use roomcast_core::Connections;
use roomcast_local::Running;
use roomcast_tests::each_backend;
use roomcast_tests::gateways::{settings, signed_in_gateway, start_in, Mode};
use roomcast_tests::http_client::HttpApi;
use roomcast_tests::tokens::{signed_in_auth, signed_token};
use roomcast_tests::ws_client::Client;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite;

each_backend!(
    embedded => signed_in_gateway(Mode::Embedded).await,
    real => signed_in_gateway(Mode::Real).await;
    [an_online_users_nickname_cannot_be_borrowed_over_http_or_websocket]
);

each_backend!(
    leasing_embedded => leasing_gateway(Mode::Embedded).await,
    leasing_real => leasing_gateway(Mode::Real).await;
    [an_http_users_nickname_is_held_for_its_lease_over_http_and_websocket]
);

/// The nickname lease of [`leasing_gateway`]: short, so that a test sees it lapse. Each
/// check that it holds follows a call of its holder's within one round trip, and a call
/// leaves at least half of it (3 s) to run.
const LEASE: Duration = Duration::from_secs(6);
/// Longest wait for a lease to lapse once its holder stops calling.
const LAPSE_WAIT: Duration = Duration::from_secs(30);
/// Between two handshakes that wait for the lapse: a signed-in user's handshakes draw from
/// its bucket of 20 (`ROOMCAST_CONNECTION_BURST`), which a lease of 6 s does not drain.
const LAPSE_PAUSE: Duration = Duration::from_millis(500);

/// A signed-in gateway (as [`signed_in_gateway`]) with `ROOMCAST_NICK_LEASE_SECS` set to [`LEASE`].
async fn leasing_gateway(mode: Mode) -> Running {
    let mut settings = settings(mode, &[]);
    settings.auth = signed_in_auth();
    let env = Env::new(|name: &str| (name == "ROOMCAST_NICK_LEASE_SECS").then(|| LEASE.as_secs().to_string()));
    assert_eq!(env.domain().expect("the configuration").nick_lease, LEASE);
    start_in(settings, env).await
}

/// Alice posts over HTTP, and her own WebSocket (`laptop`) gets it under her name.
async fn posts_from_her_phone(api: &HttpApi, alice: &str, laptop: &mut Client) {
    let sent = api
        .call(
            "POST",
            "/api/rooms/general/messages",
            Some(alice),
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
}

/// A handshake with `token`: the open connection, or the HTTP status that refused it.
async fn handshake(gateway: &Running, token: &str) -> Result<Client, u16> {
    match Client::try_open(gateway, &format!("?token={token}"), &[], "handshake").await {
        Ok(client) => Ok(client),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(error) => panic!("handshake: {error}"),
    }
}

async fn an_online_users_nickname_cannot_be_borrowed_over_http_or_websocket(gateway: Running) {
    let api = HttpApi::of(&gateway);
    let alice = signed_token("u-alice", "alice", &[]);
    let mallory = signed_token("u-mallory", "alice", &[]);
    let mut laptop = Client::with_token(&gateway, &alice, "alice").await;
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
    posts_from_her_phone(&api, &alice, &mut laptop).await;
    gateway.shutdown().await;
}

async fn an_http_users_nickname_is_held_for_its_lease_over_http_and_websocket(gateway: Running) {
    let api = HttpApi::of(&gateway);
    let alice = signed_token("u-alice", "alice", &[]);
    let mallory = signed_token("u-mallory", "alice", &[]);
    // Alice polls, and never opens a WebSocket: her call holds "alice" (and renews it
    // once it is past half its life).
    let alice_polls = || async {
        let reply = api.call("GET", "/api/conversations", Some(&alice), None).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    };
    let joined = api
        .call("PUT", "/api/rooms/general/members/me", Some(&alice), None)
        .await;
    assert_eq!(joined.status, 200, "{joined:?}");

    // Mallory's token says "alice" too: every action that would show it is refused.
    let send = json!({"text": "it is me, alice"}).to_string();
    for (method, path, body) in [
        ("PUT", "/api/rooms/general/members/me", None),
        ("POST", "/api/rooms/general/messages", Some(send.as_str())),
        ("POST", "/api/users/u-bob/messages", Some(send.as_str())),
        ("GET", "/api/conversations", None),
    ] {
        alice_polls().await;
        let reply = api.call(method, path, Some(&mallory), body).await;
        assert_eq!(reply.error(), (409, Some("conflict")), "{method} {path}: {reply:?}");
        let message = reply.body["message"].as_str().unwrap_or_default();
        assert!(message.contains("nickname `alice` is taken"), "{reply:?}");
    }
    // And so is Mallory's handshake.
    alice_polls().await;
    assert_eq!(handshake(&gateway, &mallory).await.err(), Some(409));

    // Alice's own WebSocket is hers: it connects, and sees what she posts over HTTP.
    let mut laptop = Client::with_token(&gateway, &alice, "alice").await;
    posts_from_her_phone(&api, &alice, &mut laptop).await;
    // The laptop goes; once it is gone from the room, her lease still holds the nickname.
    drop(laptop);
    api.get_until(&alice, "/api/rooms/general/who", |who| who["users"] == json!([]))
        .await;
    alice_polls().await;
    let reply = api
        .call("POST", "/api/rooms/general/messages", Some(&mallory), Some(&send))
        .await;
    assert_eq!(reply.error(), (409, Some("conflict")), "{reply:?}");

    // Alice stops calling: once her lease lapses, Mallory's handshake takes the nickname.
    let deadline = tokio::time::Instant::now() + LAPSE_WAIT;
    let _mallorys = loop {
        match handshake(&gateway, &mallory).await {
            Ok(socket) => break socket,
            Err(409) => {}
            Err(status) => panic!("mallory's handshake: HTTP {status}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a lease of {LEASE:?} still held the nickname after {LAPSE_WAIT:?}"
        );
        tokio::time::sleep(LAPSE_PAUSE).await;
    };
    // Now Mallory's connection holds "alice": alice's token is the one refused.
    let reply = api
        .call(
            "POST",
            "/api/rooms/general/messages",
            Some(&alice),
            Some(r#"{"text":"still me"}"#),
        )
        .await;
    assert_eq!(reply.error(), (409, Some("conflict")), "{reply:?}");
    let reply = api.call("GET", "/api/conversations", Some(&mallory), None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    gateway.shutdown().await;
}

/// What holding a nickname over HTTP costs in DynamoDB, counted through a proxy in front of
/// moto: a caller that polls every 5 s for two minutes with a lease of a minute makes one
/// consistent GetItem per request, and one conditional write only when its lease is past
/// half its life.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polling_caller_holds_its_nickname_with_a_read_per_request_and_a_write_per_half_lease() {
    roomcast_tests::init_tracing();
    let (store, tally) = roomcast_tests::moto::fresh_store_counted().await;
    let user = User {
        user_id: UserId::new("u-poller"),
        nick: Nick::trusted("poller"),
    };
    let lease = Duration::from_secs(60);
    let start = now_secs();
    let mut written_at = Vec::new();
    for second in (0..=120).step_by(5) {
        store
            .lease_nick(&user, start + second, lease)
            .await
            .expect("its own nickname");
        let used = tally.take();
        let count = |operation: &str| used.get(operation).map_or(0, |used| used.requests);
        assert_eq!(
            (count("GetItem"), used.get("GetItem").map(|get| get.consistent)),
            (1, Some(1))
        );
        let writes = count("PutItem") + count("UpdateItem") + count("TransactWriteItems");
        assert!(writes <= 1, "at {second} s: {used:?}");
        if writes == 1 {
            written_at.push(second);
        }
        assert_eq!(used.len(), 1 + writes, "nothing else: {used:?}");
    }
    // Claimed at 0 s until 60 s; renewed at 35 s (25 s left) until 95 s; at 70 s; at 105 s.
    assert_eq!(written_at, vec![0, 35, 70, 105]);
    // The claim keeps its TTL attribute past its lease, so DynamoDB deletes it once stale.
    let claim = roomcast_tests::moto::client()
        .get_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S("NICK#poller".into()))
        .key("sk", AttributeValue::S("#NICK".into()))
        .send()
        .await
        .expect("the claim reads")
        .item
        .expect("a claim");
    let number = |name: &str| match claim.get(name) {
        Some(AttributeValue::N(number)) => number.parse::<i64>().expect("a number"),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!((number("leaseUntil"), number("expiresAt")), (start + 165, start + 165));
    println!(
        "25 requests over 2 minutes with a 60 s lease: 25 GetItem, {} writes",
        written_at.len()
    );
}
