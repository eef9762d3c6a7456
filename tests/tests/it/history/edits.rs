//! Edits, deletes and replies: who may make them, and that they neither wait for the
//! archive nor get lost whenever it runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use roomcast_core::{Envelope, MessageId};
use roomcast_tests::backends::Backends;
use roomcast_tests::each_backend;
use roomcast_tests::lambdas::Lambdas;
use serde_json::{json, Value};

use super::{alice_and_bob_in_general_and_random, send, signed_in, texts};

each_backend!(
    memory => Backends::memory().await,
    real => Backends::real().await;
    [
        edit_and_delete_follow_authorship_and_the_admin_role,
        an_edit_right_after_the_ack_is_applied_whenever_the_archive_runs,
        edits_deletes_and_replies_do_not_wait_for_the_archive,
        replies_must_name_a_message_of_the_same_conversation,
    ]
);

async fn edit_and_delete_follow_authorship_and_the_admin_role(backends: Backends) {
    let lambdas = signed_in(backends).await;
    let alice = lambdas.sign_in("u-alice", "alice", &[]).await;
    let bob = lambdas.sign_in("u-bob", "bob", &[]).await;
    let admin = lambdas.sign_in("u-root", "root", &["admin"]).await;
    for connection in [&alice, &bob, &admin] {
        lambdas.room(connection, "general").await;
    }
    let one = lambdas.ok(&alice, &send("general", "one"), "ack").await["id"].clone();
    let two = lambdas.ok(&alice, &send("general", "two"), "ack").await["id"].clone();
    let three = lambdas.ok(&alice, &send("general", "three"), "ack").await["id"].clone();
    lambdas.archive().await;
    let edit =
        |id: &Value, text: &str| json!({"action": "edit", "room": "general", "id": id, "text": text}).to_string();
    let delete = |id: &Value| json!({"action": "delete", "room": "general", "id": id}).to_string();

    let refused = lambdas.frame(&bob, &edit(&one, "bob was here")).await;
    assert_eq!(
        (refused["code"].as_str(), refused["action"].as_str()),
        (Some("forbidden"), Some("edit"))
    );
    let refused = lambdas.frame(&admin, &edit(&one, "root was here")).await;
    assert_eq!(refused["code"], "forbidden", "not even an admin edits another's words");
    let refused = lambdas.frame(&bob, &delete(&two)).await;
    assert_eq!(refused["code"], "forbidden");

    let before = lambdas.backends.envelopes().await.len();
    let ack = lambdas.ok(&alice, &edit(&one, "one, better"), "ack").await;
    assert_eq!((ack["room"].as_str(), &ack["id"]), (Some("general"), &one));
    lambdas.ok(&alice, &delete(&two), "ack").await;
    lambdas.ok(&admin, &delete(&three), "ack").await;
    let published = lambdas.backends.envelopes().await;
    let frames: Vec<Value> = published[before..]
        .iter()
        .map(|e: &Envelope| serde_json::from_str(e.frame.get()).unwrap())
        .collect();
    assert_eq!(frames[0]["type"], "edited");
    assert_eq!(frames[0]["text"], "one, better");
    assert_eq!(frames[0]["by"]["nick"], "alice");
    assert_eq!(
        (frames[1]["type"].as_str(), frames[1]["id"].clone()),
        (Some("deleted"), two.clone())
    );
    assert_eq!(frames[2]["by"]["nick"], "root");
    assert_eq!(published.len() - before, 3, "the refusals published nothing");

    lambdas.archive().await;
    let history = lambdas
        .ok(&bob, r#"{"action":"history","room":"general"}"#, "history")
        .await;
    assert_eq!(texts(&history), ["one, better", "-", "-"]);
    assert_eq!(
        history["messages"][1],
        json!({"id": two, "deleted": true}),
        "a tombstone keeps no text"
    );
    let gone = lambdas.frame(&alice, &edit(&two, "back")).await;
    assert_eq!(gone["code"], "not_found");
    let gone = lambdas.frame(&admin, &delete(&three)).await;
    assert_eq!(gone["code"], "not_found");
    let unknown = lambdas
        .frame(&alice, &edit(&json!("01ARZ3NDEKTSV4RRFFQ69G5FAV"), "x"))
        .await;
    assert_eq!(unknown["code"], "not_found");
}

/// kafka-archive running beside the handlers until dropped, as its own event source
/// mapping does.
struct Archiving {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Archiving {
    fn start(lambdas: &Arc<Lambdas>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (lambdas, stopped) = (lambdas.clone(), stop.clone());
        let task = tokio::spawn(async move {
            while !stopped.load(Ordering::Relaxed) {
                lambdas.archive().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Self { stop, task }
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("archiver");
    }
}

async fn an_edit_right_after_the_ack_is_applied_whenever_the_archive_runs(backends: Backends) {
    let lambdas = Arc::new(signed_in(backends).await);
    let alice = lambdas.sign_in("u-alice", "alice", &[]).await;
    lambdas.room(&alice, "general").await;
    let archiving = Archiving::start(&lambdas);
    for round in 0..20 {
        let ack = lambdas
            .ok(&alice, &send("general", &format!("draft {round}")), "ack")
            .await;
        let edit = json!({"action": "edit", "room": "general", "id": ack["id"], "text": format!("final {round}")});
        lambdas.ok(&alice, &edit.to_string(), "ack").await;
        if round % 2 == 0 {
            let delete = json!({"action": "delete", "room": "general", "id": ack["id"]});
            lambdas.ok(&alice, &delete.to_string(), "ack").await;
        }
    }
    archiving.stop().await;
    lambdas.archive().await;
    let history = lambdas
        .ok(&alice, r#"{"action":"history","room":"general"}"#, "history")
        .await;
    let expected: Vec<String> = (0..20)
        .map(|round| {
            if round % 2 == 0 {
                "-".to_owned()
            } else {
                format!("final {round}")
            }
        })
        .collect();
    assert_eq!(texts(&history), expected);
}

/// What the archive has not stored yet, the log tells: an edit, a delete or a reply of a
/// message acknowledged a moment earlier is accepted at once however far behind the archive
/// is (here: it has not run at all), with the same checks as a kept message (the author, the
/// conversation), and the archive, run later, applies them in order. An id the log has no
/// message at (a position past its end, or the position of another conversation's message,
/// or a message's position with another time) is `not_found` at once.
async fn edits_deletes_and_replies_do_not_wait_for_the_archive(backends: Backends) {
    let lambdas = signed_in(backends).await;
    let (alice, bob) = alice_and_bob_in_general_and_random(&lambdas).await;
    let draft = lambdas.ok(&alice, &send("general", "draft"), "ack").await;
    let doomed = lambdas.ok(&alice, &send("general", "oops"), "ack").await;
    let elsewhere = lambdas.ok(&alice, &send("random", "elsewhere"), "ack").await;
    let whisper = lambdas
        .ok(
            &alice,
            &json!({"action": "dm", "to": "bob", "text": "psst"}).to_string(),
            "ack",
        )
        .await;
    // Nothing archived: each of these is answered from the log.
    let answer = |connection: &str, frame: Value| {
        let lambdas = &lambdas;
        let connection = connection.to_owned();
        async move {
            tokio::time::timeout(Duration::from_secs(30), lambdas.frame(&connection, &frame.to_string()))
                .await
                .unwrap_or_else(|_| panic!("{frame}: no answer"))
        }
    };
    let edit = |id: &Value, text: &str| json!({"action": "edit", "room": "general", "id": id, "text": text});
    let reply = answer(
        &bob,
        json!({"action": "send", "room": "general", "text": "re", "replyTo": draft["id"]}),
    )
    .await;
    assert_eq!(reply["type"], "ack", "{reply}");
    let edited = answer(&alice, edit(&draft["id"], "final")).await;
    assert_eq!(edited["type"], "ack", "{edited}");
    let deleted = answer(
        &alice,
        json!({"action": "delete", "room": "general", "id": doomed["id"]}),
    )
    .await;
    assert_eq!(deleted["type"], "ack", "{deleted}");
    let dm_reply = json!({"action": "dm", "to": "alice", "text": "what?", "replyTo": whisper["id"]});
    assert_eq!(answer(&bob, dm_reply).await["type"], "ack");
    let dm_edit = json!({"action": "edit", "with": "u-bob", "id": whisper["id"], "text": "psst!"});
    assert_eq!(answer(&alice, dm_edit).await["type"], "ack");

    // The same checks as for a kept message.
    let not_theirs = answer(&bob, edit(&draft["id"], "hijacked")).await;
    assert_eq!(not_theirs["code"], "forbidden", "{not_theirs}");
    let other_room = answer(&alice, edit(&elsewhere["id"], "moved")).await;
    assert_eq!(other_room["code"], "not_found", "{other_room}");
    let (epoch, position) = MessageId::parse(draft["id"].as_str().unwrap())
        .unwrap()
        .position()
        .expect("an id from the log");
    let ts = draft["ts"].as_i64().unwrap();
    let past_the_end = roomcast_core::model::LogPosition {
        offset: position.offset + 1_000_000,
        ..position
    };
    for id in [
        MessageId::at(epoch, position, ts - 1),
        MessageId::at(epoch, past_the_end, ts),
    ] {
        let missing = answer(&alice, edit(&json!(id), "x")).await;
        assert_eq!(missing["code"], "not_found", "{id}: {missing}");
        let missing = answer(
            &bob,
            json!({"action": "send", "room": "general", "text": "re", "replyTo": id}),
        )
        .await;
        assert_eq!(missing["code"], "not_found", "{id}: {missing}");
    }

    lambdas.archive().await;
    let history = lambdas
        .ok(&alice, r#"{"action":"history","room":"general"}"#, "history")
        .await;
    assert_eq!(texts(&history), ["final", "-", "re"]);
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages[2]["replyTo"], draft["id"], "{history}");
    let direct = lambdas
        .ok(&bob, r#"{"action":"history","with":"u-alice"}"#, "history")
        .await;
    assert_eq!(texts(&direct), ["psst!", "what?"]);
}

async fn replies_must_name_a_message_of_the_same_conversation(backends: Backends) {
    let lambdas = signed_in(backends).await;
    let (alice, bob) = alice_and_bob_in_general_and_random(&lambdas).await;
    let question = lambdas.ok(&alice, &send("general", "lunch?"), "ack").await["id"].clone();
    let dm = json!({"action": "dm", "to": "bob", "text": "psst"});
    let whisper = lambdas.ok(&alice, &dm.to_string(), "ack").await["id"].clone();
    lambdas.archive().await;

    let elsewhere = json!({"action": "send", "room": "random", "text": "yes", "replyTo": question});
    let refused = lambdas.frame(&bob, &elsewhere.to_string()).await;
    assert_eq!(
        (refused["code"].as_str(), refused["action"].as_str()),
        (Some("not_found"), Some("send"))
    );
    let dm_to_room = json!({"action": "dm", "to": "alice", "text": "yes", "replyTo": question});
    assert_eq!(lambdas.frame(&bob, &dm_to_room.to_string()).await["code"], "not_found");
    let room_to_dm = json!({"action": "send", "room": "general", "text": "yes", "replyTo": whisper});
    assert_eq!(lambdas.frame(&bob, &room_to_dm.to_string()).await["code"], "not_found");

    let answer = json!({"action": "send", "room": "general", "text": "yes!", "replyTo": question});
    lambdas.ok(&bob, &answer.to_string(), "ack").await;
    let dm_answer = json!({"action": "dm", "to": "alice", "text": "what?", "replyTo": whisper});
    lambdas.ok(&bob, &dm_answer.to_string(), "ack").await;
    lambdas.archive().await;
    let general = lambdas
        .ok(&alice, r#"{"action":"history","room":"general"}"#, "history")
        .await;
    assert_eq!(texts(&general), ["lunch?", "yes!"]);
    assert_eq!(general["messages"][1]["replyTo"], question);
    let random = lambdas
        .ok(&alice, r#"{"action":"history","room":"random"}"#, "history")
        .await;
    assert_eq!(texts(&random), Vec::<String>::new(), "nothing reached the other room");
    let direct = lambdas
        .ok(&alice, r#"{"action":"history","with":"u-bob"}"#, "history")
        .await;
    assert_eq!(texts(&direct), ["psst", "what?"]);
    assert_eq!(direct["messages"][1]["replyTo"], whisper);
}
