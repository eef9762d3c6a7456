//! Abuse bounds, through the handlers on both backend sets: a connection that floods gets
//! `rate_limited` and keeps its connection, a user cannot create rooms or join rooms
//! without end, and the catalog stops growing at its limit. Nothing refused is published.

use roomcast_core::quota::Bucket;
use roomcast_tests::backends::Backends;
use roomcast_tests::each_backend;
use serde_json::json;

use roomcast_tests::lambdas::Lambdas;

each_backend!(
    memory => Backends::memory().await,
    real => Backends::real().await;
    [
        a_flooding_connection_is_rate_limited_and_stays_connected,
        a_user_creates_rooms_at_a_bounded_rate_into_a_bounded_catalog,
        a_user_is_a_member_of_a_bounded_number_of_rooms,
    ]
);

fn send(room: &str, text: &str) -> String {
    json!({"action": "send", "room": room, "text": text}).to_string()
}

async fn a_flooding_connection_is_rate_limited_and_stays_connected(backends: Backends) {
    let mut lambdas = Lambdas::new(backends);
    // Three at once, then one every 4 s: slow enough that none refills while moto answers.
    lambdas.config.limits.messages = Bucket::per_second(0.25, 3);
    let alice = lambdas.connect("alice").await;
    let bob = lambdas.connect("bob").await;
    lambdas.room(&alice, "flood").await;
    lambdas.ok(&bob, r#"{"action":"join","room":"flood"}"#, "joined").await;
    let before = lambdas.backends.envelopes().await.len();

    for n in 0..3 {
        lambdas.ok(&alice, &send("flood", &format!("burst {n}")), "ack").await;
    }
    let refused = lambdas.frame(&alice, &send("flood", "one too many")).await;
    assert_eq!(
        (refused["code"].as_str(), refused["action"].as_str()),
        (Some("rate_limited"), Some("send")),
        "{refused}"
    );
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("at most 3 at once, then one every 4000 ms"),
        "the error says the limit: {refused}"
    );
    // dm and edit draw from the same bucket; other actions do not.
    let dm = lambdas
        .frame(&alice, r#"{"action":"dm","to":"bob","text":"psst"}"#)
        .await;
    assert_eq!(dm["code"], "rate_limited", "{dm}");
    lambdas.ok(&alice, r#"{"action":"whoami"}"#, "whoami").await;
    // Another connection has its own bucket.
    lambdas.ok(&bob, &send("flood", "bob is fine"), "ack").await;

    let texts: Vec<String> = lambdas.backends.envelopes().await[before..]
        .iter()
        .filter_map(|envelope| {
            let frame: serde_json::Value = serde_json::from_str(envelope.frame.get()).expect("a frame");
            (frame["type"] == "message").then(|| frame["text"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    assert_eq!(
        texts,
        ["burst 0", "burst 1", "burst 2", "bob is fine"],
        "nothing refused reached the log"
    );

    // The bucket refills: the connection was never dropped. Buckets count by the request's
    // time (API Gateway's `requestTimeEpoch`), so a request stamped one refill later has a
    // token again, and one stamped now still has none.
    let at = |delay_ms: i64, text: &str| {
        let mut event = roomcast_tests::events::message(&alice, &send("flood", text));
        event.request_context.request_time_epoch += delay_ms;
        event
    };
    let still_empty = lambdas.answer(at(0, "too soon")).await;
    assert_eq!(still_empty["code"], "rate_limited", "{still_empty}");
    let refilled = lambdas.answer(at(4_100, "after a pause")).await;
    assert_eq!(refilled["type"], "ack", "{refilled}");
}

async fn a_user_creates_rooms_at_a_bounded_rate_into_a_bounded_catalog(backends: Backends) {
    let mut lambdas = Lambdas::new(backends);
    lambdas.config.limits.room_creations = Bucket::per_second(1.0 / 3600.0, 2);
    // The broadcast room is not in the catalog's count.
    lambdas.config.limits.max_rooms = 3;
    let create = |room: &str| json!({"action": "createRoom", "room": room}).to_string();
    // Signed-in users: an anonymous one's rooms count by address (abuse.rs).
    let alice = lambdas.sign_in("u-alice", "alice", &[]).await;
    lambdas.ok(&alice, &create("a1"), "roomCreated").await;
    lambdas.ok(&alice, &create("a2"), "roomCreated").await;
    let refused = lambdas.frame(&alice, &create("a3")).await;
    assert_eq!(
        (refused["code"].as_str(), refused["action"].as_str()),
        (Some("rate_limited"), Some("createRoom")),
        "{refused}"
    );

    let bob = lambdas.sign_in("u-bob", "bob", &[]).await;
    lambdas.ok(&bob, &create("b1"), "roomCreated").await;
    let full = lambdas.frame(&bob, &create("b2")).await;
    assert_eq!(full["code"], "conflict", "{full}");
    assert!(full["message"].as_str().unwrap().contains("catalog is full"), "{full}");

    let rooms = lambdas.ok(&bob, r#"{"action":"rooms"}"#, "rooms").await;
    let names: Vec<&str> = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|room| room["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["admin", "a1", "a2", "b1"],
        "the broadcast room and three: {rooms}"
    );
}

async fn a_user_is_a_member_of_a_bounded_number_of_rooms(backends: Backends) {
    let mut lambdas = Lambdas::new(backends);
    lambdas.config.limits.rooms_per_user = 2;
    let join = |room: &str| json!({"action": "join", "room": room}).to_string();
    let alice = lambdas.connect("alice").await;
    for room in ["r1", "r2", "r3"] {
        lambdas
            .ok(
                &alice,
                &json!({"action": "createRoom", "room": room}).to_string(),
                "roomCreated",
            )
            .await;
    }
    lambdas.ok(&alice, &join("r1"), "joined").await;
    lambdas.ok(&alice, &join("r2"), "joined").await;
    lambdas.ok(&alice, &join("r2"), "joined").await;
    let refused = lambdas.frame(&alice, &join("r3")).await;
    assert_eq!(
        (refused["code"].as_str(), refused["action"].as_str()),
        (Some("conflict"), Some("join")),
        "{refused}"
    );
    assert!(
        refused["message"].as_str().unwrap().contains("leave one first"),
        "{refused}"
    );
    let mine = lambdas.ok(&alice, r#"{"action":"whoami"}"#, "whoami").await;
    assert_eq!(mine["rooms"], json!(["r1", "r2"]), "{mine}");

    lambdas.ok(&alice, r#"{"action":"leave","room":"r1"}"#, "left").await;
    lambdas.ok(&alice, &join("r3"), "joined").await;
}
