//! The token buckets that the quotas draw from.

use super::*;

contract!(
    tests: [
        a_token_bucket_gives_its_burst_then_refills_with_time,
    ],
    racing: [],
);

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
