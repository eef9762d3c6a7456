//! Whose tokens a JWKS lets in: an issuer is required with it (a key set may sign the tokens
//! of other tenants and applications), the audience or a Cognito access token's client is
//! checked when configured, a key withdrawn from the set stops verifying in a warm
//! instance, and the set is fetched over https only, redirects included. Against a JWKS
//! served on 127.0.0.1 and tokens signed with keys generated here.

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use ws_authorizer::{AuthMode, Authorizer, JwksError, Reason, Settings, SettingsError};

mod support;

use support::*;

/// A lookup of environment variables from `pairs`.
fn environment<'a>(pairs: &'a [(&'static str, String)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        pairs
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
    }
}

#[tokio::test]
async fn a_jwks_needs_an_issuer_and_tokens_of_other_issuers_are_refused() {
    let rsa = rsa_key("shared-1");
    let server = JwksServer::start(json!({"keys": [rsa.jwk]})).await;

    // Start-up refuses a JWKS without an issuer, from the environment and by hand alike,
    // whatever the mode (the gateway's HTTP API verifies with it even when `none`).
    for mode in ["required", "optional", "none"] {
        let variables = [
            ("ROOMCAST_AUTH", mode.to_owned()),
            ("ROOMCAST_JWKS_URL", server.url.clone()),
        ];
        let error = Settings::from_lookup(environment(&variables)).expect_err("no issuer");
        assert!(matches!(error, SettingsError::JwksWithoutIssuer), "{mode}: {error:?}");
        assert!(error.to_string().contains("ROOMCAST_JWT_ISSUER"), "{error}");
    }
    let mut no_issuer = jwks_settings(&server.url);
    no_issuer.issuer = None;
    assert!(matches!(
        Authorizer::new(no_issuer).expect_err("no issuer"),
        SettingsError::JwksWithoutIssuer
    ));
    let variables = [
        ("ROOMCAST_AUTH", "required".to_owned()),
        ("ROOMCAST_JWKS_URL", server.url.clone()),
        ("ROOMCAST_JWT_ISSUER", ISSUER.to_owned()),
    ];
    let settings = Settings::from_lookup(environment(&variables)).expect("an issuer");
    let authorizer = authorizer(settings);

    // The key set is shared with another tenant, which signs its tokens (and their roles)
    // with the same keys: only the configured issuer's are let in.
    let ours = sign(
        Algorithm::RS256,
        Some("shared-1"),
        &claims("u-ours", json!({})),
        &rsa.signing,
    );
    allowed(&authorizer, &with_token(&ours)).await;
    let theirs = claims(
        "u-theirs",
        json!({"iss": "https://issuer.test/other-tenant", "roles": ["admin"]}),
    );
    let theirs = sign(Algorithm::RS256, Some("shared-1"), &theirs, &rsa.signing);
    let refusal = refused(&authorizer, &with_token(&theirs)).await;
    assert_eq!(rejected_kind(refusal.reason()), &ErrorKind::InvalidIssuer);
    let mut unnamed = claims("u-theirs", json!({}));
    unnamed.as_object_mut().expect("an object").remove("iss");
    let unnamed = sign(Algorithm::RS256, Some("shared-1"), &unnamed, &rsa.signing);
    let refusal = refused(&authorizer, &with_token(&unnamed)).await;
    assert!(matches!(
        rejected_kind(refusal.reason()),
        ErrorKind::MissingRequiredClaim(claim) if claim == "iss"
    ));
}

