//! The promises under faults, on the real backends with a fault proxy in front of them: a
//! write whose answer timed out, a store or a broker that goes down and comes back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use roomcast_aws::dynamo::{ensure_table, DynamoStore};
use roomcast_tests::backends::Backends;
use roomcast_tests::fault_proxy::{Fault, FaultProxy};
use roomcast_tests::gateways::{gateway, settings, start, Mode};
use roomcast_tests::ws_client::Client;
use roomcast_tests::{events, moto, unique_name};
use serde_json::json;

use roomcast_core::{Envelope, Publisher, RoomName, Target};
use roomcast_tests::lambdas::Lambdas;

/// Backends whose store reaches moto through `proxy`, with the SDK's timeouts and retries as
/// deployed (so a held answer times out as it would in AWS).
async fn backends_behind(proxy: &FaultProxy) -> Backends {
    let backends = Backends::real().await;
    let table = unique_name("roomcast");
    ensure_table(&moto::client(), &table).await.expect("a table");
    let store = DynamoStore::new(moto::client_as_deployed(&proxy.url()), table);
    backends.with_store(Arc::new(store))
}

/// Seen on moto under load: the claim's transaction landed, its answer timed out, `$connect`
/// was refused with 500 — and every retry with the nickname got 409 for two hours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_whose_writes_timed_out_leaves_its_nickname_free() {
    roomcast_tests::init_tracing();
    let proxy = FaultProxy::start(moto::addr()).await;
    let lambdas = Lambdas::new(backends_behind(&proxy).await);

    // Longer than an operation's 10 s: every attempt of the claim times out, yet lands.
    proxy.hold_answers_for(Duration::from_secs(12));
    let first = events::connection_id();
    assert_eq!(lambdas.connect_status(&first, Some("zoe")).await, 500);
    proxy.set(Fault::None);

    let reply = lambdas.frame(&first, r#"{"action":"whoami"}"#).await;
    assert_eq!(
        reply["code"], "forbidden",
        "the refused connection is not registered: {reply}"
    );
    let second = lambdas.connect("zoe").await;
    let me = lambdas.ok(&second, r#"{"action":"whoami"}"#, "whoami").await;
    assert_eq!(me["nick"], json!("zoe"), "{me}");
}

/// A gateway on moto (through `proxy`) and tansu, with the settings of the other gateway
/// tests; the topic, for a service's records.
async fn gateway_behind(proxy: &FaultProxy) -> (roomcast_local::Running, String) {
    let mut settings = settings(Mode::Real, &[]);
    settings.dynamodb_endpoint = Some(proxy.url());
    let topic = settings.topic.clone();
    (start(settings).await, topic)
}

/// The store goes down and comes back: the handshake is refused with a 5xx, frames get
/// `unavailable`, a record fan-out cannot look up waits in the log, and once the store is
/// back it reaches every member exactly once, and chat goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_down_nothing_is_lost_and_nothing_doubled() {
    roomcast_tests::init_tracing();
    let proxy = FaultProxy::start(moto::addr()).await;
    let (gateway, topic) = gateway_behind(&proxy).await;
    let mut alice = Client::connect(&gateway, "alice").await;
    let mut bob = Client::connect(&gateway, "bob").await;
    alice.join("general").await;
    bob.join("general").await;
    alice
        .ask_for(json!({"action": "send", "room": "general", "text": "before"}), "ack")
        .await;
    assert_eq!(bob.wait_for("message").await["text"], "before");

    proxy.set(Fault::Down);
    let status = Client::refused_status(&gateway, "?name=carol", &[]).await;
    assert!((500..600).contains(&status), "carol's handshake: {status}");
    let reply = alice
        .ask(json!({"action": "send", "room": "general", "text": "lost?"}))
        .await;
    assert_eq!(
        (reply["code"].as_str(), reply["action"].as_str()),
        (Some("unavailable"), Some("send")),
        "{reply}"
    );
    // A service's record while fan-out cannot look the room up.
    let notice = Envelope {
        v: roomcast_core::envelope::ENVELOPE_VERSION,
        id: "notice-1".to_owned(),
        target: Target::Room(RoomName::trusted("general")),
        except: None,
        max_audience: None,
        stamp: None,
        frame: serde_json::value::to_raw_value(&json!({"type": "notice", "text": "maintenance"})).expect("a frame"),
    };
    let refused = proxy.refused();
    roomcast_tests::tansu::publisher(&topic)
        .publish(&notice)
        .await
        .expect("the log takes it");
    // Fan-out fails the batch once its lookup has failed: 3 attempts (FanOutConfig) of 3
    // SDK attempts each, each a connection the proxy refuses. One more refusal is the
    // retried batch's: the batch has failed at least once.
    proxy.wait_for_refusals(refused + 3 * 3 + 1).await;

    proxy.set(Fault::None);
    // The retried batch posts the notice once: the next frame after it is the next message.
    assert_eq!(bob.next_non_presence().await["text"], "maintenance");
    assert_eq!(alice.next_non_presence().await["text"], "maintenance");
    let ack = alice
        .ask(json!({"action": "send", "room": "general", "text": "after"}))
        .await;
    assert_eq!(ack["type"], "ack", "no second notice before the ack: {ack}");
    let next = bob.next_non_presence().await;
    assert_eq!(next["text"], "after", "no second notice: {next}");
    gateway.shutdown().await;
}

