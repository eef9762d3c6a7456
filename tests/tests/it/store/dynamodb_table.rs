//! What only the DynamoDB store has: the table definition, how it reports bad data, and
//! how it finishes work that an earlier call left half-done (a part of `store.rs`'s tests).

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::get_item::GetItemError;
use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use roomcast_aws::dynamo::{ensure_table, CorruptItem, DynamoStore};
use roomcast_core::model::{ConnectionId, RoomName};
use roomcast_core::ports::{Audience, Connections, Rooms, StoreError};
use roomcast_tests::moto;

use super::{add, audience, connection, connection_until, ids, join, remove, uid};

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

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
        .item("pk", s("CONN#broken"))
        .item("sk", s("#META"))
        .item("connectionId", s("broken"))
        .item("userId", s("u1"))
        .item("roles", AttributeValue::L(vec![]))
        .item("authenticated", AttributeValue::Bool(true))
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

/// A removal of c1 that took it out of its user's live connections, recorded that the
/// user still had c2, and then stopped (a Lambda timeout) before leaving the room.
#[tokio::test]
async fn a_removal_that_stopped_half_way_is_completed_by_the_next_with_its_outcome() {
    roomcast_tests::init_tracing();
    let store = moto::fresh_store().await;
    let phone = connection("c1", "u1", "hana");
    add(&store, &phone).await;
    add(&store, &connection("c2", "u1", "hana")).await;
    join(&store, "general", &phone.user).await;
    let entry = format!("c1|{}", phone.expires_at);
    let client = moto::client();
    client
        .update_item()
        .table_name(store.table())
        .key("pk", s("USER#u1"))
        .key("sk", s("#CONNS"))
        .update_expression("DELETE conns :c")
        .expression_attribute_values(":c", AttributeValue::Ss(vec![entry]))
        .send()
        .await
        .unwrap();
    client
        .update_item()
        .table_name(store.table())
        .key("pk", s("CONN#c1"))
        .key("sk", s("#META"))
        .update_expression("SET departedLast = :f")
        .expression_attribute_values(":f", AttributeValue::Bool(false))
        .send()
        .await
        .unwrap();
    assert_eq!(
        audience(&store, "general").await,
        ids(&["c1", "c2"]),
        "c1 still in the room"
    );

    // c2 goes: the user's last connection.
    assert!(remove(&store, "c2").await.expect("registered").last);
    // The redelivered `$disconnect` of c1 finishes the job, and reports what the first
    // call saw: the user had c2 then, so it was not the last (no second `offline`).
    let departure = remove(&store, "c1").await.expect("not yet fully removed");
    assert!(!departure.last);
    assert_eq!(departure.rooms, vec![RoomName::trusted("general")]);
    assert_eq!(audience(&store, "general").await, vec![]);
    assert_eq!(store.connection(&phone.id).await.unwrap(), None);
    assert_eq!(remove(&store, "c1").await, None);
}

#[tokio::test]
async fn entries_past_their_expiry_are_forgotten_by_the_next_arrival() {
    roomcast_tests::init_tracing();
    let store = moto::fresh_store().await;
    let now = roomcast_core::clock::now_secs();
    // A member whose connection c1 ended without `$disconnect` an hour ago.
    let ghost = connection_until("c1", "u1", "ines", now - 3600);
    join(&store, "general", &ghost.user).await;
    add(&store, &ghost).await;
    add(&store, &connection("c2", "u1", "ines")).await;

    let client = moto::client();
    for (pk, sk) in [("USER#u1", "#CONNS"), ("ROOM#general", "USER#u1")] {
        let found = client
            .get_item()
            .table_name(store.table())
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .expect("the item");
        let Some(AttributeValue::Ss(entries)) = found.get("conns") else {
            panic!("{pk} {sk} has no conns: {found:?}");
        };
        assert_eq!(entries.len(), 1, "{pk} {sk}: {entries:?}");
        assert!(entries[0].starts_with("c2|"), "{pk} {sk}: {entries:?}");
    }
    assert_eq!(store.user_audience(&uid("u1")).await.unwrap(), ids(&["c2"]));
}
