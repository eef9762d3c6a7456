//! kafka-archive behind the local gateway: its own emulated event source mapping (another
//! reader of the embedded log, or a consumer group of its own on Kafka) keeps what real
//! WebSocket clients send, so `history` answers show it — and each group resumes from its
//! own commits.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use roomcast_local::settings::Settings;
use roomcast_local::Running;
use roomcast_tests::gateways::{settings, start, Mode};
use roomcast_tests::ws_client::{Client, CATCH_UP};
use roomcast_tests::{each_backend, init_tracing, tansu, unique_name};
use serde_json::json;

each_backend!(
    embedded => start(settings(Mode::Embedded, &[])).await,
    real => start(settings(Mode::Real, &[])).await;
    [messages_edits_and_deletes_show_up_in_history_while_fan_out_delivers]
);

async fn messages_edits_and_deletes_show_up_in_history_while_fan_out_delivers(gateway: Running) {
    let archive = gateway
        .backends
        .iter()
        .find(|line| line.contains("kafka-archive"))
        .unwrap_or_else(|| {
            panic!(
                "the start-up description names no archive source: {:?}",
                gateway.backends
            )
        });
    let fan_out = gateway.backends.iter().find(|line| line.contains("kafka-fanout"));
    assert!(fan_out.is_some_and(|line| line != archive), "{:?}", gateway.backends);

    let mut alice = Client::connect(&gateway, "alice").await;
    let mut bob = Client::connect(&gateway, "bob").await;
    alice.join("general").await;
    bob.join("general").await;
    let mut ids = Vec::new();
    for text in ["one", "two", "three"] {
        let ack = alice
            .ask_for(json!({"action": "send", "room": "general", "text": text}), "ack")
            .await;
        ids.push(ack["id"].as_str().unwrap().to_owned());
    }
    // Fan-out delivers as before, on its own mapping.
    for text in ["one", "two", "three"] {
        assert_eq!(bob.wait_for("message").await["text"], text);
    }
    // Right after their acks, with no wait for the archive: an edit of a message the
    // archive has not stored is checked against its record in the log.
    alice
        .ask_for(
            json!({"action": "edit", "room": "general", "id": ids[0], "text": "one, edited"}),
            "ack",
        )
        .await;
    alice
        .ask_for(json!({"action": "delete", "room": "general", "id": ids[1]}), "ack")
        .await;
    let four = bob
        .ask_for(json!({"action": "send", "room": "general", "text": "four"}), "ack")
        .await;
    ids.push(four["id"].as_str().unwrap().to_owned());

    let messages = bob
        .history_until("general", |messages| {
            messages.len() == 4 && messages[0]["text"] == "one, edited" && messages[1]["deleted"] == true
        })
        .await;
    let got: Vec<&str> = messages.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(got, ids, "history in send order: {messages:?}");
    assert_eq!(messages[0]["from"]["nick"], "alice");
    assert!(messages[0]["editedAt"].is_i64(), "{messages:?}");
    assert_eq!(messages[2]["text"], "three");
    assert_eq!(messages[3]["text"], "four");
    assert_eq!(messages[3]["from"]["nick"], "bob");

    // Over and over, each edit sent the moment its ack arrives: every one is accepted.
    // (20 rounds: with the 5 above, 45 of the message bucket's burst of 50, as nothing
    // waits for the archive between them any more.)
    for round in 0..20 {
        let ack = alice
            .ask_for(
                json!({"action": "send", "room": "general", "text": format!("draft {round}")}),
                "ack",
            )
            .await;
        alice
            .ask_for(
                json!({"action": "edit", "room": "general", "id": ack["id"], "text": format!("final {round}")}),
                "ack",
            )
            .await;
    }
    let messages = bob
        .history_until("general", |messages| {
            messages.len() == 24 && messages[23]["text"] == "final 19"
        })
        .await;
    let finals: Vec<&str> = messages[4..].iter().map(|m| m["text"].as_str().unwrap()).collect();
    let expected: Vec<String> = (0..20).map(|round| format!("final {round}")).collect();
    assert_eq!(finals, expected);
    gateway.shutdown().await;
}

