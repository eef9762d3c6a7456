//! Message history through the Lambda handlers, on both backend sets: ws-message's
//! `history`, `edit`, `delete` and replies, with kafka-archive run on what was published
//! (every run re-reads the log from the start, so each is also a redelivery).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use roomcast_core::history::{Conversation, Cursor, MessageEdit, Page, StoredMessage};
use roomcast_core::memory::LogRecord;
use roomcast_core::ports::StoreError;
use roomcast_core::Envelope;
use roomcast_core::{MessageId, UserId};
use roomcast_tests::backends::Backends;
use roomcast_tests::{each_backend, events};
use serde_json::{json, Value};

use crate::lambda::Lambdas;

each_backend!(
    memory => Backends::memory().await,
    real => Backends::real().await;
    [
        history_pages_back_and_forward_give_every_message_once_in_order,
        a_reconnected_client_catches_up_with_exactly_what_it_missed,
        a_batch_archived_twice_keeps_each_message_once_and_its_edit,
        edit_and_delete_follow_authorship_and_the_admin_role,
        an_edit_right_after_the_ack_is_applied_whenever_the_archive_runs,
        edits_deletes_and_replies_do_not_wait_for_the_archive,
        replies_must_name_a_message_of_the_same_conversation,
        a_direct_conversation_has_the_same_history_from_both_sides,
        a_record_the_archive_cannot_use_is_skipped_and_the_rest_kept,
        history_needs_membership_and_well_formed_cursors,
        a_page_of_long_messages_is_cut_to_fit_one_frame,
        a_failed_write_fails_the_batch_and_its_redelivery_keeps_it,
    ]
);

fn send(room: &str, text: &str) -> String {
    json!({"action": "send", "room": room, "text": text}).to_string()
}

