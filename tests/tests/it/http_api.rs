//! The HTTP API through the local gateway, with a real HTTP client, on both backends.
//!
//! What a polling client or a service notices: every route answers as the WebSocket
//! command it stands for, with its status; refused requests get their status and change
//! nothing; a message POSTed over HTTP reaches WebSocket members and one sent over
//! WebSocket is read by polling `after`, which never skips nor repeats a message even
//! while several senders write at once; `POST /api/publish` reaches exactly its target;
//! and a signed-in user is one user over WebSocket and HTTP.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use roomcast_aws::config::Env;
use roomcast_core::config::AuthMode;
use roomcast_core::http::ROUTES;
use roomcast_local::Running;
use roomcast_tests::each_backend;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use ws_authorizer::{HmacKey, NewToken, Secret};

use crate::gateway::Mode;

/// Longest wait for one HTTP answer or one WebSocket frame: generous for a loaded CI
/// machine, never hit when things work.
const WAIT: Duration = Duration::from_secs(20);
/// Longest wait for a sent message to show in an HTTP history page: the archive's delay
/// (its batching window and, on tansu, its consumer group's first join).
const HISTORY_WAIT: Duration = Duration::from_secs(45);
/// Between two polls of a history page that had nothing new.
const POLL_PAUSE: Duration = Duration::from_millis(50);
/// The HS256 secret of the gateway with sign-in.
const SECRET: &[u8] = b"http-api-end-to-end-test-secret-of-32-bytes";

each_backend!(
    embedded => gateway(Mode::Embedded).await,
    real => gateway(Mode::Real).await;
    [
        every_route_answers_as_its_command,
        refused_requests_get_their_status_and_change_nothing,
        http_messages_reach_websocket_members_and_polling_reads_theirs,
        polling_after_never_skips_nor_repeats_under_concurrent_senders,
        websocket_history_after_polling_never_skips_under_concurrent_senders,
        room_messages_arrive_live_in_ascending_id_order,
        one_order_for_members_history_catch_up_and_pollers,
        publish_reaches_exactly_its_target_and_needs_a_role,
    ]
);

each_backend!(
    signed_in_embedded => signed_in_gateway(Mode::Embedded).await,
    signed_in_real => signed_in_gateway(Mode::Real).await;
    [
        a_signed_in_user_is_one_user_over_websocket_and_http,
        refused_tokens_get_401_unauthorized,
    ]
);

/// The default gateway (no sign-in, no key: `POST /api/dev/token` signs tokens).
async fn gateway(mode: Mode) -> Running {
    start(crate::gateway::settings(mode, &[])).await
}

/// Sign-in settings as `ROOMCAST_AUTH=optional` with `ROOMCAST_JWT_SECRET` would give.
pub(crate) fn signed_in_auth() -> ws_authorizer::Settings {
    let mut auth = ws_authorizer::Settings::new(AuthMode::Optional);
    auth.hmac = Some(HmacKey::Secret(Secret::new(SECRET)));
    auth
}

/// A gateway with sign-in `optional` and an HS256 secret: the HTTP API's tokens are
/// signed with that secret, and no dev token is offered.
pub(crate) async fn signed_in_gateway(mode: Mode) -> Running {
    let mut settings = crate::gateway::settings(mode, &[]);
    settings.auth = signed_in_auth();
    start(settings).await
}

async fn start(settings: roomcast_local::settings::Settings) -> Running {
    let env = Env::new(|_: &str| None);
    roomcast_local::start(settings, env.domain().unwrap(), env.fan_out().unwrap())
        .await
        .expect("gateway starts")
}

/// A token the signed-in gateway accepts.
pub(crate) fn signed_token(user: &str, nick: &str, roles: &[&str]) -> String {
    ws_authorizer::sign_hs256(
        SECRET,
        &NewToken::new(user)
            .nick(nick)
            .roles(roles.iter().copied())
            .matching(&signed_in_auth()),
    )
    .expect("signing works")
}

// ---------------------------------------------------------------------------------------
// An HTTP client of the API

pub(crate) use roomcast_tests::http_client::HttpApi as Api;

