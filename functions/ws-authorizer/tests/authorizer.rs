//! The authorizer against real tokens: HS256 signed here, RS256 and ES256 with keys
//! generated here and served as a JWKS by an HTTP server on 127.0.0.1, each case asserted
//! on the authorizer's answer (the policy and context API Gateway gets, or Unauthorized).

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use ws_authorizer::{AuthMode, Authorizer, HmacKey, NewToken, Reason, Secret, Settings, SettingsError};

mod support;

use support::*;

#[path = "authorizer/jwks.rs"]
mod jwks;

// ---------------------------------------------------------------------------------------
// HS256

#[tokio::test]
async fn valid_hs256_token_allows_with_user_nick_and_roles_on_the_method_arn() {
    let authorizer = authorizer(hs256_settings(AuthMode::Required));
    let token = hs256(&claims(
        "u-alice",
        json!({"nickname": "alice", "roles": ["admin", "mod"]}),
    ));
    let response = allowed(&authorizer, &with_token(&token)).await;
    let (principal, context) = policy_and_context(&response);
    assert_eq!(principal, "u-alice");
    assert_eq!(
        context,
        json!({"userId": "u-alice", "nick": "alice", "roles": "admin,mod"})
    );
}

#[tokio::test]
async fn token_from_the_authorization_header_with_any_case() {
    let authorizer = authorizer(hs256_settings(AuthMode::Required));
    let token = hs256(&claims("u-bob", json!({"nickname": "bob"})));
    for (name, scheme) in [
        ("Authorization", "Bearer"),
        ("authorization", "bearer"),
        ("AUTHORIZATION", "BEARER"),
    ] {
        let value = format!("{scheme} {token}");
        let response = allowed(&authorizer, &event(&[], &[(name, &value)])).await;
        let (principal, context) = policy_and_context(&response);
        assert_eq!(principal, "u-bob", "header {name}");
        assert_eq!(context["nick"], "bob");
    }
}

#[tokio::test]
async fn query_token_is_preferred_over_the_header() {
    let authorizer = authorizer(hs256_settings(AuthMode::Required));
    let query = hs256(&claims("u-query", json!({})));
    let header = format!("Bearer {}", hs256(&claims("u-header", json!({}))));
    let request = event(&[("token", &query)], &[("Authorization", &header)]);
    let (principal, _) = policy_and_context(&allowed(&authorizer, &request).await);
    assert_eq!(principal, "u-query");
}

#[tokio::test]
async fn a_non_bearer_authorization_header_is_no_token() {
    let authorizer = authorizer(hs256_settings(AuthMode::Required));
    let request = event(&[], &[("Authorization", "Basic dXNlcjpwYXNz")]);
    assert!(matches!(
        refused(&authorizer, &request).await.reason(),
        Reason::MissingToken
    ));
}

#[tokio::test]
async fn expired_token_is_refused() {
    let authorizer = authorizer(hs256_settings(AuthMode::Required));
    let token = hs256(&json!({"sub": "u-alice", "iat": now() - 7200, "exp": now() - 3600}));
    let refusal = refused(&authorizer, &with_token(&token)).await;
    let reason = refusal.reason();
    assert_eq!(rejected_kind(reason), &ErrorKind::ExpiredSignature);
    assert_eq!(reason.to_string(), "the token has expired");
}

#[tokio::test]
async fn exp_and_nbf_have_a_small_leeway() {
    let authorizer = authorizer(hs256_settings(AuthMode::Required));
    // 5 s past exp and 5 s before nbf are within the default 30 s.
    let token = hs256(&json!({"sub": "u-alice", "nbf": now() + 5, "exp": now() - 5}));
    allowed(&authorizer, &with_token(&token)).await;

    let mut strict = hs256_settings(AuthMode::Required);
    strict.leeway_secs = 0;
    let strict = self::authorizer(strict);
    let token = hs256(&json!({"sub": "u-alice", "exp": now() - 5}));
    assert_eq!(rejection(&strict, &token).await, ErrorKind::ExpiredSignature);
}

#[tokio::test]
async fn token_without_exp_is_refused() {
    let authorizer = authorizer(hs256_settings(AuthMode::Required));
    let token = hs256(&json!({"sub": "u-alice"}));
    let refusal = refused(&authorizer, &with_token(&token)).await;
    let reason = refusal.reason();
    assert!(matches!(
        rejected_kind(reason),
        ErrorKind::MissingRequiredClaim(claim) if claim == "exp"
    ));
}

