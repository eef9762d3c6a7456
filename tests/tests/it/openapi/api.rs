//! The conformance checks' client: a gateway's HTTP API, every answer checked against the
//! document (its status declared for the operation, its body valid against that status'
//! schema) and recorded; and the cases the checks are tables of ([`Request`], [`Answer`]).

use std::collections::BTreeSet;
use std::sync::Mutex;

use roomcast_local::http_api::DEV_TOKEN_PATH;
use roomcast_local::Running;
use serde_json::{json, Value};

use super::document::Document;
use super::{content_type, HISTORY_WAIT, JSON, POLL_PAUSE};

/// How a request is signed in.
#[derive(Clone, Copy)]
pub(super) enum Auth<'a> {
    /// No `Authorization` header.
    Nobody,
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// `Authorization: <value>` as given.
    Header(&'a str),
}

/// A request's body.
#[derive(Clone)]
pub(super) enum Body {
    Empty,
    Json(Value),
    Text(String),
}

/// An answer: its status and its JSON body.
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: Value,
}

impl Reply {
    /// The `code` of an error frame (`None` for API Gateway's own `{message}`).
    pub(super) fn code(&self) -> Option<&str> {
        self.body["code"].as_str()
    }
}

/// A gateway's HTTP API, every answer checked against the document and recorded.
pub(super) struct Api<'d> {
    pub(super) http: reqwest::Client,
    pub(super) origin: String,
    pub(super) doc: &'d Document,
    /// `(METHOD, path template, status)` of every answer so far.
    pub(super) seen: &'d Mutex<BTreeSet<(String, String, u16)>>,
}

impl Api<'_> {
    /// `method` on the operation `template` (`/api/rooms/{room}/who`) with `{room}` as
    /// `room` and `query` appended; the answer, checked: JSON, a status the operation
    /// declares, a body valid against that status' schema.
    pub(super) async fn call(
        &self,
        method: &str,
        template: &str,
        room: &str,
        query: &str,
        auth: Auth<'_>,
        body: Body,
    ) -> Reply {
        self.call_at(method, template, &[("room", room)], query, auth, body)
            .await
    }

    /// [`Api::call`] with each `{name}` of `template` as `parameters` give it (encoded as
    /// the path wants it).
    pub(super) async fn call_at(
        &self,
        method: &str,
        template: &str,
        parameters: &[(&str, &str)],
        query: &str,
        auth: Auth<'_>,
        body: Body,
    ) -> Reply {
        let mut path = template.to_owned();
        for (name, value) in parameters {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        let path = format!("{path}{query}");
        let reply = self.send(method, &path, auth, body).await;
        let declared = self.doc.statuses(method, template);
        assert!(
            declared.contains(&reply.status),
            "{method} {path}: {} is not declared for {method} {template} (only {declared:?}): {}",
            reply.status,
            reply.body
        );
        let schema = self
            .doc
            .response_schema(method, template, reply.status)
            .expect("a declared status has a schema");
        if let Some(why) = self.doc.invalid(schema, &reply.body) {
            panic!(
                "{method} {path}: the {} answer {} does not match the document: {why}",
                reply.status, reply.body
            );
        }
        self.seen
            .lock()
            .unwrap()
            .insert((method.to_owned(), template.to_owned(), reply.status));
        reply
    }

    /// The request as it goes, with no check but that the answer is JSON.
    pub(super) async fn send(&self, method: &str, path: &str, auth: Auth<'_>, body: Body) -> Reply {
        let verb = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self.http.request(verb, format!("{}{path}", self.origin));
        let bearer;
        match auth {
            Auth::Nobody => {}
            Auth::Bearer(token) => {
                bearer = format!("Bearer {token}");
                request = request.header("authorization", &bearer);
            }
            Auth::Header(value) => request = request.header("authorization", value),
        }
        let body = match body {
            Body::Empty => None,
            Body::Json(value) => Some(value.to_string()),
            Body::Text(text) => Some(text),
        };
        if let Some(body) = body {
            request = request.header("content-type", JSON).body(body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        let status = response.status().as_u16();
        let content_type = content_type(&response);
        let text = response
            .text()
            .await
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        assert_eq!(content_type.as_deref(), Some(JSON), "{method} {path}: {status} {text}");
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
        Reply { status, body }
    }

    /// A token from `POST /api/dev/token`.
    pub(super) async fn dev_token(&self, nick: &str, roles: &[&str]) -> String {
        let reply = self
            .call(
                "POST",
                DEV_TOKEN_PATH,
                "",
                "",
                Auth::Nobody,
                Body::Json(json!({"nick": nick, "roles": roles})),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body["userId"], format!("dev-{nick}"));
        reply.body["token"].as_str().expect("a token").to_owned()
    }

    /// The room's history page (as `token`), read until `done` holds for its messages.
    pub(super) async fn history_until(&self, token: &str, room: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        self.page_until(token, MESSAGES, &[("room", room)], "messages", done)
            .await
    }

    /// `GET template` with `parameters` (as `token`), read until `done` holds for the
    /// list `field` of its answer; that list.
    pub(super) async fn page_until(
        &self,
        token: &str,
        template: &str,
        parameters: &[(&str, &str)],
        field: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + HISTORY_WAIT;
        loop {
            let reply = self
                .call_at("GET", template, parameters, "", Auth::Bearer(token), Body::Empty)
                .await;
            assert_eq!(reply.status, 200, "{reply:?}");
            let items = reply.body[field].as_array().cloned().unwrap_or_default();
            if done(&items) {
                return items;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "GET {template} never showed what was expected: {items:?}"
            );
            tokio::time::sleep(POLL_PAUSE).await;
        }
    }
}

// The operations' path templates.
pub(super) const ROOMS: &str = "/api/rooms";
pub(super) const MEMBERS: &str = "/api/rooms/{room}/members/me";
pub(super) const MESSAGES: &str = "/api/rooms/{room}/messages";
pub(super) const WHO: &str = "/api/rooms/{room}/who";
pub(super) const ROOM_MESSAGE: &str = "/api/rooms/{room}/messages/{id}";
pub(super) const CONVERSATIONS: &str = "/api/conversations";
pub(super) const USER_MESSAGES: &str = "/api/users/{userId}/messages";
pub(super) const USER_MESSAGE: &str = "/api/users/{userId}/messages/{id}";
pub(super) const PUBLISH: &str = "/api/publish";
pub(super) const ROOM_FILES: &str = "/api/rooms/{room}/files";
pub(super) const USER_FILES: &str = "/api/users/{userId}/files";

/// The entry of `id` in a history page.
pub(super) fn entry<'a>(messages: &'a [Value], id: &str) -> Option<&'a Value> {
    messages.iter().find(|message| message["id"] == id)
}

