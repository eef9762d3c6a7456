//! Nicknames: a claim through connections (WebSocket) or a lease (HTTP callers, with no
//! connection), one owner at a time, free again when its last holder goes or lapses.

use super::*;

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
    ],
    racing: [
        users_racing_for_a_nickname_over_http_and_websocket_leave_it_one_owner,
    ],
);

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
