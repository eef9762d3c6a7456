//! The gateway binary stopped as operators and crashes stop it, on moto + tansu: SIGTERM
//! (Docker, systemd, Kubernetes, test harnesses) shuts it down as Ctrl-C does; SIGKILL
//! leaves it no chance to clean up, and a restart on the same table, topic and consumer
//! groups still loses no acknowledged message. Also: what it logs to a pipe is plain text.
//!
//! Each test prints how long delivery took to resume after the restart (a figure, not an
//! assertion: CI machines are loaded).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use roomcast_aws::dynamo::DynamoStore;
use roomcast_core::ports::{Audience, Connections, Rooms};
use roomcast_core::{Nick, RoomName};
use roomcast_tests::gateway_process::GatewayProcess;
use roomcast_tests::tokens::SECRET;
use roomcast_tests::ws_client::Client;
use roomcast_tests::{init_tracing, moto, tansu, unique_name};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Longest wait for delivery (and the history) to resume after a restart. A restart used to
/// wait out the dead member's place in the consumer group for more than 90 s; this bound is
/// a safety net far above what the tests print.
const RESUME_WAIT: Duration = Duration::from_secs(180);
/// Longest wait for a stopped gateway to exit: it closes connections (up to 10 s), stops
/// its event source mappings (up to 5 s) and its server (up to 5 s).
const EXIT_WAIT: Duration = Duration::from_secs(60);

const ROOM: &str = "general";

/// The gateway's flags on the real backends: a fresh table, topic and pair of consumer
/// groups, the same for every start of one test, so a restart is the same deployment.
fn real_backends() -> Vec<String> {
    [
        "--listen",
        "127.0.0.1:0",
        "--batch-window-ms",
        "20",
        "--rooms",
        ROOM,
        "--dynamodb-endpoint",
        moto::endpoint(),
        "--table",
        &unique_name("roomcast"),
        "--kafka-bootstrap",
        tansu::bootstrap(),
        "--topic",
        &unique_name("events"),
        "--consumer-group",
        &unique_name("fanout"),
        "--archive-consumer-group",
        &unique_name("archive"),
    ]
    .map(str::to_owned)
    .to_vec()
}

fn flag<'a>(args: &'a [String], name: &str) -> &'a str {
    let at = args.iter().position(|arg| arg == name).expect("flag present");
    &args[at + 1]
}

fn signed_in() -> [(&'static str, &'static str); 2] {
    [("ROOMCAST_AUTH", "required"), ("ROOMCAST_JWT_SECRET", SECRET)]
}

/// The ids of the `message` frames among `frames`.
fn message_ids(frames: &[Value]) -> impl Iterator<Item = String> + '_ {
    frames
        .iter()
        .filter(|frame| frame["type"] == "message")
        .map(|frame| frame["id"].as_str().expect("a message has an id").to_owned())
}

