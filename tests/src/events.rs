//! Lambda events shaped exactly like the ones API Gateway and the Kafka event source
//! mapping send: API Gateway's from the JSON fixtures in `tests/fixtures/` (modelled on
//! `aws_lambda_events`' own), Kafka's from the local gateway's builder of them.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_lambda_events::kafka::KafkaEvent;
use base64::Engine as _;
use roomcast_core::memory::LogRecord;
use serde_json::{json, Value};

const CONNECT: &str = include_str!("../fixtures/connect.json");
const MESSAGE: &str = include_str!("../fixtures/message.json");
const DISCONNECT: &str = include_str!("../fixtures/disconnect.json");

/// A connection id as API Gateway makes them: 16 URL-safe characters ending in `=`.
pub fn connection_id() -> String {
    roomcast_local::events::new_id()
}

fn parse(template: &str, edit: impl FnOnce(&mut Value)) -> ApiGatewayWebsocketProxyRequest {
    let mut event: Value = serde_json::from_str(template).expect("fixture is JSON");
    edit(&mut event);
    serde_json::from_value(event).expect("fixture is an ApiGatewayWebsocketProxyRequest")
}

/// `$connect` for `connection_id`, with `?name=` when given.
pub fn connect(connection_id: &str, name: Option<&str>) -> ApiGatewayWebsocketProxyRequest {
    parse(CONNECT, |event| {
        event["requestContext"]["connectionId"] = json!(connection_id);
        event["requestContext"]["connectedAt"] = json!(roomcast_core::clock::now_ms());
        match name {
            Some(name) => {
                event["queryStringParameters"] = json!({ "name": name });
                event["multiValueQueryStringParameters"] = json!({ "name": [name] });
            }
            None => {
                event.as_object_mut().expect("object").remove("queryStringParameters");
                event
                    .as_object_mut()
                    .expect("object")
                    .remove("multiValueQueryStringParameters");
            }
        }
    })
}

/// `$connect` after a REQUEST authorizer allowed `user_id`: its context in
/// `requestContext.authorizer`, as API Gateway hands it on (roles comma-joined).
pub fn connect_signed_in(
    connection_id: &str,
    user_id: &str,
    nick: Option<&str>,
    roles: &[&str],
) -> ApiGatewayWebsocketProxyRequest {
    let mut event = serde_json::to_value(connect(connection_id, None)).expect("event serialises");
    let mut authorizer = json!({
        "principalId": user_id,
        "userId": user_id,
        "roles": roles.join(","),
        "integrationLatency": 1,
    });
    if let Some(nick) = nick {
        authorizer["nick"] = json!(nick);
    }
    event["requestContext"]["authorizer"] = authorizer;
    serde_json::from_value(event).expect("an ApiGatewayWebsocketProxyRequest")
}

/// A text frame from `connection_id`, routed as API Gateway would (`action` or `$default`).
pub fn message(connection_id: &str, body: &str) -> ApiGatewayWebsocketProxyRequest {
    let route = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|frame| frame.get("action").and_then(Value::as_str).map(str::to_owned))
        .filter(|action| roomcast_core::commands::ACTIONS.contains(&action.as_str()))
        .unwrap_or_else(|| "$default".to_owned());
    parse(MESSAGE, |event| {
        event["requestContext"]["connectionId"] = json!(connection_id);
        event["requestContext"]["routeKey"] = json!(route);
        event["requestContext"]["requestTimeEpoch"] = json!(roomcast_core::clock::now_ms());
        event["body"] = json!(body);
    })
}

/// A binary frame: API Gateway hands it over base64-encoded.
pub fn binary_message(connection_id: &str, bytes: &[u8]) -> ApiGatewayWebsocketProxyRequest {
    parse(MESSAGE, |event| {
        event["requestContext"]["connectionId"] = json!(connection_id);
        event["requestContext"]["routeKey"] = json!("$default");
        event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
        event["isBase64Encoded"] = json!(true);
    })
}

pub fn disconnect(connection_id: &str) -> ApiGatewayWebsocketProxyRequest {
    parse(DISCONNECT, |event| {
        event["requestContext"]["connectionId"] = json!(connection_id);
    })
}

/// The event the Kafka event source mapping sends for these records (the local gateway's
/// emulation of it builds exactly this).
pub fn kafka_batch(records: &[LogRecord]) -> KafkaEvent {
    roomcast_local::events::kafka_event(records, "127.0.0.1:9092")
}
