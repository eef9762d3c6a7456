//! Fan-out end to end on both backend sets: frames published by the handlers are read back
//! from the log, handed to kafka-fanout as the event source mapping would, and posted
//! through the official SDK to a real HTTP `@connections` server.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use roomcast_core::fan_out::{FanOutConfig, FanOutReport};
use roomcast_core::files::{FileId, Upload};
use roomcast_core::memory::LogRecord;
use roomcast_core::model::{Arrival, Connection, Departure, Member, Nick, OnlineUser, Room, User};
use roomcast_core::ports::StoreError;
use roomcast_core::quota::{Bucket, BucketKey};
use roomcast_core::{
    Audience, ConnectionId, Connections, Envelope, Quotas, RoomName, Rooms, Store, Target, Uploads, UserId,
};
use roomcast_tests::backends::Backends;
use roomcast_tests::connections::{Behaviour, ConnectionsServer};
use roomcast_tests::{each_backend, events};
use serde_json::json;

use roomcast_tests::lambdas::Lambdas;

each_backend!(
    memory => Backends::memory().await,
    real => Backends::real().await;
    [
        room_members_get_each_message_once_and_the_sender_none,
    gone_connections_are_removed_and_the_others_still_receive,
    a_failing_connection_is_retried_and_keeps_its_order,
    fifty_messages_reach_every_member_complete_and_in_order,
    the_broadcast_room_reaches_every_connection_in_any_room_once,
    one_member_lookup_per_room_per_batch,
    a_throttled_connection_is_given_up_without_failing_the_batch,
    records_that_are_not_envelopes_are_skipped,
    a_store_outage_fails_the_batch_before_anything_is_posted,
    other_services_reach_a_user_or_a_connection_with_one_record,
    ]
);

fn config(concurrency: usize) -> FanOutConfig {
    FanOutConfig {
        concurrency,
        backoff: Duration::from_millis(5),
        attempts: 3,
        ..FanOutConfig::default()
    }
}

/// Hands `records` to kafka-fanout as one batch, posting to `server`.
async fn fan_out(
    lambdas: &Lambdas,
    store: &dyn Store,
    server: &ConnectionsServer,
    records: &[LogRecord],
    config: &FanOutConfig,
) -> FanOutReport {
    let notifier = server.notifier();
    let publisher = &*lambdas.backends.publisher;
    kafka_fanout::handle(store, publisher, &notifier, config, &events::kafka_batch(records))
        .await
        .expect("batch delivered")
}

/// The texts of the `message` frames a connection received, in order.
fn texts(server: &ConnectionsServer, connection_id: &str) -> Vec<String> {
    server
        .frames_for(connection_id)
        .into_iter()
        .filter(|frame| frame["type"] == "message")
        .map(|frame| frame["text"].as_str().expect("text").to_owned())
        .collect()
}

async fn say(lambdas: &Lambdas, connection_id: &str, room: &str, text: &str) {
    lambdas
        .ok(
            connection_id,
            &json!({"action": "send", "room": room, "text": text}).to_string(),
            "ack",
        )
        .await;
}

async fn room_members_get_each_message_once_and_the_sender_none(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let server = ConnectionsServer::start().await;
    let [alice, bob, carol, dave] = connect_all(&lambdas, ["alice", "bob", "carol", "dave"]).await;
    for id in [&alice, &bob, &carol] {
        lambdas.room(id, "general").await;
    }
    lambdas.room(&dave, "other").await;
    say(&lambdas, &alice, "general", "hello").await;

    let records = lambdas.backends.published().await;
    fan_out(&lambdas, &*lambdas.backends.store, &server, &records, &config(64)).await;
    assert_eq!(texts(&server, &bob), ["hello"]);
    assert_eq!(texts(&server, &carol), ["hello"]);
    assert!(texts(&server, &alice).is_empty(), "the sender gets an ack, not an echo");
    assert!(texts(&server, &dave).is_empty());
    let message = server
        .frames_for(&bob)
        .into_iter()
        .find(|f| f["type"] == "message")
        .unwrap();
    assert_eq!(message["from"]["nick"], "alice");
    assert_eq!(message["room"], "general");
}