/// What these tests ask of the API beyond a call: a dev token, a message, a history page
/// that shows a change.
trait ApiExt {
    async fn dev_token(&self, nick: &str, roles: &[&str]) -> String;
    async fn send_message(&self, token: &str, room: &str, text: &str) -> Value;
    async fn history_until(&self, token: &str, path: &str, done: impl Fn(&[Value]) -> bool) -> Value;
}

impl ApiExt for Api {
    /// A token from `POST /api/dev/token`, checked to name the user `dev-<nick>`.
    async fn dev_token(&self, nick: &str, roles: &[&str]) -> String {
        let reply = self
            .call(
                "POST",
                "/api/dev/token",
                None,
                Some(&json!({"nick": nick, "roles": roles}).to_string()),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let body = &reply.body;
        assert_eq!(
            (&body["userId"], &body["nick"], &body["roles"]),
            (&json!(format!("dev-{nick}")), &json!(nick), &json!(roles)),
            "{body}"
        );
        assert!(body["expiresIn"].as_u64().is_some_and(|secs| secs > 0), "{body}");
        body["token"].as_str().expect("a token").to_owned()
    }

    /// Sends `text` to `room` as `token`'s user: the `ack`.
    async fn send_message(&self, token: &str, room: &str, text: &str) -> Value {
        let reply = self
            .call(
                "POST",
                &format!("/api/rooms/{room}/messages"),
                Some(token),
                Some(&json!({ "text": text }).to_string()),
            )
            .await;
        assert_eq!((reply.status, &reply.body["type"]), (202, &json!("ack")), "{reply:?}");
        reply.body
    }

    /// Polls the history page `path` until `done` holds for its messages (bounded by
    /// [`HISTORY_WAIT`]); the page.
    async fn history_until(&self, token: &str, path: &str, done: impl Fn(&[Value]) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + HISTORY_WAIT;
        loop {
            let reply = self.call("GET", path, Some(token), None).await;
            assert_eq!(
                (reply.status, &reply.body["type"]),
                (200, &json!("history")),
                "{path}: {reply:?}"
            );
            if done(reply.body["messages"].as_array().expect("messages")) {
                return reply.body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path}: still not there after {HISTORY_WAIT:?}: {}",
                reply.body
            );
            tokio::time::sleep(POLL_PAUSE).await;
        }
    }
}

/// The ids of a history page's messages.
fn ids(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|message| message["id"].as_str().expect("an id").to_owned())
        .collect()
}

fn has_id(id: &Value) -> impl Fn(&[Value]) -> bool + '_ {
    move |messages| messages.iter().any(|message| message["id"] == *id)
}

// ---------------------------------------------------------------------------------------
// A WebSocket client that sees every frame

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) struct Ws {
    socket: Socket,
    name: String,
}

impl Ws {
    /// Connects with `query` (`?name=…` or `?token=…`).
    pub(crate) async fn connect(gateway: &Running, query: &str, name: &str) -> Ws {
        let url = format!("{}/{query}", gateway.ws_url());
        let (socket, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .unwrap_or_else(|_| panic!("{name}: no handshake within {WAIT:?}"))
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        Ws {
            socket,
            name: name.to_owned(),
        }
    }

    /// An anonymous connection named `nick` (gateway without sign-in).
    async fn named(gateway: &Running, nick: &str) -> Ws {
        Ws::connect(gateway, &format!("?name={nick}"), nick).await
    }

    async fn send(&mut self, frame: Value) {
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .unwrap_or_else(|error| panic!("{}: {error}", self.name));
    }

    async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("{}: no frame within {WAIT:?}", self.name))
                .unwrap_or_else(|| panic!("{}: connection ended", self.name))
                .unwrap_or_else(|error| panic!("{}: {error}", self.name));
            match message {
                Message::Text(text) => return serde_json::from_str(&text).expect("frames are JSON"),
                Message::Close(frame) => panic!("{}: closed: {frame:?}", self.name),
                _ => continue,
            }
        }
    }

    /// Reads up to and including the first frame `wanted` accepts: the frames before it,
    /// and it.
    pub(crate) async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> (Vec<Value>, Value) {
        let mut before = Vec::new();
        loop {
            let frame = self.next().await;
            if wanted(&frame) {
                return (before, frame);
            }
            before.push(frame);
        }
    }

    /// Sends `frame`; its reply of type `kind`, skipping frames pushed meanwhile.
    pub(crate) async fn ask(&mut self, frame: Value, kind: &str) -> Value {
        self.send(frame.clone()).await;
        let (_, reply) = self
            .until(|reply| reply["type"] == kind || reply["type"] == "error")
            .await;
        assert_eq!(reply["type"], kind, "{}: {frame} → {reply}", self.name);
        reply
    }

    pub(crate) async fn join(&mut self, room: &str) {
        self.ask(json!({"action": "join", "room": room}), "joined").await;
    }

    async fn whoami(&mut self) -> Value {
        self.ask(json!({"action": "whoami"}), "whoami").await
    }
}