impl<'d> Api<'d> {
    /// The same checks and record on another gateway.
    pub(super) fn on(&self, gateway: &Running) -> Api<'d> {
        Api {
            http: self.http.clone(),
            origin: gateway.http_url(),
            doc: self.doc,
            seen: self.seen,
        }
    }

    /// Sends each case's request in turn, checked as [`Api::call_at`] checks it, and asserts
    /// the answer the case expects.
    pub(super) async fn check(&self, cases: impl IntoIterator<Item = (Request<'_>, Answer)>) {
        for (request, Answer(status, code)) in cases {
            let what = format!("{} {}{}", request.method, request.template, request.query);
            let reply = self.ask(request).await;
            match code {
                Some(code) => assert_eq!((reply.status, reply.code()), (status, Some(code)), "{what}: {reply:?}"),
                None => assert_eq!(reply.status, status, "{what}: {reply:?}"),
            }
        }
    }

    /// The answer to `request`, checked as [`Api::call_at`] checks it.
    pub(super) async fn ask(&self, request: Request<'_>) -> Reply {
        let Request {
            method,
            template,
            parameters,
            query,
            auth,
            body,
        } = request;
        self.call_at(method, template, &parameters, &query, auth, body).await
    }
}

/// A request of a conformance case: `method` on the operation `template` with its path
/// parameters, a query, a signer and a body.
#[derive(Clone)]
pub(super) struct Request<'a> {
    method: &'static str,
    template: &'static str,
    parameters: Vec<(&'static str, &'a str)>,
    query: String,
    auth: Auth<'a>,
    body: Body,
}

/// `method` on `template` with `parameters`, signed in by `auth`, without a query or a body.
pub(super) fn request<'a>(
    method: &'static str,
    template: &'static str,
    parameters: &[(&'static str, &'a str)],
    auth: Auth<'a>,
) -> Request<'a> {
    Request {
        method,
        template,
        parameters: parameters.to_vec(),
        query: String::new(),
        auth,
        body: Body::Empty,
    }
}

impl Request<'_> {
    pub(super) fn body(self, body: Body) -> Self {
        Request { body, ..self }
    }

    /// `query` appended to the path, `?` included.
    pub(super) fn query(self, query: impl Into<String>) -> Self {
        Request {
            query: query.into(),
            ..self
        }
    }
}

/// The answer a case expects: a status, and the error frame's `code` where it is one.
#[derive(Clone, Copy, Debug)]
pub(super) struct Answer(u16, Option<&'static str>);

/// An answer of which only the status is checked.
pub(super) const fn status(status: u16) -> Answer {
    Answer(status, None)
}

pub(super) const BAD_REQUEST: Answer = Answer(400, Some("bad_request"));
pub(super) const NOT_MEMBER: Answer = Answer(403, Some("not_member"));
pub(super) const FORBIDDEN: Answer = Answer(403, Some("forbidden"));
pub(super) const NOT_FOUND: Answer = Answer(404, Some("not_found"));
pub(super) const CONFLICT: Answer = Answer(409, Some("conflict"));
pub(super) const TOO_LARGE: Answer = Answer(413, Some("too_large"));
pub(super) const RATE_LIMITED: Answer = Answer(429, Some("rate_limited"));
