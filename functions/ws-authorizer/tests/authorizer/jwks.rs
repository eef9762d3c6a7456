//! The authorizer against a JWKS: RS256 and ES256 tokens, keys rotated, and a JWKS server
//! that is down, slow or serves odd keys (part of `authorizer.rs`).

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use ws_authorizer::{HmacKey, JwksError, Reason, Secret};

use super::support::*;

#[tokio::test]
async fn rs256_and_es256_tokens_verify_against_the_jwks() {
    let rsa = rsa_key("rsa-1");
    let (ec_signing, ec_jwk) = ec_key("ec-1");
    let server = JwksServer::start(json!({"keys": [rsa.jwk, ec_jwk]})).await;
    let mut settings = jwks_settings(&server.url);
    settings.issuer = Some("https://cognito-idp.example/pool".into());
    settings.audience = vec!["client-id".into()];
    let authorizer = authorizer(settings);
    let claims = claims(
        "u-carol",
        json!({
            "iss": "https://cognito-idp.example/pool",
            "aud": "client-id",
            "nickname": "carol",
            "roles": "admin"
        }),
    );

    let token = sign(Algorithm::RS256, Some("rsa-1"), &claims, &rsa.signing);
    let (principal, context) = policy_and_context(&allowed(&authorizer, &with_token(&token)).await);
    assert_eq!(principal, "u-carol");
    assert_eq!(context, json!({"userId": "u-carol", "nick": "carol", "roles": "admin"}));

    let token = sign(Algorithm::ES256, Some("ec-1"), &claims, &ec_signing);
    let (principal, _) = policy_and_context(&allowed(&authorizer, &with_token(&token)).await);
    assert_eq!(principal, "u-carol");
    // Both keys came from one fetch.
    assert_eq!(server.hits(), 1);

    // Wrong issuer and wrong audience with an RS256 token too.
    let mut wrong = claims.clone();
    wrong["iss"] = json!("https://evil.example");
    let token = sign(Algorithm::RS256, Some("rsa-1"), &wrong, &rsa.signing);
    assert_eq!(rejection(&authorizer, &token).await, ErrorKind::InvalidIssuer);
    let mut wrong = claims.clone();
    wrong["aud"] = json!("another-client");
    let token = sign(Algorithm::RS256, Some("rsa-1"), &wrong, &rsa.signing);
    assert_eq!(rejection(&authorizer, &token).await, ErrorKind::InvalidAudience);
}

#[tokio::test]
async fn rs256_signed_by_another_key_is_refused() {
    let published = rsa_key("rsa-1");
    let attacker = rsa_key("rsa-1");
    let server = JwksServer::start(json!({"keys": [published.jwk]})).await;
    let authorizer = authorizer(jwks_settings(&server.url));
    let token = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims("u-admin", json!({})),
        &attacker.signing,
    );
    assert_eq!(rejection(&authorizer, &token).await, ErrorKind::InvalidSignature);
}

#[tokio::test]
async fn algorithm_confusion_hs256_signed_with_the_rsa_public_key_is_refused() {
    let rsa = rsa_key("rsa-1");
    let server = JwksServer::start(json!({"keys": [rsa.jwk]})).await;
    let claims = claims("u-admin", json!({"roles": ["admin"]}));

    // JWKS only: HS256 is not accepted at all, whatever key it names.
    let jwks_only = authorizer(jwks_settings(&server.url));
    for secret in [rsa.public_pem.as_bytes(), rsa.public_der.as_slice()] {
        for kid in [None, Some("rsa-1")] {
            let token = sign(Algorithm::HS256, kid, &claims, &EncodingKey::from_secret(secret));
            let refusal = refused(&jwks_only, &with_token(&token)).await;
            let reason = refusal.reason();
            assert!(
                matches!(reason, Reason::AlgorithmNotAccepted(Algorithm::HS256)),
                "{reason:?}"
            );
        }
    }

    // With a secret as well, HS256 is checked against that secret only.
    let mut both = jwks_settings(&server.url);
    both.hmac = Some(HmacKey::Secret(Secret::new(SECRET)));
    let both = authorizer(both);
    let token = sign(
        Algorithm::HS256,
        Some("rsa-1"),
        &claims,
        &EncodingKey::from_secret(rsa.public_pem.as_bytes()),
    );
    assert_eq!(rejection(&both, &token).await, ErrorKind::InvalidSignature);

    // And an RS256 token naming an EC key (or the reverse) is refused before verifying.
    let (ec_signing, ec_jwk) = ec_key("ec-1");
    server.set(json!({"keys": [rsa.jwk, ec_jwk]}));
    let mut fresh = jwks_settings(&server.url);
    fresh.jwks_min_refetch = Duration::ZERO;
    let fresh = authorizer(fresh);
    let token = sign(Algorithm::ES256, Some("rsa-1"), &claims, &ec_signing);
    let refusal = refused(&fresh, &with_token(&token)).await;
    let reason = refusal.reason();
    assert!(
        matches!(
            reason,
            Reason::KeyMismatch {
                alg: Algorithm::ES256,
                ..
            }
        ),
        "{reason:?}"
    );
    let token = sign(Algorithm::RS256, Some("ec-1"), &claims, &rsa.signing);
    let refusal = refused(&fresh, &with_token(&token)).await;
    let reason = refusal.reason();
    assert!(
        matches!(
            reason,
            Reason::KeyMismatch {
                alg: Algorithm::RS256,
                ..
            }
        ),
        "{reason:?}"
    );
}

