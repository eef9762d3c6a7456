//! The authorizer on the HTTP API's events (payload format 2.0, simple responses), as API
//! Gateway's HTTP API sends them: a good token lets the request through with its user, a
//! token the client got wrong lets it through with only the reason (http-api answers 401),
//! and the function tells the two APIs' events apart.

use serde_json::{json, Value};
use ws_authorizer::{AuthMode, Authorizer, Event, HmacKey, NewToken, Secret, Settings, CONTEXT_REFUSED};

const SECRET: &[u8] = b"a-test-secret-of-at-least-32-bytes-long!";

/// An HTTP API authorizer event (the shape of AWS's documented 2.0 example).
fn http_event(authorization: Option<&str>) -> Value {
    let mut headers = json!({"host": "abc.execute-api.eu-west-1.amazonaws.com", "user-agent": "curl/8"});
    if let Some(value) = authorization {
        headers["authorization"] = json!(value);
    }
    json!({
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:eu-west-1:123456789012:abcdef123/$default/GET/api/rooms",
        "identitySource": authorization.map(|value| vec![value]).unwrap_or_default(),
        "routeKey": "GET /api/rooms",
        "rawPath": "/api/rooms",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdef123",
            "domainName": "abcdef123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abcdef123",
            "http": {"method": "GET", "path": "/api/rooms", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "curl/8"},
            "requestId": "id",
            "routeKey": "GET /api/rooms",
            "stage": "$default",
            "time": "12/Mar/2020:19:03:58 +0000",
            "timeEpoch": 1583348638390u64
        }
    })
}

fn authorizer() -> Authorizer {
    // The HTTP API needs a token whatever the WebSocket mode: here `none`.
    let mut settings = Settings::new(AuthMode::None);
    settings.hmac = Some(HmacKey::Secret(Secret::new(SECRET)));
    Authorizer::new(settings).expect("valid settings")
}

fn token(user: &str) -> String {
    let token = NewToken::new(user).nick("alice").roles(["service"]);
    ws_authorizer::sign_hs256(SECRET, &token).unwrap()
}

async fn answer(authorizer: &Authorizer, event: Value) -> Value {
    let event = Event::parse(event).expect("an event of one of the two APIs");
    assert!(matches!(event, Event::Http(_)), "an HTTP API event");
    ws_authorizer::handle_event(authorizer, event).await.expect("an answer")
}

#[tokio::test]
async fn a_good_token_passes_its_user_to_http_api() {
    let bearer = format!("Bearer {}", token("u-alice"));
    let answer = answer(&authorizer(), http_event(Some(&bearer))).await;
    assert_eq!(
        answer,
        json!({"isAuthorized": true, "context": {"userId": "u-alice", "nick": "alice", "roles": "service"}})
    );
}

#[tokio::test]
async fn a_bad_token_passes_only_the_reason() {
    let other_secret =
        ws_authorizer::sign_hs256(b"another-secret-of-at-least-32-bytes!!!", &NewToken::new("u-eve")).unwrap();
    // Expired in 2001.
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "u-bob", "exp": 1_000_000_000}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    for (authorization, reason) in [
        ("Bearer not-a-jwt", "not a well-formed JWT"),
        (&*format!("Bearer {other_secret}"), "bad signature"),
        (&*format!("Basic {}", token("u-alice")), "Authorization: Bearer <token>"),
        ("Bearer", "Authorization: Bearer <token>"),
        (&*format!("Bearer {expired}"), "the token has expired"),
    ] {
        let answer = answer(&authorizer(), http_event(Some(authorization))).await;
        assert_eq!(answer["isAuthorized"], true, "{authorization}");
        let context = answer["context"].as_object().unwrap();
        assert_eq!(context.len(), 1, "only the reason, no user: {context:?}");
        let refused = context[CONTEXT_REFUSED].as_str().unwrap();
        assert!(refused.contains(reason), "{authorization}: {refused}");
    }
}

#[test]
fn the_websocket_event_is_still_a_websocket_event() {
    let websocket = json!({
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:eu-west-1:123456789012:abcdef123/test/$connect",
        "headers": {}, "multiValueHeaders": {}, "queryStringParameters": {"token": "x"},
        "multiValueQueryStringParameters": {"token": ["x"]},
        "requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "connectionId": "c", "requestTimeEpoch": 1, "identity": {"sourceIp": "1.2.3.4"}},
        "stageVariables": {}
    });
    assert!(matches!(Event::parse(websocket), Ok(Event::WebSocket(_))));
    assert!(matches!(Event::parse(http_event(None)), Ok(Event::Http(_))));
}