#[tokio::test]
async fn token_not_yet_valid_is_refused() {
    let authorizer = authorizer(hs256_settings(AuthMode::Required));
    let token = hs256(&claims("u-alice", json!({"nbf": now() + 3600})));
    assert_eq!(rejection(&authorizer, &token).await, ErrorKind::ImmatureSignature);
}

#[tokio::test]
async fn issuer_is_checked_when_set() {
    let mut settings = hs256_settings(AuthMode::Required);
    settings.issuer = Some("https://issuer.example".into());
    let authorizer = authorizer(settings);

    let good = hs256(&claims("u-alice", json!({"iss": "https://issuer.example"})));
    allowed(&authorizer, &with_token(&good)).await;

    let wrong = hs256(&claims("u-alice", json!({"iss": "https://evil.example"})));
    assert_eq!(rejection(&authorizer, &wrong).await, ErrorKind::InvalidIssuer);

    let mut missing = claims("u-alice", json!({}));
    missing.as_object_mut().expect("an object").remove("iss");
    let missing = hs256(&missing);
    let refusal = refused(&authorizer, &with_token(&missing)).await;
    let reason = refusal.reason();
    assert!(matches!(
        rejected_kind(reason),
        ErrorKind::MissingRequiredClaim(claim) if claim == "iss"
    ));
}

#[tokio::test]
async fn audience_is_checked_when_set_and_ignored_otherwise() {
    let mut settings = hs256_settings(AuthMode::Required);
    settings.audience = vec!["roomcast".into(), "other-client".into()];
    let authorizer = authorizer(settings);

    let good = hs256(&claims("u-alice", json!({"aud": "roomcast"})));
    allowed(&authorizer, &with_token(&good)).await;
    let among = hs256(&claims("u-alice", json!({"aud": ["x", "other-client"]})));
    allowed(&authorizer, &with_token(&among)).await;

    let wrong = hs256(&claims("u-alice", json!({"aud": "someone-else"})));
    assert_eq!(rejection(&authorizer, &wrong).await, ErrorKind::InvalidAudience);

    // Without a configured audience, a token's `aud` is not looked at.
    let open = self::authorizer(hs256_settings(AuthMode::Required));
    allowed(&open, &with_token(&wrong)).await;
}

#[tokio::test]
async fn bad_signature_is_refused() {
    let authorizer = authorizer(hs256_settings(AuthMode::Required));
    let other = sign(
        Algorithm::HS256,
        None,
        &claims("u-alice", json!({})),
        &EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes!!"),
    );
    assert_eq!(rejection(&authorizer, &other).await, ErrorKind::InvalidSignature);

    // A valid token whose payload was swapped for another user's.
    let valid = hs256(&claims("u-alice", json!({})));
    let parts: Vec<&str> = valid.split('.').collect();
    let forged_payload = URL_SAFE_NO_PAD.encode(claims("u-admin", json!({})).to_string());
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(rejection(&authorizer, &forged).await, ErrorKind::InvalidSignature);
}

#[tokio::test]
async fn alg_none_is_refused() {
    let authorizer = authorizer(hs256_settings(AuthMode::Required));
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims("u-admin", json!({})).to_string());
    for token in [format!("{header}.{payload}."), format!("{header}.{payload}")] {
        let refusal = refused(&authorizer, &with_token(&token)).await;
        let reason = refusal.reason();
        assert!(matches!(reason, Reason::Malformed(_)), "{reason:?}");
    }
}

#[tokio::test]
async fn garbage_and_oversized_tokens_are_refused_without_panicking() {
    let authorizer = authorizer(hs256_settings(AuthMode::Required));
    for token in [
        "abc",
        "a.b.c",
        "....",
        "eyJhbGciOiJIUzI1NiJ9.%%%.sig",
        "eyJhbGciOiJIUzI1NiJ9.e30.",
    ] {
        let refusal = refused(&authorizer, &with_token(token)).await;
        let reason = refusal.reason();
        assert!(
            matches!(reason, Reason::Malformed(_) | Reason::Rejected { .. }),
            "{token}: {reason:?}"
        );
    }
    let long = "a".repeat(20_000);
    assert!(matches!(
        refused(&authorizer, &with_token(&long)).await.reason(),
        Reason::TooLong
    ));
}

#[tokio::test]
async fn missing_or_empty_sub_is_refused() {
    let authorizer = authorizer(hs256_settings(AuthMode::Required));
    for claims in [
        json!({"exp": now() + 60}),
        json!({"sub": "", "exp": now() + 60}),
        json!({"sub": 42, "exp": now() + 60}),
    ] {
        let refusal = refused(&authorizer, &with_token(&hs256(&claims))).await;
        let reason = refusal.reason();
        assert!(matches!(reason, Reason::BadSubject), "{reason:?}");
    }
}

