//! The AWS SDK clients trust compiled-in roots and read no certificate file (issue 25, P4):
//! the local gateway, whose SDK clients come from the functions' own loader
//! (`roomcast_aws::config::sdk_config_loader`), starts and serves on moto's DynamoDB with
//! `SSL_CERT_FILE` naming a FIFO that nobody writes to. A process that opened it to read
//! the roots, as the SDK's default HTTPS client did, would wait there for ever: the gateway
//! would never listen.

use std::path::PathBuf;

use roomcast_tests::gateway_process::GatewayProcess;
use roomcast_tests::http_client::HttpApi;
use roomcast_tests::{moto, unique_name};
use serde_json::json;

/// A directory holding a FIFO named like provided.al2023's bundle, and an empty directory
/// for `SSL_CERT_DIR`; removed when dropped.
struct NoRoots {
    directory: PathBuf,
}

impl NoRoots {
    fn new() -> Self {
        let directory = std::env::temp_dir().join(unique_name("no-roots"));
        std::fs::create_dir_all(directory.join("certs")).expect("a temporary directory");
        let made = std::process::Command::new("mkfifo")
            .arg(directory.join("ca-bundle.crt"))
            .status()
            .expect("mkfifo runs");
        assert!(made.success(), "mkfifo failed");
        Self { directory }
    }

    fn bundle(&self) -> String {
        self.directory.join("ca-bundle.crt").display().to_string()
    }

    fn certificate_directory(&self) -> String {
        self.directory.join("certs").display().to_string()
    }
}

impl Drop for NoRoots {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_clients_reach_dynamodb_without_reading_a_certificate_file() {
    let no_roots = NoRoots::new();
    let table = unique_name("roots");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--dynamodb-endpoint",
        moto::endpoint(),
        "--table",
        &table,
    ]
    .map(str::to_owned);
    let (bundle, directory) = (no_roots.bundle(), no_roots.certificate_directory());
    // Listening means the table was created or found through the SDK's DynamoDB client.
    let mut gateway = GatewayProcess::start(&args, &[("SSL_CERT_FILE", &bundle), ("SSL_CERT_DIR", &directory)]).await;

    // And it keeps working: a room created and listed, through DynamoDB.
    let api = HttpApi::new(gateway.ws_url().replacen("ws://", "http://", 1));
    let token = api
        .call("POST", "/api/dev/token", None, Some(r#"{"nick":"alice"}"#))
        .await;
    assert_eq!(token.status, 200, "{token:?}");
    let token = token.body["token"].as_str().expect("a token").to_owned();
    let created = api
        .call("POST", "/api/rooms", Some(&token), Some(r#"{"room":"rooted"}"#))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let rooms = api.call("GET", "/api/rooms", Some(&token), None).await;
    assert!(
        rooms.body["rooms"]
            .as_array()
            .is_some_and(|rooms| rooms.contains(&json!({ "name": "rooted" }))),
        "{rooms:?}"
    );
    gateway.kill().await;
}
