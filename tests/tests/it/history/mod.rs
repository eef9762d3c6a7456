//! Message history through the Lambda handlers, on both backend sets: ws-message's
//! `history`, `edit`, `delete` and replies, with kafka-archive run on what was published
//! (every run re-reads the log from the start, so each is also a redelivery).

mod archive;
mod edits;
mod paging;

use roomcast_tests::backends::Backends;
use roomcast_tests::lambdas::Lambdas;
use serde_json::{json, Value};

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
