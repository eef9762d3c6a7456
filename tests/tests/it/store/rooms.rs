//! Rooms and memberships: a membership follows the user to every connection it has, and
//! outlives them; the room catalog, its audiences and its members.

use super::*;

contract!(
    tests: [
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
    ],
    racing: [
        a_room_with_hundreds_of_members_comes_back_whole,
    ],
);

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