fn is_message(id: &Value) -> impl Fn(&Value) -> bool + '_ {
    move |frame| frame["type"] == "message" && frame["id"] == *id
}

// ---------------------------------------------------------------------------------------
// 1. Every route's success

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
    let mut wes = Ws::named(&gateway, "wes").await;
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
// 2. Errors

/// An HS256 token with `claims`, signed with `secret`.
fn hs256(secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("signing works")
}

/// An unsigned token (`alg: none`) with `claims`.
fn alg_none(claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn now_secs() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

async fn refused_requests_get_their_status_and_change_nothing(gateway: Running) {
    let api = Api::of(&gateway);
    let olga = api.dev_token("olga", &[]).await;
    let nina = api.dev_token("nina", &[]).await;
    // A WebSocket member sees every message of the room.
    let mut wendy = Ws::named(&gateway, "wendy").await;
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

// ---------------------------------------------------------------------------------------
// 3. HTTP and WebSocket in one room

async fn http_messages_reach_websocket_members_and_polling_reads_theirs(gateway: Running) {
    let api = Api::of(&gateway);
    let hugh = api.dev_token("hugh", &[]).await;
    let mut wanda = Ws::named(&gateway, "wanda").await;
    let mut walt = Ws::named(&gateway, "walt").await;
    let walt_id = walt.whoami().await["userId"].clone();
    wanda.join("general").await;
    walt.join("general").await;
    // Vera is in another room only.
    let mut vera = Ws::named(&gateway, "vera").await;
    vera.join("random").await;

    let joined = api
        .call("PUT", "/api/rooms/general/members/me", Some(&hugh), None)
        .await;
    assert_eq!(joined.status, 200, "{joined:?}");
    // The room hears of it as of any member.
    let (_, presence) = wanda
        .until(|frame| frame["type"] == "presence" && frame["user"]["userId"] == "dev-hugh")
        .await;
    assert_eq!(
        presence,
        json!({"type": "presence", "room": "general", "event": "joined",
               "user": {"userId": "dev-hugh", "nick": "hugh"}})
    );

    let ack = api.send_message(&hugh, "general", "hello sockets").await;
    let expected = json!({
        "type": "message",
        "room": "general",
        "id": ack["id"],
        "from": {"userId": "dev-hugh", "nick": "hugh"},
        "text": "hello sockets",
        "ts": ack["ts"],
    });
    for member in [&mut wanda, &mut walt] {
        let (_, message) = member.until(is_message(&ack["id"])).await;
        assert_eq!(message, expected, "{}", member.name);
    }

    // Walt answers over WebSocket; hugh polls for what came after his own message.
    let reply = walt
        .ask(
            json!({"action": "send", "room": "general", "text": "hello poller"}),
            "ack",
        )
        .await;
    let after = format!("/api/rooms/general/messages?after={}", ack["id"].as_str().unwrap());
    let page = api.history_until(&hugh, &after, |messages| !messages.is_empty()).await;
    assert_eq!(
        page["messages"],
        json!([{
            "id": reply["id"],
            "from": {"userId": walt_id, "nick": "walt"},
            "text": "hello poller",
            "ts": reply["ts"],
        }])
    );
    // Polling on from there: nothing new.
    let next = format!("/api/rooms/general/messages?after={}", reply["id"].as_str().unwrap());
    let page = api.call("GET", &next, Some(&hugh), None).await;
    assert_eq!(
        (page.status, &page.body["messages"], &page.body["more"]),
        (200, &json!([]), &json!(false))
    );

    // Vera got none of general's messages: a message to her room comes first.
    api.call("PUT", "/api/rooms/random/members/me", Some(&hugh), None).await;
    let marker = api.send_message(&hugh, "random", "hello random").await;
    let (before, _) = vera.until(is_message(&marker["id"])).await;
    assert!(
        !before.iter().any(|frame| frame["type"] == "message"),
        "vera: {before:?}"
    );
    gateway.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// 4. Polling `after` under concurrent senders

/// Messages each sender sends.
const PER_SENDER: usize = 40;

/// How a poller reads the room's history pages.
enum Reader {
    /// `GET /api/rooms/general/messages` with the token.
    Http(Api, String),
    /// The `history` action over a WebSocket connection (a member of the room).
    WebSocket(Box<Ws>),
}

impl Reader {
    /// The ids of every message after `after`, page by page.
    async fn all_after(&mut self, after: &str) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        loop {
            let page = self.page(Some(all.last().map_or(after, String::as_str)), 100).await;
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }

    /// The ids of the page of `limit` messages after `after`, or the latest page.
    async fn page(&mut self, after: Option<&str>, limit: usize) -> Vec<String> {
        match self {
            Reader::Http(api, token) => {
                let path = match after {
                    Some(after) => format!("/api/rooms/general/messages?after={after}&limit={limit}"),
                    None => format!("/api/rooms/general/messages?limit={limit}"),
                };
                let reply = api.call("GET", &path, Some(token), None).await;
                assert_eq!(reply.status, 200, "{reply:?}");
                ids(reply.body["messages"].as_array().unwrap())
            }
            Reader::WebSocket(ws) => {
                let mut frame = json!({"action": "history", "room": "general", "limit": limit});
                if let Some(after) = after {
                    frame["after"] = json!(after);
                }
                let page = ws.ask(frame, "history").await;
                ids(page["messages"].as_array().unwrap())
            }
        }
    }
}

/// Reads the room's history as a poller does: `after` the last id seen, `limit` at a
/// time, from `last` on, until `expected` says how many there are to see and it has seen
/// that many (or [`HISTORY_WAIT`] passed since it was told). Every id seen, in the order
/// seen.
async fn poll(
    mut reader: Reader,
    limit: usize,
    mut last: String,
    mut expected: tokio::sync::watch::Receiver<Option<usize>>,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut deadline = None;
    loop {
        let page = reader.page(Some(&last), limit).await;
        let got_some = !page.is_empty();
        if let Some(id) = page.last() {
            last = id.clone();
        }
        seen.extend(page);
        if let Some(count) = *expected.borrow_and_update() {
            if seen.len() >= count {
                return seen;
            }
            let deadline = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + HISTORY_WAIT);
            if tokio::time::Instant::now() >= deadline {
                return seen;
            }
        }
        if !got_some {
            tokio::time::sleep(POLL_PAUSE).await;
        }
    }
}

async fn polling_after_never_skips_nor_repeats_under_concurrent_senders(gateway: Running) {
    if let Err(failure) = after_polling_under_concurrent_senders(gateway, false).await {
        panic!("{failure}");
    }
}

/// Two pollers (3 and 10 a page, over HTTP or over WebSocket) read the room on with
/// `after` while two HTTP senders and a WebSocket sender each send [`PER_SENDER`]
/// messages as fast as their acks come: each poller sees every acknowledged message
/// once, in ascending id order. What went wrong, if anything.
async fn after_polling_under_concurrent_senders(gateway: Running, over_websocket: bool) -> Result<(), String> {
    let api = Api::of(&gateway);
    let reader = api.dev_token("reader", &[]).await;
    api.call("PUT", "/api/rooms/general/members/me", Some(&reader), None)
        .await;
    // Pollers start from the latest page: this message, once it is settled.
    let anchor = api.send_message(&reader, "general", "anchor").await;
    api.history_until(&reader, "/api/rooms/general/messages?limit=1", has_id(&anchor["id"]))
        .await;

    // Each poller starts from the latest page, read before anyone sends: the anchor.
    let (tell, told) = tokio::sync::watch::channel(None);
    let mut pollers = Vec::new();
    for limit in [3, 10] {
        let mut poller = if over_websocket {
            let mut ws = Ws::named(&gateway, &format!("poller{limit}")).await;
            ws.join("general").await;
            Reader::WebSocket(Box::new(ws))
        } else {
            Reader::Http(api.clone(), reader.clone())
        };
        let start = poller.page(None, limit).await.pop().expect("the anchor");
        assert_eq!(start, anchor["id"].as_str().unwrap(), "limit {limit}");
        pollers.push(tokio::spawn(poll(poller, limit, start, told.clone())));
    }

    // Two HTTP senders and one WebSocket sender, each sending as fast as its acks come.
    let mut senders = Vec::new();
    for nick in ["hs1", "hs2"] {
        let token = api.dev_token(nick, &[]).await;
        api.call("PUT", "/api/rooms/general/members/me", Some(&token), None)
            .await;
        let api = api.clone();
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 0..PER_SENDER {
                let ack = api.send_message(&token, "general", &format!("{nick} {n}")).await;
                acked.push(ack["id"].as_str().unwrap().to_owned());
            }
            acked
        }));
    }
    let mut ws = Ws::named(&gateway, "ws1").await;
    ws.join("general").await;
    senders.push(tokio::spawn(async move {
        let mut acked = Vec::new();
        for n in 0..PER_SENDER {
            let ack = ws
                .ask(
                    json!({"action": "send", "room": "general", "text": format!("ws1 {n}")}),
                    "ack",
                )
                .await;
            acked.push(ack["id"].as_str().unwrap().to_owned());
        }
        acked
    }));
    let mut acked = BTreeSet::new();
    for sender in senders {
        acked.extend(sender.await.expect("a sender"));
    }
    assert_eq!(acked.len(), 3 * PER_SENDER, "every ack has its own id");
    tell.send(Some(acked.len())).expect("pollers listen");

    let mut failures = Vec::new();
    for (poller, limit) in pollers.into_iter().zip([3, 10]) {
        let seen = poller.await.expect("a poller");
        let repeated_or_unordered: Vec<_> = seen.windows(2).filter(|pair| pair[0] >= pair[1]).collect();
        if !repeated_or_unordered.is_empty() {
            failures.push(format!(
                "limit {limit}: ids not strictly ascending: {repeated_or_unordered:?}"
            ));
        }
        let seen: BTreeSet<String> = seen.into_iter().collect();
        let skipped: Vec<_> = acked.difference(&seen).collect();
        let unknown: Vec<_> = seen.difference(&acked).collect();
        if !skipped.is_empty() || !unknown.is_empty() {
            failures.push(format!("limit {limit}: skipped {skipped:?}, never acked {unknown:?}"));
        }
    }
    gateway.shutdown().await;
    match failures.is_empty() {
        true => Ok(()),
        false => Err(failures.join("; ")),
    }
}

