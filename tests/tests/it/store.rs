//! The `Store` contract: every test runs against the in-memory store and against the
//! DynamoDB store on moto's server, so local mode and AWS keep the same rules.

use roomcast_core::clock::now_secs;

use futures::future::join_all;
use roomcast_core::model::{Connection, ConnectionId, Member, Nick, Room, RoomName, User, UserId};
use roomcast_core::ports::StoreError;
use roomcast_core::Store;

/// Defines each listed contract test once per backend. `concurrent` tests also get how
/// many calls the backend is given at once.
macro_rules! contract {
    (tests: [$($test:ident),* $(,)?], concurrent: [$($concurrent:ident),* $(,)?] $(,)?) => {
        mod memory {
            fn store() -> roomcast_core::memory::MemoryStore {
                roomcast_tests::init_tracing();
                roomcast_core::memory::MemoryStore::new()
            }
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(&store()).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $concurrent() {
                    super::$concurrent(&store(), usize::MAX).await;
                }
            )*
        }

        mod dynamodb {
            async fn store() -> roomcast_aws::dynamo::DynamoStore {
                roomcast_tests::init_tracing();
                // Pages of two items, so every Query here is walked across pages.
                roomcast_tests::moto::fresh_store().await.with_page_size(2)
            }
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(&store().await).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $concurrent() {
                    super::$concurrent(&store().await, roomcast_tests::moto::transactions_in_flight()).await;
                }
            )*
        }
    };
}

contract!(
    tests: [
        a_nickname_held_by_another_user_is_refused,
        one_user_may_hold_a_nickname_on_two_connections,
        a_nickname_is_free_again_once_its_last_connection_is_removed,
        a_stale_claim_is_taken_over_and_its_old_connection_cannot_release_it,
        a_claim_lasts_as_long_as_its_longest_lived_connection,
        joining_twice_reports_the_second_join,
        joining_without_a_connection_is_refused_and_leaves_nothing,
        leaving_returns_the_membership_once,
        membership_views_agree_after_joins_and_leaves,
        the_broadcast_audience_lists_each_connection_in_a_room_once,
        user_connections_lists_every_connection_of_the_user,
        removing_a_connection_clears_its_rooms_and_is_idempotent,
        the_room_catalog_is_sorted_and_names_are_unique,
    ],
    concurrent: [a_room_with_hundreds_of_members_comes_back_whole],
);

fn connection(id: &str, user: &str, nick: &str) -> Connection {
    connection_until(id, user, nick, now_secs() + 2 * 3600 + 600)
}

fn connection_until(id: &str, user: &str, nick: &str, expires_at: i64) -> Connection {
    Connection {
        id: ConnectionId::new(id),
        user: User {
            user_id: UserId::new(user),
            nick: Nick::trusted(nick),
        },
        connected_at_ms: now_secs() * 1000,
        expires_at,
    }
}

fn member_of(connection: &Connection) -> Member {
    Member {
        connection_id: connection.id.clone(),
        user: connection.user.clone(),
        expires_at: connection.expires_at,
    }
}

fn room(name: &str) -> RoomName {
    RoomName::trusted(name)
}

fn ids(names: &[&str]) -> Vec<ConnectionId> {
    names.iter().map(|name| ConnectionId::new(*name)).collect()
}

async fn add(store: &dyn Store, connection: &Connection) {
    store
        .add_connection(connection)
        .await
        .unwrap_or_else(|error| panic!("add_connection {}: {error:?}", connection.id));
}

async fn join(store: &dyn Store, room_name: &str, connection: &Connection) -> bool {
    store
        .join(&room(room_name), &member_of(connection))
        .await
        .unwrap_or_else(|error| panic!("join {room_name} {}: {error:?}", connection.id))
}

async fn member_ids(store: &dyn Store, room_name: &str) -> Vec<ConnectionId> {
    store
        .members(&room(room_name))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.connection_id)
        .collect()
}

