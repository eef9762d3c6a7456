//! The Lambda handlers driven with API Gateway-shaped events, on both backend sets: the
//! protocol's replies, every way a frame can be wrong, and what reached the event log.

use roomcast_core::{Envelope, Target};
use roomcast_tests::backends::Backends;
use roomcast_tests::{each_backend, events};
use serde_json::{json, Value};

use roomcast_tests::lambdas::Lambdas;

each_backend!(
    memory => Backends::memory().await,
    real => Backends::real().await;
    [
        a_taken_nickname_is_refused_with_409_until_its_owner_leaves,
    malformed_nicknames_are_refused_with_400_and_register_nothing,
    a_connection_without_a_name_gets_a_guest_nickname,
    send_is_acked_and_published_to_the_room_except_the_sender,
    bad_frames_get_error_frames_and_change_nothing,
    leave_is_announced_and_ends_the_membership,
    joining_twice_is_announced_once,
    whoami_rooms_and_ping_answer_the_caller,
    disconnect_removes_memberships_frees_the_nickname_and_tells_the_rooms,
    the_broadcast_room_needs_no_creating,
    ]
);

fn frame(value: Value) -> String {
    value.to_string()
}

async fn a_taken_nickname_is_refused_with_409_until_its_owner_leaves(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let alice = lambdas.connect("alice").await;
    assert_eq!(
        lambdas.connect_status(&events::connection_id(), Some("alice")).await,
        409
    );
    assert_eq!(
        lambdas.connect_status(&events::connection_id(), Some("Alice2")).await,
        200
    );
    assert_eq!(lambdas.disconnect(&alice).await, 200);
    assert_eq!(
        lambdas.connect_status(&events::connection_id(), Some("alice")).await,
        200
    );
}

