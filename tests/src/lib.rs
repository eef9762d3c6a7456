//! The test harness: real backends started once per test process (moto's DynamoDB server,
//! a tansu Kafka broker) or named by the user, and helpers shared by the test files.
//!
//! Set `ROOMCAST_TEST_DYNAMODB_ENDPOINT` (e.g. LocalStack's `http://localhost:4566`) or
//! `ROOMCAST_TEST_KAFKA_BOOTSTRAP` to test against services you run yourself.

pub mod backends;
pub mod connections;
pub mod dynamo_requests;
pub mod events;
pub mod fault_proxy;
pub mod files;
pub mod gateway_process;
pub mod gateways;
pub mod http_client;
pub mod lambdas;
pub mod moto;
pub mod process;
pub mod tansu;
pub mod tokens;
pub mod ws_client;

/// Logs of the code under test, shown for failing tests (`RUST_LOG` to choose).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

/// The local gateway's flags for the real backends: moto's DynamoDB with a fresh table,
/// moto's S3 with a fresh bucket of attachments, tansu with a fresh topic and fresh
/// consumer groups for kafka-fanout and kafka-archive.
pub fn real_backend_args() -> Vec<String> {
    vec![
        "--dynamodb-endpoint".to_owned(),
        moto::endpoint().to_owned(),
        "--table".to_owned(),
        unique_name("roomcast"),
        "--kafka-bootstrap".to_owned(),
        tansu::bootstrap().to_owned(),
        "--topic".to_owned(),
        unique_name("events"),
        "--consumer-group".to_owned(),
        unique_name("fanout"),
        "--archive-consumer-group".to_owned(),
        unique_name("archive"),
        "--s3-endpoint".to_owned(),
        moto::endpoint().to_owned(),
        "--s3-bucket".to_owned(),
        unique_name("files"),
    ]
}

/// A name no other test in this run uses, for tables and topics.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}
