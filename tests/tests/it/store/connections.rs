//! Connections and the users behind them: a user comes online with its first connection
//! and goes offline with its last, once each, however they race.

use super::*;

contract!(
    tests: [
        a_connection_reads_back_with_its_roles_and_sign_in,
        the_first_connection_comes_online_and_the_last_goes_offline,
        a_connection_past_its_expiry_does_not_keep_its_user_online,
        online_user_and_user_audience_list_every_live_connection_with_the_latest_nick,
        removing_a_connection_is_idempotent,
    ],
    racing: [
        two_connections_arriving_at_once_make_one_first,
        two_connections_leaving_at_once_make_one_last,
        one_connection_removed_twice_at_once_departs_once,
    ],
);

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