async fn rooms_of(store: &dyn Store, id: &ConnectionId) -> Option<Vec<RoomName>> {
    store.connection(id).await.unwrap().map(|state| state.rooms)
}

async fn a_nickname_held_by_another_user_is_refused(store: &dyn Store) {
    add(store, &connection("c1", "u1", "alice")).await;
    let other = connection("c2", "u2", "alice");
    let refused = store.add_connection(&other).await;
    assert!(matches!(refused, Err(StoreError::NickTaken)), "{refused:?}");
    assert_eq!(
        store.connection(&other.id).await.unwrap(),
        None,
        "a refused connection is not registered"
    );
    assert_eq!(store.user_connections(&other.user.user_id).await.unwrap(), vec![]);
    add(store, &connection("c3", "u2", "alicia")).await;
}

async fn one_user_may_hold_a_nickname_on_two_connections(store: &dyn Store) {
    let first = connection("c1", "u1", "bob");
    let second = connection("c2", "u1", "bob");
    add(store, &first).await;
    add(store, &second).await;
    assert_eq!(
        store.connection(&second.id).await.unwrap().map(|s| s.connection),
        Some(second.clone())
    );
    assert_eq!(
        store.user_connections(&UserId::new("u1")).await.unwrap(),
        ids(&["c1", "c2"])
    );
}

async fn a_nickname_is_free_again_once_its_last_connection_is_removed(store: &dyn Store) {
    add(store, &connection("c1", "u1", "carol")).await;
    add(store, &connection("c2", "u1", "carol")).await;
    let newcomer = connection("c3", "u2", "carol");

    assert!(store
        .remove_connection(&ConnectionId::new("c1"))
        .await
        .unwrap()
        .is_some());
    let refused = store.add_connection(&newcomer).await;
    assert!(
        matches!(refused, Err(StoreError::NickTaken)),
        "still held through c2: {refused:?}"
    );

    assert!(store
        .remove_connection(&ConnectionId::new("c2"))
        .await
        .unwrap()
        .is_some());
    add(store, &newcomer).await;
    let state = store.connection(&newcomer.id).await.unwrap().expect("c3 is registered");
    assert_eq!(state.connection.user.user_id, UserId::new("u2"));
}

async fn a_stale_claim_is_taken_over_and_its_old_connection_cannot_release_it(store: &dyn Store) {
    // c1's `$disconnect` never ran, and its claim expired a minute ago.
    let ghost = connection_until("c1", "u1", "dave", now_secs() - 60);
    add(store, &ghost).await;
    let newcomer = connection("c2", "u2", "dave");
    add(store, &newcomer).await;
    assert_eq!(
        store.connection(&newcomer.id).await.unwrap().map(|s| s.connection),
        Some(newcomer)
    );

    // The ghost's late removal must not free the nickname u2 now holds.
    assert!(store.remove_connection(&ghost.id).await.unwrap().is_some());
    let refused = store.add_connection(&connection("c3", "u3", "dave")).await;
    assert!(matches!(refused, Err(StoreError::NickTaken)), "{refused:?}");
}

async fn a_claim_lasts_as_long_as_its_longest_lived_connection(store: &dyn Store) {
    let long_lived = connection("c1", "u1", "erin");
    // A second connection whose own expiry has already passed must not shorten the claim.
    let short_lived = connection_until("c2", "u1", "erin", now_secs() - 60);
    add(store, &long_lived).await;
    add(store, &short_lived).await;
    assert!(store.remove_connection(&long_lived.id).await.unwrap().is_some());
    let refused = store.add_connection(&connection("c3", "u2", "erin")).await;
    assert!(matches!(refused, Err(StoreError::NickTaken)), "{refused:?}");
}

async fn joining_twice_reports_the_second_join(store: &dyn Store) {
    let c1 = connection("c1", "u1", "frank");
    add(store, &c1).await;
    assert!(join(store, "general", &c1).await, "first join");
    assert!(!join(store, "general", &c1).await, "second join");
    assert_eq!(member_ids(store, "general").await, ids(&["c1"]));
    assert_eq!(rooms_of(store, &c1.id).await, Some(vec![room("general")]));
}