/// The broker goes away while a client sends: every `send` is answered (`ack` or
/// `unavailable`), never met with silence; once the broker is back, every acknowledged
/// message reaches the other member exactly once and in order, none that was refused, and
/// fan-out goes on from its committed offsets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_broker_down_every_send_is_answered_and_no_ack_is_lost() {
    roomcast_tests::init_tracing();
    let (proxy, bootstrap) = roomcast_tests::tansu::behind_proxy().await;
    let mut settings = settings(Mode::Real, &[]);
    settings.kafka_bootstrap = Some(bootstrap);
    let gateway = start(settings).await;
    let mut alice = Client::connect(&gateway, "alice").await;
    let mut bob = Client::connect(&gateway, "bob").await;
    alice.join("general").await;
    bob.join("general").await;

    let mut acked = Vec::new();
    let mut refused = Vec::new();
    let send = |text: String| {
        let frame = json!({"action": "send", "room": "general", "text": text, "clientMsgId": text});
        (text, frame)
    };
    let (text, frame) = send("before 1".to_owned());
    assert_eq!(alice.ask(frame).await["type"], "ack");
    acked.push(text);

    proxy.set(Fault::Down);
    // Three at once: each is answered within the delivery timeout (5 s), not after a retry
    // of the others.
    for n in 1..=3 {
        alice.send(send(format!("during {n}")).1).await;
    }
    for _ in 1..=3 {
        let reply = alice.next_non_presence().await;
        let text = reply["clientMsgId"]
            .as_str()
            .expect("the reply names its message")
            .to_owned();
        match reply["type"].as_str() {
            Some("ack") => acked.push(text),
            Some("error") if reply["code"] == "unavailable" => {
                // Not confirmed in time is not "nothing happened": a produce request can
                // land after its answer was given up on, so the client is told to look
                // before sending again.
                let message = reply["message"].as_str().unwrap_or_default();
                assert!(message.contains("may still go through"), "{reply}");
                refused.push(text)
            }
            _ => panic!("a send answered neither ack nor unavailable: {reply}"),
        }
    }
    assert!(!refused.is_empty(), "with the broker down, some send was refused");

    proxy.set(Fault::None);
    // The producer reconnects with a backoff: a client sends again what was refused, as
    // the page does, until the broker takes it.
    for n in 1..=3 {
        let (text, frame) = send(format!("after {n}"));
        let mut tries = 0;
        loop {
            let reply = alice.ask(frame.clone()).await;
            match reply["type"].as_str() {
                Some("ack") => break,
                Some("error") if reply["code"] == "unavailable" && tries < 60 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                _ => panic!("{text}: {reply}"),
            }
        }
        acked.push(text);
    }
    let mut received = Vec::new();
    while received.last() != acked.last() {
        let frame = bob.next_non_presence().await;
        assert_eq!(frame["type"], "message", "{frame}");
        received.push(frame["text"].as_str().unwrap().to_owned());
    }
    assert_eq!(received, acked, "every ack once, in order; refused: {refused:?}");
    gateway.shutdown().await;
}

