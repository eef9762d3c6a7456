//! ws-authorizer with `ROOMCAST_AUTH=required`, a fixed HS256 secret, an issuer and an
//! audience. The first byte of an input chooses what the rest is:
//!
//! - `0`: a token string, given to `Authorizer::verify_token`;
//! - `1`: a JWT header and claims (JSON, split at the first newline), which the target
//!   signs with the secret (so that the claims checks and the reading of the user are
//!   reached) and then verifies;
//! - `2`: the authorizer's Lambda event (JSON), read with `Event::parse` and answered by
//!   `handle_event` as the function's `main` does: the token comes from `?token=` or an
//!   `Authorization: Bearer` header of a WebSocket `$connect`, or the bearer header of an
//!   HTTP API request.
//!
//! Invariants: nothing panics; a token is accepted only if it carries an HS256 signature
//! of its first two parts made with the secret (checked against `jsonwebtoken::crypto::sign`);
//! an accepted token's user has a `sub` that is not blank, at most 256 characters and free
//! of control characters, a valid nickname if any, and roles without commas or duplicates.
#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use roomcast_core::Nick;
use roomcast_fuzz::runtime;
use serde_json::Value;
use ws_authorizer::{AuthMode, Authorizer, Event, HmacKey, Identity, Secret, Settings};

const SECRET: &[u8] = b"roomcast-fuzz-secret-0123456789abcdef";
const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "roomcast";

fn authorizer() -> &'static Authorizer {
    static AUTHORIZER: OnceLock<Authorizer> = OnceLock::new();
    AUTHORIZER.get_or_init(|| {
        let mut settings = Settings::new(AuthMode::Required);
        settings.hmac = Some(HmacKey::Secret(Secret::new(SECRET)));
        settings.issuer = Some(ISSUER.into());
        settings.audience = vec![AUDIENCE.into()];
        Authorizer::new(settings).expect("valid settings")
    })
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `token` is `header.claims.signature` with an HS256 header and the secret's
/// HS256 signature of `header.claims`.
fn signed_with_secret(token: &str) -> bool {
    let Some((message, signature)) = token.rsplit_once('.') else {
        return false;
    };
    let hs256 = jsonwebtoken::decode_header(token).is_ok_and(|header| header.alg == Algorithm::HS256);
    let expected = jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(SECRET), Algorithm::HS256)
        .expect("HS256 signs");
    let decode = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok();
    hs256 && decode(signature).is_some() && decode(signature) == decode(&expected)
}

/// What must hold of the user of any accepted token.
fn check_identity(identity: &Identity, token: &str) {
    assert!(
        signed_with_secret(token),
        "accepted a token not signed with the secret: {token:?}"
    );
    let sub = identity.user_id.as_str();
    assert!(
        !sub.trim().is_empty() && sub.chars().count() <= 256 && !sub.chars().any(char::is_control),
        "{sub:?}"
    );
    if let Some(nick) = &identity.nick {
        assert!(Nick::parse(nick, 32).is_ok(), "{nick:?}");
    }
    for (index, role) in identity.roles.iter().enumerate() {
        assert!(
            !role.is_empty() && !role.contains(',') && !role.chars().any(char::is_control),
            "{role:?}"
        );
        assert!(!identity.roles[..index].contains(role), "duplicate role {role:?}");
    }
}

fn verify(token: &str) {
    let verified = runtime().block_on(authorizer().verify_token(token));
    match verified {
        Ok(identity) => check_identity(&identity, token),
        Err(refused) => assert!(refused.reason().is_client_error(), "{:?}", refused.reason()),
    }
}

fn event(event: Value) {
    let Ok(event) = Event::parse(event) else {
        return;
    };
    let (token, websocket) = match &event {
        Event::WebSocket(request) => (ws_authorizer::token(request).map(str::to_owned), true),
        Event::Http(request) => (ws_authorizer::bearer_token(&request.headers).map(str::to_owned), false),
    };
    let answer = runtime().block_on(ws_authorizer::handle_event(authorizer(), event));
    let allowed_as = match &answer {
        // The user of an allowed `$connect` is its principal; the HTTP API's authorizer lets
        // every request through, with the user or only the reason it was refused.
        Ok(answer) if websocket => answer["principalId"].as_str().map(str::to_owned),
        Ok(answer) => answer["context"]["userId"].as_str().map(str::to_owned),
        // Only a failing JWKS (there is none here) makes the HTTP API's authorizer fail.
        Err(refused) => {
            assert!(websocket, "the HTTP API's authorizer failed: {:?}", refused.reason());
            None
        }
    };
    if let Some(user) = allowed_as {
        let token = token.unwrap_or_else(|| panic!("allowed {user:?} without a token: {answer:?}"));
        assert!(
            signed_with_secret(&token),
            "allowed {user:?} with a token not signed with the secret: {token:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(rest) = std::str::from_utf8(rest) else {
        return;
    };
    match mode {
        b'0' => verify(rest),
        b'1' => {
            let (header, claims) = rest.split_once('\n').unwrap_or((rest, ""));
            let message = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
            let signature =
                jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(SECRET), Algorithm::HS256)
                    .expect("HS256 signs");
            verify(&format!("{message}.{signature}"));
        }
        b'2' => {
            if let Ok(value) = serde_json::from_str(rest) {
                event(value);
            }
        }
        _ => {}
    }
});