async fn joining_without_a_connection_is_refused_and_leaves_nothing(store: &dyn Store) {
    let stranger = connection("c9", "u9", "grace");
    let refused = store.join(&room("general"), &member_of(&stranger)).await;
    assert!(matches!(refused, Err(StoreError::NotConnected)), "{refused:?}");
    assert_eq!(store.members(&room("general")).await.unwrap(), vec![]);
    assert_eq!(store.member(&room("general"), &stranger.id).await.unwrap(), None);
    assert_eq!(store.broadcast_audience().await.unwrap(), vec![]);
    assert_eq!(store.connection(&stranger.id).await.unwrap(), None);
}

async fn leaving_returns_the_membership_once(store: &dyn Store) {
    let c1 = connection("c1", "u1", "heidi");
    add(store, &c1).await;
    join(store, "general", &c1).await;
    assert_eq!(
        store.leave(&room("general"), &c1.id).await.unwrap(),
        Some(member_of(&c1))
    );
    assert_eq!(store.leave(&room("general"), &c1.id).await.unwrap(), None);
    assert_eq!(store.member(&room("general"), &c1.id).await.unwrap(), None);
    assert_eq!(member_ids(store, "general").await, vec![]);
    assert_eq!(rooms_of(store, &c1.id).await, Some(vec![]));
    assert_eq!(store.broadcast_audience().await.unwrap(), vec![]);
}

async fn membership_views_agree_after_joins_and_leaves(store: &dyn Store) {
    let c1 = connection("c1", "u1", "ivan");
    let c2 = connection("c2", "u2", "judy");
    add(store, &c1).await;
    add(store, &c2).await;
    for name in ["b", "a", "c"] {
        join(store, name, &c1).await;
    }
    join(store, "b", &c2).await;
    assert_eq!(
        store.leave(&room("b"), &c1.id).await.unwrap().map(|m| m.user),
        Some(c1.user.clone())
    );

    assert_eq!(store.member(&room("a"), &c1.id).await.unwrap(), Some(member_of(&c1)));
    assert_eq!(store.member(&room("b"), &c1.id).await.unwrap(), None);
    assert_eq!(store.member(&room("b"), &c2.id).await.unwrap(), Some(member_of(&c2)));
    assert_eq!(store.members(&room("b")).await.unwrap(), vec![member_of(&c2)]);
    assert_eq!(member_ids(store, "a").await, ids(&["c1"]));
    assert_eq!(member_ids(store, "c").await, ids(&["c1"]));
    assert_eq!(rooms_of(store, &c1.id).await, Some(vec![room("a"), room("c")]));
    assert_eq!(rooms_of(store, &c2.id).await, Some(vec![room("b")]));
}

async fn the_broadcast_audience_lists_each_connection_in_a_room_once(store: &dyn Store) {
    let busy = connection("c1", "u1", "ken");
    let quiet = connection("c2", "u2", "leo");
    let idle = connection("c3", "u3", "mia");
    for c in [&busy, &quiet, &idle] {
        add(store, c).await;
    }
    for name in ["a", "b", "c"] {
        join(store, name, &busy).await;
    }
    join(store, "b", &quiet).await;
    assert_eq!(store.broadcast_audience().await.unwrap(), ids(&["c1", "c2"]));

    store.leave(&room("b"), &quiet.id).await.unwrap();
    assert_eq!(store.broadcast_audience().await.unwrap(), ids(&["c1"]));
    store.leave(&room("a"), &busy.id).await.unwrap();
    assert_eq!(
        store.broadcast_audience().await.unwrap(),
        ids(&["c1"]),
        "still in b and c"
    );
}