async fn gone_connections_are_removed_and_the_others_still_receive(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let server = ConnectionsServer::start().await;
    let [alice, bob, ghost] = connect_all(&lambdas, ["alice", "bob", "ghost"]).await;
    for id in [&alice, &bob, &ghost] {
        lambdas.room(id, "general").await;
    }
    lambdas.room(&ghost, "other").await;
    server.set(&ghost, Behaviour::Gone);
    say(&lambdas, &alice, "general", "one").await;
    say(&lambdas, &alice, "general", "two").await;

    let records = lambdas.backends.published().await;
    let report = fan_out(&lambdas, &*lambdas.backends.store, &server, &records, &config(64)).await;
    assert_eq!(report.gone, 1);
    assert_eq!(texts(&server, &bob), ["one", "two"]);

    let store = &lambdas.backends.store;
    assert!(store
        .connection(&ConnectionId::new(ghost.clone()))
        .await
        .unwrap()
        .is_none());
    for room in ["general", "other"] {
        let audience = store.room_audience(&RoomName::trusted(room)).await.unwrap();
        assert!(audience.iter().all(|id| id.as_str() != ghost), "{room}: {audience:?}");
    }
    // The rooms were told, once each: an anonymous user's memberships end with its connection.
    let left: Vec<String> = lambdas
        .backends
        .envelopes()
        .await
        .iter()
        .map(|envelope| serde_json::from_str::<serde_json::Value>(envelope.frame.get()).unwrap())
        .filter(|frame| frame["type"] == "presence" && frame["event"] == "left" && frame["user"]["nick"] == "ghost")
        .map(|frame| frame["room"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left, ["general", "other"]);
    // Its nickname is free again.
    lambdas.connect("ghost").await;
    // A second batch does not try the removed connection again.
    let attempts = server.attempts();
    say(&lambdas, &alice, "general", "three").await;
    let records = lambdas.backends.published().await;
    fan_out(
        &lambdas,
        &*lambdas.backends.store,
        &server,
        &records[records.len() - 1..],
        &config(64),
    )
    .await;
    assert_eq!(server.attempts(), attempts + 1, "only bob is posted to");
}

async fn a_failing_connection_is_retried_and_keeps_its_order(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let server = ConnectionsServer::start().await;
    let [alice, bob] = connect_all(&lambdas, ["alice", "bob"]).await;
    lambdas.room(&alice, "general").await;
    lambdas.room(&bob, "general").await;
    server.set(&bob, Behaviour::FailFirst(2));
    for text in ["m1", "m2", "m3", "m4", "m5"] {
        say(&lambdas, &alice, "general", text).await;
    }
    let records = lambdas.backends.published().await;
    let report = fan_out(&lambdas, &*lambdas.backends.store, &server, &records, &config(64)).await;
    assert_eq!(texts(&server, &bob), ["m1", "m2", "m3", "m4", "m5"]);
    assert_eq!(report.dropped, 0);
}

async fn fifty_messages_reach_every_member_complete_and_in_order(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let server = ConnectionsServer::start().await;
    let ids = connect_all(&lambdas, ["alice", "bob", "carol", "dave", "erin"]).await;
    for id in &ids {
        lambdas.room(id, "general").await;
    }
    let sent: Vec<String> = (1..=50).map(|n| format!("message {n}")).collect();
    for text in &sent {
        say(&lambdas, &ids[0], "general", text).await;
    }
    let records = lambdas.backends.published().await;
    // A small bound, so posts to different connections interleave.
    let report = fan_out(&lambdas, &*lambdas.backends.store, &server, &records, &config(2)).await;
    for id in &ids[1..] {
        assert_eq!(texts(&server, id), sent);
    }
    assert_eq!(report.lookups, 1, "one room, one lookup");
}

async fn the_broadcast_room_reaches_every_connection_in_any_room_once(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let server = ConnectionsServer::start().await;
    let [boss, a, b, c, idle] = connect_all(&lambdas, ["boss", "a", "b", "c", "idle"]).await;
    lambdas.ok(&boss, r#"{"action":"join","room":"admin"}"#, "joined").await;
    lambdas.room(&a, "general").await;
    lambdas.room(&a, "other").await;
    lambdas.ok(&a, r#"{"action":"join","room":"admin"}"#, "joined").await;
    lambdas.room(&b, "general").await;
    lambdas.room(&c, "other").await;
    say(&lambdas, &boss, "admin", "maintenance at noon").await;

    let records = lambdas.backends.published().await;
    let message = records.last().cloned().unwrap();
    fan_out(&lambdas, &*lambdas.backends.store, &server, &[message], &config(64)).await;
    for id in [&a, &b, &c] {
        assert_eq!(texts(&server, id), ["maintenance at noon"], "each connection once");
    }
    assert!(texts(&server, &boss).is_empty(), "not the sender");
    assert!(server.frames_for(&idle).is_empty(), "not a connection in no room");
}

async fn one_member_lookup_per_room_per_batch(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let server = ConnectionsServer::start().await;
    let [alice, bob] = connect_all(&lambdas, ["alice", "bob"]).await;
    for room in ["general", "other"] {
        lambdas.room(&alice, room).await;
        lambdas.room(&bob, room).await;
    }
    for n in 0..30 {
        say(
            &lambdas,
            &alice,
            if n % 3 == 0 { "other" } else { "general" },
            &format!("{n}"),
        )
        .await;
    }
    let records = lambdas.backends.published().await;
    let counting = Instrumented::new(lambdas.backends.store.clone());
    let report = fan_out(&lambdas, &counting, &server, &records, &config(64)).await;
    assert_eq!(
        counting.member_lookups.load(Ordering::SeqCst),
        2,
        "general and other, once each"
    );
    assert_eq!(report.lookups, 2);
    assert_eq!(texts(&server, &bob).len(), 30);
}

async fn a_throttled_connection_is_given_up_without_failing_the_batch(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let server = ConnectionsServer::start().await;
    let [alice, bob, carol] = connect_all(&lambdas, ["alice", "bob", "carol"]).await;
    for id in [&alice, &bob, &carol] {
        lambdas.room(id, "general").await;
    }
    server.set(&bob, Behaviour::Throttle);
    say(&lambdas, &alice, "general", "one").await;
    say(&lambdas, &alice, "general", "two").await;
    let records = lambdas.backends.published().await;
    let report = fan_out(&lambdas, &*lambdas.backends.store, &server, &records, &config(64)).await;
    assert_eq!(texts(&server, &carol), ["one", "two"]);
    assert!(texts(&server, &bob).is_empty());
    // Bob's queue: alice's and carol's presence events, then the two messages.
    assert_eq!(report.dropped, 4, "{report:?}");
    // Given up after its first frame's tries: a throttled connection does not hold up the batch.
    assert_eq!(server.attempts_for(&bob), 3);
    assert_eq!(report.gone, 0);
    // Throttled is not gone: bob stays registered.
    let bob_state = lambdas
        .backends
        .store
        .connection(&ConnectionId::new(bob))
        .await
        .unwrap();
    assert!(bob_state.is_some());
}

async fn records_that_are_not_envelopes_are_skipped(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let server = ConnectionsServer::start().await;
    let [alice, bob] = connect_all(&lambdas, ["alice", "bob"]).await;
    lambdas.room(&alice, "general").await;
    lambdas.room(&bob, "general").await;
    say(&lambdas, &alice, "general", "valid").await;
    let mut records = lambdas.backends.published().await;
    let mut garbage = records[0].clone();
    garbage.offset += 1000;
    garbage.value = b"{\"not\":\"an envelope\"}".to_vec();
    records.insert(0, garbage);
    let report = fan_out(&lambdas, &*lambdas.backends.store, &server, &records, &config(64)).await;
    assert_eq!(report.skipped, 1);
    assert_eq!(texts(&server, &bob), ["valid"]);
}

async fn a_store_outage_fails_the_batch_before_anything_is_posted(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let server = ConnectionsServer::start().await;
    let [alice, bob] = connect_all(&lambdas, ["alice", "bob"]).await;
    lambdas.room(&alice, "general").await;
    lambdas.room(&bob, "general").await;
    say(&lambdas, &alice, "general", "wait for me").await;
    let records = lambdas.backends.published().await;
    let failing = Instrumented::new(lambdas.backends.store.clone());
    failing.fail_lookups.store(true, Ordering::SeqCst);
    let notifier = server.notifier();
    let publisher = &*lambdas.backends.publisher;
    let result = kafka_fanout::handle(
        &failing,
        publisher,
        &notifier,
        &config(64),
        &events::kafka_batch(&records),
    )
    .await;
    let error = result.expect_err("the batch must be retried");
    assert!(error.to_string().contains("retried"), "{error}");
    assert_eq!(
        server.attempts(),
        0,
        "nobody got a frame that the retry would duplicate"
    );
    let diagnostic = lambda_runtime::Diagnostic::from(error);
    assert_eq!(diagnostic.error_type, "BatchFailed");
    assert!(
        diagnostic.error_message.contains("store unavailable"),
        "{}",
        diagnostic.error_message
    );
    // Once the store is back, the redelivered batch goes through.
    failing.fail_lookups.store(false, Ordering::SeqCst);
    fan_out(&lambdas, &failing, &server, &records, &config(64)).await;
    assert_eq!(texts(&server, &bob), ["wait for me"]);
}

async fn other_services_reach_a_user_or_a_connection_with_one_record(backends: Backends) {
    let lambdas = Lambdas::new(backends);
    let server = ConnectionsServer::start().await;
    let [alice, bob] = connect_all(&lambdas, ["alice", "bob"]).await;
    let bob_user = lambdas.ok(&bob, r#"{"action":"whoami"}"#, "whoami").await["userId"]
        .as_str()
        .unwrap()
        .to_owned();
    let notice = |text: &str| serde_json::value::to_raw_value(&json!({"type": "notice", "text": text})).unwrap();
    // What any backend service produces: no room needed, no socket owned.
    for (target, text) in [
        (Target::User(UserId::new(bob_user)), "to bob as a user"),
        (
            Target::Connection(ConnectionId::new(alice.clone())),
            "to alice's connection",
        ),
    ] {
        let envelope = Envelope {
            v: 1,
            id: ulid::Ulid::new().to_string(),
            target,
            except: None,
            max_audience: None,
            stamp: None,
            frame: notice(text),
        };
        lambdas.backends.publisher.publish(&envelope).await.unwrap();
    }
    let records = lambdas.backends.published().await;
    fan_out(&lambdas, &*lambdas.backends.store, &server, &records, &config(64)).await;
    assert_eq!(
        server.frames_for(&bob),
        [json!({"type": "notice", "text": "to bob as a user"})]
    );
    assert_eq!(
        server.frames_for(&alice),
        [json!({"type": "notice", "text": "to alice's connection"})]
    );
}

async fn connect_all<const N: usize>(lambdas: &Lambdas, names: [&str; N]) -> [String; N] {
    let mut ids = Vec::with_capacity(N);
    for name in names {
        ids.push(lambdas.connect(name).await);
    }
    ids.try_into().expect("N ids")
}

/// A store that counts member lookups and can be made to fail them, around a real one.
struct Instrumented {
    inner: Arc<dyn Store>,
    member_lookups: AtomicUsize,
    fail_lookups: AtomicBool,
}

impl Instrumented {
    fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            member_lookups: AtomicUsize::new(0),
            fail_lookups: AtomicBool::new(false),
        }
    }

    fn lookup(&self) -> Result<(), StoreError> {
        self.member_lookups.fetch_add(1, Ordering::SeqCst);
        if self.fail_lookups.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("the table is throttled (simulated)"));
        }
        Ok(())
    }
}