// The WebSocket side of the same promise ("paging either way never skips nor repeats a
// message", docs/protocol.md), and the one order every reader shares.

/// Found while testing polling, when ids were made before publishing: a WebSocket
/// `history` page holds whatever is archived, so `after` skipped a message archived a
/// moment after one with a greater id. Ids now come from the log and each conversation is
/// archived in log order (docs/protocol.md, "One order").
async fn websocket_history_after_polling_never_skips_under_concurrent_senders(gateway: Running) {
    if let Err(failure) = after_polling_under_concurrent_senders(gateway, true).await {
        panic!("{failure}");
    }
}

/// Three senders at once: a member receives the room's messages in ascending id order,
/// so catching up with `after` the last id received never skips one.
async fn room_messages_arrive_live_in_ascending_id_order(gateway: Running) {
    let api = Api::of(&gateway);
    let mut member = Ws::named(&gateway, "member").await;
    member.join("general").await;
    let mut senders = Vec::new();
    for nick in ["hs1", "hs2", "hs3"] {
        let token = api.dev_token(nick, &[]).await;
        api.call("PUT", "/api/rooms/general/members/me", Some(&token), None)
            .await;
        let api = api.clone();
        senders.push(tokio::spawn(async move {
            for n in 0..PER_SENDER {
                api.send_message(&token, "general", &format!("{nick} {n}")).await;
            }
        }));
    }
    for sender in senders {
        sender.await.expect("a sender");
    }
    let live = live_ids(&mut member, 3 * PER_SENDER).await;
    gateway.shutdown().await;
    let inverted: Vec<_> = live.windows(2).filter(|pair| pair[0] > pair[1]).collect();
    assert!(
        inverted.is_empty(),
        "received live before a smaller id (after= the first skips the second): {inverted:?}"
    );
}