#[tokio::test]
async fn a_jwks_token_without_kid_is_refused() {
    let rsa = rsa_key("rsa-1");
    let server = JwksServer::start(json!({"keys": [rsa.jwk]})).await;
    let authorizer = authorizer(jwks_settings(&server.url));
    let token = sign(Algorithm::RS256, None, &claims("u", json!({})), &rsa.signing);
    assert!(matches!(
        refused(&authorizer, &with_token(&token)).await.reason(),
        Reason::MissingKid
    ));
}

#[tokio::test]
async fn unknown_kid_refetches_the_rotated_jwks() {
    let old = rsa_key("2024-old");
    let new = rsa_key("2025-new");
    let server = JwksServer::start(json!({"keys": [old.jwk]})).await;
    let mut settings = jwks_settings(&server.url);
    settings.jwks_min_refetch = Duration::ZERO;
    let authorizer = authorizer(settings);
    let claims = claims("u-dave", json!({}));

    let token = sign(Algorithm::RS256, Some("2024-old"), &claims, &old.signing);
    allowed(&authorizer, &with_token(&token)).await;
    assert_eq!(server.hits(), 1);
    // Cached: no second fetch for a known kid.
    allowed(&authorizer, &with_token(&token)).await;
    assert_eq!(server.hits(), 1);

    // The issuer rotates: the new kid is unknown, so the set is fetched again.
    server.set(json!({"keys": [new.jwk]}));
    let token = sign(Algorithm::RS256, Some("2025-new"), &claims, &new.signing);
    let (principal, _) = policy_and_context(&allowed(&authorizer, &with_token(&token)).await);
    assert_eq!(principal, "u-dave");
    assert_eq!(server.hits(), 2);

    // The retired key is gone from the cache with the refetched set.
    let token = sign(Algorithm::RS256, Some("2024-old"), &claims, &old.signing);
    let refused = refused(&authorizer, &with_token(&token)).await;
    assert!(matches!(refused.reason(), Reason::UnknownKid(kid) if kid == "2024-old"));
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn random_kids_do_not_make_it_hammer_the_issuer() {
    let rsa = rsa_key("rsa-1");
    let server = JwksServer::start(json!({"keys": [rsa.jwk]})).await;
    // The default interval between refetches (10 s) is far longer than this test.
    let authorizer = authorizer(jwks_settings(&server.url));
    let token = sign(Algorithm::RS256, Some("rsa-1"), &claims("u", json!({})), &rsa.signing);
    allowed(&authorizer, &with_token(&token)).await;
    assert_eq!(server.hits(), 1);
    for n in 0..20 {
        let kid = format!("random-{n}");
        let token = sign(Algorithm::RS256, Some(&kid), &claims("u", json!({})), &rsa.signing);
        let refusal = refused(&authorizer, &with_token(&token)).await;
        assert!(matches!(refusal.reason(), Reason::UnknownKid(unknown) if *unknown == kid));
    }
    assert_eq!(server.hits(), 1, "unknown kids within the interval fetch nothing");
}

#[tokio::test]
async fn jwks_server_down_refuses_within_the_bound() {
    // A port that was just free: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("an address").port()
    };
    let rsa = rsa_key("rsa-1");
    let authorizer = authorizer(jwks_settings(&format!("http://127.0.0.1:{port}/.well-known/jwks.json")));
    let token = sign(Algorithm::RS256, Some("rsa-1"), &claims("u", json!({})), &rsa.signing);
    let refusal = refused(&authorizer, &with_token(&token)).await;
    let reason = refusal.reason();
    assert!(
        matches!(reason, Reason::JwksUnavailable(JwksError::Request(_))),
        "{reason:?}"
    );
    assert!(!reason.is_client_error());
    // Within the refetch interval, the next token does not try again.
    let refusal = refused(&authorizer, &with_token(&token)).await;
    let reason = refusal.reason();
    assert!(
        matches!(reason, Reason::JwksUnavailable(JwksError::RecentlyFailed(_))),
        "{reason:?}"
    );
}

#[tokio::test]
async fn slow_jwks_server_times_out_and_refuses_within_the_bound() {
    let server = JwksServer::start(json!({"keys": []})).await;
    let slow_url = server.url.replace("/.well-known/jwks.json", "/slow");
    let mut settings = jwks_settings(&slow_url);
    settings.jwks_timeout = Duration::from_millis(300);
    let authorizer = authorizer(settings);
    let rsa = rsa_key("rsa-1");
    let token = sign(Algorithm::RS256, Some("rsa-1"), &claims("u", json!({})), &rsa.signing);
    // `refused` bounds the wait; the server would take a minute.
    let refusal = refused(&authorizer, &with_token(&token)).await;
    assert!(
        matches!(refusal.reason(), Reason::JwksUnavailable(JwksError::Timeout)),
        "{:?}",
        refusal.reason()
    );
}

#[tokio::test]
async fn a_jwks_with_odd_keys_still_serves_the_good_ones() {
    let rsa = rsa_key("rsa-1");
    let server = JwksServer::start(json!({"keys": [
        {"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
        {"kty": "RSA", "kid": "broken"},
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
        {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        rsa.jwk
    ]}))
    .await;
    let authorizer = authorizer(jwks_settings(&server.url));
    let token = sign(Algorithm::RS256, Some("rsa-1"), &claims("u", json!({})), &rsa.signing);
    allowed(&authorizer, &with_token(&token)).await;
    // An HS256 token naming the symmetric JWK is not verified with it.
    let token = sign(
        Algorithm::HS256,
        Some("sym"),
        &claims("u", json!({})),
        &EncodingKey::from_secret(b"secret"),
    );
    let refusal = refused(&authorizer, &with_token(&token)).await;
    assert!(matches!(
        refusal.reason(),
        Reason::AlgorithmNotAccepted(Algorithm::HS256)
    ));
}