/// A gateway stopped and started again on the same table, topic and groups: history is
/// kept, both groups had committed, and the archive resumes after its commits and keeps
/// what comes next (each message once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_on_the_same_groups_the_archive_resumes_and_history_is_kept() {
    init_tracing();
    let settings = settings(Mode::Real, &[]);
    let first = start(settings.clone()).await;
    assert!(
        first
            .backends
            .iter()
            .any(|line| line.contains("kafka-archive") && line.contains(&settings.archive_consumer_group)),
        "{:?}",
        first.backends
    );
    let mut alice = Client::connect(&first, "alice").await;
    alice.join("general").await;
    for text in ["before 1", "before 2"] {
        alice
            .ask_for(json!({"action": "send", "room": "general", "text": text}), "ack")
            .await;
    }
    alice.history_until("general", |messages| messages.len() == 2).await;
    let fan_out_committed = committed_until_positive(&settings, &settings.consumer_group).await;
    let archive_committed = committed_until_positive(&settings, &settings.archive_consumer_group).await;
    drop(alice);
    first.shutdown().await;

    let second = start(settings.clone()).await;
    let mut alice = Client::connect(&second, "alice").await;
    alice.join("general").await;
    alice
        .ask_for(json!({"action": "send", "room": "general", "text": "after"}), "ack")
        .await;
    let messages = alice.history_until("general", |messages| messages.len() >= 3).await;
    let texts: Vec<&str> = messages.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["before 1", "before 2", "after"]);
    assert!(committed(&settings, &settings.archive_consumer_group).await >= archive_committed);
    assert!(committed(&settings, &settings.consumer_group).await >= fan_out_committed);
    second.shutdown().await;
}

/// A new archive group on a topic with traffic starts at its oldest record, whatever
/// fan-out's group has done: a gateway on a fresh table rebuilds the room's history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_archive_group_rebuilds_history_from_the_topic() {
    init_tracing();
    let mut settings = settings(Mode::Real, &[]);
    let first = start(settings.clone()).await;
    let mut alice = Client::connect(&first, "alice").await;
    alice.join("general").await;
    for text in ["kept 1", "kept 2"] {
        alice
            .ask_for(json!({"action": "send", "room": "general", "text": text}), "ack")
            .await;
    }
    alice.history_until("general", |messages| messages.len() == 2).await;
    committed_until_positive(&settings, &settings.consumer_group).await;
    drop(alice);
    first.shutdown().await;

    settings.table = unique_name("roomcast");
    settings.archive_consumer_group = unique_name("archive");
    let second = start(settings).await;
    let mut bob = Client::connect(&second, "bob").await;
    bob.join("general").await;
    let messages = bob.history_until("general", |messages| messages.len() >= 2).await;
    let texts: Vec<&str> = messages.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["kept 1", "kept 2"]);
    second.shutdown().await;
}

/// The sum of `group`'s committed offsets on the topic's partitions (0 without commits).
async fn committed(settings: &Settings, group: &str) -> i64 {
    let (topic, group, partitions) = (settings.topic.clone(), group.to_owned(), settings.partitions);
    tokio::task::spawn_blocking(move || {
        // Not a member: an offset fetch for the group, which leaves its members alone.
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", tansu::bootstrap())
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("a Kafka consumer");
        let mut list = TopicPartitionList::new();
        for partition in 0..partitions {
            list.add_partition(&topic, partition);
        }
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(20))
            .unwrap_or_else(|error| panic!("committed offsets of {group}: {error}"));
        committed
            .elements()
            .iter()
            .filter_map(|element| match element.offset() {
                Offset::Offset(offset) => Some(offset),
                _ => None,
            })
            .sum()
    })
    .await
    .expect("the offset fetch ran")
}

/// `group`'s committed total once it is above 0 (commits follow the function's success).
async fn committed_until_positive(settings: &Settings, group: &str) -> i64 {
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    loop {
        let total = committed(settings, group).await;
        if total > 0 {
            return total;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "group {group} committed nothing within {CATCH_UP:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