/// The texts of a `history` answer's messages (`-` for a tombstone).
fn texts(answer: &Value) -> Vec<String> {
    answer["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("not a history answer: {answer}"))
        .iter()
        .map(|m| m["text"].as_str().unwrap_or("-").to_owned())
        .collect()
}

fn last_id(answer: &Value) -> Option<String> {
    answer["messages"].as_array()?.last()?["id"].as_str().map(str::to_owned)
}

fn first_id(answer: &Value) -> Option<String> {
    answer["messages"].as_array()?.first()?["id"]
        .as_str()
        .map(str::to_owned)
}

/// Signed-in users, as rooms then follow them across connections.
async fn signed_in(backends: Backends) -> Lambdas {
    let mut lambdas = Lambdas::new(backends);
    lambdas.config.auth = roomcast_core::config::AuthMode::Required;
    lambdas
}

async fn history_pages_back_and_forward_give_every_message_once_in_order(backends: Backends) {
    let mut lambdas = signed_in(backends).await;
    // 250 messages at once from one connection: past the message quota, which is not
    // what this test is about.
    lambdas.config.limits.messages = None;
    let alice = lambdas.sign_in("u-alice", "alice", &[]).await;
    lambdas.room(&alice, "general").await;
    let sent: Vec<String> = (0..250).map(|i| format!("m{i:03}")).collect();
    for text in &sent {
        lambdas.ok(&alice, &send("general", text), "ack").await;
    }
    lambdas.archive().await;

    for limit in [7, 50, 100] {
        // Scrollback: the latest page, then `before` the oldest one seen, until no `more`.
        let mut seen: Vec<String> = Vec::new();
        let mut request = json!({"action": "history", "room": "general", "limit": limit});
        loop {
            let page = lambdas.ok(&alice, &request.to_string(), "history").await;
            let mut older = texts(&page);
            assert!(older.len() <= limit, "{limit}: {} messages", older.len());
            older.extend(seen);
            seen = older;
            if page["more"] != true {
                break;
            }
            request["before"] = json!(first_id(&page).expect("a page with more is not empty"));
        }
        assert_eq!(seen, sent, "paged back {limit} at a time");

        // Catching up: `after` the last id seen, from the very first message on.
        let mut seen = vec![sent[0].clone()];
        let mut after = oldest_id(&lambdas, &alice, "general").await;
        loop {
            let page = lambdas
                .ok(
                    &alice,
                    &json!({"action": "history", "room": "general", "limit": limit, "after": after}).to_string(),
                    "history",
                )
                .await;
            seen.extend(texts(&page));
            match (page["more"] == true, last_id(&page)) {
                (true, Some(last)) => after = last,
                _ => break,
            }
        }
        assert_eq!(seen, sent, "paged forward {limit} at a time");
    }
}

/// The id of the room's first message, found by paging back 100 at a time.
async fn oldest_id(lambdas: &Lambdas, connection: &str, room: &str) -> String {
    let mut request = json!({"action": "history", "room": room, "limit": 100});
    loop {
        let page = lambdas.ok(connection, &request.to_string(), "history").await;
        let first = first_id(&page).expect("the room has messages");
        if page["more"] != true {
            return first;
        }
        request["before"] = json!(first);
    }
}

async fn a_reconnected_client_catches_up_with_exactly_what_it_missed(backends: Backends) {
    let lambdas = signed_in(backends).await;
    let alice = lambdas.sign_in("u-alice", "alice", &[]).await;
    let bob = lambdas.sign_in("u-bob", "bob", &[]).await;
    lambdas.room(&alice, "general").await;
    lambdas.room(&bob, "general").await;
    let seen = lambdas.ok(&alice, &send("general", "before the gap"), "ack").await;
    assert_eq!(lambdas.disconnect(&bob).await, 200);
    let missed: Vec<String> = (0..40).map(|i| format!("missed {i}")).collect();
    for text in &missed {
        lambdas.ok(&alice, &send("general", text), "ack").await;
    }
    lambdas.archive().await;

    let bob = lambdas.sign_in("u-bob", "bob", &[]).await;
    let caught_up = lambdas
        .ok(
            &bob,
            &json!({"action": "history", "room": "general", "after": seen["id"]}).to_string(),
            "history",
        )
        .await;
    assert_eq!(texts(&caught_up), missed);
    assert_eq!(caught_up["more"], false);
    assert!(caught_up["messages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["from"]["nick"] == "alice"));
}

async fn a_batch_archived_twice_keeps_each_message_once_and_its_edit(backends: Backends) {
    let lambdas = signed_in(backends).await;
    let alice = lambdas.sign_in("u-alice", "alice", &[]).await;
    lambdas.room(&alice, "general").await;
    let ack = lambdas.ok(&alice, &send("general", "first"), "ack").await;
    lambdas.ok(&alice, &send("general", "second"), "ack").await;
    let messages_only = lambdas.backends.published().await;
    let first = lambdas.archive().await;
    assert_eq!(first.kept, 2, "{first:?}");
    let edit = json!({"action": "edit", "room": "general", "id": ack["id"], "text": "first, edited"});
    lambdas.ok(&alice, &edit.to_string(), "ack").await;
    // Everything again (the edit now among it), then the old batch once more, after the edit.
    let again = lambdas.archive().await;
    assert_eq!((again.kept, again.changed), (2, 1), "{again:?}");
    let old = kafka_archive::handle(
        &*lambdas.backends.history,
        &Default::default(),
        &events::kafka_batch(&messages_only),
    )
    .await
    .expect("archived");
    assert_eq!(old.kept, 2);

    let history = lambdas
        .ok(&alice, r#"{"action":"history","room":"general"}"#, "history")
        .await;
    assert_eq!(texts(&history), ["first, edited", "second"]);
    assert!(history["messages"][0]["editedAt"].is_i64(), "{history}");
}

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

/// alice and bob, signed in, both members of `general` and `random`.
async fn alice_and_bob_in_general_and_random(lambdas: &Lambdas) -> (String, String) {
    let alice = lambdas.sign_in("u-alice", "alice", &[]).await;
    let bob = lambdas.sign_in("u-bob", "bob", &[]).await;
    for room in ["general", "random"] {
        lambdas.room(&alice, room).await;
        lambdas.room(&bob, room).await;
    }
    (alice, bob)
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

async fn a_direct_conversation_has_the_same_history_from_both_sides(backends: Backends) {
    let lambdas = signed_in(backends).await;
    let alice = lambdas.sign_in("u-alice", "alice", &[]).await;
    let bob = lambdas.sign_in("u-bob", "bob", &[]).await;
    let carol = lambdas.sign_in("u-carol", "carol", &[]).await;
    let dm = |to: &str, text: &str| json!({"action": "dm", "toUser": to, "text": text}).to_string();
    let hi = lambdas.ok(&alice, &dm("u-bob", "hi bob"), "ack").await["id"].clone();
    lambdas.ok(&bob, &dm("u-alice", "hi alice"), "ack").await;
    lambdas.ok(&alice, &dm("u-bob", "how are you?"), "ack").await;
    lambdas
        .ok(&carol, &dm("u-alice", "not in that conversation"), "ack")
        .await;
    lambdas.archive().await;
    let edit = json!({"action": "edit", "with": "u-bob", "id": hi, "text": "hello bob"});
    let before = lambdas.backends.envelopes().await.len();
    let ack = lambdas.ok(&alice, &edit.to_string(), "ack").await;
    assert_eq!(ack["with"], "u-bob");
    // One `edited`, in the conversation's own order (fan-out tells each side the other).
    let sides: Vec<(String, Option<String>)> = lambdas.backends.envelopes().await[before..]
        .iter()
        .map(|e| {
            let frame: Value = serde_json::from_str(e.frame.get()).unwrap();
            (e.target.record_key(), frame["with"].as_str().map(str::to_owned))
        })
        .collect();
    assert_eq!(sides, [("dm:u-alice:u-bob".to_owned(), None)]);
    let refused = json!({"action": "edit", "with": "u-alice", "id": hi, "text": "bob edits"});
    assert_eq!(lambdas.frame(&bob, &refused.to_string()).await["code"], "forbidden");
    lambdas.archive().await;

    let from_alice = lambdas
        .ok(&alice, r#"{"action":"history","with":"u-bob"}"#, "history")
        .await;
    let from_bob = lambdas
        .ok(&bob, r#"{"action":"history","with":"u-alice"}"#, "history")
        .await;
    assert_eq!(texts(&from_alice), ["hello bob", "hi alice", "how are you?"]);
    assert_eq!(from_alice["messages"], from_bob["messages"]);
    assert_eq!(from_alice["messages"][0]["to"]["nick"], "bob");
    let from_carol = lambdas
        .ok(&carol, r#"{"action":"history","with":"u-bob"}"#, "history")
        .await;
    assert_eq!(texts(&from_carol), Vec::<String>::new(), "carol never wrote to bob");
}

async fn a_record_the_archive_cannot_use_is_skipped_and_the_rest_kept(backends: Backends) {
    let lambdas = signed_in(backends).await;
    let alice = lambdas.sign_in("u-alice", "alice", &[]).await;
    lambdas.room(&alice, "general").await;
    lambdas.ok(&alice, &send("general", "before"), "ack").await;
    let good_before = lambdas.backends.published().await;
    lambdas.ok(&alice, &send("general", "after"), "ack").await;
    let all = lambdas.backends.published().await;
    let poison = |value: &[u8], offset: i64| LogRecord {
        value: value.to_vec(),
        offset,
        ..all[0].clone()
    };
    // Records after the poison ones in the partition: they must still be archived.
    let mut batch = good_before.clone();
    let base = all.last().unwrap().offset;
    batch.push(poison(b"not json at all", base + 1));
    batch.push(poison(
        br#"{"v":1,"id":"x","target":{"room":"general"},"stamp":{"ts":1},"frame":{"type":"message","text":"no sender"}}"#,
        base + 2,
    ));
    batch.push(LogRecord {
        offset: base + 3,
        ..all.last().unwrap().clone()
    });
    let report = kafka_archive::handle(
        &*lambdas.backends.history,
        &Default::default(),
        &events::kafka_batch(&batch),
    )
    .await
    .expect("a poison record does not fail the batch");
    assert_eq!(report.skipped, 2, "{report:?}");
    let history = lambdas
        .ok(&alice, r#"{"action":"history","room":"general"}"#, "history")
        .await;
    assert_eq!(texts(&history), ["before", "after"]);
}

async fn history_needs_membership_and_well_formed_cursors(backends: Backends) {
    let lambdas = signed_in(backends).await;
    let alice = lambdas.sign_in("u-alice", "alice", &[]).await;
    let bob = lambdas.sign_in("u-bob", "bob", &[]).await;
    lambdas.room(&alice, "general").await;
    let id = lambdas.ok(&alice, &send("general", "members only"), "ack").await["id"].clone();
    lambdas.archive().await;

    let cases = [
        (json!({"action": "history", "room": "general"}), "not_member"),
        (json!({"action": "history", "room": "nowhere"}), "not_member"),
        (json!({"action": "history"}), "bad_request"),
        (
            json!({"action": "history", "room": "general", "with": "u-alice"}),
            "bad_request",
        ),
        (
            json!({"action": "history", "room": "general", "before": id, "after": id}),
            "bad_request",
        ),
        (
            json!({"action": "history", "room": "general", "after": "yesterday"}),
            "bad_request",
        ),
        (
            json!({"action": "history", "room": "general", "limit": 0}),
            "bad_request",
        ),
        (
            json!({"action": "history", "room": "general", "limit": 101}),
            "bad_request",
        ),
        (
            json!({"action": "history", "room": "general", "limit": "ten"}),
            "bad_request",
        ),
        (
            json!({"action": "edit", "room": "general", "id": id, "text": "mine now"}),
            "not_member",
        ),
        (json!({"action": "delete", "room": "general", "id": id}), "not_member"),
        (json!({"action": "edit", "room": "general", "id": id}), "bad_request"),
        (
            json!({"action": "edit", "room": "general", "id": id, "text": "x".repeat(4097)}),
            "too_large",
        ),
        (json!({"action": "delete", "with": "", "id": id}), "bad_request"),
    ];
    for (frame, code) in cases {
        let answer = lambdas.frame(&bob, &frame.to_string()).await;
        assert_eq!(answer["code"], code, "{frame} → {answer}");
    }
    let history = lambdas
        .ok(&alice, r#"{"action":"history","room":"general"}"#, "history")
        .await;
    assert_eq!(texts(&history), ["members only"], "nothing changed");
}

async fn a_page_of_long_messages_is_cut_to_fit_one_frame(backends: Backends) {
    let lambdas = signed_in(backends).await;
    let alice = lambdas.sign_in("u-alice", "alice", &[]).await;
    lambdas.room(&alice, "general").await;
    for i in 0..40 {
        let text = format!("{i:02}{}", "x".repeat(4000));
        lambdas.ok(&alice, &send("general", &text), "ack").await;
    }
    lambdas.archive().await;
    let reply = lambdas
        .answer(events::message(
            &alice,
            r#"{"action":"history","room":"general","limit":100}"#,
        ))
        .await;
    let size = reply.to_string().len();
    assert!(
        size <= 128 * 1024,
        "the answer is {size} bytes: over API Gateway's 128 KB"
    );
    let got = texts(&reply);
    assert!(
        got.len() < 40 && reply["more"] == true,
        "{} messages, more {}",
        got.len(),
        reply["more"]
    );
    assert!(
        got.last().unwrap().starts_with("39"),
        "the newest are kept when reading back"
    );
}

/// A history whose writes fail, as DynamoDB does when it is unreachable.
struct Unreachable;

#[async_trait::async_trait]
impl roomcast_core::History for Unreachable {
    async fn keep(&self, _: &StoredMessage) -> Result<(), StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
    async fn edit(&self, _: &Conversation, _: &MessageId, _: &MessageEdit) -> Result<bool, StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
    async fn delete(&self, _: &Conversation, _: &MessageId) -> Result<bool, StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
    async fn message(&self, _: &Conversation, _: &MessageId) -> Result<Option<StoredMessage>, StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
    async fn page(&self, _: &Conversation, _: &Cursor, _: usize) -> Result<Page, StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
    async fn archived_until(&self, _: u8, _: i32) -> Result<Option<i64>, StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
    async fn mark_archived(&self, _: u8, _: i32, _: i64) -> Result<(), StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
    async fn conversations(
        &self,
        _: &UserId,
        _: Option<&MessageId>,
        _: usize,
    ) -> Result<roomcast_core::history::ConversationsPage, StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
}

async fn a_failed_write_fails_the_batch_and_its_redelivery_keeps_it(backends: Backends) {
    let lambdas = signed_in(backends).await;
    let alice = lambdas.sign_in("u-alice", "alice", &[]).await;
    lambdas.room(&alice, "general").await;
    lambdas.ok(&alice, &send("general", "kept in the end"), "ack").await;
    let batch = events::kafka_batch(&lambdas.backends.published().await);
    let failed = kafka_archive::handle(&Unreachable, &Default::default(), &batch).await;
    assert!(failed.is_err(), "the event source mapping must deliver the batch again");
    let diagnostic = lambda_runtime::Diagnostic::from(failed.unwrap_err());
    assert!(
        diagnostic.error_message.contains("connection refused"),
        "{diagnostic:?}"
    );
    kafka_archive::handle(&*lambdas.backends.history, &Default::default(), &batch)
        .await
        .expect("redelivered");
    let history = lambdas
        .ok(&alice, r#"{"action":"history","room":"general"}"#, "history")
        .await;
    assert_eq!(texts(&history), ["kept in the end"]);
}
