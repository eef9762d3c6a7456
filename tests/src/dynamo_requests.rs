//! A proxy in front of moto's DynamoDB server that counts every request by its operation
//! (`X-Amz-Target`), with its bytes, the items it read and the items it wrote: what the
//! benchmarks report as DynamoDB requests is counted, not estimated. Started with
//! [`start_one_at_a_time`], it also forwards one request at a time, so that calls racing
//! on one table (the store tests' "at once") never have moto answer 500 (see
//! [`crate::moto::fresh_store_one_request_at_a_time`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::Value;

use crate::moto;

/// What one operation cost: requests, bytes each way and, for reads, items returned.
#[derive(Debug, Default, Clone, Copy)]
pub struct Use {
    pub requests: usize,
    pub request_bytes: usize,
    pub response_bytes: usize,
    pub items: usize,
    pub consistent: usize,
    /// Items written (a transaction's actions, a batch's puts; 1 for a single write).
    pub writes: usize,
    /// Answers other than 200 (a retried request is counted each time it was sent).
    pub failed: usize,
}

impl Use {
    /// Read and write capacity units, estimated: a read costs one unit per 4 KB returned
    /// (half for an eventually consistent one), a write one per 1 KB written per item (a
    /// transaction twice). The JSON bytes counted are an upper bound of DynamoDB's item
    /// sizes (attribute names and values, without JSON's type tags and quotes), so these
    /// are upper bounds too; a write is counted as at least one unit per item.
    pub fn units(&self, operation: &str) -> (f64, f64) {
        match operation {
            "GetItem" | "Query" | "BatchGetItem" => {
                let eventual = self.requests - self.consistent;
                let per_request = (self.response_bytes as f64 / self.requests.max(1) as f64 / 4096.0).ceil();
                (per_request * (self.consistent as f64 + eventual as f64 * 0.5), 0.0)
            }
            "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems" => {
                let per_item = (self.request_bytes as f64 / self.writes.max(1) as f64 / 1024.0)
                    .ceil()
                    .max(1.0);
                let transaction = if operation == "TransactWriteItems" { 2.0 } else { 1.0 };
                (0.0, transaction * per_item * self.writes as f64)
            }
            _ => (0.0, 0.0),
        }
    }
}

/// DynamoDB requests by operation, as they went through the proxy.
#[derive(Clone, Default)]
pub struct Tally(Arc<Mutex<BTreeMap<String, Use>>>);

impl Tally {
    /// What was counted since the last take.
    pub fn take(&self) -> BTreeMap<String, Use> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct Proxy {
    tally: Tally,
    client: reqwest::Client,
    upstream: String,
    /// Held while a request is at moto, when requests go one at a time.
    turn: Option<tokio::sync::Mutex<()>>,
}

/// Forwards one DynamoDB request to moto as it came (moto does not check signatures) and
/// counts it once answered.
async fn forward(
    State(proxy): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let operation = headers
        .get("x-amz-target")
        .and_then(|target| target.to_str().ok())
        .and_then(|target| target.rsplit('.').next())
        .unwrap_or("(none)")
        .to_owned();
    let request_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut request = proxy
        .client
        .request(
            method,
            format!("{}{}", proxy.upstream, uri.path_and_query().map_or("/", |p| p.as_str())),
        )
        .body(body.clone());
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let turn = match &proxy.turn {
        Some(turn) => Some(turn.lock().await),
        None => None,
    };
    let (status, response_headers, answer) = match request.send().await {
        Ok(response) => {
            let status = response.status();
            let headers = response.headers().clone();
            (status, headers, response.bytes().await.unwrap_or_default())
        }
        Err(error) => {
            return (StatusCode::BAD_GATEWAY, error.to_string()).into_response();
        }
    };
    drop(turn);
    let answer_json: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    let items = match operation.as_str() {
        "Query" => answer_json["Count"].as_u64().unwrap_or(0) as usize,
        "GetItem" => usize::from(answer_json.get("Item").is_some()),
        _ => 0,
    };
    let writes = match operation.as_str() {
        "TransactWriteItems" => request_json["TransactItems"].as_array().map_or(0, Vec::len),
        "BatchWriteItem" => request_json["RequestItems"].as_object().map_or(0, |tables| {
            tables.values().filter_map(Value::as_array).map(Vec::len).sum()
        }),
        "PutItem" | "UpdateItem" | "DeleteItem" => 1,
        _ => 0,
    };
    {
        let mut tally = proxy.tally.0.lock().unwrap();
        let entry = tally.entry(operation).or_default();
        entry.requests += 1;
        entry.request_bytes += body.len();
        entry.response_bytes += answer.len();
        entry.items += items;
        entry.consistent += usize::from(request_json["ConsistentRead"].as_bool() == Some(true));
        entry.writes += writes;
        entry.failed += usize::from(status != StatusCode::OK);
    }
    (status, response_headers, answer).into_response()
}

/// Starts the proxy on `127.0.0.1:<free port>` in front of the test run's moto; point the
/// DynamoDB client at `http://{addr}`. Every request it forwards is counted in the tally.
pub async fn start() -> (SocketAddr, Tally) {
    serve(None).await
}

/// [`start`], forwarding one request at a time: moto fails a transaction with HTTP 500
/// when another request writes to its table meanwhile, while concurrent calls through the
/// proxy still interleave their requests as they would on DynamoDB.
pub async fn start_one_at_a_time() -> (SocketAddr, Tally) {
    serve(Some(tokio::sync::Mutex::new(()))).await
}

async fn serve(turn: Option<tokio::sync::Mutex<()>>) -> (SocketAddr, Tally) {
    let tally = Tally::default();
    let proxy = Arc::new(Proxy {
        tally: tally.clone(),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client"),
        upstream: moto::endpoint().to_owned(),
        turn,
    });
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, tally)
}
