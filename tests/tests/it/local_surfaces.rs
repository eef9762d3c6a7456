//! What the local gateway lets in from a browser or another machine: a request whose
//! `Host` names someone else (a DNS rebinding page: its name now resolves to 127.0.0.1) is
//! refused on the HTTP API, the dev-token endpoint, the page and the WebSocket alike; a
//! gateway listening beyond loopback warns loudly and signs no dev tokens unless told to.
//! Against real gateways on free ports, with a real HTTP client and WebSocket client.

use std::time::Duration;

use clap::Parser;
use roomcast_local::settings::Settings;
use roomcast_local::Running;
use roomcast_tests::gateway_process::GatewayProcess;
use roomcast_tests::gateways::start;
use roomcast_tests::init_tracing;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

/// Longest wait for one answer: generous for a loaded CI machine.
const WAIT: Duration = Duration::from_secs(20);

async fn gateway(args: &[&str]) -> Running {
    init_tracing();
    let args = ["roomcast-local", "--batch-window-ms", "20"].iter().chain(args);
    start(Settings::parse_from(args)).await
}

/// `method path` on the gateway with `Host: host` (the connection goes to its address
/// whatever the name says, as after a rebinding); the status and the body.
async fn ask(gateway: &Running, method: &str, path: &str, host: &str, body: Option<Value>) -> (u16, String) {
    let client = reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("an HTTP client");
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    let mut request = client
        .request(method.clone(), format!("{}{path}", gateway.http_url()))
        .header("host", host);
    if path.starts_with("/api/rooms") {
        request = request.header("authorization", "Bearer not-a-token");
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Opens a WebSocket to the gateway with `Host: host`: the handshake's status.
async fn handshake(gateway: &Running, host: &str) -> u16 {
    let mut request = format!("{}/?name=rebound", gateway.ws_url())
        .into_client_request()
        .expect("a valid request");
    request
        .headers_mut()
        .insert("host", host.parse().expect("a header value"));
    let opened = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("the handshake ends within the wait");
    match opened {
        Ok((_, response)) => response.status().as_u16(),
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("{host}: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_host_headers_are_refused_on_every_surface() {
    let gateway = gateway(&["--listen", "127.0.0.1:0", "--allowed-host", "chat.test"]).await;
    let port = gateway.addr().port();
    let dev_token = || Some(json!({"nick": "mallory", "roles": ["admin"]}));

    for foreign in [
        format!("rebind.evil.test:{port}"),
        "rebind.evil.test".to_owned(),
        format!("localhost.evil.test:{port}"),
    ] {
        for (method, path, body) in [
            ("POST", "/api/dev/token", dev_token()),
            ("GET", "/api/rooms", None),
            ("GET", "/api/openapi.json", None),
            ("GET", "/", None),
            ("GET", "/app.js", None),
        ] {
            let (status, body) = ask(&gateway, method, path, &foreign, body).await;
            assert_eq!(status, 403, "{method} {path} for {foreign}: {body}");
            assert!(!body.contains("token\""), "no token leaves for {foreign}: {body}");
            let message: Value = serde_json::from_str(&body).expect("a JSON refusal");
            assert!(
                message["message"]
                    .as_str()
                    .is_some_and(|text| text.contains("--allowed-host")),
                "{body}"
            );
        }
        assert_eq!(handshake(&gateway, &foreign).await, 403, "{foreign}");
    }
    assert_eq!(gateway.live_connections(), 0, "no refused handshake made a connection");

    // Its own names: an IP address, localhost, and a name allowed at start.
    for own in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LocalHost.:{port}"),
        format!("chat.test:{port}"),
    ] {
        let (status, body) = ask(&gateway, "POST", "/api/dev/token", &own, dev_token()).await;
        assert_eq!(status, 200, "{own}: {body}");
        let (status, body) = ask(&gateway, "GET", "/", &own, None).await;
        assert_eq!(status, 200, "{own}: {body}");
        assert_eq!(handshake(&gateway, &own).await, 101, "{own}");
    }
    gateway.shutdown().await;
}

/// `POST /api/dev/token` for an admin token, as a client on this machine asks for it.
async fn signed(gateway: &Running) -> (u16, String) {
    let host = format!("127.0.0.1:{}", gateway.addr().port());
    let body = Some(json!({"nick": "mallory", "roles": ["admin"]}));
    ask(gateway, "POST", "/api/dev/token", &host, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_tokens_are_signed_beyond_loopback_only_when_asked_for() {
    let exposed = gateway(&["--listen", "0.0.0.0:0"]).await;
    assert!(!exposed.offers_dev_tokens());
    let (status, body) = signed(&exposed).await;
    assert_eq!(status, 404, "{body}");
    exposed.shutdown().await;

    let asked = gateway(&["--listen", "0.0.0.0:0", "--dev-tokens-beyond-loopback"]).await;
    assert!(asked.offers_dev_tokens());
    let (status, body) = signed(&asked).await;
    assert_eq!(status, 200, "{body}");
    asked.shutdown().await;

    let local = gateway(&["--listen", "127.0.0.1:0"]).await;
    assert!(local.offers_dev_tokens());
    assert_eq!(signed(&local).await.0, 200);
    local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_listening_beyond_loopback_warns_loudly() {
    init_tracing();
    let listen = |address: &str| {
        let port = roomcast_tests::process::free_port();
        vec!["--listen".to_owned(), format!("{address}:{port}")]
    };
    let mut exposed = GatewayProcess::start(&listen("0.0.0.0"), &[]).await;
    let said = exposed.output_text();
    assert!(said.contains("WARNING: the gateway listens on 0.0.0.0:"), "{said}");
    assert!(said.contains("dev tokens are off"), "{said}");
    exposed.terminate();
    assert!(exposed.wait(WAIT).await.success());

    let mut told = GatewayProcess::start(&listen("0.0.0.0"), &[("ROOMCAST_DEV_TOKENS_BEYOND_LOOPBACK", "true")]).await;
    let said = told.output_text();
    assert!(said.contains("any role (admin included)"), "{said}");
    told.terminate();
    assert!(told.wait(WAIT).await.success());

    let mut local = GatewayProcess::start(&listen("127.0.0.1"), &[]).await;
    let said = local.output_text();
    assert!(!said.contains("WARNING"), "{said}");
    local.terminate();
    assert!(local.wait(WAIT).await.success());
}
