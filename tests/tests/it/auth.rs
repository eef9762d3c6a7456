//! Sign-in through the local gateway with real WebSocket clients: the gateway runs
//! ws-authorizer before `$connect` as API Gateway does (401 on a refused token), and the
//! user the token names is the connection's user in later frames (`whoami`).

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::signature::KeyPair;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use roomcast_core::config::AuthMode;
use roomcast_local::Running;
use roomcast_tests::gateways::{settings, start, Mode};
use roomcast_tests::tokens::{alg_none, hs256, now_secs as now, sign, token_for, SECRET};
use roomcast_tests::ws_client::Client;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite;

const ISSUER: &str = "https://issuer.roomcast.test";
const AUDIENCE: &str = "roomcast-test";

/// Sign-in settings as `ROOMCAST_AUTH=mode` with `ROOMCAST_JWT_SECRET` and
/// `ROOMCAST_JWT_ISSUER` would give.
fn hs256_auth(mode: AuthMode) -> ws_authorizer::Settings {
    let mut auth = roomcast_tests::tokens::hs256_auth(mode);
    auth.issuer = Some(ISSUER.to_owned());
    auth.audience = vec![AUDIENCE.to_owned()];
    auth
}

/// A gateway on a free port with the embedded backends and `auth`, passed in (no
/// process environment).
async fn gateway(auth: ws_authorizer::Settings) -> Running {
    let mut settings = settings(Mode::Embedded, &[]);
    settings.auth = auth;
    start(settings).await
}

/// Opens a WebSocket to the gateway with `query` and extra `headers`.
async fn open(gateway: &Running, query: &str, headers: &[(&str, &str)]) -> Result<Client, tungstenite::Error> {
    Client::try_open(gateway, query, headers, query).await
}

/// The HTTP status a refused handshake answered.
async fn refused_status(gateway: &Running, query: &str, headers: &[(&str, &str)]) -> u16 {
    Client::refused_status(gateway, query, headers).await
}

/// Sends `whoami` and returns the answer.
async fn whoami(client: &mut Client) -> Value {
    client.ask(json!({"action": "whoami"})).await
}

