//! How fast kafka-fanout delivers a batch to a large room: the official SDK posting to an
//! HTTP `@connections` server on loopback, the embedded store behind it. Prints figures;
//! asserts only that everything arrived in order.
//!
//! `cargo bench -p roomcast-tests --bench fan_out [-- MEMBERS RECORDS CONCURRENCY]`

use std::time::Instant;

use roomcast_core::fan_out::FanOutConfig;
use roomcast_core::memory::{LogRecord, MemoryLog, MemoryStore};
use roomcast_core::model::Connection;
use roomcast_core::{ConnectionId, Connections, Envelope, Nick, RoomName, Rooms, ServerFrame, Target, User, UserId};
use roomcast_tests::connections::ConnectionsServer;
use roomcast_tests::events;

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|arg| arg.parse().ok()).collect();
    let members = args.first().copied().unwrap_or(1000);
    let records = args.get(1).copied().unwrap_or(100);
    let concurrency = args.get(2).copied().unwrap_or(64);

    let store = MemoryStore::new();
    let room = RoomName::trusted("big");
    let mut ids = Vec::with_capacity(members);
    for n in 0..members {
        let user = User {
            user_id: UserId::new(format!("u{n}")),
            nick: Nick::trusted(format!("user{n}")),
        };
        let id = ConnectionId::new(events::connection_id());
        let connection = Connection {
            id: id.clone(),
            user: user.clone(),
            roles: Vec::new(),
            authenticated: true,
            connected_at_ms: 0,
            expires_at: i64::MAX,
        };
        store.add_connection(&connection).await.unwrap();
        store.join(&room, &user, None).await.unwrap();
        ids.push(id);
    }
    let batch: Vec<LogRecord> = (0..records)
        .map(|n| {
            let frame = ServerFrame::Pong;
            let envelope = Envelope::new(format!("m{n}"), Target::Room(room.clone()), None, &frame);
            LogRecord {
                topic: "roomcast-events".into(),
                partition: 0,
                offset: n as i64,
                timestamp_ms: 0,
                key: Some(b"big".to_vec()),
                value: envelope.to_json().into_bytes(),
                headers: Vec::new(),
            }
        })
        .collect();

    let server = ConnectionsServer::start().await;
    let notifier = server.notifier();
    let config = FanOutConfig {
        concurrency,
        ..FanOutConfig::default()
    };
    let event = events::kafka_batch(&batch);

    let started = Instant::now();
    // Nothing is published unless a connection turns out to be gone.
    let log = MemoryLog::new("roomcast-events", 1, 1);
    let report = kafka_fanout::handle(&store, &log, &notifier, &config, &event)
        .await
        .expect("batch delivered");
    let elapsed = started.elapsed();

    let posts = members * records;
    assert_eq!(report.delivered, posts, "{report:?}");
    assert_eq!(server.delivered_count(), posts);
    println!(
        "fan-out: {records} records x {members} members = {posts} posts, concurrency {concurrency}: \
         {:.2} s, {:.0} posts/s, {:.1} ms per record",
        elapsed.as_secs_f64(),
        posts as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / records as f64,
    );
}
