//! The OpenAPI document (`functions/http-api/openapi.json`) against what the HTTP API does,
//! through the local gateway with embedded backends.
//!
//! - The gateway serves the repository's file byte for byte, without a token, and it is a
//!   sound OpenAPI 3.0 document: every `$ref` resolves, every schema compiles as JSON
//!   Schema, the error codes are exactly the protocol's.
//! - Its operations are exactly `roomcast_core::http::ROUTES`, the document's own route and
//!   the local gateway's `POST /api/dev/token`, each with its route's action and status.
//! - Real requests for every route's success and every way it can fail: each answer's
//!   status is one the document declares for that operation, and its body validates
//!   against the schema declared for that status; every declared status is produced by
//!   some request (but 503, see `conformance.rs`).
//! - schemathesis (installed by `scripts/install-deps`) generates requests from the
//!   document and checks every answer against it.
//!
//! By part: `openapi/document.rs` (and the [`document::Document`] the others read),
//! `api.rs` (the checked client and the cases), `conformance.rs` (the requests, as tables of
//! cases), `regressions.rs` (where the API once differed from the document) and
//! `schemathesis.rs`.

use std::time::Duration;

use roomcast_aws::config::Env;
use roomcast_local::settings::Settings;
use roomcast_local::Running;

use roomcast_tests::gateways::Mode;
use roomcast_tests::tokens::signed_in_auth;

mod api;
mod conformance;
mod document;
mod regressions;
mod schemathesis;

/// Longest wait for one HTTP answer: generous for a loaded CI machine, never hit when things
/// work.
const WAIT: Duration = Duration::from_secs(20);
/// Longest wait for a message, an edit or a delete to reach the history (kafka-archive
/// runs on the embedded log's batches).
const HISTORY_WAIT: Duration = Duration::from_secs(30);
/// Between two reads of a history page that did not show the change yet.
const POLL_PAUSE: Duration = Duration::from_millis(20);
/// The document's media type, the only one the API speaks.
const JSON: &str = "application/json";

/// The default local gateway: no key, so `POST /api/dev/token` signs tokens.
fn dev_settings() -> Settings {
    roomcast_tests::gateways::settings(Mode::Embedded, &[])
}

/// Sign-in `optional` with an HS256 secret: tokens of that secret, and no dev tokens.
fn signed_in_settings() -> Settings {
    let mut settings = roomcast_tests::gateways::settings(Mode::Embedded, &[]);
    settings.auth = signed_in_auth();
    settings
}

/// Starts a gateway with the functions' default environment.
async fn start(settings: Settings) -> Running {
    start_with(settings, &[]).await
}

/// [`start`] with more of the functions' environment.
async fn start_with(settings: Settings, variables: &[(&str, &str)]) -> Running {
    let env = Env::new(|name: &str| {
        variables
            .iter()
            .find(|(variable, _)| *variable == name)
            .map(|(_, value)| (*value).to_owned())
    });
    let config = env.domain().expect("the configuration");
    roomcast_local::start(settings, config, env.fan_out().expect("fan-out defaults"))
        .await
        .expect("gateway starts")
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("an HTTP client")
}

fn content_type(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}
