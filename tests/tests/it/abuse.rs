//! Abuse bounds beyond the message bucket (issue 22, item 2), through the handlers on both
//! backend sets: every action that reads or writes a table draws from a bucket of the
//! signed-in user or of the anonymous connection; anonymous room creation counts by source
//! address; a reconnect loop of a user in many rooms stops announcing it; an id dated in
//! the future is refused at once, before any read.

use std::time::Duration;

use roomcast_core::model::MessageId;
use roomcast_core::quota::Bucket;
use roomcast_tests::backends::Backends;
use roomcast_tests::{each_backend, events};
use serde_json::{json, Value};

use roomcast_tests::lambdas::Lambdas;

each_backend!(
    memory => Backends::memory().await,
    real => Backends::real().await;
    [
        every_action_on_a_table_draws_from_a_bucket,
        a_signed_in_users_connections_share_its_buckets,
        anonymous_room_creation_is_bounded_per_source_address,
        a_reconnect_loop_of_a_user_in_many_rooms_is_bounded,
        an_id_dated_in_the_future_is_refused_at_once,
    ]
);

/// Longest wait for one answer: generous for a loaded CI machine.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// A bucket of `burst` tokens that refills no token during a test.
fn spent_after(burst: u32) -> Option<Bucket> {
    Bucket::per_second(1.0 / 3600.0, burst)
}

