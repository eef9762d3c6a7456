//! What the authorizer's tests share: API Gateway's `$connect` authorizer event, tokens
//! signed with keys generated here, and a JWKS served over HTTP on 127.0.0.1 whose keys,
//! availability and redirects a test changes as it goes.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};
use ws_authorizer::{AuthMode, Authorizer, HmacKey, Reason, Request, Secret, Settings, Unauthorized};

pub const METHOD_ARN: &str = "arn:aws:execute-api:eu-west-1:123456789012:abcdef123/test/$connect";
pub const SECRET: &[u8] = b"a-test-secret-of-at-least-32-bytes-long!";
/// How long any single authorization may take in these tests, JWKS timeouts included.
pub const BOUND: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Events, settings, tokens

/// A REQUEST authorizer event for `$connect` as API Gateway sends it (the shape of
/// aws_lambda_events' websocket fixture), with `query` and `headers`.
pub fn event(query: &[(&str, &str)], headers: &[(&str, &str)]) -> Request {
    let single = |pairs: &[(&str, &str)]| -> Map<String, Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect()
    };
    let multi = |pairs: &[(&str, &str)]| -> Map<String, Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), json!([v]))).collect()
    };
    serde_json::from_value(json!({
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": single(headers),
        "multiValueHeaders": multi(headers),
        "queryStringParameters": single(query),
        "multiValueQueryStringParameters": multi(query),
        "requestContext": {
            "apiId": "abcdef123",
            "connectedAt": 1655103417248u64,
            "connectionId": "Zx0abcDEFgoAcdE=",
            "domainName": "abcdef123.execute-api.eu-west-1.amazonaws.com",
            "eventType": "CONNECT",
            "extendedRequestId": "Zx0abcDEFgoAcdE=",
            "identity": {"sourceIp": "1.2.3.4", "userAgent": "test"},
            "messageDirection": "IN",
            "requestId": "Zx0abcDEFgoAcdE=",
            "requestTime": "13/Jun/2022:06:56:57 +0000",
            "requestTimeEpoch": 1655103417249u64,
            "routeKey": "$connect",
            "stage": "test"
        },
        "stageVariables": {}
    }))
    .expect("a valid authorizer event")
}

pub fn with_token(token: &str) -> Request {
    event(&[("token", token)], &[])
}

pub fn hs256_settings(mode: AuthMode) -> Settings {
    let mut settings = Settings::new(mode);
    settings.hmac = Some(HmacKey::Secret(Secret::new(SECRET)));
    settings
}

pub fn authorizer(settings: Settings) -> Authorizer {
    Authorizer::new(settings).expect("valid settings")
}

pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// The issuer of the tokens [`claims`] makes, which [`jwks_settings`] expects.
pub const ISSUER: &str = "https://issuer.test/pool";

/// Claims for `sub` from [`ISSUER`] valid for an hour, plus `extra` (which may replace
/// any of them).
pub fn claims(sub: &str, extra: Value) -> Value {
    let mut claims = json!({"sub": sub, "iss": ISSUER, "iat": now(), "exp": now() + 3600});
    if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra) {
        claims.extend(extra);
    }
    claims
}

pub fn hs256(claims: &Value) -> String {
    sign(Algorithm::HS256, None, claims, &EncodingKey::from_secret(SECRET))
}

pub fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("signing works")
}

/// Runs the handler with a bound on how long it may take.
pub async fn run(authorizer: &Authorizer, request: &Request) -> Result<Value, Unauthorized> {
    let outcome = tokio::time::timeout(BOUND, ws_authorizer::handle(authorizer, request))
        .await
        .expect("the authorizer answers within the bound");
    outcome.map(|response| serde_json::to_value(response).expect("the response serializes"))
}

pub async fn allowed(authorizer: &Authorizer, request: &Request) -> Value {
    match run(authorizer, request).await {
        Ok(response) => response,
        Err(refused) => panic!("expected Allow, got {:?}", refused.reason()),
    }
}

pub async fn refused(authorizer: &Authorizer, request: &Request) -> Unauthorized {
    match run(authorizer, request).await {
        Ok(response) => panic!("expected Unauthorized, got {response}"),
        Err(refused) => {
            assert_eq!(refused.to_string(), "Unauthorized");
            assert!(
                std::error::Error::source(&refused).is_some(),
                "Unauthorized keeps its reason as its source"
            );
            refused
        }
    }
}

