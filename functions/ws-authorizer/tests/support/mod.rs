//! What the authorizer's tests share: API Gateway's `$connect` authorizer event, tokens
//! signed with keys generated here, and a JWKS served over HTTP on 127.0.0.1 whose keys,
//! availability and redirects a test changes as it goes (`support/jwks.rs`).

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
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

/// Why the JWT library refused `token` (see [`rejected_kind`]).
pub async fn rejection(authorizer: &Authorizer, token: &str) -> ErrorKind {
    let refusal = refused(authorizer, &with_token(token)).await;
    rejected_kind(refusal.reason()).clone()
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

mod jwks;

pub use jwks::*;