#[tokio::test]
async fn hs256_is_refused_without_a_configured_secret() {
    let server = JwksServer::start(json!({"keys": []})).await;
    let authorizer = authorizer(jwks_settings(&server.url));
    let refusal = refused(&authorizer, &with_token(&hs256(&claims("u", json!({}))))).await;
    let reason = refusal.reason();
    assert!(matches!(reason, Reason::AlgorithmNotAccepted(Algorithm::HS256)));
}

// ---------------------------------------------------------------------------------------
// Modes

#[tokio::test]
async fn optional_mode_without_token_allows_anonymously() {
    let authorizer = authorizer(hs256_settings(AuthMode::Optional));
    let response = allowed(&authorizer, &event(&[("name", "alice")], &[])).await;
    let (principal, context) = policy_and_context(&response);
    assert_eq!(principal, "anonymous");
    assert_eq!(context, json!({}));
    // An empty ?token= is no token.
    allowed(&authorizer, &with_token("")).await;
}

#[tokio::test]
async fn optional_mode_with_an_invalid_token_refuses() {
    let authorizer = authorizer(hs256_settings(AuthMode::Optional));
    let expired = hs256(&json!({"sub": "u-alice", "exp": now() - 3600}));
    assert_eq!(rejection(&authorizer, &expired).await, ErrorKind::ExpiredSignature);
    // A valid one is used.
    let valid = hs256(&claims("u-alice", json!({})));
    let (principal, _) = policy_and_context(&allowed(&authorizer, &with_token(&valid)).await);
    assert_eq!(principal, "u-alice");
}

#[tokio::test]
async fn required_mode_without_token_refuses() {
    let authorizer = authorizer(hs256_settings(AuthMode::Required));
    let refusal = refused(&authorizer, &event(&[("name", "alice")], &[])).await;
    let reason = refusal.reason();
    assert!(matches!(reason, Reason::MissingToken));
}

#[tokio::test]
async fn none_mode_allows_everyone_anonymously() {
    let authorizer = authorizer(Settings::new(AuthMode::None));
    for request in [event(&[], &[]), with_token("not-even-a-jwt")] {
        let (principal, context) = policy_and_context(&allowed(&authorizer, &request).await);
        assert_eq!(principal, "anonymous");
        assert_eq!(context, json!({}));
    }
}

#[tokio::test]
async fn an_event_without_method_arn_is_refused() {
    let authorizer = authorizer(hs256_settings(AuthMode::Optional));
    let mut request = event(&[], &[]);
    request.method_arn = None;
    assert!(matches!(
        refused(&authorizer, &request).await.reason(),
        Reason::MissingMethodArn
    ));
}

#[tokio::test]
async fn the_lambda_error_message_is_exactly_unauthorized() {
    let authorizer = authorizer(hs256_settings(AuthMode::Required));
    let refused = ws_authorizer::handle(&authorizer, &event(&[], &[]))
        .await
        .expect_err("no token");
    let diagnostic = lambda_runtime::Diagnostic::from(lambda_runtime::Error::from(refused));
    assert_eq!(diagnostic.error_message, "Unauthorized");
}

// ---------------------------------------------------------------------------------------
// Claims

#[tokio::test]
async fn roles_as_array_or_string_commas_dropped_and_deduplicated() {
    let authorizer = authorizer(hs256_settings(AuthMode::Required));
    let cases = [
        (json!(["admin", "mod"]), "admin,mod"),
        (json!("admin mod"), "admin,mod"),
        (json!("admin,mod, ops"), "admin,mod,ops"),
        (json!(["admin", "a,b", "admin", 7, ""]), "admin"),
        (json!(42), ""),
    ];
    for (roles, expected) in cases {
        let token = hs256(&claims("u-alice", json!({ "roles": roles })));
        let (_, context) = policy_and_context(&allowed(&authorizer, &with_token(&token)).await);
        assert_eq!(context["roles"], expected, "roles {roles}");
    }
    let token = hs256(&claims("u-alice", json!({})));
    let (_, context) = policy_and_context(&allowed(&authorizer, &with_token(&token)).await);
    assert_eq!(context, json!({"userId": "u-alice", "roles": ""}));
}