pub fn rejected_kind(reason: &Reason) -> &ErrorKind {
    match reason {
        Reason::Rejected { source, .. } => source.kind(),
        other => panic!("expected a rejected token, got {other:?}"),
    }
}

/// Asserts the Allow policy on the method ARN and returns (principalId, context).
pub fn policy_and_context(response: &Value) -> (String, Value) {
    assert_eq!(
        response["policyDocument"],
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Action": ["execute-api:Invoke"],
                "Effect": "Allow",
                "Resource": [METHOD_ARN]
            }]
        }),
        "{response}"
    );
    let principal = response["principalId"].as_str().expect("a principalId").to_owned();
    (principal, response["context"].clone())
}

// ---------------------------------------------------------------------------------------
// A JWKS server

/// Serves a JWKS at `url`, one that never answers at `/slow`, and redirects to any URL at
/// `/redirect?to=<url>`.
pub struct JwksServer {
    pub url: String,
    /// `http://127.0.0.1:<port>`.
    pub origin: String,
    keys: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

#[derive(Clone)]
pub struct ServerState {
    keys: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

/// The set, or 503 while the server is "down" (each counted as a hit).
pub async fn serve_jwks(State(state): State<ServerState>) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    if state.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let keys = state.keys.lock().expect("not poisoned").clone();
    Json(keys).into_response()
}

pub async fn redirect(Query(query): Query<HashMap<String, String>>) -> Response {
    let to = query.get("to").cloned().unwrap_or_default();
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

pub async fn serve_slowly() -> Json<Value> {
    tokio::time::sleep(Duration::from_secs(60)).await;
    Json(json!({"keys": []}))
}

impl JwksServer {
    pub async fn start(jwks: Value) -> Self {
        let keys = Arc::new(Mutex::new(jwks));
        let hits = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let app = Router::new()
            .route("/.well-known/jwks.json", get(serve_jwks))
            .route("/slow", get(serve_slowly))
            .route("/redirect", get(redirect))
            .with_state(ServerState {
                keys: keys.clone(),
                hits: hits.clone(),
                down: down.clone(),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().expect("an address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        JwksServer {
            url: format!("http://{address}/.well-known/jwks.json"),
            origin: format!("http://{address}"),
            keys,
            hits,
            down,
        }
    }

    pub fn set(&self, jwks: Value) {
        *self.keys.lock().expect("not poisoned") = jwks;
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// From now on the set is answered 503 (`true`), or again as it is (`false`).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// A URL of this server that redirects to `to`.
    pub fn redirecting_to(&self, to: &str) -> String {
        // The URLs the tests give have nothing a query string would need escaped.
        format!("{}/redirect?to={to}", self.origin)
    }
}

/// Settings for the JWKS at `url`, of the issuer [`ISSUER`] (which [`claims`] names).
pub fn jwks_settings(url: &str) -> Settings {
    let mut settings = Settings::new(AuthMode::Required);
    settings.jwks_url = Some(url.to_owned());
    settings.issuer = Some(ISSUER.to_owned());
    settings.jwks_timeout = Duration::from_millis(500);
    settings
}

/// An RSA key pair: the signing key, its JWK (with `kid`), and its public key as PEM.
pub struct RsaKey {
    pub signing: EncodingKey,
    pub jwk: Value,
    pub public_pem: String,
    pub public_der: Vec<u8>,
}

pub fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).expect("base64 is ASCII"))
        .collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

pub fn jwk_json(key: &EncodingKey, alg: Algorithm, kid: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(key, alg).expect("a JWK");
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_value(jwk).expect("a JWK serializes")
}

pub fn rsa_key(kid: &str) -> RsaKey {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("an RSA key");
    let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).expect("PKCS#8");
    let signing = EncodingKey::from_rsa_pem(pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes()).expect("an RSA signing key");
    let public_der = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(pair.public_key())
        .expect("a public key")
        .as_ref()
        .to_vec();
    RsaKey {
        jwk: jwk_json(&signing, Algorithm::RS256, kid),
        public_pem: pem("PUBLIC KEY", &public_der),
        public_der,
        signing,
    }
}

/// A P-256 key pair: the signing key and its JWK (with `kid`).
pub fn ec_key(kid: &str) -> (EncodingKey, Value) {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).expect("a P-256 key");
    let signing = EncodingKey::from_ec_der(pkcs8.as_ref());
    let jwk = jwk_json(&signing, Algorithm::ES256, kid);
    (signing, jwk)
}