async fn user_connections_lists_every_connection_of_the_user(store: &dyn Store) {
    add(store, &connection("c2", "u1", "nina")).await;
    add(store, &connection("c1", "u1", "nina")).await;
    add(store, &connection("c3", "u2", "omar")).await;
    assert_eq!(
        store.user_connections(&UserId::new("u1")).await.unwrap(),
        ids(&["c1", "c2"])
    );
    assert_eq!(store.user_connections(&UserId::new("u2")).await.unwrap(), ids(&["c3"]));
    assert_eq!(store.user_connections(&UserId::new("nobody")).await.unwrap(), vec![]);
    store.remove_connection(&ConnectionId::new("c1")).await.unwrap();
    assert_eq!(store.user_connections(&UserId::new("u1")).await.unwrap(), ids(&["c2"]));
}

async fn removing_a_connection_clears_its_rooms_and_is_idempotent(store: &dyn Store) {
    let leaving = connection("c1", "u1", "pat");
    let staying = connection("c2", "u2", "quinn");
    add(store, &leaving).await;
    add(store, &staying).await;
    for name in ["a", "b", "c"] {
        join(store, name, &leaving).await;
    }
    join(store, "a", &staying).await;

    let removed = store
        .remove_connection(&leaving.id)
        .await
        .unwrap()
        .expect("it was registered");
    assert_eq!(removed.connection, leaving);
    assert_eq!(removed.rooms, vec![room("a"), room("b"), room("c")]);

    assert_eq!(member_ids(store, "a").await, ids(&["c2"]));
    assert_eq!(member_ids(store, "b").await, vec![]);
    assert_eq!(member_ids(store, "c").await, vec![]);
    assert_eq!(store.member(&room("b"), &leaving.id).await.unwrap(), None);
    assert_eq!(store.connection(&leaving.id).await.unwrap(), None);
    assert_eq!(store.broadcast_audience().await.unwrap(), ids(&["c2"]));
    assert_eq!(store.user_connections(&leaving.user.user_id).await.unwrap(), vec![]);

    assert_eq!(
        store.remove_connection(&leaving.id).await.unwrap(),
        None,
        "second removal"
    );
    let rejoin = store.join(&room("a"), &member_of(&leaving)).await;
    assert!(matches!(rejoin, Err(StoreError::NotConnected)), "{rejoin:?}");
}

async fn the_room_catalog_is_sorted_and_names_are_unique(store: &dyn Store) {
    let make = |name: &str, by: &str, at: i64| Room {
        name: room(name),
        created_by: UserId::new(by),
        created_at_ms: at,
    };
    for (name, at) in [("zeta", 1), ("alpha", 2), ("mid.dle", 3)] {
        store.create_room(&make(name, "u1", at)).await.unwrap();
    }
    let again = store.create_room(&make("alpha", "u2", 9)).await;
    assert!(matches!(again, Err(StoreError::RoomExists)), "{again:?}");

    let names: Vec<RoomName> = store.rooms().await.unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names, vec![room("alpha"), room("mid.dle"), room("zeta")]);
    assert_eq!(
        store.room(&room("alpha")).await.unwrap(),
        Some(make("alpha", "u1", 2)),
        "the first creator keeps it"
    );
    assert_eq!(store.room(&room("nope")).await.unwrap(), None);

    // Members of a room do not show up in the catalog, nor the catalog entry among members.
    let c1 = connection("c1", "u1", "rita");
    add(store, &c1).await;
    join(store, "alpha", &c1).await;
    assert_eq!(store.rooms().await.unwrap().len(), 3);
    assert_eq!(member_ids(store, "alpha").await, ids(&["c1"]));
}