async fn malformed_nicknames_are_refused_with_400_and_register_nothing(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let too_long = "n".repeat(33);
    for name in ["has space", "", "ümlaut", "a/b", "<script>", too_long.as_str()] {
        let id = events::connection_id();
        assert_eq!(lambdas.connect_status(&id, Some(name)).await, 400, "name {name:?}");
        let reply = lambdas.frame(&id, r#"{"action":"whoami"}"#).await;
        assert_eq!(reply["code"], "forbidden", "{name:?} must not be registered: {reply}");
    }
    assert_eq!(
        lambdas
            .connect_status(&events::connection_id(), Some(&"n".repeat(32)))
            .await,
        200
    );
}

async fn a_connection_without_a_name_gets_a_guest_nickname(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let id = events::connection_id();
    assert_eq!(lambdas.connect_status(&id, None).await, 200);
    let me = lambdas.ok(&id, r#"{"action":"whoami"}"#, "whoami").await;
    assert!(me["nick"].as_str().unwrap().starts_with("guest-"), "{me}");
    assert_eq!(me["connectionId"], id);
}

async fn send_is_acked_and_published_to_the_room_except_the_sender(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let alice = lambdas.connect("alice").await;
    let bob = lambdas.connect("bob").await;
    lambdas.room(&alice, "general").await;
    lambdas.room(&bob, "general").await;
    let body = frame(json!({"action": "send", "room": "general", "text": "hello", "clientMsgId": "c-1"}));
    let ack = lambdas.ok(&alice, &body, "ack").await;
    assert_eq!(ack["clientMsgId"], "c-1");
    assert_eq!(ack["room"], "general");
    let id = ack["id"].as_str().expect("ack has the server id");
    assert_eq!(id.len(), 26, "26 characters, as a ULID: {id}");

    // A reply refers to the first message by its server id, once kafka-archive has it.
    lambdas.archive().await;
    let reply = frame(json!({"action": "send", "room": "general", "text": "hi alice", "replyTo": id}));
    lambdas.ok(&bob, &reply, "ack").await;

    let published = lambdas.backends.frames().await;
    let kinds: Vec<String> = published
        .iter()
        .map(|(_, frame)| frame["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["presence", "presence", "message", "message"]);
    let (message, sent) = &published[2];
    // The record carries no id: its position names it, as the ack said.
    assert!(frame_of(message).get("id").is_none());
    assert!(message.stamp.is_some());
    assert_eq!(
        message.target,
        Target::Room(roomcast_core::RoomName::trusted("general"))
    );
    assert_eq!(message.except.as_ref().map(|c| c.as_str()), Some(alice.as_str()));
    assert_eq!(sent["text"], "hello");
    assert_eq!(sent["from"]["nick"], "alice");
    assert_eq!(sent["id"], id);
    assert_eq!(published[3].1["replyTo"], id);
    assert_ne!(published[3].1["id"], id);
    assert_eq!(published[1].1["user"]["nick"], "bob");
}

fn frame_of(envelope: &Envelope) -> Value {
    serde_json::from_str(envelope.frame.get()).expect("frame is JSON")
}

async fn bad_frames_get_error_frames_and_change_nothing(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let alice = lambdas.connect("alice").await;
    lambdas.room(&alice, "general").await;
    lambdas
        .ok(&alice, r#"{"action":"createRoom","room":"other"}"#, "roomCreated")
        .await;

    let long_text = "x".repeat(4097);
    let huge_frame = frame(json!({"action": "send", "room": "general", "text": "y".repeat(33 * 1024)}));
    // A long unknown action comes back cut short, not whole.
    let long_action = frame(json!({"action": "a".repeat(20_000)}));
    let long_action_cut = format!("{}…", "a".repeat(64));
    let cases: Vec<(String, &str, Option<&str>)> = vec![
        ("not json".into(), "bad_request", None),
        ("[1,2]".into(), "bad_request", None),
        ("".into(), "bad_request", None),
        (r#"{"room":"general"}"#.into(), "bad_request", None),
        (r#"{"action":5}"#.into(), "bad_request", None),
        (r#"{"action":"dance"}"#.into(), "unknown_action", Some("dance")),
        (long_action, "unknown_action", Some(long_action_cut.as_str())),
        (r#"{"action":"join"}"#.into(), "bad_request", Some("join")),
        (
            r#"{"action":"join","room":"no such"}"#.into(),
            "bad_request",
            Some("join"),
        ),
        (
            r#"{"action":"join","room":"nowhere"}"#.into(),
            "not_found",
            Some("join"),
        ),
        (
            frame(json!({"action": "join", "room": "r".repeat(65)})),
            "bad_request",
            Some("join"),
        ),
        (
            r#"{"action":"send","room":"general"}"#.into(),
            "bad_request",
            Some("send"),
        ),
        (
            r#"{"action":"send","room":"general","text":5}"#.into(),
            "bad_request",
            Some("send"),
        ),
        (
            r#"{"action":"send","room":"general","text":"   "}"#.into(),
            "bad_request",
            Some("send"),
        ),
        (
            frame(json!({"action": "send", "room": "general", "text": long_text})),
            "too_large",
            Some("send"),
        ),
        (huge_frame, "too_large", None),
        (
            r#"{"action":"send","room":"other","text":"hi"}"#.into(),
            "not_member",
            Some("send"),
        ),
        (
            r#"{"action":"send","room":"general","text":"hi","replyTo":"nope"}"#.into(),
            "bad_request",
            Some("send"),
        ),
        (
            frame(json!({"action": "send", "room": "general", "text": "hi", "clientMsgId": "m".repeat(65)})),
            "bad_request",
            Some("send"),
        ),
        (
            r#"{"action":"leave","room":"other"}"#.into(),
            "not_member",
            Some("leave"),
        ),
        (
            r#"{"action":"createRoom","room":"general"}"#.into(),
            "conflict",
            Some("createRoom"),
        ),
        (
            r#"{"action":"createRoom","room":"admin"}"#.into(),
            "conflict",
            Some("createRoom"),
        ),
        (
            r#"{"action":"createRoom","room":"bad name"}"#.into(),
            "bad_request",
            Some("createRoom"),
        ),
        (r#"{"action":"who","room":"other"}"#.into(), "not_member", Some("who")),
        (r#"{"action":"who","room":7}"#.into(), "bad_request", Some("who")),
        (r#"{"action":"dm","text":"hi"}"#.into(), "bad_request", Some("dm")),
        (
            r#"{"action":"dm","to":"nobody","text":"hi"}"#.into(),
            "not_found",
            Some("dm"),
        ),
    ];
    for (body, code, action) in &cases {
        let reply = lambdas.frame(&alice, body).await;
        assert_eq!(reply["type"], "error", "{body:.80} → {reply}");
        assert_eq!(reply["code"], *code, "{body:.80} → {reply}");
        assert!(!reply["message"].as_str().unwrap_or_default().is_empty(), "{reply}");
        assert_eq!(
            reply.get("action").and_then(Value::as_str),
            *action,
            "{body:.80} → {reply}"
        );
    }

    // A binary frame that is not UTF-8 text.
    let reply = lambdas
        .answer(events::binary_message(&alice, &[0xff, 0xfe, 0x00]))
        .await;
    assert_eq!(reply["code"], "bad_request", "{reply}");

    // A forged connection id that API Gateway never registered is nobody: refused, whatever it asks.
    let forged = events::connection_id();
    for body in [
        r#"{"action":"join","room":"general"}"#,
        r#"{"action":"send","room":"general","text":"x"}"#,
        r#"{"action":"dm","to":"alice","text":"x"}"#,
        r#"{"action":"who","room":"general"}"#,
        r#"{"action":"whoami"}"#,
    ] {
        assert_eq!(lambdas.frame(&forged, body).await["code"], "forbidden", "{body}");
    }

    // The connection still works, its state is as before, and nothing reached the log but
    // the one presence event of the set-up.
    let me = lambdas.ok(&alice, r#"{"action":"whoami"}"#, "whoami").await;
    assert_eq!(me["rooms"], json!(["general"]));
    let rooms = lambdas.ok(&alice, r#"{"action":"rooms"}"#, "rooms").await;
    assert_eq!(
        rooms["rooms"],
        json!([{"name": "admin"}, {"name": "general"}, {"name": "other"}])
    );
    let published = lambdas.backends.envelopes().await;
    assert_eq!(published.len(), 1, "{published:#?}");
    assert_eq!(frame_of(&published[0])["type"], "presence");
}

async fn leave_is_announced_and_ends_the_membership(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let alice = lambdas.connect("alice").await;
    let bob = lambdas.connect("bob").await;
    lambdas.room(&alice, "general").await;
    lambdas.room(&bob, "general").await;
    lambdas.ok(&bob, r#"{"action":"leave","room":"general"}"#, "left").await;
    let reply = lambdas
        .frame(&bob, r#"{"action":"send","room":"general","text":"still here?"}"#)
        .await;
    assert_eq!(reply["code"], "not_member");
    let published = lambdas.backends.envelopes().await;
    let last = published.last().expect("presence");
    assert_eq!(
        frame_of(last),
        json!({"type": "presence", "room": "general", "event": "left",
        "user": {"userId": frame_of(last)["user"]["userId"], "nick": "bob"}})
    );
    assert_eq!(last.except.as_ref().map(|c| c.as_str()), Some(bob.as_str()));
    let members = lambdas
        .backends
        .store
        .members(&roomcast_core::RoomName::trusted("general"))
        .await
        .unwrap();
    assert_eq!(
        members.iter().map(|m| m.user.nick.as_str()).collect::<Vec<_>>(),
        ["alice"]
    );
}

async fn joining_twice_is_announced_once(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let alice = lambdas.connect("alice").await;
    lambdas.room(&alice, "general").await;
    lambdas
        .ok(&alice, r#"{"action":"join","room":"general"}"#, "joined")
        .await;
    assert_eq!(lambdas.backends.envelopes().await.len(), 1);
}

async fn whoami_rooms_and_ping_answer_the_caller(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let alice = lambdas.connect("alice").await;
    lambdas.room(&alice, "b-room").await;
    lambdas.room(&alice, "a-room").await;
    let me = lambdas.ok(&alice, r#"{"action":"whoami"}"#, "whoami").await;
    assert_eq!(me["nick"], "alice");
    assert_eq!(me["connectionId"], alice);
    assert!(me["userId"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(me["rooms"], json!(["a-room", "b-room"]));
    assert_eq!(
        lambdas.frame(&alice, r#"{"action":"ping"}"#).await,
        json!({"type": "pong"})
    );
    let rooms = lambdas.ok(&alice, r#"{"action":"rooms"}"#, "rooms").await;
    assert_eq!(
        rooms["rooms"],
        json!([{"name": "admin"}, {"name": "a-room"}, {"name": "b-room"}])
    );
}

async fn disconnect_removes_memberships_frees_the_nickname_and_tells_the_rooms(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let alice = lambdas.connect("alice").await;
    let bob = lambdas.connect("bob").await;
    lambdas.room(&alice, "general").await;
    lambdas.room(&alice, "other").await;
    lambdas.room(&bob, "general").await;
    assert_eq!(lambdas.disconnect(&alice).await, 200);
    // API Gateway may deliver `$disconnect` twice, or after fan-out removed a gone one.
    assert_eq!(lambdas.disconnect(&alice).await, 200);

    let store = &lambdas.backends.store;
    let general = store
        .members(&roomcast_core::RoomName::trusted("general"))
        .await
        .unwrap();
    assert_eq!(
        general.iter().map(|m| m.user.nick.as_str()).collect::<Vec<_>>(),
        ["bob"]
    );
    assert!(store
        .members(&roomcast_core::RoomName::trusted("other"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        lambdas.frame(&alice, r#"{"action":"whoami"}"#).await["code"],
        "forbidden"
    );
    lambdas.connect("alice").await;

    let left: Vec<Value> = lambdas
        .backends
        .envelopes()
        .await
        .iter()
        .map(frame_of)
        .filter(|f| f["event"] == "left")
        .collect();
    let mut rooms: Vec<&str> = left.iter().map(|f| f["room"].as_str().unwrap()).collect();
    rooms.sort();
    assert_eq!(rooms, ["general", "other"]);
}

async fn the_broadcast_room_needs_no_creating(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let alice = lambdas.connect("alice").await;
    lambdas
        .ok(&alice, r#"{"action":"join","room":"admin"}"#, "joined")
        .await;
    lambdas
        .ok(
            &alice,
            r#"{"action":"send","room":"admin","text":"hello everyone"}"#,
            "ack",
        )
        .await;
}

/// With Kafka unreachable, the sender is told `unavailable` and no half-done state is
/// left. (The in-process log cannot be unreachable, so this runs on the real backends.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_down_tells_the_sender_and_leaves_no_half_done_state() {
    use std::sync::Arc;
    use std::time::Duration;

    let backends = Backends::real().await;
    let lambdas = Lambdas::new(backends);
    let alice = lambdas.connect("alice").await;
    lambdas.room(&alice, "general").await;
    lambdas
        .ok(&alice, r#"{"action":"createRoom","room":"other"}"#, "roomCreated")
        .await;

    let dead = roomcast_aws::kafka::KafkaSettings {
        bootstrap_servers: format!("127.0.0.1:{}", roomcast_tests::process::free_port()),
        topic: "roomcast-events".into(),
        delivery_timeout: Duration::from_millis(1500),
        security: Default::default(),
    };
    let down = Lambdas {
        backends: lambdas.backends.with_publisher(Arc::new(
            roomcast_aws::kafka::KafkaPublisher::new(&dead).expect("producer"),
        )),
        config: lambdas.config.clone(),
    };
    for body in [
        r#"{"action":"send","room":"general","text":"lost?"}"#,
        r#"{"action":"join","room":"other"}"#,
        r#"{"action":"leave","room":"general"}"#,
    ] {
        let reply = down.frame(&alice, body).await;
        assert_eq!(reply["code"], "unavailable", "{body} → {reply}");
    }
    let me = down.ok(&alice, r#"{"action":"whoami"}"#, "whoami").await;
    assert_eq!(me["rooms"], json!(["general"]), "join undone, leave undone");
}