#[tokio::test]
async fn cognito_groups_as_roles_and_preferred_username_from_the_environment() {
    let env = [
        ("ROOMCAST_AUTH", "required"),
        ("ROOMCAST_JWT_SECRET", "a-test-secret-of-at-least-32-bytes-long!"),
        ("ROOMCAST_JWT_ROLES_CLAIM", "cognito:groups"),
    ];
    let settings = Settings::from_lookup(|name| {
        env.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string())
    })
    .expect("valid settings");
    let authorizer = authorizer(settings);
    let token = hs256(&claims(
        "4f8a-uuid",
        json!({
            "cognito:groups": ["admin", "staff"],
            "cognito:username": "alice",
            "preferred_username": "alice_c",
            "roles": ["ignored"]
        }),
    ));
    let (principal, context) = policy_and_context(&allowed(&authorizer, &with_token(&token)).await);
    assert_eq!(principal, "4f8a-uuid");
    assert_eq!(
        context,
        json!({"userId": "4f8a-uuid", "nick": "alice_c", "roles": "admin,staff"})
    );
}

#[tokio::test]
async fn invalid_nick_claims_are_skipped() {
    let authorizer = authorizer(hs256_settings(AuthMode::Required));
    // An invalid `nickname` falls back to `preferred_username`.
    let token = hs256(&claims(
        "u-1",
        json!({"nickname": "Alice Smith", "preferred_username": "alice"}),
    ));
    let (_, context) = policy_and_context(&allowed(&authorizer, &with_token(&token)).await);
    assert_eq!(context["nick"], "alice");

    // Neither valid (an e-mail address, too long): no `nick` at all.
    let token = hs256(&claims(
        "u-2",
        json!({"nickname": "a".repeat(33), "preferred_username": "alice@example.com"}),
    ));
    let (_, context) = policy_and_context(&allowed(&authorizer, &with_token(&token)).await);
    assert_eq!(context, json!({"userId": "u-2", "roles": ""}));

    // A nickname that is not a string is skipped too.
    let token = hs256(&claims("u-3", json!({"nickname": 7})));
    let (_, context) = policy_and_context(&allowed(&authorizer, &with_token(&token)).await);
    assert!(context.get("nick").is_none());
}

#[tokio::test]
async fn nick_claim_and_length_are_configurable() {
    let mut settings = hs256_settings(AuthMode::Required);
    settings.nick_claim = "handle".into();
    settings.max_nick_chars = 5;
    let authorizer = authorizer(settings);
    let token = hs256(&claims("u-1", json!({"handle": "bob", "nickname": "ignored"})));
    let (_, context) = policy_and_context(&allowed(&authorizer, &with_token(&token)).await);
    assert_eq!(context["nick"], "bob");
    let token = hs256(&claims("u-1", json!({"handle": "bobby-long"})));
    let (_, context) = policy_and_context(&allowed(&authorizer, &with_token(&token)).await);
    assert!(context.get("nick").is_none());
}

// ---------------------------------------------------------------------------------------
// Settings and signing

fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string())
    }
}