/// A token the gateway of `hs256_auth` accepts.
fn valid_token(user: &str, nick: &str, roles: &[&str]) -> String {
    token_for(&hs256_auth(AuthMode::Required), user, nick, roles)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tokens_fail_the_handshake_with_401() {
    let gateway = gateway(hs256_auth(AuthMode::Required)).await;
    let good = json!({"sub": "u-mallory", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600});
    let mut expired = good.clone();
    expired["exp"] = json!(now() - 3600);
    let mut not_yet = good.clone();
    not_yet["nbf"] = json!(now() + 3600);
    let mut wrong_issuer = good.clone();
    wrong_issuer["iss"] = json!("https://evil.example");
    let mut wrong_audience = good.clone();
    wrong_audience["aud"] = json!("another-app");
    let bad_signature = sign(
        Algorithm::HS256,
        None,
        &good,
        &EncodingKey::from_secret(b"not-the-gateway-secret-but-32-bytes-long"),
    );
    let alg_none = alg_none(&good);
    let cases = [
        ("bad signature", bad_signature),
        ("expired", hs256(SECRET, &expired)),
        ("not yet valid", hs256(SECRET, &not_yet)),
        ("wrong issuer", hs256(SECRET, &wrong_issuer)),
        ("wrong audience", hs256(SECRET, &wrong_audience)),
        ("alg none", alg_none),
        ("garbage", "not-a-jwt".to_owned()),
    ];
    // The same claims, rightly signed, get in: each case fails for its one reason.
    let _accepted = open(&gateway, &format!("?token={}", hs256(SECRET, &good)), &[])
        .await
        .expect("the good claims sign in");
    for (case, token) in &cases {
        assert_eq!(
            refused_status(&gateway, &format!("?token={token}&name=mallory"), &[]).await,
            401,
            "{case}"
        );
        let bearer = format!("Bearer {token}");
        assert_eq!(
            refused_status(&gateway, "", &[("Authorization", &bearer)]).await,
            401,
            "{case} (header)"
        );
    }
    // Nothing refused got as far as `$connect`.
    assert_eq!(gateway.live_connections(), 1);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_in_the_query_or_header_is_the_connections_user() {
    let gateway = gateway(hs256_auth(AuthMode::Required)).await;

    let token = valid_token("u-alice", "alice", &["admin", "ops"]);
    let mut alice = open(&gateway, &format!("?token={token}"), &[])
        .await
        .expect("alice connects");
    let me = whoami(&mut alice).await;
    assert_eq!(me["type"], "whoami", "{me}");
    assert_eq!(me["userId"], "u-alice", "{me}");
    assert_eq!(me["nick"], "alice", "{me}");
    assert_eq!(me["roles"], json!(["admin", "ops"]), "{me}");

    let bearer = format!("Bearer {}", valid_token("u-bob", "bob", &[]));
    let mut bob = open(&gateway, "", &[("Authorization", &bearer)])
        .await
        .expect("bob connects");
    let me = whoami(&mut bob).await;
    assert_eq!(me["userId"], "u-bob", "{me}");
    assert_eq!(me["nick"], "bob", "{me}");
    assert_eq!(me["roles"], json!([]), "{me}");

    // The signed-in user is the user of every later frame, not only of `$connect`.
    assert_eq!(whoami(&mut alice).await["userId"], "u-alice");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_mode_without_a_token_is_refused_with_401() {
    let gateway = gateway(hs256_auth(AuthMode::Required)).await;
    assert_eq!(refused_status(&gateway, "?name=alice", &[]).await, 401);
    assert_eq!(refused_status(&gateway, "?token=&name=alice", &[]).await, 401);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_mode_without_a_token_is_anonymous() {
    let gateway = gateway(hs256_auth(AuthMode::Optional)).await;

    let mut guest = open(&gateway, "?name=carol", &[])
        .await
        .expect("an anonymous connection");
    let me = whoami(&mut guest).await;
    assert_eq!(me["nick"], "carol", "{me}");
    let user_id = me["userId"].as_str().expect("a userId");
    assert!(user_id.starts_with("anon-"), "{me}");
    assert_eq!(me["roles"], json!([]), "{me}");

    // A token, when given, is used — and a bad one is still refused.
    let token = valid_token("u-dave", "dave", &[]);
    let mut dave = open(&gateway, &format!("?token={token}"), &[])
        .await
        .expect("dave connects");
    assert_eq!(whoami(&mut dave).await["userId"], "u-dave");
    let expired = hs256(SECRET, &json!({"sub": "u-dave", "iss": ISSUER, "exp": now() - 3600}));
    assert_eq!(refused_status(&gateway, &format!("?token={expired}"), &[]).await, 401);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sign_in_the_authorizer_does_not_run() {
    let gateway = gateway(ws_authorizer::Settings::new(AuthMode::None)).await;
    let mut erin = open(&gateway, "?name=erin&token=not-a-jwt", &[])
        .await
        .expect("erin connects");
    let me = whoami(&mut erin).await;
    assert_eq!(me["nick"], "erin", "{me}");
    assert!(me["userId"].as_str().is_some_and(|id| id.starts_with("anon-")), "{me}");
    gateway.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// RS256 from a JWKS, and the algorithm-confusion attack on it

/// An HTTP server on 127.0.0.1 serving `jwks` at `/jwks.json`.
async fn serve_jwks(jwks: Value) -> String {
    let jwks = Arc::new(jwks);
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json((*jwks).clone()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{address}/jwks.json")
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<String> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_from_a_jwks_signs_in_and_hs256_with_the_public_key_is_refused() {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("an RSA key");
    let pkcs8 = AsDer::<Pkcs8V1Der>::as_der(&pair).expect("PKCS#8");
    let signing = EncodingKey::from_rsa_pem(pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes()).expect("a signing key");
    let public = AsDer::<PublicKeyX509Der>::as_der(pair.public_key()).expect("a public key");
    let public_pem = pem("PUBLIC KEY", public.as_ref());
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&signing, Algorithm::RS256).expect("a JWK");
    jwk.common.key_id = Some("key-1".to_owned());
    let url = serve_jwks(json!({ "keys": [jwk] })).await;

    let mut auth = ws_authorizer::Settings::new(AuthMode::Required);
    auth.jwks_url = Some(url);
    auth.issuer = Some(ISSUER.to_owned());
    auth.roles_claim = "cognito:groups".to_owned();
    let gateway = gateway(auth).await;
    let claims = json!({
        "sub": "u-frank",
        "iss": ISSUER,
        "exp": now() + 600,
        "preferred_username": "frank",
        "cognito:groups": ["admin"]
    });

    let token = sign(Algorithm::RS256, Some("key-1"), &claims, &signing);
    let mut frank = open(&gateway, &format!("?token={token}"), &[])
        .await
        .expect("frank connects");
    let me = whoami(&mut frank).await;
    assert_eq!(me["userId"], "u-frank", "{me}");
    assert_eq!(me["nick"], "frank", "{me}");
    assert_eq!(me["roles"], json!(["admin"]), "{me}");

    // The public key as an HMAC secret: the classic confusion. HS256 is not accepted with
    // a JWKS, whatever key the token names.
    for kid in [None, Some("key-1")] {
        let confused = sign(
            Algorithm::HS256,
            kid,
            &claims,
            &EncodingKey::from_secret(public_pem.as_bytes()),
        );
        assert_eq!(refused_status(&gateway, &format!("?token={confused}"), &[]).await, 401);
    }
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_into_the_jwks_is_fetched_for_its_unknown_kid() {
    let old = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("an RSA key");
    let new = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("an RSA key");
    let signing = |pair: &aws_lc_rs::rsa::KeyPair| {
        let pkcs8 = AsDer::<Pkcs8V1Der>::as_der(pair).expect("PKCS#8");
        EncodingKey::from_rsa_pem(pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes()).expect("a signing key")
    };
    let (old_key, new_key) = (signing(&old), signing(&new));
    let jwk = |key: &EncodingKey, kid: &str| {
        let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(key, Algorithm::RS256).expect("a JWK");
        jwk.common.key_id = Some(kid.to_owned());
        jwk
    };
    // The issuer's key set, which the test rotates while the gateway runs.
    let keys = Arc::new(std::sync::Mutex::new(json!({ "keys": [jwk(&old_key, "old")] })));
    let served = keys.clone();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let jwks = served.lock().unwrap().clone();
            async move { axum::Json(jwks) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let mut auth = ws_authorizer::Settings::new(AuthMode::Required);
    auth.jwks_url = Some(format!("http://{address}/jwks.json"));
    auth.issuer = Some(ISSUER.to_owned());
    // Every unknown kid may refetch at once: the rotation is not held back by the limit.
    auth.jwks_min_refetch = Duration::ZERO;
    let gateway = gateway(auth).await;
    let claims =
        |user: &str| json!({"sub": user, "iss": ISSUER, "exp": now() + 600, "nickname": user.trim_start_matches("u-")});

    let mut before = open(
        &gateway,
        &format!(
            "?token={}",
            sign(Algorithm::RS256, Some("old"), &claims("u-gina"), &old_key)
        ),
        &[],
    )
    .await
    .expect("a token of the cached key signs in");
    assert_eq!(whoami(&mut before).await["userId"], "u-gina");
    let rotated = sign(Algorithm::RS256, Some("new"), &claims("u-hugo"), &new_key);
    assert_eq!(
        refused_status(&gateway, &format!("?token={rotated}"), &[]).await,
        401,
        "a kid the issuer does not publish yet"
    );
    *keys.lock().unwrap() = json!({ "keys": [jwk(&old_key, "old"), jwk(&new_key, "new")] });
    let mut after = open(&gateway, &format!("?token={rotated}"), &[])
        .await
        .expect("the rotated key is fetched for its kid");
    assert_eq!(whoami(&mut after).await["userId"], "u-hugo");
    gateway.shutdown().await;
}
