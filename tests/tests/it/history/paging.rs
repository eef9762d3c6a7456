//! Reading history: pages back and forward, catching up after a reconnect, a direct
//! conversation from both sides, membership and cursors, and pages cut to fit a frame.

use roomcast_tests::backends::Backends;
use roomcast_tests::lambdas::Lambdas;
use roomcast_tests::{each_backend, events};
use serde_json::{json, Value};

use super::{first_id, last_id, send, signed_in, texts};

each_backend!(
    memory => Backends::memory().await,
    real => Backends::real().await;
    [
        history_pages_back_and_forward_give_every_message_once_in_order,
        a_reconnected_client_catches_up_with_exactly_what_it_missed,
        a_direct_conversation_has_the_same_history_from_both_sides,
        history_needs_membership_and_well_formed_cursors,
        a_page_of_long_messages_is_cut_to_fit_one_frame,
    ]
);

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