#[test]
fn settings_from_the_environment() {
    let settings = Settings::from_lookup(lookup(&[
        ("ROOMCAST_AUTH", "Optional"),
        (
            "ROOMCAST_JWKS_URL",
            "https://cognito-idp.eu-west-1.amazonaws.com/pool/.well-known/jwks.json",
        ),
        (
            "ROOMCAST_JWT_ISSUER",
            "https://cognito-idp.eu-west-1.amazonaws.com/pool",
        ),
        ("ROOMCAST_JWT_AUDIENCE", "a, b"),
        ("ROOMCAST_JWT_LEEWAY_SECS", "0"),
        ("ROOMCAST_JWT_NICK_CLAIM", "cognito:username"),
        ("ROOMCAST_JWT_ROLES_CLAIM", "cognito:groups"),
        ("ROOMCAST_MAX_NICK_CHARS", "20"),
        ("ROOMCAST_JWKS_TIMEOUT_MS", "1500"),
        ("ROOMCAST_JWKS_MIN_REFETCH_SECS", "60"),
    ]))
    .expect("valid settings");
    assert_eq!(settings.mode, AuthMode::Optional);
    assert_eq!(settings.audience, vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(settings.leeway_secs, 0);
    assert_eq!(settings.nick_claim, "cognito:username");
    assert_eq!(settings.roles_claim, "cognito:groups");
    assert_eq!(settings.max_nick_chars, 20);
    assert_eq!(settings.jwks_timeout, Duration::from_millis(1500));
    assert_eq!(settings.jwks_min_refetch, Duration::from_secs(60));
    assert!(settings.hmac.is_none());

    let defaults = Settings::from_lookup(lookup(&[])).expect("valid settings");
    assert_eq!(defaults.mode, AuthMode::None);
    assert_eq!(defaults.leeway_secs, 30);
    assert_eq!(defaults.nick_claim, "nickname");
    assert_eq!(defaults.roles_claim, "roles");
    assert_eq!(defaults.max_nick_chars, 32);
    assert!(Authorizer::new(defaults).is_ok());
}

#[test]
fn bad_settings_are_clear_errors_naming_the_variable() {
    let error = |pairs: &'static [(&'static str, &'static str)]| -> String {
        Settings::from_lookup(lookup(pairs))
            .expect_err("invalid settings")
            .to_string()
    };
    let message = error(&[("ROOMCAST_AUTH", "required")]);
    for name in ["ROOMCAST_JWT_SECRET", "ROOMCAST_JWT_SECRET_ARN", "ROOMCAST_JWKS_URL"] {
        assert!(message.contains(name), "{message}");
    }
    assert!(error(&[("ROOMCAST_AUTH", "maybe")]).contains("ROOMCAST_AUTH"));
    let message = error(&[("ROOMCAST_JWT_SECRET", "short-secret")]);
    assert!(message.contains("ROOMCAST_JWT_SECRET"), "{message}");
    assert!(!message.contains("short-secret"), "the secret leaked: {message}");
    assert!(error(&[
        ("ROOMCAST_JWT_SECRET", "a-test-secret-of-at-least-32-bytes-long!"),
        ("ROOMCAST_JWT_SECRET_ARN", "arn:aws:secretsmanager:eu-west-1:1:secret:x"),
    ])
    .contains("only one"));
    assert!(error(&[("ROOMCAST_JWKS_URL", "http://issuer.example/jwks")]).contains("ROOMCAST_JWKS_URL"));
    assert!(error(&[("ROOMCAST_JWT_LEEWAY_SECS", "soon")]).contains("ROOMCAST_JWT_LEEWAY_SECS"));
    assert!(error(&[("ROOMCAST_MAX_NICK_CHARS", "0")]).contains("ROOMCAST_MAX_NICK_CHARS"));

    // Settings built by hand get the same checks.
    let no_keys = Authorizer::new(Settings::new(AuthMode::Required)).expect_err("no key");
    assert!(matches!(no_keys, SettingsError::NoKeySource { .. }));
    let mut arn = Settings::new(AuthMode::Required);
    arn.hmac = Some(HmacKey::SecretArn("arn:aws:secretsmanager:eu-west-1:1:secret:x".into()));
    assert_eq!(arn.secret_arn(), Some("arn:aws:secretsmanager:eu-west-1:1:secret:x"));
    assert!(matches!(
        Authorizer::new(arn).expect_err("unread secret"),
        SettingsError::UnresolvedSecretArn { .. }
    ));
    let mut weak = Settings::new(AuthMode::Required);
    weak.hmac = Some(HmacKey::Secret(Secret::new("weak")));
    assert!(matches!(
        Authorizer::new(weak).expect_err("weak secret"),
        SettingsError::WeakSecret { len: 4 }
    ));
    assert!(!format!("{:?}", Secret::new("hunter2-hunter2")).contains("hunter2"));
}

#[tokio::test]
async fn signed_tokens_match_the_settings_they_are_made_for() {
    let mut settings = hs256_settings(AuthMode::Required);
    settings.issuer = Some("roomcast-local".into());
    settings.audience = vec!["roomcast".into()];
    settings.roles_claim = "cognito:groups".into();
    let token = ws_authorizer::sign_hs256(
        SECRET,
        &NewToken::new("u-alice")
            .nick("alice")
            .roles(["admin", "ops"])
            .ttl(Duration::from_secs(120))
            .matching(&settings),
    )
    .expect("signing works");
    let authorizer = authorizer(settings);
    let identity = authorizer.verify_token(&token).await.expect("valid");
    assert_eq!(identity.user_id.as_str(), "u-alice");
    assert_eq!(identity.nick.as_deref(), Some("alice"));
    assert_eq!(identity.roles, vec!["admin".to_owned(), "ops".to_owned()]);

    // The claims: iat now, exp now + ttl.
    let claims = NewToken::new("u").ttl(Duration::from_secs(5)).claims(1000);
    assert_eq!(claims["exp"], json!(1005));
    assert_eq!(claims["iat"], json!(1000));
}
