//! A JWKS served over HTTP on 127.0.0.1, whose keys, availability and redirects a test
//! changes as it goes, and the RSA and P-256 keys it holds.

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
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};
use ws_authorizer::{AuthMode, Settings};

use super::ISSUER;

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