#[tokio::test]
async fn the_audience_or_a_cognito_access_tokens_client_is_checked_when_set() {
    let rsa = rsa_key("cognito-1");
    let server = JwksServer::start(json!({"keys": [rsa.jwk]})).await;
    let mut settings = jwks_settings(&server.url);
    settings.audience = vec!["client-a".into()];
    let checked = authorizer(settings);
    let open = authorizer(jwks_settings(&server.url));
    let token = |extra: Value| {
        sign(
            Algorithm::RS256,
            Some("cognito-1"),
            &claims("u-erin", extra),
            &rsa.signing,
        )
    };

    // Cognito's ID token names the client in `aud`, its access token in `client_id`.
    let id_token = token(json!({"aud": "client-a", "token_use": "id"}));
    let access_token = token(json!({"client_id": "client-a", "token_use": "access"}));
    for good in [&id_token, &access_token] {
        allowed(&checked, &with_token(good)).await;
    }

    let refusals = [
        // Another app's tokens of the same user pool.
        (
            token(json!({"aud": "client-b", "token_use": "id"})),
            ErrorKind::InvalidAudience,
        ),
        (
            token(json!({"client_id": "client-b", "token_use": "access"})),
            ErrorKind::InvalidAudience,
        ),
        // `aud`, when there, decides, whatever `client_id` says.
        (
            token(json!({"aud": "client-b", "client_id": "client-a"})),
            ErrorKind::InvalidAudience,
        ),
        // A client id is taken from an access token only.
        (
            token(json!({"client_id": "client-a", "token_use": "id"})),
            ErrorKind::InvalidAudience,
        ),
        (token(json!({"client_id": "client-a"})), ErrorKind::InvalidAudience),
        (
            token(json!({"client_id": ["client-a"], "token_use": "access"})),
            ErrorKind::InvalidAudience,
        ),
        // Neither.
        (
            token(json!({"token_use": "access"})),
            ErrorKind::MissingRequiredClaim("aud".into()),
        ),
    ];
    for (bad, kind) in &refusals {
        let refusal = refused(&checked, &with_token(bad)).await;
        assert_eq!(rejected_kind(refusal.reason()), kind);
        // Without a configured audience, none of these claims is looked at.
        allowed(&open, &with_token(bad)).await;
    }
}

#[tokio::test]
async fn a_key_withdrawn_from_the_jwks_stops_verifying_in_a_warm_instance() {
    let withdrawn = rsa_key("2025-withdrawn");
    let kept = rsa_key("2025-kept");
    let server = JwksServer::start(json!({"keys": [withdrawn.jwk, kept.jwk]})).await;
    let mut settings = jwks_settings(&server.url);
    // Every lookup finds the set expired: what a warm instance sees once the refresh
    // interval has passed since its last fetch.
    settings.jwks_refresh = Duration::ZERO;
    settings.jwks_min_refetch = Duration::ZERO;
    let authorizer = authorizer(settings);
    let by_withdrawn = sign(
        Algorithm::RS256,
        Some("2025-withdrawn"),
        &claims("u-fay", json!({})),
        &withdrawn.signing,
    );
    let by_kept = sign(
        Algorithm::RS256,
        Some("2025-kept"),
        &claims("u-fay", json!({})),
        &kept.signing,
    );
    allowed(&authorizer, &with_token(&by_withdrawn)).await;
    allowed(&authorizer, &with_token(&by_kept)).await;
    let fetched = server.hits();

    // The issuer withdraws a key (it leaked): its tokens are refused from the next fetch on.
    server.set(json!({"keys": [kept.jwk]}));
    let refusal = refused(&authorizer, &with_token(&by_withdrawn)).await;
    assert!(
        matches!(refusal.reason(), Reason::UnknownKid(kid) if kid == "2025-withdrawn"),
        "{:?}",
        refusal.reason()
    );
    assert!(server.hits() > fetched, "the expired set was fetched again");
    allowed(&authorizer, &with_token(&by_kept)).await;
}

