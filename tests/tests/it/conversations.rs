//! Direct conversations, on both backend sets: a dm to a user who is offline is kept and
//! read when the user comes, and each user's list of conversations names the other user
//! and the latest message, latest first, through edits and deletes.

use roomcast_tests::backends::Backends;
use roomcast_tests::each_backend;
use serde_json::{json, Value};

use roomcast_tests::lambdas::Lambdas;

each_backend!(
    memory => Backends::memory().await,
    real => Backends::real().await;
    [
        a_dm_to_a_user_who_is_offline_is_kept_and_read_when_they_come,
        conversations_list_the_partner_and_the_last_message_after_edits_and_deletes,
    ]
);

fn dm(to_user: &str, text: &str) -> String {
    json!({"action": "dm", "toUser": to_user, "text": text}).to_string()
}

/// `(with's nick, last message's text)` of each conversation listed, and `more`.
fn listed(answer: &Value) -> (Vec<(String, Option<String>)>, bool) {
    let entries = answer["conversations"]
        .as_array()
        .expect("a conversations answer")
        .iter()
        .map(|entry| {
            (
                entry["with"]["nick"].as_str().unwrap().to_owned(),
                entry["last"]["text"].as_str().map(str::to_owned),
            )
        })
        .collect();
    (entries, answer["more"].as_bool().unwrap())
}

/// Waits for the clock to pass `ts`, so that the next message is later by the clock too:
/// conversations sort by the time of their latest message.
async fn after(ts: &Value) {
    let ts = ts.as_i64().unwrap();
    while roomcast_core::clock::now_ms() <= ts {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

async fn a_dm_to_a_user_who_is_offline_is_kept_and_read_when_they_come(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let alice = lambdas.sign_in("u-alice", "alice", &[]).await;
    let carol = lambdas.sign_in("u-carol", "carol", &[]).await;
    assert_eq!(lambdas.disconnect(&carol).await, 200);

    let ack = lambdas.ok(&alice, &dm("u-carol", "are you there?"), "ack").await;
    assert_eq!(ack["to"], json!({"userId": "u-carol", "nick": "carol"}));
    lambdas.archive().await;

    // Carol comes back on a new connection and finds it.
    let carol = lambdas.sign_in("u-carol", "carol", &[]).await;
    let history = lambdas
        .ok(&carol, r#"{"action":"history","with":"u-alice"}"#, "history")
        .await;
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{history}");
    assert_eq!(messages[0]["id"], ack["id"]);
    assert_eq!(messages[0]["text"], "are you there?");
    assert_eq!(messages[0]["from"], json!({"userId": "u-alice", "nick": "alice"}));
    let list = lambdas
        .ok(&carol, r#"{"action":"conversations"}"#, "conversations")
        .await;
    assert_eq!(
        listed(&list),
        (vec![("alice".to_owned(), Some("are you there?".to_owned()))], false)
    );
    assert_eq!(list["conversations"][0]["with"]["userId"], "u-alice");
    assert_eq!(list["conversations"][0]["last"]["id"], ack["id"]);
}

async fn conversations_list_the_partner_and_the_last_message_after_edits_and_deletes(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let alice = lambdas.sign_in("u-alice", "alice", &[]).await;
    let bob = lambdas.sign_in("u-bob", "bob", &[]).await;
    let carol = lambdas.sign_in("u-carol", "carol", &[]).await;

    let one = lambdas.ok(&alice, &dm("u-bob", "one"), "ack").await;
    after(&one["ts"]).await;
    let two = lambdas.ok(&bob, &dm("u-alice", "two"), "ack").await;
    after(&two["ts"]).await;
    let three = lambdas.ok(&alice, &dm("u-carol", "three"), "ack").await;
    after(&three["ts"]).await;
    lambdas.archive().await;

    let list = |who: &str, frame: Value| {
        let (lambdas, who) = (&lambdas, who.to_owned());
        async move { listed(&lambdas.ok(&who, &frame.to_string(), "conversations").await) }
    };
    let all = json!({"action": "conversations"});
    assert_eq!(
        list(&alice, all.clone()).await,
        (
            vec![
                ("carol".to_owned(), Some("three".to_owned())),
                ("bob".to_owned(), Some("two".to_owned()))
            ],
            false
        ),
        "latest first, each with the other user"
    );
    assert_eq!(
        list(&bob, all.clone()).await,
        (vec![("alice".to_owned(), Some("two".to_owned()))], false)
    );
    // Pages: `before` the last one listed.
    let first = lambdas
        .ok(&alice, r#"{"action":"conversations","limit":1}"#, "conversations")
        .await;
    assert_eq!(
        listed(&first),
        (vec![("carol".to_owned(), Some("three".to_owned()))], true)
    );
    let before = json!({"action": "conversations", "limit": 1, "before": first["conversations"][0]["last"]["id"]});
    assert_eq!(
        list(&alice, before).await,
        (vec![("bob".to_owned(), Some("two".to_owned()))], false)
    );

    // Bob edits the latest message of his conversation with alice; alice deletes hers to
    // carol. An edit of an earlier message leaves the list as it is.
    let edit = json!({"action": "edit", "with": "u-alice", "id": two["id"], "text": "two, edited"});
    lambdas.ok(&bob, &edit.to_string(), "ack").await;
    let earlier = json!({"action": "edit", "with": "u-bob", "id": one["id"], "text": "one, edited"});
    lambdas.ok(&alice, &earlier.to_string(), "ack").await;
    let delete = json!({"action": "delete", "with": "u-carol", "id": three["id"]});
    lambdas.ok(&alice, &delete.to_string(), "ack").await;
    lambdas.archive().await;

    let after_changes = lambdas.ok(&alice, &all.to_string(), "conversations").await;
    assert_eq!(
        listed(&after_changes),
        (
            vec![
                ("carol".to_owned(), None),
                ("bob".to_owned(), Some("two, edited".to_owned()))
            ],
            false
        )
    );
    assert_eq!(after_changes["conversations"][0]["last"]["deleted"], true);
    assert_eq!(after_changes["conversations"][1]["last"]["from"]["nick"], "bob");
    assert!(after_changes["conversations"][1]["last"]["editedAt"].is_i64());
    assert_eq!(
        list(&carol, all.clone()).await,
        (vec![("alice".to_owned(), None)], false)
    );
    // Bad input changes nothing and says why.
    let bad = lambdas
        .frame(&alice, r#"{"action":"conversations","before":"nope"}"#)
        .await;
    assert_eq!(
        (bad["code"].as_str(), bad["action"].as_str()),
        (Some("bad_request"), Some("conversations"))
    );
    let bad = lambdas.frame(&alice, r#"{"action":"conversations","limit":0}"#).await;
    assert_eq!(bad["code"], "bad_request");
}
