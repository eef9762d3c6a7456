//! Signed-in users, on both backend sets: rooms that follow the user across connections,
//! presence once per user, `who`, direct messages and roles. Frames go the whole way: the
//! handlers publish, kafka-fanout posts through the official SDK to a real HTTP
//! `@connections` server, and each test asserts what every connection received.

use std::time::Duration;

use roomcast_core::config::AuthMode;
use roomcast_core::fan_out::{FanOutConfig, FanOutReport};
use roomcast_core::Envelope;
use roomcast_tests::backends::Backends;
use roomcast_tests::connections::{Behaviour, ConnectionsServer};
use roomcast_tests::each_backend;
use roomcast_tests::events;
use serde_json::{json, Value};

use roomcast_tests::lambdas::Lambdas;

each_backend!(
    memory => Backends::memory().await,
    real => Backends::real().await;
    [
        rooms_follow_a_signed_in_user_to_every_connection_and_across_reconnects,
        leave_leaves_for_every_connection_of_the_user,
        presence_is_announced_once_per_user_however_many_connections,
        a_connection_found_gone_by_fan_out_announces_offline_once,
        who_lists_each_online_member_once_with_its_connections,
        a_dm_reaches_every_connection_of_the_recipient_and_the_senders_others,
        a_dm_to_nobody_known_or_a_bad_dm_is_refused_and_sends_nothing,
        only_the_admin_role_sends_to_the_broadcast_room_when_auth_is_on,
        whoami_tells_the_user_its_roles_and_rooms,
        presence_is_quiet_in_rooms_larger_than_the_limit,
    ]
);

/// The handlers, a real `@connections` server, and how far the log has been fanned out.
struct World {
    lambdas: Lambdas,
    server: ConnectionsServer,
    fanned_out: usize,
}

impl World {
    async fn new(backends: Backends) -> Self {
        Self::with(Lambdas::new(backends)).await
    }

    async fn with(lambdas: Lambdas) -> Self {
        Self {
            lambdas,
            server: ConnectionsServer::start().await,
            fanned_out: 0,
        }
    }

    /// Runs kafka-fanout over everything published since the last call, as the event
    /// source mapping would, until nothing new is published (a gone connection found on
    /// the way publishes its user's presence, which the next round delivers).
    async fn deliver(&mut self) -> FanOutReport {
        let mut total = FanOutReport::default();
        loop {
            let records = self.lambdas.backends.published().await;
            // `published` appends a sentinel record each time: not a frame for anyone.
            let batch: Vec<_> = records[self.fanned_out..]
                .iter()
                .filter(|record| {
                    !Envelope::decode(&record.value).is_ok_and(|envelope| envelope.id.starts_with("sentinel-"))
                })
                .cloned()
                .collect();
            self.fanned_out = records.len();
            if batch.is_empty() {
                return total;
            }
            let notifier = self.server.notifier();
            let config = FanOutConfig {
                backoff: Duration::from_millis(5),
                domain: self.lambdas.config.clone(),
                ..FanOutConfig::default()
            };
            let backends = &self.lambdas.backends;
            let report = kafka_fanout::handle(
                &*backends.store,
                &*backends.publisher,
                &notifier,
                &config,
                &events::kafka_batch(&batch),
            )
            .await
            .expect("batch delivered");
            total.delivered += report.delivered;
            total.quieted += report.quieted;
            total.gone += report.gone;
        }
    }

    /// Every frame the connection received so far, of the given types.
    fn received(&self, connection: &str, types: &[&str]) -> Vec<Value> {
        self.server
            .frames_for(connection)
            .into_iter()
            .filter(|frame| types.contains(&frame["type"].as_str().unwrap_or("")))
            .collect()
    }

    /// The texts of the `message` frames the connection received.
    fn texts(&self, connection: &str) -> Vec<String> {
        self.received(connection, &["message"])
            .iter()
            .map(|frame| frame["text"].as_str().unwrap().to_owned())
            .collect()
    }