#[tokio::test]
async fn an_expired_set_stands_while_the_issuer_cannot_be_reached() {
    let key = rsa_key("rsa-1");
    let server = JwksServer::start(json!({"keys": [key.jwk]})).await;
    let mut settings = jwks_settings(&server.url);
    settings.jwks_refresh = Duration::ZERO;
    settings.jwks_min_refetch = Duration::ZERO;
    let authorizer = authorizer(settings);
    let good = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims("u-gus", json!({})),
        &key.signing,
    );
    allowed(&authorizer, &with_token(&good)).await;

    // The issuer answers 503: its last keys go on verifying, every lookup tries again, and
    // a key the last set did not have cannot be had.
    server.set_down(true);
    let tried = server.hits();
    allowed(&authorizer, &with_token(&good)).await;
    assert_eq!(server.hits(), tried + 1, "the expired set was asked for again");
    let stranger = rsa_key("rsa-2");
    let unknown = sign(
        Algorithm::RS256,
        Some("rsa-2"),
        &claims("u-gus", json!({})),
        &stranger.signing,
    );
    let refusal = refused(&authorizer, &with_token(&unknown)).await;
    assert!(
        matches!(refusal.reason(), Reason::JwksUnavailable(JwksError::Status(503))),
        "{:?}",
        refusal.reason()
    );

    // Back, without the key: it stops verifying.
    server.set(json!({"keys": []}));
    server.set_down(false);
    let refusal = refused(&authorizer, &with_token(&good)).await;
    assert!(
        matches!(refusal.reason(), Reason::UnknownKid(_)),
        "{:?}",
        refusal.reason()
    );
}

#[tokio::test]
async fn jwks_redirects_are_followed_to_https_only() {
    let key = rsa_key("rsa-1");
    let server = JwksServer::start(json!({"keys": [key.jwk]})).await;
    let token = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &claims("u-hal", json!({})),
        &key.signing,
    );

    // A redirect within what a JWKS URL may be (here plain http on loopback) is followed.
    let followed = authorizer(jwks_settings(&server.redirecting_to(&server.url)));
    allowed(&followed, &with_token(&token)).await;
    assert_eq!(server.hits(), 1);

    // To plain http elsewhere (TEST-NET-1: nothing answers there), it is refused before
    // any connection: whoever is on the path could serve their own keys.
    for target in ["http://192.0.2.1/.well-known/jwks.json", "ftp://192.0.2.1/jwks.json"] {
        let refusing = authorizer(jwks_settings(&server.redirecting_to(target)));
        let refusal = refused(&refusing, &with_token(&token)).await;
        assert!(
            matches!(refusal.reason(), Reason::JwksUnavailable(JwksError::InsecureRedirect(to)) if to == target),
            "{target}: {:?}",
            refusal.reason()
        );
        assert!(!refusal.reason().is_client_error(), "the keys could not be had");
    }
    assert_eq!(server.hits(), 1, "the refused redirects fetched nothing here");
}

#[test]
fn the_refresh_interval_is_a_setting() {
    let base = [
        ("ROOMCAST_AUTH", "required".to_owned()),
        (
            "ROOMCAST_JWKS_URL",
            "https://issuer.test/pool/.well-known/jwks.json".to_owned(),
        ),
        ("ROOMCAST_JWT_ISSUER", ISSUER.to_owned()),
    ];
    let defaults = Settings::from_lookup(environment(&base)).expect("valid settings");
    assert_eq!(defaults.jwks_refresh, Duration::from_secs(300));
    let mut variables = base.to_vec();
    variables.push(("ROOMCAST_JWKS_REFRESH_SECS", "60".to_owned()));
    let settings = Settings::from_lookup(environment(&variables)).expect("valid settings");
    assert_eq!(settings.jwks_refresh, Duration::from_secs(60));
    assert_eq!(settings.mode, AuthMode::Required);
    variables.pop();
    variables.push(("ROOMCAST_JWKS_REFRESH_SECS", "0".to_owned()));
    let error = Settings::from_lookup(environment(&variables)).expect_err("zero");
    assert!(error.to_string().contains("ROOMCAST_JWKS_REFRESH_SECS"), "{error}");
}