#[async_trait]
impl Connections for Instrumented {
    async fn add_connection(&self, connection: &Connection) -> Result<Arrival, StoreError> {
        self.inner.add_connection(connection).await
    }
    async fn connection(&self, id: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        self.inner.connection(id).await
    }
    async fn remove_connection(&self, id: &ConnectionId) -> Result<Option<Departure>, StoreError> {
        self.inner.remove_connection(id).await
    }
    async fn online_user(&self, user: &UserId) -> Result<Option<OnlineUser>, StoreError> {
        self.inner.online_user(user).await
    }
    async fn nick_owner(&self, nick: &Nick) -> Result<Option<UserId>, StoreError> {
        self.inner.nick_owner(nick).await
    }
    async fn lease_nick(&self, user: &User, now: i64, lease: Duration) -> Result<(), StoreError> {
        self.inner.lease_nick(user, now, lease).await
    }
    async fn known_user(&self, user: &UserId) -> Result<Option<User>, StoreError> {
        self.inner.known_user(user).await
    }
    async fn remember_user(&self, user: &User) -> Result<(), StoreError> {
        self.inner.remember_user(user).await
    }
}

#[async_trait]
impl Rooms for Instrumented {
    async fn create_room(&self, room: &Room, max_rooms: usize) -> Result<(), StoreError> {
        self.inner.create_room(room, max_rooms).await
    }
    async fn room(&self, name: &RoomName) -> Result<Option<Room>, StoreError> {
        self.inner.room(name).await
    }
    async fn rooms(&self) -> Result<Vec<Room>, StoreError> {
        self.inner.rooms().await
    }
    async fn join(&self, room: &RoomName, user: &User, expires_at: Option<i64>) -> Result<bool, StoreError> {
        self.inner.join(room, user, expires_at).await
    }
    async fn leave(&self, room: &RoomName, user: &UserId) -> Result<Option<Member>, StoreError> {
        self.inner.leave(room, user).await
    }
    async fn member(&self, room: &RoomName, user: &UserId) -> Result<Option<Member>, StoreError> {
        self.inner.member(room, user).await
    }
    async fn members(&self, room: &RoomName) -> Result<Vec<Member>, StoreError> {
        self.inner.members(room).await
    }
    async fn rooms_of(&self, user: &UserId) -> Result<Vec<RoomName>, StoreError> {
        self.inner.rooms_of(user).await
    }
}

#[async_trait]
impl Quotas for Instrumented {
    async fn take_token(&self, key: &BucketKey, bucket: &Bucket, now_ms: i64) -> Result<bool, StoreError> {
        self.inner.take_token(key, bucket, now_ms).await
    }
}

#[async_trait]
impl Uploads for Instrumented {
    async fn add_upload(&self, upload: &Upload) -> Result<(), StoreError> {
        self.inner.add_upload(upload).await
    }
    async fn upload(&self, file: &FileId) -> Result<Option<Upload>, StoreError> {
        self.inner.upload(file).await
    }
}

/// Fan-out's lookups, counted and failing on demand.
#[async_trait]
impl Audience for Instrumented {
    async fn room_audience(&self, room: &RoomName) -> Result<Vec<ConnectionId>, StoreError> {
        self.lookup()?;
        self.inner.room_audience(room).await
    }
    async fn broadcast_audience(&self) -> Result<Vec<ConnectionId>, StoreError> {
        self.lookup()?;
        self.inner.broadcast_audience().await
    }
    async fn user_audience(&self, user: &UserId) -> Result<Vec<ConnectionId>, StoreError> {
        self.lookup()?;
        self.inner.user_audience(user).await
    }
}
