//! The contract of the state ports (`Connections`, `Rooms`, `Audience`): every test runs
//! against the in-memory store and against the DynamoDB store on moto's server, so local
//! mode and AWS keep the same rules. The cases by area: `store/nicknames.rs`,
//! `connections.rs`, `rooms.rs` (and memberships), `quotas.rs`; what only the DynamoDB store
//! has is in `store/dynamodb_table.rs`.

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
mod connections;
/// What only the DynamoDB store has: the table definition, how it reports bad data, and
/// how it finishes work that an earlier call left half-done.
mod dynamodb_table;
mod nicknames;
mod quotas;
mod rooms;

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
