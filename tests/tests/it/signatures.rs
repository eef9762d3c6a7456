//! `@connections` signatures: with `--verify-signatures` the local gateway checks every
//! request's SigV4 signature as API Gateway does, so kafka-fanout's own signing is tested
//! end to end — its posts arrive — while a wrong signature, an unknown key or none at all
//! is refused with AWS's 403, and the official SDK still works with the right credentials.

use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_apigatewaymanagement::primitives::Blob;
use roomcast_core::ports::{Notifier, NotifyError};
use roomcast_core::ConnectionId;
use roomcast_local::Running;
use roomcast_tests::gateways::{gateway_with, Mode};
use roomcast_tests::ws_client::Client;
use serde_json::json;

async fn verifying_gateway() -> Running {
    gateway_with(Mode::Embedded, &["--verify-signatures"]).await
}

/// The credentials the gateway signs and verifies with (its SDK configuration's).
async fn gateway_credentials() -> Credentials {
    use aws_credential_types::provider::ProvideCredentials;
    let sdk = roomcast_local::backends::sdk_config().await;
    sdk.credentials_provider()
        .expect("credentials")
        .provide_credentials()
        .await
        .expect("credentials")
}

fn sdk_client(gateway: &Running, credentials: Credentials) -> aws_sdk_apigatewaymanagement::Client {
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .endpoint_url(gateway.connections_endpoint())
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_s_signed_posts_pass_the_gateway_s_check() {
    let gateway = verifying_gateway().await;
    let mut alice = Client::connect(&gateway, "alice").await;
    let mut bob = Client::connect(&gateway, "bob").await;
    alice.join("general").await;
    bob.join("general").await;
    alice
        .ask_for(json!({"action": "send", "room": "general", "text": "signed"}), "ack")
        .await;
    assert_eq!(bob.wait_for("message").await["text"], "signed");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdk_works_against_a_verifying_gateway() {
    let gateway = verifying_gateway().await;
    let mut alice = Client::connect(&gateway, "alice").await;
    let id = alice.connection_id().await;
    let sdk = sdk_client(&gateway, gateway_credentials().await);
    sdk.post_to_connection()
        .connection_id(&id)
        .data(Blob::new(r#"{"type":"notice","text":"from the SDK"}"#))
        .send()
        .await
        .expect("a signed post");
    assert_eq!(alice.next().await["text"], "from the SDK");
    let info = sdk
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("a signed GET");
    assert!(info.connected_at().is_some());
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_signatures_are_refused_with_403_and_deliver_nothing() {
    let gateway = verifying_gateway().await;
    let mut alice = Client::connect(&gateway, "alice").await;
    let id = alice.connection_id().await;
    let right = gateway_credentials().await;

    // The right key with a wrong secret: the signature does not match.
    let wrong_secret = Credentials::new(right.access_key_id(), "not-the-secret", None, None, "test");
    let refused = sdk_client(&gateway, wrong_secret)
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new(r#"{"type":"notice","text":"forged"}"#))
        .send()
        .await
        .expect_err("a wrong signature is refused");
    let response = refused.raw_response().expect("an answer");
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(
        response.headers().get("x-amzn-ErrorType"),
        Some("InvalidSignatureException")
    );

    // A key the gateway does not know.
    let unknown = Credentials::new("AKIDUNKNOWN", "secret", None, None, "test");
    let refused = sdk_client(&gateway, unknown)
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new(r#"{"type":"notice","text":"stranger"}"#))
        .send()
        .await
        .expect_err("an unknown key is refused");
    assert_eq!(refused.raw_response().expect("an answer").status().as_u16(), 403);

    // No signature at all.
    let url = format!("{}/@connections/{id}", gateway.connections_endpoint());
    let unsigned = reqwest::Client::new()
        .post(&url)
        .body(r#"{"type":"notice","text":"unsigned"}"#)
        .send()
        .await
        .expect("an answer");
    assert_eq!(unsigned.status().as_u16(), 403);
    assert_eq!(
        unsigned.headers()["x-amzn-ErrorType"],
        "MissingAuthenticationTokenException"
    );

    // kafka-fanout's notifier with the wrong secret: refused for good, not retried.
    let notifier = roomcast_aws::notifier::ConnectionsNotifier::with_credentials(
        aws_sdk_apigatewaymanagement::config::SharedCredentialsProvider::new(Credentials::new(
            right.access_key_id(),
            "not-the-secret",
            right.session_token().map(str::to_owned),
            None,
            "test",
        )),
        "us-east-1",
        &gateway.connections_endpoint(),
        1,
    )
    .expect("a notifier");
    let sent = notifier
        .send(&ConnectionId::new(&id), br#"{"type":"notice","text":"badly signed"}"#)
        .await;
    assert!(matches!(sent, Err(NotifyError::Failed(_))), "{sent:?}");

    // None of them reached alice: the next frame she gets is the first signed one.
    sdk_client(&gateway, right)
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new(r#"{"type":"notice","text":"signed"}"#))
        .send()
        .await
        .expect("a signed post");
    assert_eq!(alice.next().await["text"], "signed");
    gateway.shutdown().await;
}
