//! A real HTTP client of the gateway's HTTP API, as a polling client or a service uses it:
//! JSON bodies, a bearer token, every answer JSON with a status; and reading a page again
//! until it shows what a test waits for (the archive stores a message a moment after its
//! `ack`).

use std::time::Duration;

use serde_json::{json, Value};

/// Longest wait for one answer: generous for a loaded CI machine, never hit when things work.
const WAIT: Duration = Duration::from_secs(20);
/// Longest wait for a page to show a change: the archive's delay, on moto + tansu too.
pub const PAGE_WAIT: Duration = Duration::from_secs(45);
/// Between two reads of a page that did not show the change yet.
pub const PAGE_PAUSE: Duration = Duration::from_millis(50);

/// An answer of the API: its status and its JSON body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// `(status, code)` of an error answer, for one assertion that shows both.
    pub fn error(&self) -> (u16, Option<&str>) {
        assert_eq!(self.body["type"], "error", "not an error frame: {self:?}");
        (self.status, self.body["code"].as_str())
    }
}

/// The HTTP API of one gateway, through one reqwest client.
#[derive(Clone)]
pub struct HttpApi {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT`.
    origin: String,
}

impl HttpApi {
    pub fn new(origin: impl Into<String>) -> HttpApi {
        HttpApi {
            http: reqwest::Client::builder()
                .timeout(WAIT)
                .build()
                .expect("an HTTP client"),
            origin: origin.into(),
        }
    }

    /// The HTTP API of a gateway started in this process.
    pub fn of(gateway: &roomcast_local::Running) -> HttpApi {
        HttpApi::new(format!("http://{}", gateway.addr()))
    }

    /// `method path` as `token`'s user (no `Authorization` header without one), with
    /// `body` as JSON text. Every answer must be JSON.
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Reply {
        let bearer = token.map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = bearer.iter().map(|bearer| ("authorization", bearer.as_str())).collect();
        self.send(method, path, &headers, body.map(|body| body.as_bytes().to_vec()))
            .await
    }

    /// `method path` with `headers` and `body`, any bytes, sent as JSON (a test of what
    /// the API does with a body that is not). Every answer must be JSON.
    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Reply {
        let verb = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self.http.request(verb, format!("{}{path}", self.origin));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let text = response
            .text()
            .await
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "{method} {path}: {status} {text}"
        );
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
        Reply { status, body }
    }

    /// `GET path` as `token`'s user until `done` holds for its 200 answer (bounded by
    /// [`PAGE_WAIT`]); that answer.
    pub async fn get_until(&self, token: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + PAGE_WAIT;
        loop {
            let reply = self.call("GET", path, Some(token), None).await;
            assert_eq!(reply.status, 200, "GET {path}: {reply:?}");
            if done(&reply.body) {
                return reply.body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "GET {path}: still not there after {PAGE_WAIT:?}: {}",
                reply.body
            );
            tokio::time::sleep(PAGE_PAUSE).await;
        }
    }

    /// A token from `POST /api/dev/token` (a gateway without a signing key), checked to
    /// name the user `dev-<nick>` with `roles`.
    pub async fn dev_token(&self, nick: &str, roles: &[&str]) -> String {
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
    pub async fn send_message(&self, token: &str, room: &str, text: &str) -> Value {
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

    /// Reads the history page `path` until `done` holds for its messages (bounded by
    /// [`PAGE_WAIT`]); the page.
    pub async fn history_until(&self, token: &str, path: &str, done: impl Fn(&[Value]) -> bool) -> Value {
        self.get_until(token, path, |page| {
            assert_eq!(page["type"], "history", "{path}: {page}");
            done(page["messages"].as_array().expect("messages"))
        })
        .await
    }
}

/// `text` as one path segment: every byte but the unreserved ones (RFC 3986) as `%XX`, so
/// that a user id with `:`, `/` or spaces stays one segment.
pub fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(byte).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}
