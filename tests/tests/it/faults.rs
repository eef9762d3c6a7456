//! The promises under faults, on the real backends with a fault proxy in front of them: a
//! write whose answer timed out, a store or a broker that goes down and comes back.

use std::sync::Arc;
use std::time::Duration;

use roomcast_aws::dynamo::{ensure_table, DynamoStore};
use roomcast_tests::backends::Backends;
use roomcast_tests::fault_proxy::{Fault, FaultProxy};
use roomcast_tests::{events, moto, unique_name};
use serde_json::json;

use crate::lambda::Lambdas;

/// Backends whose store reaches moto through `proxy`, with the SDK's timeouts and retries as
/// deployed (so a held answer times out as it would in AWS).
async fn backends_behind(proxy: &FaultProxy) -> Backends {
    let backends = Backends::real().await;
    let table = unique_name("roomcast");
    ensure_table(&moto::client(), &table).await.expect("a table");
    let store = DynamoStore::new(moto::client_as_deployed(&proxy.url()), table);
    backends.with_store(Arc::new(store))
}

/// Seen on moto under load: the claim's transaction landed, its answer timed out, `$connect`
/// was refused with 500 — and every retry with the nickname got 409 for two hours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_whose_writes_timed_out_leaves_its_nickname_free() {
    roomcast_tests::init_tracing();
    let proxy = FaultProxy::start(moto::addr()).await;
    let lambdas = Lambdas::new(backends_behind(&proxy).await);

    // Longer than an operation's 10 s: every attempt of the claim times out, yet lands.
    proxy.hold_answers_for(Duration::from_secs(12));
    let first = events::connection_id();
    assert_eq!(lambdas.connect_status(&first, Some("zoe")).await, 500);
    proxy.set(Fault::None);

    let reply = lambdas.frame(&first, r#"{"action":"whoami"}"#).await;
    assert_eq!(
        reply["code"], "forbidden",
        "the refused connection is not registered: {reply}"
    );
    let second = lambdas.connect("zoe").await;
    let me = lambdas.ok(&second, r#"{"action":"whoami"}"#, "whoami").await;
    assert_eq!(me["nick"], json!("zoe"), "{me}");
}