/// The ids of the next `count` `message` frames, in the order they came.
async fn live_ids(member: &mut Ws, count: usize) -> Vec<String> {
    let mut live = Vec::new();
    while live.len() < count {
        let frame = member.next().await;
        if frame["type"] == "message" {
            live.push(frame["id"].as_str().expect("an id").to_owned());
        }
    }
    live
}

/// docs/protocol.md, "One order": three connections send to one room at full speed while
/// a member and an HTTP poller read. The member's live order is the history's order;
/// catching up `after` any id it saw gives exactly what followed that id live; the poller
/// sees every message once, in that order.
async fn one_order_for_members_history_catch_up_and_pollers(gateway: Running) {
    let api = Api::of(&gateway);
    let reader = api.dev_token("reader", &[]).await;
    api.call("PUT", "/api/rooms/general/members/me", Some(&reader), None)
        .await;
    let anchor = api.send_message(&reader, "general", "anchor").await;
    let anchor = anchor["id"].as_str().unwrap().to_owned();
    api.history_until(&reader, "/api/rooms/general/messages?limit=1", |page| {
        page.iter().any(|message| message["id"] == anchor.as_str())
    })
    .await;

    let mut member = Ws::named(&gateway, "member").await;
    member.join("general").await;
    let (tell, told) = tokio::sync::watch::channel(None);
    let poller = tokio::spawn(poll(Reader::Http(api.clone(), reader.clone()), 7, anchor.clone(), told));

    let mut senders = Vec::new();
    for nick in ["ws1", "ws2", "ws3"] {
        let mut ws = Ws::named(&gateway, nick).await;
        ws.join("general").await;
        senders.push(tokio::spawn(async move {
            for n in 0..PER_SENDER {
                let send = json!({"action": "send", "room": "general", "text": format!("{nick} {n}")});
                ws.ask(send, "ack").await;
            }
        }));
    }
    for sender in senders {
        sender.await.expect("a sender");
    }
    let total = 3 * PER_SENDER;
    // The anchor may come live too: fan-out looks the room up when the record arrives,
    // which on a broker still assigning partitions can be after the member joined.
    let mut live = Vec::new();
    while live.len() < total {
        live.extend(live_ids(&mut member, 1).await.into_iter().filter(|id| *id != anchor));
    }
    tell.send(Some(total)).expect("the poller listens");
    let polled = poller.await.expect("the poller");
    assert_eq!(polled, live, "the poller sees every message once, in the live order");

    // The history, read on from the anchor, is the live order; and from any id seen live,
    // `after` gives exactly what followed it.
    let mut reading = Reader::Http(api.clone(), reader.clone());
    assert_eq!(
        reading.all_after(&anchor).await,
        live,
        "the history's order is the live order"
    );
    for (index, id) in live.iter().enumerate() {
        let after = reading.page(Some(id), 100).await;
        let followed = &live[index + 1..];
        assert_eq!(after, followed[..followed.len().min(100)], "catching up after {id}");
    }
    gateway.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// 5. Publish

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
        let mut client = Ws::named(&gateway, nick).await;
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

// ---------------------------------------------------------------------------------------
// 6. A signed-in user over WebSocket and HTTP

async fn a_signed_in_user_is_one_user_over_websocket_and_http(gateway: Running) {
    let api = Api::of(&gateway);
    // With a key configured, no dev tokens.
    let reply = api
        .call("POST", "/api/dev/token", None, Some(r#"{"nick":"mallory"}"#))
        .await;
    assert_eq!((reply.status, &reply.body), (404, &json!({"message": "Not Found"})));

    let alice = signed_token("u-alice", "alice", &[]);
    let bob = signed_token("u-bob", "bob", &[]);
    let mut laptop = Ws::connect(&gateway, &format!("?token={alice}"), "alice's laptop").await;
    let mut bob_ws = Ws::connect(&gateway, &format!("?token={bob}"), "bob").await;
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
        .ask(json!({"action": "send", "room": "general", "text": "hi alice"}), "ack")
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
