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
use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use clap::Parser;
use roomcast_aws::dynamo::{ensure_table, DynamoStore};
use roomcast_core::archive::ArchiveConfig;
use roomcast_core::fan_out::FanOutConfig;
use roomcast_core::memory::{LogRecord, MemoryLog};
use roomcast_core::{Config, Ports};
use roomcast_tests::connections::ConnectionsServer;
use roomcast_tests::dynamo_requests::{self, Use};
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

/// us-east-1 list prices (see docs/performance.md, "Cost of a message" for the pages they come from).
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
    let (proxy, tally) = dynamo_requests::start().await;
    // moto's timeouts (one Python process, slower as its tables grow), through the proxy.
    let client = aws_sdk_dynamodb::Client::from_conf(
        moto::client()
            .config()
            .to_builder()
            .endpoint_url(format!("http://{proxy}"))
            .build(),
    );
    // Every room is made by an anonymous connection from the fixtures' one address: more
    // than one address may make (`--rooms 100`).
    let mut config = Config::default();
    config.limits.anonymous_room_creations = None;
    let fan_out_config = FanOutConfig::default();
    let archive_config = ArchiveConfig::default();
    let server = ConnectionsServer::start().await;
    let notifier = server.notifier();

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
        let store = Arc::new(DynamoStore::new(client.clone(), table));
        let log = Arc::new(MemoryLog::new("roomcast-events", 3, 1_000_000));
        let ports = Ports {
            store: store.clone(),
            history: store.clone(),
            publisher: log.clone(),
            // No file is sent here: the scratch store is never reached.
            files: Arc::new(roomcast_tests::files::scratch_directory("http://127.0.0.1:9/files")),
        };

        let mut rooms = Vec::new();
        tally.take();
        for r in 0..room_count {
            let name = format!("bench-{r}");
            let mut members = Vec::new();
            for m in 0..options.members {
                let id = events::connection_id();
                let connect = ws_connect::handle(
                    &*store,
                    &*log,
                    &config,
                    &events::connect(&id, Some(&format!("u{r}x{m}"))),
                )
                .await;
                assert_eq!(connect.status_code, 200, "{connect:?}");
                if m == 0 {
                    // Its first member makes the room, as a client does.
                    let create = format!(r#"{{"action":"createRoom","room":"{name}"}}"#);
                    let created = ws_message::handle(&ports, &config, &events::message(&id, &create)).await;
                    assert_ne!(body(&created)["type"], "error", "{created:?}");
                }
                let join = format!(r#"{{"action":"join","room":"{name}"}}"#);
                let joined = ws_message::handle(&ports, &config, &events::message(&id, &join)).await;
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
                let answer = ws_message::handle(&ports, &config, &events::message(sender, &send)).await;
                assert_eq!(body(&answer)["type"], "ack", "{answer:?}");
            }
            let sends = tally.take();
            let records: Vec<LogRecord> = (0..log.partition_count())
                .flat_map(|p| log.read(p, before[p], usize::MAX))
                .collect();
            assert_eq!(records.len(), record_count, "one record per send");
            let event = events::kafka_batch(&records);

            let report = kafka_fanout::handle(&*store, &*log, &notifier, &fan_out_config, &event)
                .await
                .expect("batch delivered");
            let fan_out = tally.take();
            let archived = kafka_archive::handle(&*store, &archive_config, &event)
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