/// Written straight to stderr, past the harness's capture, so the figures show in CI's log.
fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_then_restart_on_the_same_groups_resumes_delivery_and_loses_no_acknowledged_message() {
    init_tracing();
    let args = real_backends();
    let mut first = GatewayProcess::start(&args, &signed_in()).await;
    let mut alice = Client::sign_in(&first, "u-alice", "alice").await;
    let mut bob = Client::sign_in(&first, "u-bob", "bob").await;
    alice.join(ROOM).await;
    bob.join(ROOM).await;

    // Delivery works, then a burst of messages, each acknowledged (so Kafka has it), and
    // the kill right after the last ack: some are still being fanned out or archived, or
    // were handled but not yet committed.
    let mut acked = Vec::new();
    let (id, _) = alice.say(ROOM, "before the crash").await;
    // The first delivery waits for the gateway's consumers to join their groups.
    let (mut seen_live, _) = bob.until_within(RESUME_WAIT, |frame| frame["id"] == id.as_str()).await;
    seen_live.push(json!({"type": "message", "id": id}));
    acked.push(id);
    for n in 1..=30 {
        acked.push(alice.say(ROOM, &format!("burst {n}")).await.0);
    }
    first.kill().await;
    let killed = Instant::now();
    seen_live.extend(bob.rest().await);
    drop(alice);
    let seen_live: HashSet<String> = message_ids(&seen_live).collect();

    let mut second = GatewayProcess::start(&args, &signed_in()).await;
    let restarted = Instant::now();
    // Signed-in users are still members of their rooms: they reconnect and go on.
    let mut alice = Client::sign_in(&second, "u-alice", "alice").await;
    let mut bob = Client::sign_in(&second, "u-bob", "bob").await;
    let (probe, _) = alice.say(ROOM, "after the restart").await;
    acked.push(probe.clone());
    let (redelivered, _) = bob
        .until_within(RESUME_WAIT, |frame| frame["id"] == probe.as_str())
        .await;
    let delivery_resumed = restarted.elapsed();
    let redelivered: HashSet<String> = message_ids(&redelivered).collect();

    // kafka-archive resumes from its own group's committed offsets: what it had not stored
    // before the kill reaches the history a moment later. Then the whole history holds
    // every acknowledged message, once.
    let deadline = Instant::now() + RESUME_WAIT;
    let history_complete = loop {
        let history = bob.history_ids(ROOM, None).await;
        let unique: HashSet<&String> = history.iter().collect();
        assert_eq!(
            unique.len(),
            history.len(),
            "the history repeats a message: {history:?}"
        );
        let missing: Vec<&String> = acked.iter().filter(|id| !unique.contains(id)).collect();
        if missing.is_empty() {
            break restarted.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "acknowledged messages missing from the history {RESUME_WAIT:?} after the restart: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Catching up as a client does after a reconnect (the history after the last message
    // it saw) gives bob every acknowledged message he was not delivered.
    let last_seen = acked.iter().rev().find(|id| seen_live.contains(*id)).cloned();
    let caught_up: HashSet<String> = bob.history_ids(ROOM, last_seen).await.into_iter().collect();
    for id in &acked {
        assert!(
            seen_live.contains(id) || redelivered.contains(id) || caught_up.contains(id),
            "bob never gets acknowledged message {id}: not delivered before the kill nor after the restart, \
             and not in the history after the last message he saw"
        );
    }

    let first_after_restart = redelivered.iter().filter(|id| !seen_live.contains(*id)).count();
    report(&format!(
        "gateway SIGKILLed and restarted on the same consumer groups ({}): delivery resumed {:.1} s after the \
         restart ({:.1} s after the kill), the history was complete {:.1} s after it. Of {} acknowledged \
         messages, bob got {} live before the kill; after the restart {} were delivered to him (again: {}, \
         for the first time: {}) before the new one, and {} reached him only through the history",
        flag(&args, "--consumer-group"),
        delivery_resumed.as_secs_f64(),
        (delivery_resumed + (restarted - killed)).as_secs_f64(),
        history_complete.as_secs_f64(),
        acked.len(),
        seen_live.len(),
        redelivered.len(),
        redelivered.len() - first_after_restart,
        first_after_restart,
        acked
            .iter()
            .filter(|id| !seen_live.contains(*id) && !redelivered.contains(*id) && **id != probe)
            .count(),
    ));

    second.terminate();
    assert!(second.wait(EXIT_WAIT).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_runs_disconnect_for_every_connection_exits_0_and_a_restart_delivers_promptly() {
    init_tracing();
    let args = real_backends();
    let mut first = GatewayProcess::start(&args, &[]).await;
    let started = Instant::now();
    let mut alice = Client::connect(&first, "alice").await;
    let mut bob = Client::connect(&first, "bob").await;
    alice.join(ROOM).await;
    bob.join(ROOM).await;
    let (id, _) = alice.say(ROOM, "before the stop").await;
    bob.until_within(RESUME_WAIT, |frame| frame["id"] == id.as_str()).await;
    let first_delivery = started.elapsed();

    first.terminate();
    let stopped = Instant::now();
    for client in [&mut alice, &mut bob] {
        assert_eq!(
            client.close_code().await,
            CloseCode::Away,
            "{}: SIGTERM closes connections with 1001, as API Gateway going away does",
            client.name
        );
    }
    let status = first.wait(EXIT_WAIT).await;
    assert!(status.success(), "SIGTERM ends the gateway with {status}");
    let log = first.output_text();
    assert!(log.contains("gateway stopped"), "the gateway shut down cleanly:\n{log}");

    // $disconnect ran for both: they left the room and gave their nicknames back.
    let store = DynamoStore::new(moto::client(), flag(&args, "--table"));
    let room = RoomName::trusted(ROOM);
    assert!(
        store.room_audience(&room).await.unwrap().is_empty(),
        "connections left in the room"
    );
    assert!(
        store.members(&room).await.unwrap().is_empty(),
        "anonymous members left in the room"
    );
    for nick in ["alice", "bob"] {
        assert_eq!(store.nick_owner(&Nick::trusted(nick)).await.unwrap(), None, "{nick}");
    }

    let mut second = GatewayProcess::start(&args, &[]).await;
    let restarted = Instant::now();
    // The same nicknames are free at once (a gateway killed without $disconnect would
    // leave them taken: 409).
    let mut alice = Client::connect(&second, "alice").await;
    let mut bob = Client::connect(&second, "bob").await;
    alice.join(ROOM).await;
    bob.join(ROOM).await;
    let (id, _) = alice.say(ROOM, "after the restart").await;
    bob.until_within(RESUME_WAIT, |frame| frame["id"] == id.as_str()).await;
    let delivery_resumed = restarted.elapsed();
    report(&format!(
        "gateway stopped with SIGTERM (exited in {:.1} s) and restarted on the same consumer groups ({}): \
         delivery resumed {:.1} s after the restart (on the first start, the first message was delivered \
         {:.1} s after it listened)",
        (restarted - stopped).as_secs_f64(),
        flag(&args, "--consumer-group"),
        delivery_resumed.as_secs_f64(),
        first_delivery.as_secs_f64(),
    ));

    second.terminate();
    assert!(second.wait(EXIT_WAIT).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_gateway_logs_to_a_pipe_carries_no_colour_codes() {
    init_tracing();
    // Embedded backends: only the logging is under test.
    let args = ["--listen", "127.0.0.1:0"].map(str::to_owned);
    let mut gateway = GatewayProcess::start(&args, &[]).await;
    // A connection and a refused handshake add lines with fields.
    let _alice = Client::connect(&gateway, "alice").await;
    assert!(Client::try_connect(&gateway, "alice").await.is_err());
    gateway.terminate();
    assert!(gateway.wait(EXIT_WAIT).await.success());
    let output = gateway.output();
    let text = gateway.output_text();
    assert!(
        text.contains("INFO") && text.contains("gateway stopped"),
        "the gateway's log was read:\n{text}"
    );
    assert!(
        !output.contains(&0x1b),
        "ANSI escape codes in what the gateway wrote to a pipe:\n{}",
        text.escape_debug()
    );
}