    /// `event` and nickname of each presence frame the connection received.
    fn presence(&self, connection: &str) -> Vec<(String, String)> {
        self.received(connection, &["presence"])
            .iter()
            .map(|frame| {
                (
                    frame["event"].as_str().unwrap().to_owned(),
                    frame["user"]["nick"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    async fn say(&self, connection: &str, room: &str, text: &str) {
        let frame = json!({"action": "send", "room": room, "text": text}).to_string();
        self.lambdas.ok(connection, &frame, "ack").await;
    }

    async fn whoami(&self, connection: &str) -> Value {
        self.lambdas.ok(connection, r#"{"action":"whoami"}"#, "whoami").await
    }
}

async fn rooms_follow_a_signed_in_user_to_every_connection_and_across_reconnects(backends: Backends) {
    let mut world = World::new(backends).await;
    let lambdas = &world.lambdas;
    let laptop = lambdas.sign_in("u-alice", "alice", &[]).await;
    let bob = lambdas.sign_in("u-bob", "bob", &[]).await;
    lambdas.room(&laptop, "general").await;
    lambdas.room(&bob, "general").await;

    // A second device is in the room at once, without joining.
    let phone = lambdas.sign_in("u-alice", "alice", &[]).await;
    assert_eq!(world.whoami(&phone).await["rooms"], json!(["general"]));
    world.say(&bob, "general", "hi alice").await;
    world.deliver().await;
    assert_eq!(world.texts(&laptop), ["hi alice"]);
    assert_eq!(world.texts(&phone), ["hi alice"]);

    // Both gone, then back the next day: still a member.
    assert_eq!(world.lambdas.disconnect(&laptop).await, 200);
    assert_eq!(world.lambdas.disconnect(&phone).await, 200);
    let desktop = world.lambdas.sign_in("u-alice", "alice", &[]).await;
    assert_eq!(world.whoami(&desktop).await["rooms"], json!(["general"]));
    world.say(&bob, "general", "welcome back").await;
    world.say(&desktop, "general", "thanks").await;
    world.deliver().await;
    assert_eq!(world.texts(&desktop), ["welcome back"]);
    assert_eq!(world.texts(&bob), ["thanks"]);
}

async fn leave_leaves_for_every_connection_of_the_user(backends: Backends) {
    let mut world = World::new(backends).await;
    let lambdas = &world.lambdas;
    let laptop = lambdas.sign_in("u-alice", "alice", &[]).await;
    let phone = lambdas.sign_in("u-alice", "alice", &[]).await;
    let bob = lambdas.sign_in("u-bob", "bob", &[]).await;
    lambdas.room(&laptop, "general").await;
    lambdas.room(&bob, "general").await;
    world.deliver().await;
    assert_eq!(
        world.received(&phone, &["joined"]),
        [json!({"type": "joined", "room": "general"})],
        "the other device hears that its user joined"
    );

    world
        .lambdas
        .ok(&phone, r#"{"action":"leave","room":"general"}"#, "left")
        .await;
    world.say(&bob, "general", "anyone?").await;
    world.deliver().await;
    assert!(world.texts(&laptop).is_empty() && world.texts(&phone).is_empty());
    assert_eq!(
        world.received(&laptop, &["left"]),
        [json!({"type": "left", "room": "general"})]
    );
    assert_eq!(world.whoami(&laptop).await["rooms"], json!([]));
    assert_eq!(
        world.presence(&bob),
        [("joined".into(), "alice".into()), ("left".into(), "alice".into())]
    );
    let reply = world
        .lambdas
        .frame(&laptop, r#"{"action":"send","room":"general","text":"x"}"#)
        .await;
    assert_eq!(reply["code"], "not_member");
}

async fn presence_is_announced_once_per_user_however_many_connections(backends: Backends) {
    let mut world = World::new(backends).await;
    let lambdas = &world.lambdas;
    let bob = lambdas.sign_in("u-bob", "bob", &[]).await;
    lambdas.room(&bob, "general").await;
    let laptop = lambdas.sign_in("u-alice", "alice", &[]).await;
    lambdas.room(&laptop, "general").await;
    // A second connection of an online user: nothing to announce.
    let phone = lambdas.sign_in("u-alice", "alice", &[]).await;
    assert_eq!(lambdas.disconnect(&laptop).await, 200);
    world.deliver().await;
    assert_eq!(world.presence(&bob), [("joined".into(), "alice".into())]);

    // The last connection goes: offline, once, even if `$disconnect` comes twice.
    assert_eq!(world.lambdas.disconnect(&phone).await, 200);
    assert_eq!(world.lambdas.disconnect(&phone).await, 200);
    world.deliver().await;
    let back = world.lambdas.sign_in("u-alice", "alice", &[]).await;
    world.deliver().await;
    assert_eq!(
        world.presence(&bob),
        [
            ("joined".into(), "alice".into()),
            ("offline".into(), "alice".into()),
            ("online".into(), "alice".into()),
        ]
    );
    assert!(world.presence(&back).is_empty(), "not told about itself");
}

async fn a_connection_found_gone_by_fan_out_announces_offline_once(backends: Backends) {
    let mut world = World::new(backends).await;
    let lambdas = &world.lambdas;
    let bob = lambdas.sign_in("u-bob", "bob", &[]).await;
    let alice = lambdas.sign_in("u-alice", "alice", &[]).await;
    lambdas.room(&bob, "general").await;
    lambdas.room(&alice, "general").await;
    world.deliver().await;

    // Alice's phone lost signal: API Gateway answers 410 before `$disconnect` arrives.
    world.server.set(&alice, Behaviour::Gone);
    world.say(&bob, "general", "are you there?").await;
    let report = world.deliver().await;
    assert_eq!(report.gone, 1);
    assert_eq!(world.lambdas.disconnect(&alice).await, 200, "the late `$disconnect`");
    world.deliver().await;
    assert_eq!(
        world.presence(&bob),
        [("joined".into(), "alice".into()), ("offline".into(), "alice".into())]
    );
    let who = world
        .lambdas
        .ok(&bob, r#"{"action":"who","room":"general"}"#, "who")
        .await;
    assert_eq!(who["users"].as_array().unwrap().len(), 1, "{who}");
    assert_eq!(who["users"][0]["nick"], "bob");
}

async fn who_lists_each_online_member_once_with_its_connections(backends: Backends) {
    let world = World::new(backends).await;
    let lambdas = &world.lambdas;
    let laptop = lambdas.sign_in("u-alice", "alice", &[]).await;
    let _phone = lambdas.sign_in("u-alice", "alice", &[]).await;
    let bob = lambdas.connect("bob").await;
    let carol = lambdas.sign_in("u-carol", "carol", &[]).await;
    let dave = lambdas.connect("dave").await;
    for member in [&laptop, &bob, &carol] {
        lambdas.room(member, "general").await;
    }
    // Carol is a member, but offline.
    assert_eq!(lambdas.disconnect(&carol).await, 200);

    let who = lambdas.ok(&bob, r#"{"action":"who","room":"general"}"#, "who").await;
    let bob_id = world.whoami(&bob).await["userId"].clone();
    assert_eq!(
        who,
        json!({"type": "who", "room": "general", "more": false, "users": [
            {"userId": "u-alice", "nick": "alice", "connections": 2},
            {"userId": bob_id, "nick": "bob", "connections": 1},
        ]})
    );
    let refused = lambdas.frame(&dave, r#"{"action":"who","room":"general"}"#).await;
    assert_eq!(refused["code"], "not_member");
    let bad = lambdas.frame(&dave, r#"{"action":"who"}"#).await;
    assert_eq!(bad["code"], "bad_request");
}

async fn a_dm_reaches_every_connection_of_the_recipient_and_the_senders_others(backends: Backends) {
    let mut world = World::new(backends).await;
    let lambdas = &world.lambdas;
    let alice_laptop = lambdas.sign_in("u-alice", "alice", &[]).await;
    let alice_phone = lambdas.sign_in("u-alice", "alice", &[]).await;
    let bob_laptop = lambdas.sign_in("u-bob", "bob", &[]).await;
    let bob_phone = lambdas.sign_in("u-bob", "bob", &[]).await;

    let frame = json!({"action": "dm", "to": "bob", "text": "lunch?", "clientMsgId": "c1"}).to_string();
    let ack = lambdas.ok(&alice_laptop, &frame, "ack").await;
    assert_eq!(ack["to"], json!({"userId": "u-bob", "nick": "bob"}));
    assert_eq!(ack["clientMsgId"], "c1");
    let id = ack["id"].as_str().unwrap().to_owned();
    lambdas.archive().await;
    let reply = json!({"action": "dm", "toUser": "u-alice", "text": "yes!", "replyTo": id}).to_string();
    lambdas.ok(&bob_phone, &reply, "ack").await;

    // One record per dm, keyed by the conversation: one order for both sides.
    let keys: Vec<String> = lambdas
        .backends
        .published()
        .await
        .iter()
        .map(|record| String::from_utf8(record.key.clone().unwrap()).unwrap())
        .collect();
    assert_eq!(keys, ["dm:u-alice:u-bob", "dm:u-alice:u-bob"], "{keys:?}");

    world.deliver().await;
    let dms = |connection: &str| -> Vec<String> {
        world
            .received(connection, &["dm"])
            .iter()
            .map(|dm| {
                format!(
                    "{}→{}: {}",
                    dm["from"]["nick"].as_str().unwrap(),
                    dm["to"]["nick"].as_str().unwrap(),
                    dm["text"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(dms(&bob_laptop), ["alice→bob: lunch?", "bob→alice: yes!"]);
    assert_eq!(
        dms(&bob_phone),
        ["alice→bob: lunch?"],
        "its own reply came back as the ack"
    );
    assert_eq!(dms(&alice_phone), ["alice→bob: lunch?", "bob→alice: yes!"]);
    assert_eq!(dms(&alice_laptop), ["bob→alice: yes!"]);
    let answer = &world.received(&alice_laptop, &["dm"])[0];
    assert_eq!(answer["replyTo"], id.as_str());
    assert_eq!(answer["from"], json!({"userId": "u-bob", "nick": "bob"}));
    // Every connection got the dm under the id its sender's ack gave.
    assert_eq!(world.received(&bob_laptop, &["dm"])[0]["id"], id.as_str());
    assert_eq!(world.received(&alice_phone, &["dm"])[0]["id"], id.as_str());
}

async fn a_dm_to_nobody_known_or_a_bad_dm_is_refused_and_sends_nothing(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let alice = lambdas.sign_in("u-alice", "alice", &[]).await;
    let carol = lambdas.sign_in("u-carol", "carol", &[]).await;
    assert_eq!(lambdas.disconnect(&carol).await, 200);
    // An anonymous user is gone with its one connection.
    let guest = lambdas.connect("guest").await;
    let guest_id = lambdas.ok(&guest, r#"{"action":"whoami"}"#, "whoami").await["userId"].clone();
    assert_eq!(lambdas.disconnect(&guest).await, 200);
    let big = "x".repeat(5000);
    for (frame, code) in [
        (json!({"action": "dm", "to": "nobody", "text": "hi"}), "not_found"),
        // A nickname names whoever holds it now: nobody, while carol is away.
        (json!({"action": "dm", "to": "carol", "text": "hi"}), "not_found"),
        (json!({"action": "dm", "toUser": "u-nobody", "text": "hi"}), "not_found"),
        (json!({"action": "dm", "toUser": guest_id, "text": "hi"}), "not_found"),
        (
            json!({"action": "dm", "to": "carol", "toUser": "u-carol", "text": "hi"}),
            "bad_request",
        ),
        (json!({"action": "dm", "text": "hi"}), "bad_request"),
        (json!({"action": "dm", "to": "not a nick", "text": "hi"}), "bad_request"),
        (json!({"action": "dm", "to": "alice", "text": "  "}), "bad_request"),
        (json!({"action": "dm", "to": "alice", "text": big}), "too_large"),
        (
            json!({"action": "dm", "to": "alice", "text": "hi", "replyTo": "nope"}),
            "bad_request",
        ),
    ] {
        let reply = lambdas.frame(&alice, &frame.to_string()).await;
        assert_eq!(reply["type"], "error", "{frame} → {reply}");
        assert_eq!(reply["code"], code, "{frame} → {reply}");
        assert_eq!(reply["action"], "dm");
    }
    assert!(
        lambdas.backends.envelopes().await.is_empty(),
        "no refused dm reached the log"
    );
}

async fn only_the_admin_role_sends_to_the_broadcast_room_when_auth_is_on(backends: Backends) {
    let mut lambdas = Lambdas::new(backends);
    lambdas.config.auth = AuthMode::Required;
    let mut world = World::with(lambdas).await;
    let lambdas = &world.lambdas;
    let boss = lambdas.sign_in("u-boss", "boss", &["admin"]).await;
    let bob = lambdas.sign_in("u-bob", "bob", &["service"]).await;
    let carol = lambdas.sign_in("u-carol", "carol", &[]).await;
    lambdas.ok(&boss, r#"{"action":"join","room":"admin"}"#, "joined").await;
    lambdas.ok(&bob, r#"{"action":"join","room":"admin"}"#, "joined").await;
    lambdas.room(&carol, "general").await;
    let refused = lambdas
        .frame(&bob, r#"{"action":"send","room":"admin","text":"everyone!"}"#)
        .await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    world.say(&boss, "admin", "maintenance at noon").await;
    world.deliver().await;
    assert_eq!(world.texts(&carol), ["maintenance at noon"]);
    assert_eq!(world.texts(&bob), ["maintenance at noon"]);
    let messages = world
        .lambdas
        .backends
        .envelopes()
        .await
        .into_iter()
        .filter(|envelope: &Envelope| envelope.frame.get().contains("\"type\":\"message\""))
        .count();
    assert_eq!(messages, 1, "the refused send reached nobody");
}

async fn whoami_tells_the_user_its_roles_and_rooms(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let id = lambdas.sign_in("u-boss", "boss", &["admin", "service"]).await;
    lambdas.room(&id, "ops").await;
    let me = lambdas.ok(&id, r#"{"action":"whoami"}"#, "whoami").await;
    assert_eq!(
        me,
        json!({"type": "whoami", "connectionId": id, "userId": "u-boss", "nick": "boss",
               "roles": ["admin", "service"], "rooms": ["ops"]})
    );
    // A token without a nickname: `?name=` names the user.
    let unnamed = events::connection_id();
    let mut event = events::connect_signed_in(&unnamed, "u-ann", None, &[]);
    event.query_string_parameters = aws_lambda_events::query_map::QueryMap::from(std::collections::HashMap::from([(
        "name".to_owned(),
        "ann".to_owned(),
    )]));
    assert_eq!(lambdas.connect_event(event).await, 200);
    let ann = lambdas.ok(&unnamed, r#"{"action":"whoami"}"#, "whoami").await;
    assert_eq!(
        (ann["userId"].as_str(), ann["nick"].as_str()),
        (Some("u-ann"), Some("ann"))
    );
    assert_eq!(ann["roles"], json!([]));
}

async fn presence_is_quiet_in_rooms_larger_than_the_limit(backends: Backends) {
    let mut lambdas = Lambdas::new(backends);
    lambdas.config.presence_max_audience = 3;
    let mut world = World::with(lambdas).await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c", "d", "e"] {
        let id = world.lambdas.sign_in(&format!("u-{name}"), name, &[]).await;
        world.lambdas.room(&id, "big").await;
        // Fan out after each join, so the room grows between presence events.
        world.deliver().await;
        ids.push(id);
    }
    // b heard c join (3 connections then); d's and e's joins went to rooms of 4 and 5.
    assert_eq!(world.presence(&ids[1]), [("joined".into(), "c".into())]);
    assert!(world
        .presence(&ids[0])
        .iter()
        .all(|(_, nick)| nick != "d" && nick != "e"));
    world.say(&ids[4], "big", "messages still reach everyone").await;
    let report = world.deliver().await;
    assert_eq!(report.delivered, 4);
    assert_eq!(world.texts(&ids[0]), ["messages still reach everyone"]);
    // `who` is how a large room's members see each other.
    let who = world
        .lambdas
        .ok(&ids[0], r#"{"action":"who","room":"big"}"#, "who")
        .await;
    assert_eq!(who["users"].as_array().unwrap().len(), 5);
}