/// How many clients an abrupt-drop test kills: `default`, or `ROOMCAST_TEST_ABRUPT_DROPS`.
fn abrupt_drops(default: usize) -> usize {
    std::env::var("ROOMCAST_TEST_ABRUPT_DROPS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(default)
}

/// Rooms the dropped clients are spread over: 50 each, under the presence cap, so the
/// watcher hears every `left`.
const DROP_ROOMS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_dropped_at_once_are_forgotten_embedded() {
    let gateway = gateway(Mode::Embedded).await;
    clients_dropped_without_a_close_are_forgotten(gateway, abrupt_drops(1_000), 32).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_dropped_at_once_are_forgotten_on_moto_and_tansu() {
    let gateway = gateway(Mode::Real).await;
    // moto copies the whole table for every transaction and fails one when another request
    // writes meanwhile: arrivals go one at a time, and 50 of them (1,000 take many minutes
    // there; `ROOMCAST_TEST_ABRUPT_DROPS=1000` runs them).
    let count = abrupt_drops(50);
    clients_dropped_without_a_close_are_forgotten(gateway, count, moto::transactions_in_flight()).await;
}

/// Counts a `left` presence event by the nickname it announces.
fn count_left(frame: &serde_json::Value, left: &mut BTreeMap<String, usize>) {
    if frame["type"] == "presence" && frame["event"] == "left" {
        let nick = frame["user"]["nick"].as_str().expect("a nickname");
        *left.entry(nick.to_owned()).or_default() += 1;
    }
}

/// A client of `name`, connecting again after a refusal with a 5xx (moto answers 500 now
/// and then under a thousand arrivals; the first attempt leaves nothing behind).
async fn connect_retrying(gateway: &roomcast_local::Running, name: &str) -> Client {
    let mut tries = 0;
    loop {
        match Client::try_connect(gateway, name).await {
            Ok(client) => return client,
            Err(tokio_tungstenite::tungstenite::Error::Http(response))
                if response.status().is_server_error() && tries < 3 =>
            {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("{name}: {error}"),
        }
    }
}

/// Clients killed without a close frame (their sockets dropped) are gone from the store —
/// connections, memberships, nicknames — and announced `left` exactly once each, through
/// `$disconnect` or through the 410 that one fan-out pass over their rooms runs into. Every
/// frame the watcher gets is counted, up to a mark that follows all the pass announced.
async fn clients_dropped_without_a_close_are_forgotten(gateway: roomcast_local::Running, count: usize, at_once: usize) {
    use futures::StreamExt as _;
    roomcast_tests::init_tracing();
    let started = std::time::Instant::now();
    let store = gateway.store();
    let rooms: Vec<RoomName> = (0..DROP_ROOMS)
        .map(|n| RoomName::trusted(format!("drop-{n}")))
        .collect();
    for room in &rooms {
        let room = roomcast_core::model::Room {
            name: room.clone(),
            created_by: roomcast_core::UserId::new("test"),
            created_at_ms: 0,
        };
        store.create_room(&room, usize::MAX).await.expect("a room");
    }
    let mut watcher = Client::connect(&gateway, "watcher").await;
    for room in &rooms {
        watcher.join(room.as_str()).await;
    }

    let clients: Vec<Client> = futures::stream::iter(0..count)
        .map(|n| {
            let gateway = &gateway;
            let room = rooms[n % DROP_ROOMS].clone();
            async move {
                let mut client = connect_retrying(gateway, &format!("drop{n}")).await;
                let join = json!({"action": "join", "room": room.as_str()});
                // moto's 500s again: a join answered `unavailable` changed nothing.
                for _ in 0..3 {
                    let reply = client.ask(join.clone()).await;
                    if reply["type"] == "joined" {
                        return client;
                    }
                    assert_eq!(reply["code"], "unavailable", "{reply}");
                }
                client.join(room.as_str()).await;
                client
            }
        })
        .buffer_unordered(at_once.max(1))
        .collect()
        .await;
    let connected = started.elapsed();
    let mut joined = 0;
    while joined < count {
        let frame = watcher.next().await;
        if frame["type"] == "presence" && frame["event"] == "joined" {
            joined += 1;
        }
    }

    let dropped = std::time::Instant::now();
    drop(clients);
    let mut left: BTreeMap<String, usize> = BTreeMap::new();
    while left.len() < count {
        count_left(&watcher.next().await, &mut left);
    }
    let announced = dropped.elapsed();
    // One fan-out pass over every room, sent by a member of them all: any connection
    // `$disconnect` missed is found gone. The watcher reads until each room's message of
    // a round came, three rounds: the pass's message shows its batch was taken up; the
    // probe, sent after that, comes in a later batch, so the pass's batch had ended and
    // every `left` it announced was in the log (a room's records stay in order); the mark,
    // sent after the probe came, follows all of them. Two senders: one connection's
    // message bucket holds 50.
    let mut echo = Client::connect(&gateway, "echo").await;
    let mut marker = Client::connect(&gateway, "marker").await;
    for room in &rooms {
        echo.join(room.as_str()).await;
        marker.join(room.as_str()).await;
    }
    for round in ["anyone?", "probe", "mark"] {
        let sender = if round == "anyone?" { &mut echo } else { &mut marker };
        for room in &rooms {
            let send = json!({"action": "send", "room": room.as_str(), "text": round});
            sender.ask_for(send, "ack").await;
        }
        let mut came = 0;
        while came < DROP_ROOMS {
            let frame = watcher.next().await;
            count_left(&frame, &mut left);
            came += usize::from(frame["type"] == "message" && frame["text"] == round);
        }
    }
    let rooms_of_watcher = watcher.ask_for(json!({"action": "whoami"}), "whoami").await;
    assert_eq!(rooms_of_watcher["rooms"].as_array().map(Vec::len), Some(DROP_ROOMS));
    let twice: Vec<_> = left.iter().filter(|(_, times)| **times > 1).collect();
    assert!(twice.is_empty(), "announced more than once: {twice:?}");
    assert_eq!(left.len(), count, "each dropped client announced `left`");

    for room in &rooms {
        let members = store.members(room).await.expect("members");
        let mut nicks: Vec<&str> = members.iter().map(|member| member.user.nick.as_str()).collect();
        nicks.sort_unstable();
        assert_eq!(
            nicks,
            ["echo", "marker", "watcher"],
            "{room}: only the live clients are left"
        );
        assert_eq!(store.room_audience(room).await.expect("audience").len(), 3, "{room}");
    }
    for n in 0..count {
        let nick = roomcast_core::Nick::trusted(format!("drop{n}"));
        assert_eq!(store.nick_owner(&nick).await.expect("a claim"), None, "{nick} is free");
    }
    println!(
        "abrupt drops: {count} clients connected and joined in {connected:.1?}; all announced left {announced:.1?} after the drop"
    );
    gateway.shutdown().await;
}
