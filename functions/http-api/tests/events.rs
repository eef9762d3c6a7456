//! http-api on the events API Gateway's HTTP API sends (payload format 2.0, decoded by
//! lambda_http as in AWS), with the embedded backends: the caller comes from the Lambda
//! authorizer's context, a refusal there is a 401 with its reason, and the OpenAPI
//! document needs no token.

use std::sync::Arc;

use lambda_http::Body;
use roomcast_core::memory::{DirectoryFiles, MemoryLog};
use roomcast_core::{Config, Ports};
use serde_json::{json, Value};

/// A payload 2.0 event (AWS's documented example, trimmed) for `method path`, with the
/// authorizer context `lambda`, if any.
fn event(method: &str, path: &str, query: &str, body: Option<&str>, lambda: Option<Value>) -> lambda_http::Request {
    let mut context = json!({
        "accountId": "123456789012",
        "apiId": "api-id",
        "domainName": "id.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "id",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "agent"},
        "requestId": "id",
        "routeKey": format!("{method} {path}"),
        "stage": "$default",
        "time": "12/Mar/2020:19:03:58 +0000",
        "timeEpoch": 1583348638390u64
    });
    if let Some(lambda) = lambda {
        context["authorizer"] = json!({ "lambda": lambda });
    }
    let event = json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"content-type": "application/json", "host": "id.execute-api.us-east-1.amazonaws.com"},
        "requestContext": context,
        "body": body,
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).expect("a payload 2.0 event")
}

struct Backends {
    ports: Ports,
    /// The ports' publisher, to read what was published.
    log: Arc<MemoryLog>,
    config: Config,
}

impl Backends {
    fn new() -> Self {
        let log = Arc::new(MemoryLog::new("events", 1, 100));
        let files = DirectoryFiles::new(
            std::env::temp_dir().join(format!("roomcast-http-api-{}", std::process::id())),
            "http://127.0.0.1:9/files",
            [2; 32],
        )
        .expect("a scratch directory");
        Self {
            ports: roomcast_core::memory::ports(log.clone(), files),
            log,
            config: Config::default(),
        }
    }

    async fn call(&self, request: lambda_http::Request) -> (u16, Value) {
        let response = http_api::handle(&self.ports, &self.config, request).await;
        assert_eq!(response.headers()["content-type"], "application/json");
        let status = response.status().as_u16();
        let body = match response.body() {
            Body::Text(text) => serde_json::from_str(text).expect("a JSON body"),
            other => panic!("a text body, not {other:?}"),
        };
        (status, body)
    }
}

fn alice() -> Value {
    json!({"userId": "u-alice", "nick": "alice", "roles": ""})
}

#[tokio::test]
async fn the_authorizers_user_runs_the_command() {
    let backends = Backends::new();
    let create = event("POST", "/api/rooms", "", Some(r#"{"room":"lobby"}"#), Some(alice()));
    assert_eq!(
        backends.call(create).await,
        (201, json!({"type": "roomCreated", "room": "lobby"}))
    );
    let join = event("PUT", "/api/rooms/lobby/members/me", "", None, Some(alice()));
    assert_eq!(
        backends.call(join).await,
        (200, json!({"type": "joined", "room": "lobby"}))
    );
    let send = event(
        "POST",
        "/api/rooms/lobby/messages",
        "",
        Some(r#"{"text":"hi"}"#),
        Some(alice()),
    );
    let (status, ack) = backends.call(send).await;
    assert_eq!((status, &ack["type"]), (202, &json!("ack")));
    // The message went to the log, from alice, for the room.
    // Its id is its place in the log, as the ack says (docs/protocol.md, "One order").
    let published = backends.log.read(0, 0, 100);
    let (message, position) = published
        .iter()
        .map(|record| {
            let envelope = roomcast_core::Envelope::decode(&record.value).unwrap();
            let position = roomcast_core::model::LogPosition {
                partition: record.partition,
                offset: record.offset,
            };
            (envelope, position)
        })
        .find(|(envelope, _)| envelope.frame.get().starts_with(r#"{"type":"message""#))
        .expect("the message was published");
    let frame: Value = serde_json::from_str(&message.frame_at(position)).unwrap();
    assert_eq!(frame["from"], json!({"userId": "u-alice", "nick": "alice"}));
    assert_eq!(frame["id"], ack["id"]);
}

#[tokio::test]
async fn without_a_user_the_answer_is_401_with_the_reason() {
    let backends = Backends::new();
    let refused = event(
        "GET",
        "/api/rooms",
        "",
        None,
        Some(json!({"refused": "the token has expired"})),
    );
    assert_eq!(
        backends.call(refused).await,
        (
            401,
            json!({"type": "error", "code": "unauthorized", "message": "the token has expired"})
        )
    );
    let (status, body) = backends.call(event("GET", "/api/rooms", "", None, None)).await;
    assert_eq!((status, &body["code"]), (401, &json!("unauthorized")));
    // Nothing ran: no room was made.
    let create = event("POST", "/api/rooms", "", Some(r#"{"room":"x"}"#), None);
    assert_eq!(backends.call(create).await.0, 401);
    let rooms = backends
        .call(event("GET", "/api/rooms", "", None, Some(alice())))
        .await
        .1;
    assert!(!rooms["rooms"].to_string().contains("\"x\""), "{rooms}");
}

#[tokio::test]
async fn the_openapi_document_needs_no_token() {
    let backends = Backends::new();
    let (status, document) = backends.call(event("GET", "/api/openapi.json", "", None, None)).await;
    assert_eq!(status, 200);
    assert_eq!(document, serde_json::from_str::<Value>(http_api::OPENAPI).unwrap());
}

#[tokio::test]
async fn query_parameters_reach_the_history_page() {
    let backends = Backends::new();
    let create = event("POST", "/api/rooms", "", Some(r#"{"room":"lobby"}"#), Some(alice()));
    backends.call(create).await;
    backends
        .call(event("PUT", "/api/rooms/lobby/members/me", "", None, Some(alice())))
        .await;
    let bad = event("GET", "/api/rooms/lobby/messages", "limit=500", None, Some(alice()));
    let (status, body) = backends.call(bad).await;
    assert_eq!((status, &body["code"]), (400, &json!("bad_request")), "{body}");
    let good = event("GET", "/api/rooms/lobby/messages", "limit=5", None, Some(alice()));
    assert_eq!(
        backends.call(good).await,
        (
            200,
            json!({"type": "history", "room": "lobby", "messages": [], "more": false})
        )
    );
}