fn assert_rate_limited(reply: &Value, action: &str, what: &str) {
    assert_eq!(
        (reply["code"].as_str(), reply["action"].as_str()),
        (Some("rate_limited"), Some(action)),
        "{reply}"
    );
    let message = reply["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("too many {what}")), "{reply}");
}

/// The presence events published so far, as `(room, event, nick)`.
async fn presence(lambdas: &Lambdas) -> Vec<(String, String, String)> {
    lambdas
        .backends
        .envelopes()
        .await
        .iter()
        .filter_map(|envelope| {
            let frame: Value = serde_json::from_str(envelope.frame.get()).expect("a frame");
            (frame["type"] == "presence").then(|| {
                let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
                (
                    text(&frame["room"]),
                    text(&frame["event"]),
                    text(&frame["user"]["nick"]),
                )
            })
        })
        .collect()
}

async fn every_action_on_a_table_draws_from_a_bucket(backends: Backends) {
    let mut lambdas = Lambdas::new(backends);
    lambdas.config.limits.reads = spent_after(3);
    lambdas.config.limits.memberships = spent_after(2);
    lambdas.config.limits.messages = spent_after(2);
    let alice = lambdas.connect("alice").await;
    lambdas.room(&alice, "bounded").await;

    // Reads: whoami, rooms, who and history share one bucket.
    lambdas.ok(&alice, r#"{"action":"whoami"}"#, "whoami").await;
    lambdas.ok(&alice, r#"{"action":"rooms"}"#, "rooms").await;
    lambdas.ok(&alice, r#"{"action":"who","room":"bounded"}"#, "who").await;
    let history = lambdas.frame(&alice, r#"{"action":"history","room":"bounded"}"#).await;
    assert_rate_limited(&history, "history", "reads");
    let who = lambdas.frame(&alice, r#"{"action":"who","room":"bounded"}"#).await;
    assert_rate_limited(&who, "who", "reads");

    // Messages: a delete costs a token like a send, found or not.
    lambdas
        .ok(&alice, r#"{"action":"send","room":"bounded","text":"one"}"#, "ack")
        .await;
    let old = ulid_at(roomcast_core::clock::now_ms() - 3_600_000);
    let delete = json!({"action": "delete", "room": "bounded", "id": old}).to_string();
    let missing = lambdas.frame(&alice, &delete).await;
    assert_eq!(missing["code"], "not_found", "{missing}");
    assert_rate_limited(&lambdas.frame(&alice, &delete).await, "delete", "messages");

    // Memberships: the join of `room` above, this leave, and no more.
    lambdas
        .ok(&alice, r#"{"action":"leave","room":"bounded"}"#, "left")
        .await;
    let join = lambdas.frame(&alice, r#"{"action":"join","room":"bounded"}"#).await;
    assert_rate_limited(&join, "join", "joins and leaves");

    // Another connection has buckets of its own; nothing refused was announced.
    let bob = lambdas.connect("bob").await;
    lambdas.ok(&bob, r#"{"action":"whoami"}"#, "whoami").await;
    lambdas
        .ok(&bob, r#"{"action":"join","room":"bounded"}"#, "joined")
        .await;
    let announced: Vec<_> = presence(&lambdas)
        .await
        .into_iter()
        .map(|(_, event, nick)| format!("{nick} {event}"))
        .collect();
    assert_eq!(announced, ["alice joined", "alice left", "bob joined"]);
}

async fn a_signed_in_users_connections_share_its_buckets(backends: Backends) {
    let mut lambdas = Lambdas::new(backends);
    lambdas.config.limits.reads = spent_after(2);
    let phone = lambdas.sign_in("u-carol", "carol", &[]).await;
    let laptop = lambdas.sign_in("u-carol", "carol", &[]).await;
    lambdas.ok(&phone, r#"{"action":"whoami"}"#, "whoami").await;
    lambdas.ok(&laptop, r#"{"action":"rooms"}"#, "rooms").await;
    // A third connection buys no more reads.
    let tablet = lambdas.sign_in("u-carol", "carol", &[]).await;
    assert_rate_limited(
        &lambdas.frame(&tablet, r#"{"action":"whoami"}"#).await,
        "whoami",
        "reads",
    );
    let dave = lambdas.sign_in("u-dave", "dave", &[]).await;
    lambdas.ok(&dave, r#"{"action":"whoami"}"#, "whoami").await;
}

async fn anonymous_room_creation_is_bounded_per_source_address(backends: Backends) {
    let mut lambdas = Lambdas::new(backends);
    lambdas.config.limits.anonymous_room_creations = spent_after(2);
    let create = |room: &str| json!({"action": "createRoom", "room": room}).to_string();
    // Every connection from the fixtures' address is a new anonymous user.
    for (n, expected) in [(1, true), (2, true), (3, false)] {
        let guest = lambdas.connect(&format!("guest{n}")).await;
        let reply = lambdas.frame(&guest, &create(&format!("anon{n}"))).await;
        match expected {
            true => assert_eq!(reply["type"], "roomCreated", "{reply}"),
            false => assert_rate_limited(&reply, "createRoom", "new rooms"),
        }
    }
    // Another address has its own bucket.
    let elsewhere = lambdas.connect("elsewhere").await;
    let mut event = events::message(&elsewhere, &create("anon4"));
    event.request_context.identity.source_ip = Some("198.51.100.7".to_owned());
    let reply = lambdas.answer(event).await;
    assert_eq!(reply["type"], "roomCreated", "{reply}");
    // A signed-in user counts as itself, wherever it is.
    let erin = lambdas.sign_in("u-erin", "erin", &[]).await;
    lambdas.ok(&erin, &create("erins"), "roomCreated").await;

    let rooms = lambdas.ok(&erin, r#"{"action":"rooms"}"#, "rooms").await;
    let names: Vec<&str> = rooms["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .filter_map(|room| room["name"].as_str())
        .collect();
    assert_eq!(names, ["admin", "anon1", "anon2", "anon4", "erins"], "{rooms}");
}

async fn a_reconnect_loop_of_a_user_in_many_rooms_is_bounded(backends: Backends) {
    let mut lambdas = Lambdas::new(backends);
    lambdas.config.limits.arrivals = spent_after(3);
    let first = lambdas.sign_in("u-fay", "fay", &[]).await;
    for room in ["loop1", "loop2"] {
        lambdas.room(&first, room).await;
    }
    assert_eq!(lambdas.disconnect(&first).await, 200);
    for _ in 0..2 {
        let again = lambdas.sign_in("u-fay", "fay", &[]).await;
        assert_eq!(lambdas.disconnect(&again).await, 200);
    }
    let announced = presence(&lambdas).await.len();
    let refused = events::connect_signed_in(&events::connection_id(), "u-fay", Some("fay"), &[]);
    assert_eq!(lambdas.connect_event(refused).await, 429, "a fourth arrival");
    assert_eq!(
        presence(&lambdas).await.len(),
        announced,
        "the refused arrival was not announced"
    );
    // Another user is not held back.
    lambdas.sign_in("u-gus", "gus", &[]).await;
}

/// A message id made at `ms` as ids were before they came from the log (a ULID): its time
/// is all that dates it.
fn ulid_at(ms: i64) -> MessageId {
    MessageId::parse(&ulid::Ulid::from_parts(ms as u64, 0).to_string()).expect("a ULID is a message id")
}

async fn an_id_dated_in_the_future_is_refused_at_once(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let alice = lambdas.connect("alice").await;
    lambdas.room(&alice, "future").await;
    let whoami = lambdas.ok(&alice, r#"{"action":"whoami"}"#, "whoami").await;
    let me = whoami["userId"].as_str().expect("a user id");
    let future = ulid_at(roomcast_core::clock::now_ms() + 60_000);
    for frame in [
        json!({"action": "edit", "room": "future", "id": future, "text": "rewritten"}),
        json!({"action": "delete", "room": "future", "id": future}),
        json!({"action": "edit", "with": me, "id": future, "text": "rewritten"}),
        json!({"action": "send", "room": "future", "text": "re", "replyTo": future}),
    ] {
        let reply = tokio::time::timeout(ANSWER_WAIT, lambdas.frame(&alice, &frame.to_string()))
            .await
            .unwrap_or_else(|_| panic!("{frame}: no answer within {ANSWER_WAIT:?}"));
        assert_eq!(reply["code"], "not_found", "{frame} → {reply}");
        assert!(
            reply["message"]
                .as_str()
                .unwrap_or_default()
                .contains("dated in the future"),
            "{reply}"
        );
    }
}
