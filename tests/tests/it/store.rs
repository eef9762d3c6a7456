//! The contract of the state ports (`Connections`, `Rooms`, `Audience`): every test runs
//! against the in-memory store and against the DynamoDB store on moto's server, so local
//! mode and AWS keep the same rules.

use std::time::Duration;

use futures::future::join_all;
use roomcast_core::clock::now_secs;
use roomcast_core::model::{
    Arrival, Connection, ConnectionId, Departure, Member, Nick, OnlineUser, Room, RoomName, User, UserId,
};
use roomcast_core::ports::StoreError;
use roomcast_core::quota::{Bucket, BucketKey};
use roomcast_core::Store;

/// Defines each listed contract test once per backend. `racing` tests make calls at once:
/// on DynamoDB they reach moto through a proxy that forwards one request at a time (moto
/// answers 500 to a transaction while another request writes to its table), so that their
/// calls race, request by request, as they would on DynamoDB.
macro_rules! contract {
    (tests: [$($test:ident),* $(,)?], racing: [$($racing:ident),* $(,)?] $(,)?) => {
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
                async fn $racing() {
                    super::$racing(&store()).await;
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
                async fn $racing() {
                    roomcast_tests::init_tracing();
                    let store = roomcast_tests::moto::fresh_store_one_request_at_a_time().await;
                    super::$racing(&store.with_page_size(2)).await;
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
        a_lease_holds_a_nickname_against_other_users_until_it_lapses,
        a_users_own_connections_and_lease_never_conflict,
        a_lease_is_renewed_only_once_past_half_its_life,
        a_live_connection_refuses_a_lease_and_a_stale_one_cannot_release_it,
        a_connection_reads_back_with_its_roles_and_sign_in,
        the_first_connection_comes_online_and_the_last_goes_offline,
        a_connection_past_its_expiry_does_not_keep_its_user_online,
        online_user_and_user_audience_list_every_live_connection_with_the_latest_nick,
        removing_a_connection_is_idempotent,
        a_second_connection_of_a_member_is_in_the_room_at_once,
        joining_brings_every_live_connection_of_the_user,
        a_user_without_connections_may_join_and_its_next_connection_is_in_the_room,
        membership_outlives_the_users_connections,
        joining_twice_reports_the_second_join,
        leaving_takes_every_connection_of_the_user_out_of_the_room,
        anonymous_memberships_carry_their_expiry_and_end_with_it,
        members_show_each_users_nick_and_connections,
        rooms_of_is_sorted_and_skips_rooms_left,
        the_broadcast_audience_lists_each_connection_once,
        the_room_catalog_is_sorted_and_names_are_unique,
        the_room_catalog_holds_at_most_its_limit,
        a_token_bucket_gives_its_burst_then_refills_with_time,
    ],
    racing: [
        two_connections_arriving_at_once_make_one_first,
        users_racing_for_a_nickname_over_http_and_websocket_leave_it_one_owner,
        two_connections_leaving_at_once_make_one_last,
        one_connection_removed_twice_at_once_departs_once,
        a_room_with_hundreds_of_members_comes_back_whole,
    ],
);

/// A signed-in user's connection, expiring as API Gateway's 2-hour limit plus a margin.
fn connection(id: &str, user: &str, nick: &str) -> Connection {
    connection_until(id, user, nick, now_secs() + 2 * 3600 + 600)
}

fn connection_until(id: &str, user: &str, nick: &str, expires_at: i64) -> Connection {
    Connection {
        id: ConnectionId::new(id),
        user: user_named(user, nick),
        roles: Vec::new(),
        authenticated: true,
        connected_at_ms: now_secs() * 1000,
        expires_at,
    }
}

/// An anonymous user's one connection.
fn anonymous(id: &str, user: &str, nick: &str) -> Connection {
    Connection {
        authenticated: false,
        ..connection(id, user, nick)
    }
}

fn user_named(user: &str, nick: &str) -> User {
    User {
        user_id: UserId::new(user),
        nick: Nick::trusted(nick),
    }
}

fn uid(user: &str) -> UserId {
    UserId::new(user)
}

fn room(name: &str) -> RoomName {
    RoomName::trusted(name)
}

fn rooms(names: &[&str]) -> Vec<RoomName> {
    names.iter().map(|name| room(name)).collect()
}

fn ids(names: &[&str]) -> Vec<ConnectionId> {
    names.iter().map(|name| ConnectionId::new(*name)).collect()
}

async fn add(store: &dyn Store, connection: &Connection) -> Arrival {
    store
        .add_connection(connection)
        .await
        .unwrap_or_else(|error| panic!("add_connection {}: {error:?}", connection.id))
}

async fn remove(store: &dyn Store, id: &str) -> Option<Departure> {
    store
        .remove_connection(&ConnectionId::new(id))
        .await
        .unwrap_or_else(|error| panic!("remove_connection {id}: {error:?}"))
}

/// Joins as a signed-in user, whose membership lasts until it leaves.
async fn join(store: &dyn Store, room_name: &str, user: &User) -> bool {
    store
        .join(&room(room_name), user, None)
        .await
        .unwrap_or_else(|error| panic!("join {room_name} {}: {error:?}", user.user_id))
}

/// The room's audience, sorted: the port promises no order.
async fn audience(store: &dyn Store, room_name: &str) -> Vec<ConnectionId> {
    let mut audience = store.room_audience(&room(room_name)).await.unwrap();
    audience.sort();
    audience
}

fn member(user: &User, connections: &[&str]) -> Member {
    Member {
        user: user.clone(),
        connections: ids(connections),
        expires_at: None,
    }
}

/// How many calls a test makes at once. On DynamoDB they wait their turn at the proxy in
/// front of moto; a wave much larger could keep its last one waiting past the client's
/// 20 s attempt timeout.
const RACING_CALLS: usize = 25;

// Nicknames.

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
    assert_eq!(store.online_user(&uid("u2")).await.unwrap(), None);
    assert_eq!(store.user_audience(&uid("u2")).await.unwrap(), vec![]);
    assert_eq!(
        store.nick_owner(&Nick::trusted("alice")).await.unwrap(),
        Some(uid("u1"))
    );
    add(store, &connection("c3", "u2", "alicia")).await;
}

async fn one_user_may_hold_a_nickname_on_two_connections(store: &dyn Store) {
    let first = connection("c1", "u1", "bob");
    let second = connection("c2", "u1", "bob");
    add(store, &first).await;
    add(store, &second).await;
    assert_eq!(store.connection(&second.id).await.unwrap(), Some(second.clone()));
    assert_eq!(store.user_audience(&uid("u1")).await.unwrap(), ids(&["c1", "c2"]));
    assert_eq!(store.nick_owner(&Nick::trusted("bob")).await.unwrap(), Some(uid("u1")));
}

async fn a_nickname_is_free_again_once_its_last_connection_is_removed(store: &dyn Store) {
    add(store, &connection("c1", "u1", "carol")).await;
    add(store, &connection("c2", "u1", "carol")).await;
    let newcomer = connection("c3", "u2", "carol");
    let carol = Nick::trusted("carol");

    assert!(remove(store, "c1").await.is_some());
    let refused = store.add_connection(&newcomer).await;
    assert!(
        matches!(refused, Err(StoreError::NickTaken)),
        "still held through c2: {refused:?}"
    );
    assert_eq!(store.nick_owner(&carol).await.unwrap(), Some(uid("u1")));

    assert!(remove(store, "c2").await.is_some());
    assert_eq!(store.nick_owner(&carol).await.unwrap(), None);
    add(store, &newcomer).await;
    let registered = store.connection(&newcomer.id).await.unwrap().expect("c3 is registered");
    assert_eq!(registered.user.user_id, uid("u2"));
    assert_eq!(store.nick_owner(&carol).await.unwrap(), Some(uid("u2")));
}

async fn a_stale_claim_is_taken_over_and_its_old_connection_cannot_release_it(store: &dyn Store) {
    // c1's `$disconnect` never ran, and its claim expired a minute ago.
    let ghost = connection_until("c1", "u1", "dave", now_secs() - 60);
    add(store, &ghost).await;
    assert_eq!(
        store.nick_owner(&Nick::trusted("dave")).await.unwrap(),
        None,
        "an expired claim owns nothing"
    );
    let newcomer = connection("c2", "u2", "dave");
    add(store, &newcomer).await;
    assert_eq!(store.connection(&newcomer.id).await.unwrap(), Some(newcomer));

    // The ghost's late removal must not free the nickname u2 now holds.
    assert!(remove(store, "c1").await.is_some());
    let refused = store.add_connection(&connection("c3", "u3", "dave")).await;
    assert!(matches!(refused, Err(StoreError::NickTaken)), "{refused:?}");
    assert_eq!(store.nick_owner(&Nick::trusted("dave")).await.unwrap(), Some(uid("u2")));
}

async fn a_claim_lasts_as_long_as_its_longest_lived_connection(store: &dyn Store) {
    let long_lived = connection("c1", "u1", "erin");
    // A second connection whose own expiry has already passed must not shorten the claim.
    let short_lived = connection_until("c2", "u1", "erin", now_secs() - 60);
    add(store, &long_lived).await;
    add(store, &short_lived).await;
    assert!(remove(store, "c1").await.is_some());
    let refused = store.add_connection(&connection("c3", "u2", "erin")).await;
    assert!(matches!(refused, Err(StoreError::NickTaken)), "{refused:?}");
}

// Nickname leases (HTTP callers, with no connection), judged at the `now` each call gives.

/// The lease of these tests: a minute.
const LEASE: Duration = Duration::from_secs(60);

async fn lease(store: &dyn Store, user: &str, nick: &str, now: i64) -> Result<(), StoreError> {
    store.lease_nick(&user_named(user, nick), now, LEASE).await
}

async fn a_lease_holds_a_nickname_against_other_users_until_it_lapses(store: &dyn Store) {
    let now = now_secs();
    lease(store, "u1", "nia", now).await.expect("a free nickname");
    assert_eq!(store.nick_owner(&Nick::trusted("nia")).await.unwrap(), Some(uid("u1")));
    let refused = lease(store, "u2", "nia", now + 30).await;
    assert!(matches!(refused, Err(StoreError::NickTaken)), "{refused:?}");
    let refused = store.add_connection(&connection("c1", "u2", "nia")).await;
    assert!(matches!(refused, Err(StoreError::NickTaken)), "{refused:?}");
    assert_eq!(store.connection(&ConnectionId::new("c1")).await.unwrap(), None);

    // Past its minute, u1's lease owns nothing: u2 takes the nickname, and holds it.
    lease(store, "u2", "nia", now + 61).await.expect("u1's lease lapsed");
    assert_eq!(store.nick_owner(&Nick::trusted("nia")).await.unwrap(), Some(uid("u2")));
    let refused = lease(store, "u1", "nia", now + 61).await;
    assert!(matches!(refused, Err(StoreError::NickTaken)), "{refused:?}");

    // A lease that lapsed a minute ago does not refuse a handshake either.
    lease(store, "u3", "ole", now - 120).await.expect("a free nickname");
    assert_eq!(store.nick_owner(&Nick::trusted("ole")).await.unwrap(), None);
    add(store, &connection("c2", "u4", "ole")).await;
    assert_eq!(store.nick_owner(&Nick::trusted("ole")).await.unwrap(), Some(uid("u4")));
    let refused = lease(store, "u3", "ole", now).await;
    assert!(matches!(refused, Err(StoreError::NickTaken)), "{refused:?}");
}

async fn a_users_own_connections_and_lease_never_conflict(store: &dyn Store) {
    let now = now_secs();
    // Connected first, then over HTTP as well, then a second connection.
    add(store, &connection("c1", "u1", "pia")).await;
    lease(store, "u1", "pia", now)
        .await
        .expect("its own connection's nickname");
    add(store, &connection("c2", "u1", "pia")).await;
    // Both connections go: the lease holds the nickname on.
    remove(store, "c1").await.expect("c1 was registered");
    remove(store, "c2").await.expect("c2 was registered");
    assert_eq!(store.nick_owner(&Nick::trusted("pia")).await.unwrap(), Some(uid("u1")));
    let refused = store.add_connection(&connection("c3", "u2", "pia")).await;
    assert!(matches!(refused, Err(StoreError::NickTaken)), "{refused:?}");
    let refused = lease(store, "u2", "pia", now).await;
    assert!(matches!(refused, Err(StoreError::NickTaken)), "{refused:?}");
    // Leased first, then connected: the same user's handshake joins the claim.
    add(store, &connection("c4", "u1", "pia")).await;
    lease(store, "u1", "pia", now + 50).await.expect("its own nickname");
    remove(store, "c4").await.expect("c4 was registered");
    assert_eq!(store.nick_owner(&Nick::trusted("pia")).await.unwrap(), Some(uid("u1")));
}

async fn a_lease_is_renewed_only_once_past_half_its_life(store: &dyn Store) {
    let now = now_secs();
    // 40 s of 60 left at the second call: not renewed, so it lapses a minute after the first.
    lease(store, "u1", "quin", now).await.unwrap();
    lease(store, "u1", "quin", now + 20).await.unwrap();
    lease(store, "u2", "quin", now + 61)
        .await
        .expect("a lease with more than half left is not renewed");
    // 20 s left at the second call: renewed for a minute from then.
    lease(store, "u3", "rae", now).await.unwrap();
    lease(store, "u3", "rae", now + 40).await.unwrap();
    let refused = lease(store, "u4", "rae", now + 61).await;
    assert!(matches!(refused, Err(StoreError::NickTaken)), "renewed: {refused:?}");
    lease(store, "u4", "rae", now + 101)
        .await
        .expect("lapsed a minute after its renewal");
}

async fn a_live_connection_refuses_a_lease_and_a_stale_one_cannot_release_it(store: &dyn Store) {
    let now = now_secs();
    add(store, &connection("c1", "u1", "sia")).await;
    let refused = lease(store, "u2", "sia", now).await;
    assert!(matches!(refused, Err(StoreError::NickTaken)), "{refused:?}");
    assert_eq!(store.nick_owner(&Nick::trusted("sia")).await.unwrap(), Some(uid("u1")));

    // c2's `$disconnect` never ran and its claim expired: a lease takes the nickname over,
    // and the ghost's late removal leaves the lease be.
    add(store, &connection_until("c2", "u3", "tao", now - 60)).await;
    lease(store, "u4", "tao", now)
        .await
        .expect("a stale claim owns nothing");
    assert!(remove(store, "c2").await.is_some());
    assert_eq!(store.nick_owner(&Nick::trusted("tao")).await.unwrap(), Some(uid("u4")));
    let refused = store.add_connection(&connection("c3", "u5", "tao")).await;
    assert!(matches!(refused, Err(StoreError::NickTaken)), "{refused:?}");
}

async fn users_racing_for_a_nickname_over_http_and_websocket_leave_it_one_owner(store: &dyn Store) {
    let now = now_secs();
    let leasers = ["u3", "u4"];
    for round in 0..4 {
        let nick = format!("vic{round}");
        // Every other round the nickname is not free but a lapsed lease, taken over at once.
        if round % 2 == 1 {
            lease(store, "u-old", &nick, now - 120).await.expect("a free nickname");
        }
        let handshakes = [
            connection(&format!("c{round}a"), "u1", &nick),
            connection(&format!("c{round}b"), "u2", &nick),
        ];
        let (leases, arrivals) = futures::join!(
            join_all(leasers.map(|user| lease(store, user, &nick, now))),
            join_all(handshakes.iter().map(|handshake| store.add_connection(handshake))),
        );
        let mut owners = Vec::new();
        let outcomes = leasers
            .iter()
            .map(|user| uid(user))
            .zip(leases.into_iter().map(|leased| leased.map(drop)))
            .chain(
                handshakes
                    .iter()
                    .map(|handshake| handshake.user.user_id.clone())
                    .zip(arrivals.into_iter().map(|arrived| arrived.map(drop))),
            );
        for (user, outcome) in outcomes {
            match outcome {
                Ok(()) => owners.push(user),
                Err(StoreError::NickTaken) => {}
                Err(error) => panic!("round {round}, {user}: {error:?}"),
            }
        }
        assert_eq!(owners.len(), 1, "round {round}: one of four wins, not {owners:?}");
        assert_eq!(
            store.nick_owner(&Nick::trusted(nick.as_str())).await.unwrap(),
            owners.pop()
        );
    }
}

// Connections and the users behind them.

async fn a_connection_reads_back_with_its_roles_and_sign_in(store: &dyn Store) {
    let admin = Connection {
        roles: vec!["service".into(), "admin".into()],
        ..connection("c1", "u1", "fay")
    };
    let guest = anonymous("c2", "anon-1", "guest-1");
    add(store, &admin).await;
    add(store, &guest).await;
    assert_eq!(store.connection(&admin.id).await.unwrap(), Some(admin));
    assert_eq!(store.connection(&guest.id).await.unwrap(), Some(guest));
    assert_eq!(store.connection(&ConnectionId::new("c9")).await.unwrap(), None);
}

async fn the_first_connection_comes_online_and_the_last_goes_offline(store: &dyn Store) {
    let phone = connection("c1", "u1", "gus");
    let laptop = connection("c2", "u1", "gus");
    assert!(add(store, &phone).await.first, "the user came online");
    assert!(!add(store, &laptop).await.first, "the user was online already");
    assert!(add(store, &connection("c3", "u2", "hal")).await.first, "another user");

    let departure = remove(store, "c1").await.expect("c1 was registered");
    assert_eq!(departure.connection, phone);
    assert!(!departure.last, "the laptop is still connected");
    assert_eq!(
        store.online_user(&uid("u1")).await.unwrap().map(|u| u.connections),
        Some(ids(&["c2"]))
    );

    let departure = remove(store, "c2").await.expect("c2 was registered");
    assert!(departure.last, "the user went offline");
    assert_eq!(store.online_user(&uid("u1")).await.unwrap(), None);
    assert_eq!(store.user_audience(&uid("u1")).await.unwrap(), vec![]);
    assert_eq!(store.nick_owner(&Nick::trusted("gus")).await.unwrap(), None);
    assert!(add(store, &phone).await.first, "back online");
}

async fn a_connection_past_its_expiry_does_not_keep_its_user_online(store: &dyn Store) {
    // Its `$disconnect` never came.
    let ghost = connection_until("c1", "u1", "ida", now_secs() - 60);
    add(store, &ghost).await;
    join(store, "general", &ghost.user).await;
    assert_eq!(store.online_user(&uid("u1")).await.unwrap(), None);
    assert_eq!(store.user_audience(&uid("u1")).await.unwrap(), vec![]);
    assert_eq!(audience(store, "general").await, vec![]);
    assert_eq!(store.broadcast_audience().await.unwrap(), vec![]);

    let fresh = connection("c2", "u1", "ida");
    let arrival = add(store, &fresh).await;
    assert!(arrival.first, "the ghost does not count");
    assert_eq!(arrival.rooms, rooms(&["general"]));
    assert_eq!(audience(store, "general").await, ids(&["c2"]));
    assert_eq!(
        store.member(&room("general"), &uid("u1")).await.unwrap(),
        Some(member(&fresh.user, &["c2"]))
    );
    assert!(remove(store, "c2").await.expect("registered").last);
    assert_eq!(store.online_user(&uid("u1")).await.unwrap(), None);
}

async fn online_user_and_user_audience_list_every_live_connection_with_the_latest_nick(store: &dyn Store) {
    add(store, &connection("c2", "u1", "jon")).await;
    add(store, &connection("c1", "u1", "jonny")).await;
    add(store, &connection("c3", "u2", "kai")).await;
    assert_eq!(
        store.online_user(&uid("u1")).await.unwrap(),
        Some(OnlineUser {
            user: user_named("u1", "jonny"),
            connections: ids(&["c1", "c2"]),
        })
    );
    assert_eq!(store.user_audience(&uid("u1")).await.unwrap(), ids(&["c1", "c2"]));
    assert_eq!(store.user_audience(&uid("u2")).await.unwrap(), ids(&["c3"]));
    assert_eq!(store.online_user(&uid("nobody")).await.unwrap(), None);
    assert_eq!(store.user_audience(&uid("nobody")).await.unwrap(), vec![]);
    remove(store, "c1").await;
    assert_eq!(store.user_audience(&uid("u1")).await.unwrap(), ids(&["c2"]));
}

async fn removing_a_connection_is_idempotent(store: &dyn Store) {
    let leaving = connection("c1", "u1", "lou");
    add(store, &leaving).await;
    add(store, &connection("c2", "u2", "max")).await;
    join(store, "a", &leaving.user).await;

    let departure = remove(store, "c1").await.expect("it was registered");
    assert_eq!(
        departure,
        Departure {
            connection: leaving.clone(),
            last: true,
            rooms: rooms(&["a"]),
        }
    );
    assert_eq!(remove(store, "c1").await, None, "second removal");
    assert_eq!(remove(store, "never-registered").await, None);
    assert_eq!(store.connection(&leaving.id).await.unwrap(), None);
    assert_eq!(store.online_user(&uid("u1")).await.unwrap(), None);
    assert_eq!(store.nick_owner(&Nick::trusted("lou")).await.unwrap(), None);
    assert_eq!(audience(store, "a").await, vec![]);
    assert_eq!(store.user_audience(&uid("u2")).await.unwrap(), ids(&["c2"]));
}

async fn two_connections_arriving_at_once_make_one_first(store: &dyn Store) {
    for round in 0..4 {
        let user = format!("u{round}");
        let pair = [
            connection(&format!("c{round}a"), &user, &format!("nia{round}")),
            connection(&format!("c{round}b"), &user, &format!("nia{round}")),
        ];
        let arrivals = join_all(pair.iter().map(|c| store.add_connection(c))).await;
        let firsts = arrivals
            .into_iter()
            .map(|arrival| arrival.expect("registered").first)
            .filter(|first| *first)
            .count();
        assert_eq!(
            firsts, 1,
            "round {round}: exactly one connection brings the user online"
        );
        assert_eq!(store.user_audience(&uid(&user)).await.unwrap().len(), 2);
    }
}

async fn two_connections_leaving_at_once_make_one_last(store: &dyn Store) {
    for round in 0..4 {
        let user = format!("u{round}");
        let pair = [format!("c{round}a"), format!("c{round}b")];
        for id in &pair {
            add(store, &connection(id, &user, &format!("oz{round}"))).await;
        }
        join(store, "general", &user_named(&user, &format!("oz{round}"))).await;
        let ids: Vec<ConnectionId> = pair.iter().map(ConnectionId::new).collect();
        let departures = join_all(ids.iter().map(|id| store.remove_connection(id))).await;
        let lasts = departures
            .into_iter()
            .map(|departure| departure.expect("removed").expect("it was registered").last)
            .filter(|last| *last)
            .count();
        assert_eq!(lasts, 1, "round {round}: exactly one connection takes the user offline");
        assert_eq!(store.online_user(&uid(&user)).await.unwrap(), None);
        assert_eq!(audience(store, "general").await, vec![]);
    }
}

async fn one_connection_removed_twice_at_once_departs_once(store: &dyn Store) {
    // A redelivered `$disconnect` and a 410 found by fan-out.
    for round in 0..4 {
        let id = format!("c{round}");
        add(store, &connection(&id, &format!("u{round}"), &format!("pia{round}"))).await;
        let id = ConnectionId::new(id);
        let removals = join_all([store.remove_connection(&id), store.remove_connection(&id)]).await;
        let departures: Vec<Departure> = removals
            .into_iter()
            .filter_map(|removal| removal.expect("removed"))
            .collect();
        assert_eq!(departures.len(), 1, "round {round}: {departures:?}");
        assert!(departures[0].last);
        assert_eq!(store.connection(&id).await.unwrap(), None);
    }
}

// Rooms follow the user.

async fn a_second_connection_of_a_member_is_in_the_room_at_once(store: &dyn Store) {
    let phone = connection("c1", "u1", "quin");
    add(store, &phone).await;
    assert!(join(store, "general", &phone.user).await);
    let arrival = add(store, &connection("c2", "u1", "quin")).await;
    assert_eq!(
        arrival,
        Arrival {
            first: false,
            rooms: rooms(&["general"]),
        }
    );
    assert_eq!(audience(store, "general").await, ids(&["c1", "c2"]));
    assert_eq!(
        store.member(&room("general"), &uid("u1")).await.unwrap(),
        Some(member(&phone.user, &["c1", "c2"]))
    );
    assert_eq!(store.broadcast_audience().await.unwrap(), ids(&["c1", "c2"]));
}

async fn joining_brings_every_live_connection_of_the_user(store: &dyn Store) {
    let phone = connection("c1", "u1", "ray");
    add(store, &phone).await;
    add(store, &connection("c2", "u1", "ray")).await;
    add(store, &connection("c3", "u2", "sam")).await;
    assert!(join(store, "general", &phone.user).await);
    assert_eq!(audience(store, "general").await, ids(&["c1", "c2"]));
    assert_eq!(store.rooms_of(&uid("u1")).await.unwrap(), rooms(&["general"]));
    assert_eq!(store.rooms_of(&uid("u2")).await.unwrap(), vec![]);
}

async fn a_user_without_connections_may_join_and_its_next_connection_is_in_the_room(store: &dyn Store) {
    // An HTTP caller has no connection.
    let tess = user_named("u1", "tess");
    assert!(join(store, "general", &tess).await);
    assert_eq!(
        store.member(&room("general"), &uid("u1")).await.unwrap(),
        Some(member(&tess, &[]))
    );
    assert_eq!(audience(store, "general").await, vec![]);
    assert_eq!(store.broadcast_audience().await.unwrap(), vec![]);

    let arrival = add(store, &connection("c1", "u1", "tess")).await;
    assert_eq!(
        arrival,
        Arrival {
            first: true,
            rooms: rooms(&["general"]),
        }
    );
    assert_eq!(audience(store, "general").await, ids(&["c1"]));
    assert_eq!(store.broadcast_audience().await.unwrap(), ids(&["c1"]));
}

async fn membership_outlives_the_users_connections(store: &dyn Store) {
    let uma = connection("c1", "u1", "uma");
    add(store, &uma).await;
    join(store, "b", &uma.user).await;
    join(store, "a", &uma.user).await;

    let departure = remove(store, "c1").await.expect("registered");
    assert!(departure.last);
    assert_eq!(departure.rooms, rooms(&["a", "b"]));
    assert_eq!(
        store.member(&room("a"), &uid("u1")).await.unwrap(),
        Some(member(&uma.user, &[])),
        "still a member, offline"
    );
    assert_eq!(store.rooms_of(&uid("u1")).await.unwrap(), rooms(&["a", "b"]));
    assert_eq!(audience(store, "a").await, vec![]);

    // A reconnect is in the user's rooms at once, without joining again.
    let arrival = add(store, &connection("c2", "u1", "uma")).await;
    assert_eq!(
        arrival,
        Arrival {
            first: true,
            rooms: rooms(&["a", "b"]),
        }
    );
    assert_eq!(audience(store, "a").await, ids(&["c2"]));
    assert_eq!(audience(store, "b").await, ids(&["c2"]));
}

async fn joining_twice_reports_the_second_join(store: &dyn Store) {
    let vic = connection("c1", "u1", "vic");
    add(store, &vic).await;
    assert!(join(store, "general", &vic.user).await, "first join");
    assert!(!join(store, "general", &vic.user).await, "second join");
    assert_eq!(
        store.members(&room("general")).await.unwrap(),
        vec![member(&vic.user, &["c1"])]
    );
    assert_eq!(audience(store, "general").await, ids(&["c1"]));
    assert_eq!(store.rooms_of(&uid("u1")).await.unwrap(), rooms(&["general"]));
}

async fn leaving_takes_every_connection_of_the_user_out_of_the_room(store: &dyn Store) {
    let wes = connection("c1", "u1", "wes");
    add(store, &wes).await;
    add(store, &connection("c2", "u1", "wes")).await;
    let xia = connection("c3", "u2", "xia");
    add(store, &xia).await;
    join(store, "general", &wes.user).await;
    join(store, "general", &xia.user).await;

    assert_eq!(
        store.leave(&room("general"), &uid("u1")).await.unwrap(),
        Some(member(&wes.user, &["c1", "c2"]))
    );
    assert_eq!(
        store.leave(&room("general"), &uid("u1")).await.unwrap(),
        None,
        "left already"
    );
    assert_eq!(audience(store, "general").await, ids(&["c3"]));
    assert_eq!(store.member(&room("general"), &uid("u1")).await.unwrap(), None);
    assert_eq!(
        store.members(&room("general")).await.unwrap(),
        vec![member(&xia.user, &["c3"])]
    );
    assert_eq!(store.rooms_of(&uid("u1")).await.unwrap(), vec![]);
    assert_eq!(store.broadcast_audience().await.unwrap(), ids(&["c3"]));

    // The room does not come back with a new connection, nor go with an old one.
    assert_eq!(add(store, &connection("c4", "u1", "wes")).await.rooms, vec![]);
    assert_eq!(audience(store, "general").await, ids(&["c3"]));
    assert_eq!(remove(store, "c1").await.expect("registered").rooms, vec![]);
}

async fn anonymous_memberships_carry_their_expiry_and_end_with_it(store: &dyn Store) {
    let guest = anonymous("c1", "anon-1", "guest-1");
    add(store, &guest).await;
    let until = Some(guest.expires_at);
    assert!(store.join(&room("lobby"), &guest.user, until).await.unwrap());
    let expected = Member {
        user: guest.user.clone(),
        connections: ids(&["c1"]),
        expires_at: until,
    };
    assert_eq!(
        store.member(&room("lobby"), &guest.user.user_id).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(store.members(&room("lobby")).await.unwrap(), vec![expected]);

    // A membership whose connection ended without `$disconnect` is over once it expires.
    let past = Some(now_secs() - 60);
    assert!(store.join(&room("attic"), &guest.user, past).await.unwrap());
    assert_eq!(store.member(&room("attic"), &guest.user.user_id).await.unwrap(), None);
    assert_eq!(store.members(&room("attic")).await.unwrap(), vec![]);
    assert_eq!(audience(store, "attic").await, vec![]);
    assert_eq!(store.rooms_of(&guest.user.user_id).await.unwrap(), rooms(&["lobby"]));
    assert_eq!(store.leave(&room("attic"), &guest.user.user_id).await.unwrap(), None);
    assert!(
        store.join(&room("attic"), &guest.user, until).await.unwrap(),
        "an expired membership does not make a join the second"
    );
    assert_eq!(audience(store, "attic").await, ids(&["c1"]));
    assert_eq!(
        store.rooms_of(&guest.user.user_id).await.unwrap(),
        rooms(&["attic", "lobby"])
    );
}

async fn members_show_each_users_nick_and_connections(store: &dyn Store) {
    add(store, &connection("c1", "u1", "yan")).await;
    join(store, "general", &user_named("u1", "yan")).await;
    // The user's latest connection names it.
    add(store, &connection("c2", "u1", "yannick")).await;
    add(store, &connection("c3", "u2", "zoe")).await;
    join(store, "general", &user_named("u2", "zoe")).await;
    join(store, "general", &user_named("u3", "abe")).await;

    assert_eq!(
        store.members(&room("general")).await.unwrap(),
        vec![
            member(&user_named("u1", "yannick"), &["c1", "c2"]),
            member(&user_named("u2", "zoe"), &["c3"]),
            member(&user_named("u3", "abe"), &[]),
        ]
    );
    assert_eq!(
        store.member(&room("general"), &uid("u1")).await.unwrap(),
        Some(member(&user_named("u1", "yannick"), &["c1", "c2"]))
    );
    assert_eq!(store.member(&room("general"), &uid("u9")).await.unwrap(), None);
    assert_eq!(store.members(&room("empty")).await.unwrap(), vec![]);
}

async fn rooms_of_is_sorted_and_skips_rooms_left(store: &dyn Store) {
    let bea = user_named("u1", "bea");
    for name in ["b", "a.x", "c", "a"] {
        join(store, name, &bea).await;
    }
    join(store, "d", &user_named("u2", "cy")).await;
    store.leave(&room("b"), &uid("u1")).await.unwrap();
    assert_eq!(store.rooms_of(&uid("u1")).await.unwrap(), rooms(&["a", "a.x", "c"]));
    assert_eq!(store.rooms_of(&uid("u2")).await.unwrap(), rooms(&["d"]));
    assert_eq!(store.rooms_of(&uid("nobody")).await.unwrap(), vec![]);
}

async fn the_broadcast_audience_lists_each_connection_once(store: &dyn Store) {
    let busy = connection("c1", "u1", "dee");
    add(store, &busy).await;
    add(store, &connection("c2", "u1", "dee")).await;
    let quiet = connection("c3", "u2", "eli");
    add(store, &quiet).await;
    add(store, &connection("c4", "u3", "flo")).await; // in no room
    for name in ["a", "b", "c"] {
        join(store, name, &busy.user).await;
    }
    join(store, "b", &quiet.user).await;
    assert_eq!(store.broadcast_audience().await.unwrap(), ids(&["c1", "c2", "c3"]));

    store.leave(&room("b"), &uid("u2")).await.unwrap();
    assert_eq!(store.broadcast_audience().await.unwrap(), ids(&["c1", "c2"]));
    store.leave(&room("a"), &uid("u1")).await.unwrap();
    assert_eq!(
        store.broadcast_audience().await.unwrap(),
        ids(&["c1", "c2"]),
        "still in b and c"
    );
    remove(store, "c2").await;
    assert_eq!(store.broadcast_audience().await.unwrap(), ids(&["c1"]));
}

async fn the_room_catalog_is_sorted_and_names_are_unique(store: &dyn Store) {
    let make = |name: &str, by: &str, at: i64| Room {
        name: room(name),
        created_by: uid(by),
        created_at_ms: at,
    };
    for (name, at) in [("zeta", 1), ("alpha", 2), ("mid.dle", 3)] {
        store.create_room(&make(name, "u1", at), 100).await.unwrap();
    }
    let again = store.create_room(&make("alpha", "u2", 9), 100).await;
    assert!(matches!(again, Err(StoreError::RoomExists)), "{again:?}");

    let names: Vec<RoomName> = store.rooms().await.unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names, rooms(&["alpha", "mid.dle", "zeta"]));
    assert_eq!(
        store.room(&room("alpha")).await.unwrap(),
        Some(make("alpha", "u1", 2)),
        "the first creator keeps it"
    );
    assert_eq!(store.room(&room("nope")).await.unwrap(), None);

    // Members of a room do not show up in the catalog, nor the catalog entry among members.
    let gil = connection("c1", "u1", "gil");
    add(store, &gil).await;
    join(store, "alpha", &gil.user).await;
    assert_eq!(store.rooms().await.unwrap().len(), 3);
    assert_eq!(
        store.members(&room("alpha")).await.unwrap(),
        vec![member(&gil.user, &["c1"])]
    );
    assert_eq!(audience(store, "alpha").await, ids(&["c1"]));
}

async fn a_room_with_hundreds_of_members_comes_back_whole(store: &dyn Store) {
    const MEMBERS: usize = 200;
    let users: Vec<User> = (0..MEMBERS)
        .map(|i| user_named(&format!("u{i:03}"), &format!("n{i}")))
        .collect();
    // One member in four is online (moto copies the whole table for every transaction, so
    // every connection makes this test slower); half of them connect before joining.
    let connections: Vec<Connection> = users
        .iter()
        .step_by(4)
        .map(|user| {
            connection(
                &format!("conn-{}=", user.user_id),
                user.user_id.as_str(),
                user.nick.as_str(),
            )
        })
        .collect();
    let (early, late) = connections.split_at(connections.len() / 2);
    let crowd = room("crowd");
    for wave in early.chunks(RACING_CALLS) {
        for arrival in join_all(wave.iter().map(|c| store.add_connection(c))).await {
            assert_eq!(arrival.unwrap().rooms, vec![]);
        }
    }
    for wave in users.chunks(RACING_CALLS) {
        let joined = join_all(wave.iter().map(|user| store.join(&crowd, user, None))).await;
        assert!(
            joined.into_iter().all(|result| result.unwrap()),
            "every join is a first join"
        );
    }
    for wave in late.chunks(RACING_CALLS) {
        for arrival in join_all(wave.iter().map(|c| store.add_connection(c))).await {
            assert_eq!(arrival.unwrap().rooms, vec![crowd.clone()]);
        }
    }

    let expected: Vec<Member> = users
        .iter()
        .map(|user| Member {
            user: user.clone(),
            connections: connections
                .iter()
                .filter(|c| c.user == *user)
                .map(|c| c.id.clone())
                .collect(),
            expires_at: None,
        })
        .collect();
    assert_eq!(store.members(&crowd).await.unwrap(), expected);
    let online: Vec<ConnectionId> = connections.iter().map(|c| c.id.clone()).collect();
    assert_eq!(online.len(), MEMBERS / 4);
    assert_eq!(audience(store, "crowd").await, online);
    assert_eq!(store.broadcast_audience().await.unwrap(), online);
}

/// What only the DynamoDB store has: the table definition, how it reports bad data, and
/// how it finishes work that an earlier call left half-done.
mod dynamodb_table;

async fn the_room_catalog_holds_at_most_its_limit(store: &dyn Store) {
    let make = |name: &str| Room {
        name: room(name),
        created_by: uid("u1"),
        created_at_ms: 1,
    };
    for name in ["one", "two", "three"] {
        store.create_room(&make(name), 3).await.unwrap();
    }
    let fourth = store.create_room(&make("four"), 3).await;
    assert!(matches!(fourth, Err(StoreError::CatalogFull)), "{fourth:?}");
    let again = store.create_room(&make("two"), 3).await;
    assert!(
        matches!(again, Err(StoreError::RoomExists)),
        "a taken name is still taken: {again:?}"
    );
    assert_eq!(store.room(&room("four")).await.unwrap(), None, "nothing written");
    assert_eq!(store.rooms().await.unwrap().len(), 3);
    // A higher limit lets the catalog grow again.
    store.create_room(&make("four"), 4).await.unwrap();
}

async fn a_token_bucket_gives_its_burst_then_refills_with_time(store: &dyn Store) {
    let bucket = Bucket::per_second(10.0, 3).expect("a bucket");
    let key = BucketKey::messages(&roomcast_core::Caller {
        user: user_named("u1", "ann"),
        roles: Vec::new(),
        connection: Some(ConnectionId::new(format!("c-{}", ulid::Ulid::new()))),
        expires_at: None,
        source_ip: None,
    });
    let other = BucketKey::room_creations(&roomcast_core::Caller {
        user: user_named("u1", "ann"),
        roles: Vec::new(),
        connection: None,
        expires_at: None,
        source_ip: None,
    });
    let now = 1_000_000;
    for token in 0..3 {
        assert!(
            store.take_token(&key, &bucket, now).await.unwrap(),
            "token {token} of the burst"
        );
    }
    assert!(
        !store.take_token(&key, &bucket, now).await.unwrap(),
        "the burst is spent"
    );
    assert!(
        !store.take_token(&key, &bucket, now + 50).await.unwrap(),
        "nothing refilled yet"
    );
    assert!(
        store.take_token(&other, &bucket, now).await.unwrap(),
        "another bucket is apart"
    );
    assert!(
        store.take_token(&key, &bucket, now + 100).await.unwrap(),
        "one token after 100 ms"
    );
    assert!(
        !store.take_token(&key, &bucket, now + 100).await.unwrap(),
        "and only one"
    );
    // A full second later the whole burst is back, and no more.
    for token in 0..3 {
        assert!(
            store.take_token(&key, &bucket, now + 1_100).await.unwrap(),
            "token {token} refilled"
        );
    }
    assert!(!store.take_token(&key, &bucket, now + 1_100).await.unwrap());
}
