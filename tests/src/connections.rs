//! A real HTTP server speaking the `@connections` API (`POST /@connections/{id}`, also
//! under a stage prefix) with AWS's error bodies, so fan-out tests drive the official SDK
//! client. Each connection id can be told how to answer; every post is recorded in order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

/// How the server answers posts to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 200: delivered.
    Accept,
    /// 410 `GoneException`: the client went away.
    Gone,
    /// 500 for the first `n` posts, then 200.
    FailFirst(usize),
    /// 429 `LimitExceededException`, always.
    Throttle,
}

#[derive(Default)]
struct Inner {
    behaviour: HashMap<String, Behaviour>,
    failures: HashMap<String, usize>,
    /// Delivered frames, in the order the server accepted them.
    delivered: Vec<(String, String)>,
    /// Every attempt, delivered or not.
    attempts: Vec<String>,
}

#[derive(Clone, Default)]
pub struct ConnectionsServer {
    inner: Arc<Mutex<Inner>>,
    endpoint: String,
}

impl ConnectionsServer {
    /// Starts the server on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let endpoint = format!("http://{}", listener.local_addr().expect("local addr"));
        let server = Self {
            inner: Arc::default(),
            endpoint,
        };
        let app = Router::new()
            .route("/@connections/{id}", post(post_to_connection))
            .route("/{stage}/@connections/{id}", post(post_to_staged_connection))
            .with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        server
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn set(&self, connection_id: &str, behaviour: Behaviour) {
        self.inner
            .lock()
            .unwrap()
            .behaviour
            .insert(connection_id.to_owned(), behaviour);
    }

    /// The frames delivered to one connection, in order.
    pub fn frames_for(&self, connection_id: &str) -> Vec<serde_json::Value> {
        self.inner
            .lock()
            .unwrap()
            .delivered
            .iter()
            .filter(|(id, _)| id == connection_id)
            .map(|(_, body)| serde_json::from_str(body).expect("frames are JSON"))
            .collect()
    }

    /// How many posts (successful or not) reached the server.
    pub fn attempts(&self) -> usize {
        self.inner.lock().unwrap().attempts.len()
    }

    /// How many posts to one connection reached the server.
    pub fn attempts_for(&self, connection_id: &str) -> usize {
        self.inner
            .lock()
            .unwrap()
            .attempts
            .iter()
            .filter(|id| *id == connection_id)
            .count()
    }

    pub fn delivered_count(&self) -> usize {
        self.inner.lock().unwrap().delivered.len()
    }

    /// The official SDK client, pointed at this server (what kafka-fanout uses in AWS).
    pub fn sdk_client(&self) -> aws_sdk_apigatewaymanagement::Client {
        let config = aws_sdk_apigatewaymanagement::Config::builder()
            .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
            .region(aws_sdk_apigatewaymanagement::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_apigatewaymanagement::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .endpoint_url(&self.endpoint)
            .retry_config(aws_sdk_apigatewaymanagement::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_apigatewaymanagement::Client::from_conf(config)
    }

    /// kafka-fanout's notifier, pointed at this server as at API Gateway's stage URL.
    pub fn notifier(&self) -> roomcast_aws::notifier::ConnectionsNotifier {
        let credentials = aws_sdk_apigatewaymanagement::config::Credentials::new("test", "test", None, None, "tests");
        roomcast_aws::notifier::ConnectionsNotifier::with_credentials(
            aws_sdk_apigatewaymanagement::config::SharedCredentialsProvider::new(credentials),
            "us-east-1",
            &self.endpoint,
            64,
        )
        .expect("a notifier for an http endpoint")
    }

    fn answer(&self, id: String, body: Bytes) -> Response {
        let mut inner = self.inner.lock().unwrap();
        inner.attempts.push(id.clone());
        let behaviour = inner.behaviour.get(&id).copied().unwrap_or(Behaviour::Accept);
        match behaviour {
            Behaviour::Gone => aws_error(StatusCode::GONE, "GoneException"),
            Behaviour::Throttle => aws_error(StatusCode::TOO_MANY_REQUESTS, "LimitExceededException"),
            Behaviour::FailFirst(n) if *inner.failures.entry(id.clone()).or_default() < n => {
                *inner.failures.get_mut(&id).expect("just inserted") += 1;
                aws_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerErrorException")
            }
            _ => {
                inner.delivered.push((id, String::from_utf8_lossy(&body).into_owned()));
                StatusCode::OK.into_response()
            }
        }
    }
}

async fn post_to_connection(State(server): State<ConnectionsServer>, Path(id): Path<String>, body: Bytes) -> Response {
    server.answer(id, body)
}

async fn post_to_staged_connection(
    State(server): State<ConnectionsServer>,
    Path((_stage, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    server.answer(id, body)
}

/// An error as API Gateway's management API sends it: the type in `x-amzn-ErrorType`.
fn aws_error(status: StatusCode, kind: &'static str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("x-amzn-ErrorType", HeaderValue::from_static(kind));
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    (status, headers, format!(r#"{{"message":"{kind}"}}"#)).into_response()
}
