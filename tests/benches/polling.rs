//! What one poll of the HTTP API costs: the requests a polling client makes, and the
//! DynamoDB requests each of them makes, counted (not estimated) by a proxy between the
//! local gateway and moto's DynamoDB server that tallies every request by its operation
//! (`X-Amz-Target`). The gateway runs the same http-api and authorizer code as AWS, on the
//! embedded Kafka log.
//!
//! Three kinds of poll of `GET /api/rooms/{room}/messages`: the first (latest page), an
//! idle one (`after` the last id, nothing new), and one that brings new messages. Also a
//! send, for comparison. Prints requests per poll and per operation.
//!
//! `cargo bench -p roomcast-tests --bench polling [-- POLLS]` (default 50 idle polls)

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::Method;
use clap::Parser;
use roomcast_local::settings::Settings;
use roomcast_tests::dynamo_requests::{self, Use};
use roomcast_tests::unique_name;
use serde_json::Value;

struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Option<&str>) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_owned());
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn show(what: &str, calls: usize, tally: &BTreeMap<String, Use>) {
    let total: usize = tally.values().map(|used| used.requests).sum();
    let by_operation: Vec<String> = tally
        .iter()
        .map(|(operation, used)| format!("{operation} {:.2}", used.requests as f64 / calls as f64))
        .collect();
    println!(
        "{what:<38} {:>5.2} DynamoDB requests each ({})",
        total as f64 / calls as f64,
        by_operation.join(", ")
    );
}

#[tokio::main]
async fn main() {
    let polls: usize = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(50);
    let (proxy, tally) = dynamo_requests::start().await;
    let settings = Settings::parse_from([
        "roomcast-local",
        "--listen",
        "127.0.0.1:0",
        "--batch-window-ms",
        "0",
        "--dynamodb-endpoint",
        &format!("http://{proxy}"),
        "--table",
        &unique_name("polling"),
    ]);
    // Long enough for the embedded archive to keep what was sent (no batching window).
    let settle = Duration::from_millis(1000);
    let gateway = roomcast_tests::gateways::start(settings).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let base = gateway.http_url();
    let token: Value = serde_json::from_str(
        &client
            .post(format!("{base}/api/dev/token"))
            .body(r#"{"nick":"poller"}"#)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let api = Api {
        client,
        base,
        token: token["token"].as_str().unwrap().to_owned(),
    };
    let room = "polled";
    let messages = format!("/api/rooms/{room}/messages");
    assert_eq!(
        api.call(Method::POST, "/api/rooms", Some(&format!(r#"{{"room":"{room}"}}"#)))
            .await
            .0,
        201
    );
    assert_eq!(
        api.call(Method::PUT, &format!("/api/rooms/{room}/members/me"), None)
            .await
            .0,
        200
    );
    for n in 0..20 {
        let body = format!(r#"{{"text":"message {n}"}}"#);
        assert_eq!(api.call(Method::POST, &messages, Some(&body)).await.0, 202);
    }
    tokio::time::sleep(settle).await;

    println!("one poll is one HTTP request; the authorizer reads no table (in AWS its answer is cached per token)");
    tally.take();
    let (status, first) = api.call(Method::GET, &format!("{messages}?limit=50"), None).await;
    assert_eq!(status, 200);
    let mut last = first["messages"].as_array().unwrap().last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    show("first poll (latest page, 20 messages)", 1, &tally.take());

    for _ in 0..polls {
        let (status, page) = api.call(Method::GET, &format!("{messages}?after={last}"), None).await;
        assert_eq!(status, 200);
        assert!(page["messages"].as_array().unwrap().is_empty());
    }
    show(
        &format!("idle poll (after, nothing new) ×{polls}"),
        polls,
        &tally.take(),
    );

    for n in 0..5 {
        let body = format!(r#"{{"text":"new {n}"}}"#);
        assert_eq!(api.call(Method::POST, &messages, Some(&body)).await.0, 202);
    }
    let sends = tally.take();
    tokio::time::sleep(settle).await;
    tally.take();
    let (status, page) = api.call(Method::GET, &format!("{messages}?after={last}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(page["messages"].as_array().unwrap().len(), 5, "the five new messages");
    last = page["messages"][4]["id"].as_str().unwrap().to_owned();
    show("poll bringing 5 new messages", 1, &tally.take());
    show("send ×5 (with its fan-out and archive)", 5, &sends);
    let _ = last;
    gateway.shutdown().await;
}
