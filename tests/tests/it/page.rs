//! The local gateway serves the chat page (`web/`) at `/` to a plain GET, while a WebSocket
//! upgrade on `/` still goes through `$connect`. The gateway's list of the page's files
//! (`page::FILES`) is checked against what the page loads and what docs/chat-page.md names.
//! What the page does in a browser is in `browser.rs`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use roomcast_tests::gateways::{gateway, Mode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(20);

/// The page's files, from the gateway's one list of them ([`roomcast_local::page::FILES`]):
/// (path served, file in `web/`).
fn page() -> impl Iterator<Item = (&'static str, &'static str)> {
    roomcast_local::page::FILES.iter().map(|(path, _, _)| {
        let file = if *path == "/" {
            "index.html"
        } else {
            path.trim_start_matches('/')
        };
        (*path, file)
    })
}

/// The media type a file of the page is served as, by its kind.
fn media_type(file: &str) -> &'static str {
    match file.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        _ => panic!("{file} is of no kind the page has"),
    }
}

fn web_file(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web").join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

async fn get(url: &str) -> reqwest::Response {
    let client = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {url}: {error}"))
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_of_the_page_is_served_as_the_repository_has_it() {
    let gateway = gateway(Mode::Embedded).await;
    for (path, file) in page() {
        let response = get(&format!("{}{path}", gateway.http_url())).await;
        assert_eq!(response.status(), 200, "GET {path}");
        assert_eq!(header(&response, "content-type"), media_type(file), "GET {path}");
        assert_eq!(header(&response, "cache-control"), "no-cache", "GET {path}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff", "GET {path}");
        let policy = header(&response, "content-security-policy").to_owned();
        for directive in [
            "script-src 'self'",
            "style-src 'self'",
            // The gateway serves the page, its WebSocket and its HTTP API on one origin.
            "connect-src 'self';",
        ] {
            assert!(
                policy.contains(directive),
                "GET {path}: {directive} missing from {policy}"
            );
        }
        assert_eq!(response.bytes().await.unwrap(), web_file(file), "GET {path}");
    }
    gateway.shutdown().await;
}

/// What the page's files load: `src="..."`/`href="..."` in the HTML, `from "./..."` in the
/// scripts.
fn references(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for marker in ["src=\"", "href=\"", "from \"./"] {
        for (at, _) in text.match_indices(marker) {
            let rest = &text[at + marker.len()..];
            let reference = &rest[..rest.find('"').unwrap_or(rest.len())];
            if !reference.contains(':') && !reference.starts_with('#') {
                found.insert(format!("/{}", reference.trim_start_matches("./")));
            }
        }
    }
    found
}

/// Every file the page loads: `index.html`, what it loads, and so on.
fn loaded_by_the_page() -> BTreeSet<String> {
    let mut loaded = BTreeSet::from(["/index.html".to_owned()]);
    let mut unread = vec!["/index.html".to_owned()];
    while let Some(path) = unread.pop() {
        for reference in references(&String::from_utf8(web_file(path.trim_start_matches('/'))).unwrap()) {
            if loaded.insert(reference.clone()) {
                unread.push(reference);
            }
        }
    }
    loaded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_exactly_what_the_page_loads() {
    let gateway = gateway(Mode::Embedded).await;
    let loaded = loaded_by_the_page();
    // A module the page is split into, as a sample: the crawl reaches past app.js.
    assert!(loaded.contains("/state.js"), "the page loads {loaded:?}");
    for path in &loaded {
        let response = get(&format!("{}{path}", gateway.http_url())).await;
        assert_eq!(response.status(), 200, "the page loads {path}, which is not served");
    }
    let served: BTreeSet<String> = page()
        .map(|(path, _)| path)
        .filter(|path| *path != "/")
        .map(str::to_owned)
        .collect();
    assert_eq!(
        served, loaded,
        "the gateway's list of the page's files is what the page loads"
    );
    gateway.shutdown().await;
}

#[test]
fn the_docs_name_every_file_of_the_page() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/chat-page.md");
    let docs = std::fs::read_to_string(&docs).unwrap_or_else(|error| panic!("{}: {error}", docs.display()));
    for (_, file) in page() {
        assert!(
            docs.contains(&format!("`{file}`")),
            "docs/chat-page.md does not name `{file}`"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_get_connects_nobody_and_an_upgrade_on_slash_still_connects() {
    let gateway = gateway(Mode::Embedded).await;
    // Had the GET gone through `$connect`, it would hold the nickname alice.
    let page = get(&format!("{}/?name=alice", gateway.http_url())).await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.bytes().await.unwrap(), web_file("index.html"));
    assert_eq!(gateway.live_connections(), 0);

    let (mut socket, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async(format!("{}/?name=alice", gateway.ws_url())),
    )
    .await
    .expect("the handshake is answered")
    .expect("alice connects on /");
    socket
        .send(Message::text(json!({"action": "whoami"}).to_string()))
        .await
        .unwrap();
    let reply = tokio::time::timeout(WAIT, socket.next())
        .await
        .expect("an answer")
        .expect("a frame")
        .expect("a good frame");
    let reply: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
    assert_eq!(reply["type"], "whoami");
    assert_eq!(reply["nick"], "alice");
    assert_eq!(gateway.live_connections(), 1);
    socket.close(None).await.unwrap();
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_paths_are_not_the_page() {
    let gateway = gateway(Mode::Embedded).await;
    for path in ["/nope.js", "/web/app.js", "/tests/chat.test.mjs", "/package.json"] {
        let response = get(&format!("{}{path}", gateway.http_url())).await;
        assert!(
            !response.status().is_success(),
            "GET {path} answered {}",
            response.status()
        );
    }
    let document = get(&format!("{}/api/openapi.json", gateway.http_url())).await;
    assert_eq!(document.status(), 200);
    assert!(header(&document, "content-type").starts_with("application/json"));
    gateway.shutdown().await;
}
