//! The chat page (`web/`) in a real browser: `node --test` drives Debian's Chromium with
//! playwright-core (both installed by `scripts/install-deps`) against the gateway serving
//! the page at `/`. The scenarios are in `web/tests/`: `chat.test.mjs` (anonymous over the
//! WebSocket and polling with a dev token, as after `cargo run`) on the embedded backends
//! and on moto + tansu, `signed-in.test.mjs` (tokens) with sign-in on, and
//! `conversations.test.mjs` (direct conversations, tokens) with sign-in on both backends,
//! `files.test.mjs` (attachments) on the embedded backends.
//! Their screenshots go to `target/tmp/screenshots/<run>/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use roomcast_local::Running;
use roomcast_tests::gateways::{settings, start, Mode};
use roomcast_tests::init_tracing;
use roomcast_tests::tokens::{signed_in_auth, signed_token};

/// Longest the browser scenarios may take before the test gives up on them (about a
/// minute when things work).
const BROWSER_WAIT: Duration = Duration::from_secs(600);

const INSTALL_HINT: &str = "the browser tests need Node.js, Debian's chromium and web/node_modules \
     (npm ci in web/): `bash scripts/install-deps` installs them";

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../web")
}

fn chromium() -> PathBuf {
    std::env::var_os("ROOMCAST_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// The gateway the person after `cargo run` gets (or with sign-in `auth`), on `mode`'s
/// backends: an edit sent right after a message's ack is checked against the log, however
/// far behind the archive is under CI's load.
async fn gateway(mode: Mode, auth: Option<ws_authorizer::Settings>) -> Running {
    let mut settings = settings(mode, &[]);
    if let Some(auth) = auth {
        settings.auth = auth;
    }
    start(settings).await
}

/// Runs the scenarios of `web/tests/{scenarios}` against `gateway` with `env` (screenshots
/// under `run`), and stops the gateway.
async fn run_scenarios(gateway: Running, scenarios: &str, run: &str, env: &[(&str, String)]) {
    init_tracing();
    let web = web_dir();
    assert!(
        web.join("node_modules/playwright-core/package.json").exists(),
        "web/node_modules/playwright-core is missing: {INSTALL_HINT}"
    );
    assert!(
        chromium().exists(),
        "{} is missing: {INSTALL_HINT}",
        chromium().display()
    );
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots").join(run);
    let mut command = tokio::process::Command::new("node");
    command
        .args(["--test", "--test-reporter=spec", &format!("tests/{scenarios}")])
        .envs(env.iter().map(|(name, value)| (name, value)))
        .current_dir(&web)
        .env("ROOMCAST_PAGE_URL", format!("{}/", gateway.http_url()))
        .env("ROOMCAST_CONNECTIONS_URL", gateway.connections_endpoint())
        .env("ROOMCAST_FRESH_GATEWAY", "1")
        .env("ROOMCAST_SCREENSHOTS", &screenshots)
        .env("ROOMCAST_CHROMIUM", chromium())
        .kill_on_drop(true);
    let started = std::time::Instant::now();
    let output = tokio::time::timeout(BROWSER_WAIT, command.output())
        .await
        .unwrap_or_else(|_| panic!("the browser scenarios still run after {BROWSER_WAIT:?}"))
        .unwrap_or_else(|error| panic!("cannot run node: {error}; {INSTALL_HINT}"));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    gateway.shutdown().await;
    assert!(
        output.status.success(),
        "the browser scenarios {scenarios} failed ({run}: {}); screenshots in {}:\n{report}",
        output.status,
        screenshots.display()
    );
    println!(
        "browser scenarios {scenarios} ({run}) passed in {:.1} s; screenshots in {}\n{report}",
        started.elapsed().as_secs_f64(),
        screenshots.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_works_in_a_browser_on_the_embedded_backends() {
    run_scenarios(gateway(Mode::Embedded, None).await, "chat.test.mjs", "embedded", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_works_in_a_browser_on_moto_and_tansu() {
    run_scenarios(gateway(Mode::Real, None).await, "chat.test.mjs", "real", &[]).await;
}

/// Attachments on the embedded backends, whose file store the gateway serves at the page's
/// own origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_attaches_files_in_both_modes() {
    run_scenarios(gateway(Mode::Embedded, None).await, "files.test.mjs", "files", &[]).await;
}

/// The same on moto's S3, another origin: the page's policy names it, and the gateway lets
/// the page's origin use the bucket (CORS), as the template does for a deployed page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_attaches_files_on_moto_s3() {
    let on_moto = [("ROOMCAST_FILES_ON_MOTO", "1".to_owned())];
    run_scenarios(gateway(Mode::Real, None).await, "files.test.mjs", "files-s3", &on_moto).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_signs_in_with_tokens() {
    let gateway = gateway(Mode::Embedded, Some(signed_in_auth())).await;
    let tokens = [
        ("ROOMCAST_TOKEN_ALICE", signed_token("u-alice", "alice", &[])),
        ("ROOMCAST_TOKEN_BOB", signed_token("u-bob", "bob", &[])),
    ];
    run_scenarios(gateway, "signed-in.test.mjs", "signed-in", &tokens).await;
}

/// `conversations.test.mjs` on `mode`'s backends, with sign-in on: alice, bob and carol
/// each have a token, so a message can wait for one of them.
async fn run_conversations(mode: Mode, run: &str) {
    let gateway = gateway(mode, Some(signed_in_auth())).await;
    let tokens = [
        ("ROOMCAST_TOKEN_ALICE", signed_token("u-alice", "alice", &[])),
        ("ROOMCAST_TOKEN_BOB", signed_token("u-bob", "bob", &[])),
        ("ROOMCAST_TOKEN_CAROL", signed_token("u-carol", "carol", &[])),
    ];
    run_scenarios(gateway, "conversations.test.mjs", run, &tokens).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_lists_direct_conversations_on_the_embedded_backends() {
    run_conversations(Mode::Embedded, "conversations-embedded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_lists_direct_conversations_on_moto_and_tansu() {
    run_conversations(Mode::Real, "conversations-real").await;
}