async fn a_room_with_hundreds_of_members_comes_back_whole(store: &dyn Store, in_flight: usize) {
    const MEMBERS: usize = 250;
    let connections: Vec<Connection> = (0..MEMBERS)
        .map(|i| connection(&format!("conn-{i:03}="), &format!("u{i}"), &format!("n{i}")))
        .collect();
    for wave in connections.chunks(in_flight.max(1)) {
        for result in join_all(wave.iter().map(|c| store.add_connection(c))).await {
            result.unwrap();
        }
    }
    let crowd = room("crowd");
    let members: Vec<Member> = connections.iter().map(member_of).collect();
    for wave in members.chunks(in_flight.max(1)) {
        let joined = join_all(wave.iter().map(|m| store.join(&crowd, m))).await;
        assert!(
            joined.into_iter().all(|result| result.unwrap()),
            "every join is a first join"
        );
    }

    let mut expected = members;
    expected.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
    assert_eq!(store.members(&crowd).await.unwrap(), expected);
    assert_eq!(store.broadcast_audience().await.unwrap().len(), MEMBERS);
}

/// What only the DynamoDB store has: the table definition and how it reports bad data.
mod dynamodb_table {
    use aws_sdk_dynamodb::error::SdkError;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
    use roomcast_aws::dynamo::{ensure_table, CorruptItem, DynamoStore};
    use roomcast_core::model::{ConnectionId, RoomName};
    use roomcast_core::ports::StoreError;
    use roomcast_core::Store;
    use roomcast_tests::moto;

    #[tokio::test]
    async fn ensure_table_creates_the_index_and_ttl_and_may_run_again() {
        roomcast_tests::init_tracing();
        let client = moto::client();
        let table = roomcast_tests::unique_name("roomcast");
        ensure_table(&client, &table).await.expect("created");
        ensure_table(&client, &table)
            .await
            .expect("a second run finds it ready");

        let described = client.describe_table().table_name(&table).send().await.unwrap();
        let indexes: Vec<&str> = described
            .table()
            .map(|t| {
                t.global_secondary_indexes()
                    .iter()
                    .filter_map(|i| i.index_name())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(indexes, ["gsi1"]);
        let ttl = client.describe_time_to_live().table_name(&table).send().await.unwrap();
        let ttl = ttl.time_to_live_description().expect("a TTL description");
        assert_eq!(ttl.attribute_name(), Some("expiresAt"));
        assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    }

    #[tokio::test]
    async fn a_corrupt_item_is_an_unavailable_store_naming_the_attribute() {
        roomcast_tests::init_tracing();
        let store = moto::fresh_store().await;
        // A connection item written by something else, without its nickname.
        moto::client()
            .put_item()
            .table_name(store.table())
            .item("pk", AttributeValue::S("CONN#broken".into()))
            .item("sk", AttributeValue::S("#META".into()))
            .item("connectionId", AttributeValue::S("broken".into()))
            .item("userId", AttributeValue::S("u1".into()))
            .item("connectedAt", AttributeValue::N("1".into()))
            .item("expiresAt", AttributeValue::N("2".into()))
            .send()
            .await
            .unwrap();
        let error = store.connection(&ConnectionId::new("broken")).await.unwrap_err();
        let StoreError::Unavailable(source) = error else {
            panic!("expected Unavailable, got {error:?}");
        };
        let corrupt = source.downcast_ref::<CorruptItem>().expect("a CorruptItem source");
        assert_eq!(corrupt.attribute, "nick");
        assert_eq!(corrupt.pk.as_deref(), Some("CONN#broken"));
    }

    #[tokio::test]
    async fn sdk_errors_are_kept_whole_as_the_source() {
        roomcast_tests::init_tracing();
        let store = DynamoStore::new(moto::client(), roomcast_tests::unique_name("missing"));
        let error = store.room(&RoomName::trusted("general")).await.unwrap_err();
        let StoreError::Unavailable(source) = error else {
            panic!("expected Unavailable, got {error:?}");
        };
        let sdk = source
            .downcast_ref::<SdkError<GetItemError>>()
            .expect("the SDK error itself");
        assert!(
            sdk.as_service_error()
                .is_some_and(GetItemError::is_resource_not_found_exception),
            "{sdk:?}"
        );
    }
}
