//! The DynamoDB API for tests: moto's server, started once per test process, or the
//! endpoint named by `ROOMCAST_TEST_DYNAMODB_ENDPOINT`. Each test gets its own table.

use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use roomcast_aws::dynamo::{ensure_table, DynamoStore};

use crate::process::{free_port, spawn_server};

pub const ENDPOINT_ENV: &str = "ROOMCAST_TEST_DYNAMODB_ENDPOINT";

const INSTALL_HINT: &str = "Install it with: pip install 'moto[server]' \
     (or set ROOMCAST_TEST_DYNAMODB_ENDPOINT to a DynamoDB-compatible endpoint)";

/// The endpoint URL of the DynamoDB API under test.
pub fn endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        if let Some(url) = std::env::var(ENDPOINT_ENV).ok().filter(|url| !url.is_empty()) {
            return url;
        }
        let port = free_port();
        let args = ["-H", "127.0.0.1", "-p", &port.to_string()].map(str::to_owned);
        spawn_server("moto_server", &args, port, INSTALL_HINT);
        format!("http://127.0.0.1:{port}")
    })
}

/// A client for [`endpoint`]: fixed test credentials, us-east-1, and timeouts so a stuck
/// server fails the test instead of hanging it. Builds no connection.
pub fn client() -> aws_sdk_dynamodb::Client {
    client_of(endpoint())
}

/// [`client`], of another endpoint (a proxy in front of moto).
fn client_of(endpoint: &str) -> aws_sdk_dynamodb::Client {
    // moto is single-process Python: generous per attempt, bounded per operation.
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(20))
        .operation_timeout(Duration::from_secs(60))
        .build();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "roomcast-tests"))
        .endpoint_url(endpoint)
        .timeout_config(timeouts)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A client of `endpoint` (moto behind a fault proxy) with the timeouts and retries the
/// functions have in AWS by default (3 attempts of 3 s, 10 s per operation).
pub fn client_as_deployed(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "roomcast-tests"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// The address of [`endpoint`], for a proxy in front of it.
pub fn addr() -> std::net::SocketAddr {
    let authority = endpoint().trim_start_matches("http://").trim_end_matches('/');
    std::net::ToSocketAddrs::to_socket_addrs(authority)
        .ok()
        .and_then(|mut addrs| addrs.next())
        .unwrap_or_else(|| panic!("{} is not host:port", endpoint()))
}

/// How many transactions a test may run at once on one table. moto copies the whole table
/// at the start of every transaction and fails with HTTP 500 ("dictionary changed size
/// during iteration") when another request writes to it meanwhile, so against moto they
/// go one at a time; an endpoint of your own is trusted with 25. (A test can let its calls
/// race instead with [`fresh_store_one_request_at_a_time`].)
pub fn transactions_in_flight() -> usize {
    if std::env::var(ENDPOINT_ENV).is_ok_and(|url| !url.is_empty()) {
        25
    } else {
        1
    }
}

/// A store on a new table of its own.
pub async fn fresh_store() -> DynamoStore {
    store_of(client()).await
}

/// A store on a new table of its own, reached through a proxy that forwards one request at
/// a time ([`crate::dynamo_requests::start_one_at_a_time`]): calls made at once race as they
/// would on DynamoDB (each request whole, their requests interleaved), without moto's 500s.
pub async fn fresh_store_one_request_at_a_time() -> DynamoStore {
    let (proxy, _tally) = crate::dynamo_requests::start_one_at_a_time().await;
    store_of(client_of(&format!("http://{proxy}"))).await
}

/// A store on a new table of its own, reached through a proxy that counts every request
/// ([`crate::dynamo_requests::start`]), for a test of what an operation costs. The tally
/// starts empty (the table's creation is not in it).
pub async fn fresh_store_counted() -> (DynamoStore, crate::dynamo_requests::Tally) {
    let (proxy, tally) = crate::dynamo_requests::start().await;
    let store = store_of(client_of(&format!("http://{proxy}"))).await;
    tally.take();
    (store, tally)
}

async fn store_of(client: aws_sdk_dynamodb::Client) -> DynamoStore {
    let table = crate::unique_name("roomcast");
    ensure_table(&client, &table)
        .await
        .unwrap_or_else(|error| panic!("cannot create table {table} at {}: {error:?}", endpoint()));
    DynamoStore::new(client, table)
}

/// The attachments' store on a new bucket of its own, on moto's S3 API (path-style: moto
/// has no bucket subdomains). moto serves presigned PUTs and GETs but checks no signature.
pub async fn fresh_files() -> roomcast_aws::files::S3Files {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            Credentials::new("test", "test", None, None, "roomcast-tests"),
        ))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .build();
    let bucket = crate::unique_name("files").to_lowercase();
    let files = roomcast_aws::files::S3Files::new(roomcast_aws::files::s3_client(&sdk, Some(endpoint())), &bucket);
    files
        .ensure_bucket()
        .await
        .unwrap_or_else(|error| panic!("cannot create bucket {bucket} at {}: {error:?}", endpoint()));
    files
}
