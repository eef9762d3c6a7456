//! DynamoDB requests per Kafka batch, counted (not estimated): a proxy between the
//! functions and moto's DynamoDB server tallies every request by its operation
//! (`X-Amz-Target`), with the bytes and items it carried. The functions' own handlers run on
//! real Lambda events: `$connect` and `join` (ws-connect, ws-message) fill M rooms with K
//! members each, every member sends (ws-message's `send`, each answered `ack` once the
//! embedded Kafka log has the record), and the N records the sends produced go as one
//! `KafkaEvent` batch to kafka-fanout (posting to an HTTP `@connections` server on
//! loopback) and then to kafka-archive, as their event source mappings would hand them.
//!
//! Prints, per (N records, M rooms): requests per batch and per message, by operation,
//! for each function; and per `send`, what ws-message asked. Read and write units are
//! estimated from the bytes counted (see [`Use::units`]); moto reports none. Then what a
//! million such messages cost at us-east-1 list prices ([`cost`]: the requests counted
//! here, with a model of the functions' durations whose round trips are options).
//!
//! `cargo bench -p roomcast-tests --bench dynamo_requests [-- --records 1,10,100 --rooms
//! 1,10,100 --members 4]`; `--short` (CI: `cargo test -p roomcast-tests --bench
//! dynamo_requests -- --short`, in the dev profile) runs 100 records over 1 and 10 rooms.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use clap::Parser;
use roomcast_aws::connections::ConnectionsNotifier;
use roomcast_aws::dynamo::{ensure_table, DynamoStore};
use roomcast_core::archive::ArchiveConfig;
use roomcast_core::fan_out::FanOutConfig;
use roomcast_core::memory::{LogRecord, MemoryLog};
use roomcast_core::Config;
use roomcast_tests::connections::ConnectionsServer;
use roomcast_tests::{events, moto, unique_name};
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(about = "DynamoDB requests per Kafka batch for kafka-fanout and kafka-archive, counted through a proxy")]
struct Options {
    /// Records per batch (messages sent before each batch), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 10, 100])]
    records: Vec<usize>,
    /// Rooms the records are spread over, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 10, 100])]
    rooms: Vec<usize>,
    /// Members (each one connection) per room.
    #[arg(long, default_value_t = 4)]
    members: usize,
    /// The CI run: 100 records over 1 and 10 rooms of 3 members.
    #[arg(long)]
    short: bool,
    /// The cost model's round trip of one DynamoDB request inside AWS, in ms.
    #[arg(long, default_value_t = 5.0)]
    dynamodb_ms: f64,
    /// The cost model's Kafka produce, acknowledged by all replicas, in ms.
    #[arg(long, default_value_t = 10.0)]
    kafka_ms: f64,
    /// The cost model's `POST @connections/{id}`, in ms.
    #[arg(long, default_value_t = 20.0)]
    post_ms: f64,
    /// `cargo bench` passes it; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// What one operation cost: requests, bytes each way and, for reads, items returned.
#[derive(Debug, Default, Clone, Copy)]
struct Use {
    requests: usize,
    request_bytes: usize,
    response_bytes: usize,
    items: usize,
    consistent: usize,
    /// Items written (a transaction's actions, a batch's puts; 1 for a single write).
    writes: usize,
    /// Answers other than 200 (a retried request is counted each time it was sent).
    failed: usize,
}

impl Use {
    /// Read and write capacity units, estimated: a read costs one unit per 4 KB returned
    /// (half for an eventually consistent one), a write one per 1 KB written per item (a
    /// transaction twice). The JSON bytes counted are an upper bound of DynamoDB's item
    /// sizes (attribute names and values, without JSON's type tags and quotes), so these
    /// are upper bounds too; a write is counted as at least one unit per item.
    fn units(&self, operation: &str) -> (f64, f64) {
        match operation {
            "GetItem" | "Query" | "BatchGetItem" => {
                let eventual = self.requests - self.consistent;
                let per_request = (self.response_bytes as f64 / self.requests.max(1) as f64 / 4096.0).ceil();
                (per_request * (self.consistent as f64 + eventual as f64 * 0.5), 0.0)
            }
            "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" => {
                let per_item = (self.request_bytes as f64 / self.writes.max(1) as f64 / 1024.0)
                    .ceil()
                    .max(1.0);
                (0.0, per_item * self.writes as f64)
            }
            "TransactWriteItems" => {
                let per_item = (self.request_bytes as f64 / self.writes.max(1) as f64 / 1024.0)
                    .ceil()
                    .max(1.0);
                (0.0, 2.0 * per_item * self.writes as f64)
            }
            _ => (0.0, 0.0),
        }
    }
}

/// DynamoDB requests by operation, as they went through the proxy.
#[derive(Clone, Default)]
struct Tally(Arc<Mutex<BTreeMap<String, Use>>>);

impl Tally {
    fn take(&self) -> BTreeMap<String, Use> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct Proxy {
    tally: Tally,
    client: reqwest::Client,
    upstream: String,
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

async fn start_proxy(tally: Tally) -> SocketAddr {
    let proxy = Arc::new(Proxy {
        tally,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        upstream: moto::endpoint().to_owned(),
    });
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn body(response: &ApiGatewayProxyResponse) -> Value {
    response
        .body
        .as_ref()
        .and_then(|body| match body {
            aws_lambda_events::encodings::Body::Text(text) => serde_json::from_str(text).ok(),
            _ => None,
        })
        .unwrap_or(Value::Null)
}

/// Prints one function's requests for `calls` calls (or records) and answers the summed
/// requests and units per call.
fn show(what: &str, calls: usize, tally: &BTreeMap<String, Use>) -> (f64, f64, f64) {
    let per = |n: usize| n as f64 / calls.max(1) as f64;
    let requests: usize = tally.values().map(|used| used.requests).sum();
    let (mut reads, mut writes) = (0.0, 0.0);
    let mut parts = Vec::new();
    for (operation, used) in tally {
        let (rru, wru) = used.units(operation);
        reads += rru;
        writes += wru;
        let items = if matches!(operation.as_str(), "Query" | "GetItem") {
            format!(", {:.2} items", per(used.items))
        } else {
            String::new()
        };
        let failed = if used.failed > 0 {
            format!(" ({} failed)", used.failed)
        } else {
            String::new()
        };
        parts.push(format!("{operation} {:.2}{items}{failed}", per(used.requests)));
    }
    println!(
        "  {what:<34} {:>6.2} requests ({}); ~{:.2} RRU, ~{:.2} WRU",
        per(requests),
        parts.join(", "),
        reads / calls.max(1) as f64,
        writes / calls.max(1) as f64
    );
    (per(requests), reads / calls.max(1) as f64, writes / calls.max(1) as f64)
}

/// us-east-1 list prices (see the README's "Cost of a message" for the pages they come from).
mod price {
    /// API Gateway WebSocket: per message (each 32 KB), sent or received; first billion a month.
    pub const WEBSOCKET_MESSAGE: f64 = 1.00 / 1e6;
    /// Lambda, x86: per request, and per GB-second (first 6 billion GB-s a month).
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    pub const LAMBDA_GB_SECOND: f64 = 0.000_016_666_7;
    /// DynamoDB on demand: per read request unit, per write request unit.
    pub const RRU: f64 = 0.125 / 1e6;
    pub const WRU: f64 = 0.625 / 1e6;
}

/// What one message costs, from the requests counted for `records` messages in one batch
/// and a model of the functions' durations (each DynamoDB request, Kafka produce and post
/// of `options`; ws-message makes its requests one after another; fan-out looks up its
/// rooms one after another and posts 64 at a time, archive writes 16 at a time). Memory as
/// in template.yaml: ws-message 256 MB, kafka-fanout 512 MB, kafka-archive 256 MB.
struct Costed {
    per_message: [(&'static str, f64); 4],
}

#[allow(clippy::too_many_arguments)]
fn cost(
    options: &Options,
    records: usize,
    deliveries: usize,
    sends: &BTreeMap<String, Use>,
    fan_out: &BTreeMap<String, Use>,
    archive: &BTreeMap<String, Use>,
    fan_out_concurrency: usize,
    archive_concurrency: usize,
) -> Costed {
    let n = records as f64;
    let requests = |tally: &BTreeMap<String, Use>| tally.values().map(|used| used.requests).sum::<usize>() as f64;
    let units = |tally: &BTreeMap<String, Use>| {
        tally
            .iter()
            .map(|(operation, used)| used.units(operation))
            .fold((0.0, 0.0), |(r, w), (rru, wru)| (r + rru, w + wru))
    };
    // API Gateway: the frame received, the reply (ack) sent back, each delivery's post.
    let websocket = (2.0 * n + deliveries as f64) * price::WEBSOCKET_MESSAGE;
    let send_ms = requests(sends) / n * options.dynamodb_ms + options.kafka_ms;
    let posts = (deliveries as f64 / fan_out_concurrency as f64).ceil();
    let fan_out_ms = requests(fan_out) * options.dynamodb_ms + posts * options.post_ms;
    let archive_ms = (requests(archive) / archive_concurrency as f64).ceil() * options.dynamodb_ms;
    let gb_seconds = n * 0.25 * send_ms / 1000.0 + 0.5 * fan_out_ms / 1000.0 + 0.25 * archive_ms / 1000.0;
    let lambda = (n + 2.0) * price::LAMBDA_REQUEST + gb_seconds * price::LAMBDA_GB_SECOND;
    let (mut rru, mut wru) = (0.0, 0.0);
    for tally in [sends, fan_out, archive] {
        let (r, w) = units(tally);
        rru += r;
        wru += w;
    }
    let dynamodb = rru * price::RRU + wru * price::WRU;
    let million = 1e6 / n;
    Costed {
        per_message: [
            ("API Gateway messages", websocket * million),
            ("Lambda requests + GB-s", lambda * million),
            ("DynamoDB RRU + WRU", dynamodb * million),
            ("total", (websocket + lambda + dynamodb) * million),
        ],
    }
}

/// One room's members: connection ids.
struct Room {
    name: String,
    members: Vec<String>,
}

#[tokio::main]
async fn main() {
    let mut options = Options::parse();
    if options.short {
        options.records = vec![100];
        options.rooms = vec![1, 10];
        options.members = 3;
    }
    let tally = Tally::default();
    let proxy = start_proxy(tally.clone()).await;
    // moto's timeouts (one Python process, slower as its tables grow), through the proxy.
    let client = aws_sdk_dynamodb::Client::from_conf(
        moto::client()
            .config()
            .to_builder()
            .endpoint_url(format!("http://{proxy}"))
            .build(),
    );
    let config = Config::default();
    let fan_out_config = FanOutConfig::default();
    let archive_config = ArchiveConfig::default();
    let server = ConnectionsServer::start().await;
    let notifier = ConnectionsNotifier::from_client(server.sdk_client());

    println!(
        "DynamoDB requests per Kafka batch (counted through a proxy in front of moto at {}); \
         RRU/WRU estimated from the bytes counted (upper bounds)",
        moto::endpoint()
    );
    for &room_count in &options.rooms {
        // A table of its own for each room count: moto copies the whole table for each
        // transaction, so a small table keeps set-up quick.
        let table = unique_name("requests");
        ensure_table(&client, &table).await.expect("table created");
        let store = DynamoStore::new(client.clone(), table);
        let log = MemoryLog::new("roomcast-events", 3, 1_000_000);

        let mut rooms = Vec::new();
        tally.take();
        for r in 0..room_count {
            let name = format!("bench-{r}");
            let mut members = Vec::new();
            for m in 0..options.members {
                let id = events::connection_id();
                let connect =
                    ws_connect::handle(&store, &log, &config, &events::connect(&id, Some(&format!("u{r}x{m}")))).await;
                assert_eq!(connect.status_code, 200, "{connect:?}");
                if m == 0 {
                    // Its first member makes the room, as a client does.
                    let create = format!(r#"{{"action":"createRoom","room":"{name}"}}"#);
                    let created =
                        ws_message::handle(&store, &store, &log, &config, &events::message(&id, &create)).await;
                    assert_ne!(body(&created)["type"], "error", "{created:?}");
                }
                let join = format!(r#"{{"action":"join","room":"{name}"}}"#);
                let joined = ws_message::handle(&store, &store, &log, &config, &events::message(&id, &join)).await;
                assert_eq!(body(&joined)["type"], "joined", "{joined:?}");
                members.push(id);
            }
            rooms.push(Room { name, members });
        }
        let connections = room_count * options.members;
        let setup = tally.take();
        println!(
            "\n{room_count} rooms x {} members ({connections} connections):",
            options.members
        );
        let per_connection: BTreeMap<String, Use> = setup;
        show("$connect + join (+ createRoom 1/K)", connections, &per_connection);

        for &record_count in &options.records {
            if record_count < room_count {
                continue;
            }
            // N sends, room after room, each room's members in turn.
            let before: Vec<i64> = (0..log.partition_count()).map(|p| log.end_offset(p)).collect();
            let delivered_before = server.delivered_count();
            for n in 0..record_count {
                let room = &rooms[n % room_count];
                let sender = &room.members[(n / room_count) % room.members.len()];
                let send = format!(r#"{{"action":"send","room":"{}","text":"message {n}"}}"#, room.name);
                let answer = ws_message::handle(&store, &store, &log, &config, &events::message(sender, &send)).await;
                assert_eq!(body(&answer)["type"], "ack", "{answer:?}");
            }
            let sends = tally.take();
            let records: Vec<LogRecord> = (0..log.partition_count())
                .flat_map(|p| log.read(p, before[p], usize::MAX))
                .collect();
            assert_eq!(records.len(), record_count, "one record per send");
            let event = events::kafka_batch(&records);

            let report = kafka_fanout::handle(&store, &log, &notifier, &fan_out_config, &event)
                .await
                .expect("batch delivered");
            let fan_out = tally.take();
            let archived = kafka_archive::handle(&store, &archive_config, &event)
                .await
                .expect("batch archived");
            let archive = tally.take();
            assert_eq!(archived.kept, record_count, "{archived:?}");
            let deliveries = server.delivered_count() - delivered_before;

            println!(
                " {record_count} records over {room_count} rooms, one batch: {} deliveries ({:.1} per message)",
                deliveries,
                deliveries as f64 / record_count as f64
            );
            show("ws-message send, per message", record_count, &sends);
            show("kafka-fanout, per batch", 1, &fan_out);
            show("kafka-fanout, per message", record_count, &fan_out);
            show("kafka-archive, per batch", 1, &archive);
            show("kafka-archive, per message", record_count, &archive);
            assert_eq!(report.delivered, deliveries, "{report:?}");
            let costed = cost(
                &options,
                record_count,
                deliveries,
                &sends,
                &fan_out,
                &archive,
                fan_out_config.concurrency,
                archive_config.concurrency,
            );
            let parts: Vec<String> = costed
                .per_message
                .iter()
                .map(|(what, dollars)| format!("{what} ${dollars:.2}"))
                .collect();
            let per_delivery = record_count as f64 / deliveries.max(1) as f64;
            println!(
                "  per million messages sent ({:.1} deliveries each): {}; per million deliveries: ${:.2}",
                deliveries as f64 / record_count as f64,
                parts.join(", "),
                costed.per_message[3].1 * per_delivery
            );
        }
    }
}
