//! How fast kafka-archive writes a topic's chat records into the DynamoDB history: the
//! Lambda's handler on `KafkaEvent` batches of 100 records (the event source mapping's
//! batch size), one batch after another as one partition's consumer receives them, into a
//! fresh table on moto's server (or `ROOMCAST_TEST_DYNAMODB_ENDPOINT`). The records are
//! messages to a few rooms with some edits and deletes of earlier ones.
//!
//! Prints records per second and the summed report; checks afterwards (untimed) that every
//! message can be paged back from its room. moto is a single Python process: the figure
//! says more about it than about DynamoDB, and is for comparing changes of this code.
//!
//! `cargo bench -p roomcast-tests --bench archive [-- RECORDS]` (default 2000)

use std::collections::HashMap;
use std::time::Instant;

use roomcast_core::archive::{ArchiveConfig, ArchiveReport};
use roomcast_core::clock::now_ms;
use roomcast_core::envelope::Stamp;
use roomcast_core::history::{Conversation, Cursor};
use roomcast_core::memory::LogRecord;
use roomcast_core::{Envelope, History, MessageId, Nick, RoomName, ServerFrame, Target, User, UserId};
use roomcast_tests::{events, moto};

/// Records per invocation, as the event source mapping's `BatchSize` in the template.
const BATCH: usize = 100;
const ROOMS: usize = 4;
const USERS: usize = 7;
const TOPIC: &str = "roomcast-events";

/// What the generated records hold, to check the report against.
#[derive(Default)]
struct Expected {
    messages: usize,
    edits: usize,
    deletes: usize,
    per_room: HashMap<RoomName, usize>,
}

fn user(n: usize) -> User {
    User {
        user_id: UserId::new(format!("bench-user-{n}")),
        nick: Nick::trusted(format!("user{n}")),
    }
}

/// `count` records in log order: one room per partition (a room's records share a key),
/// nine messages to one edit, and a delete every fiftieth record. Edits and deletes name
/// a message published before them in the same room, as the commands do.
fn records(count: usize) -> (Vec<LogRecord>, Expected) {
    let rooms: Vec<RoomName> = (0..ROOMS).map(|n| RoomName::trusted(format!("bench-{n}"))).collect();
    let mut offsets = [0i64; ROOMS];
    let mut sent: Vec<Vec<MessageId>> = vec![Vec::new(); ROOMS];
    let mut deleted: Vec<MessageId> = Vec::new();
    let mut expected = Expected::default();
    let mut records = Vec::with_capacity(count);
    for n in 0..count {
        let r = n % ROOMS;
        let room = &rooms[r];
        let author = user(n % USERS);
        let ts = now_ms();
        // Something earlier in this room, not deleted: the target of an edit or delete.
        let earlier = sent[r].iter().rev().skip(2).find(|id| !deleted.contains(id)).cloned();
        // Each record's id is its position (docs/protocol.md, "One order").
        let position = roomcast_core::model::LogPosition {
            partition: r as i32,
            offset: offsets[r],
        };
        let stamp = Stamp { ts, epoch: 0 };
        let frame = match earlier {
            Some(id) if n % 50 == 49 => {
                expected.deletes += 1;
                deleted.push(id.clone());
                ServerFrame::Deleted {
                    room: Some(room.clone()),
                    with: None,
                    id,
                    by: author,
                }
            }
            Some(id) if n % 10 == 9 => {
                expected.edits += 1;
                ServerFrame::Edited {
                    room: Some(room.clone()),
                    with: None,
                    id,
                    text: format!("edited by record {n}"),
                    edited_at: ts,
                    by: author,
                }
            }
            _ => {
                let id = stamp.id_at(position);
                expected.messages += 1;
                *expected.per_room.entry(room.clone()).or_default() += 1;
                sent[r].push(id.clone());
                ServerFrame::Message {
                    room: room.clone(),
                    id: None,
                    from: author,
                    text: format!("message {n}: {}", "lorem ipsum ".repeat(n % 8)),
                    ts,
                    reply_to: None,
                    files: vec![],
                }
            }
        };
        let envelope = Envelope::stamped(Target::Room(room.clone()), None, stamp, &frame);
        records.push(LogRecord {
            topic: TOPIC.into(),
            partition: r as i32,
            offset: offsets[r],
            timestamp_ms: ts,
            key: Some(room.as_str().as_bytes().to_vec()),
            value: envelope.to_json().into_bytes(),
            headers: Vec::new(),
        });
        offsets[r] += 1;
    }
    (records, expected)
}

fn add(total: &mut ArchiveReport, report: &ArchiveReport) {
    total.records += report.records;
    total.kept += report.kept;
    total.changed += report.changed;
    total.unchanged += report.unchanged;
    total.ignored += report.ignored;
    total.skipped += report.skipped;
}

#[tokio::main]
async fn main() {
    roomcast_tests::init_tracing();
    // `cargo bench` passes `--bench`; the one number is the record count.
    let count = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse::<usize>().ok())
        .unwrap_or(2000)
        .max(1);

    let (records, expected) = records(count);
    let events: Vec<_> = records.chunks(BATCH).map(events::kafka_batch).collect();
    let store = moto::fresh_store().await;
    let config = ArchiveConfig::default();

    let started = Instant::now();
    let mut total = ArchiveReport::default();
    for event in &events {
        let report = kafka_archive::handle(&store, &config, event)
            .await
            .expect("batch archived");
        add(&mut total, &report);
    }
    let elapsed = started.elapsed();

    println!(
        "archive: {count} records ({} messages, {} edits, {} deletes, {} rooms) in {} batches of up to {BATCH}, \
         concurrency {}, DynamoDB at {}: {:.2} s, {:.0} records/s, {:.1} ms per batch",
        expected.messages,
        expected.edits,
        expected.deletes,
        ROOMS,
        events.len(),
        config.concurrency,
        moto::endpoint(),
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / events.len() as f64,
    );
    println!("report: {total:?}");

    assert_eq!(total.records, count, "{total:?}");
    assert_eq!(total.kept, expected.messages, "{total:?}");
    assert_eq!(
        total.changed,
        expected.edits + expected.deletes,
        "every edit and delete names a live message: {total:?}"
    );
    assert_eq!((total.skipped, total.ignored, total.unchanged), (0, 0, 0), "{total:?}");

    // Untimed: each room's history pages back to exactly the messages sent to it.
    for (room, messages) in &expected.per_room {
        let conversation = Conversation::Room(room.clone());
        let (mut found, mut cursor) = (0, Cursor::Latest);
        loop {
            let page = store.page(&conversation, &cursor, 100).await.expect("history readable");
            found += page.messages.len();
            match page.messages.first() {
                Some(oldest) if page.more => cursor = Cursor::Before(oldest.id.clone()),
                _ => break,
            }
        }
        assert_eq!(found, *messages, "room {room}");
    }
}
