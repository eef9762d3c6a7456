//! The Lambda events API Gateway sends for a WebSocket API, built field for field: what the
//! handlers receive here is what they receive in AWS.

use roomcast_core::clock::now_ms;
use std::collections::{BTreeMap, HashMap};

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerRequestTypeRequestIdentity,
    ApiGatewayCustomAuthorizerResponse, ApiGatewayWebsocketProxyRequest, ApiGatewayWebsocketProxyRequestContext,
};
use aws_lambda_events::http::HeaderMap;
use aws_lambda_events::kafka::KafkaEvent;
use aws_lambda_events::query_map::QueryMap;
use base64::Engine as _;
use roomcast_core::memory::LogRecord;
use serde_json::{json, Value};

/// The API a connection belongs to: what `requestContext` names it.
#[derive(Debug, Clone)]
pub struct Api {
    pub api_id: String,
    pub stage: String,
    pub domain_name: String,
}

/// What API Gateway remembers of a connection from its handshake.
#[derive(Debug, Clone)]
pub struct Handshake {
    pub connection_id: String,
    pub connected_at_ms: i64,
    pub source_ip: String,
    pub user_agent: Option<String>,
    pub headers: HeaderMap,
    pub query: HashMap<String, Vec<String>>,
    /// What the `$connect` authorizer answered (its context, `principalId` and
    /// `integrationLatency`): `requestContext.authorizer` of every event of the connection.
    /// Empty when no authorizer is attached.
    pub authorizer: HashMap<String, Value>,
}

/// A frame's payload: text as is, binary base64-encoded as API Gateway does.
pub enum Payload<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

/// An id in API Gateway's style: 16 URL-safe characters ending in `=`.
pub fn new_id() -> String {
    let random = ulid::Ulid::new().random().to_le_bytes();
    base64::engine::general_purpose::URL_SAFE.encode(&random[..11])
}

/// The route a text frame takes under the route selection expression
/// `$request.body.action`: its `action` if that is a route, else `$default`.
pub fn route_key(payload: &Payload<'_>, routes: &[&str]) -> String {
    let Payload::Text(text) = payload else {
        return "$default".to_owned();
    };
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|frame| {
            frame
                .get("action")
                .and_then(|action| action.as_str().map(str::to_owned))
        })
        .filter(|action| routes.contains(&action.as_str()))
        .unwrap_or_else(|| "$default".to_owned())
}

fn context(api: &Api, handshake: &Handshake, route: &str, event_type: &str) -> ApiGatewayWebsocketProxyRequestContext {
    let now = now_ms();
    let request_id = new_id();
    let mut context = ApiGatewayWebsocketProxyRequestContext::default();
    context.route_key = Some(route.to_owned());
    context.event_type = Some(event_type.to_owned());
    context.message_direction = Some("IN".to_owned());
    context.connection_id = Some(handshake.connection_id.clone());
    context.connected_at = handshake.connected_at_ms;
    context.domain_name = Some(api.domain_name.clone());
    context.stage = Some(api.stage.clone());
    context.apiid = Some(api.api_id.clone());
    context.request_id = Some(request_id.clone());
    context.extended_request_id = Some(request_id);
    context.request_time = Some(request_time(now));
    context.request_time_epoch = now;
    context.identity.source_ip = Some(handshake.source_ip.clone());
    context.identity.user_agent = handshake.user_agent.clone();
    context.authorizer.fields = handshake.authorizer.clone();
    context
}

/// The handshake's query string as API Gateway passes it: the last value of each name,
/// and every value.
fn query_maps(handshake: &Handshake) -> (QueryMap, QueryMap) {
    let single: HashMap<String, String> = handshake
        .query
        .iter()
        .filter_map(|(name, values)| values.last().map(|value| (name.clone(), value.clone())))
        .collect();
    (QueryMap::from(single), QueryMap::from(handshake.query.clone()))
}

/// The `methodArn` API Gateway gives an authorizer for `route`, with a made-up region and
/// account: `arn:aws:execute-api:local:000000000000:{apiId}/{stage}/{route}`.
pub fn method_arn(api: &Api, route: &str) -> String {
    format!(
        "arn:aws:execute-api:local:000000000000:{}/{}/{route}",
        api.api_id, api.stage
    )
}

/// The REQUEST authorizer event for `$connect`, with the handshake's headers and query
/// string, as API Gateway sends it before `$connect` (the fields its type holds).
pub fn authorizer_request(api: &Api, handshake: &Handshake) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    let mut event = ApiGatewayCustomAuthorizerRequestTypeRequest::default();
    event.type_ = Some("REQUEST".to_owned());
    event.method_arn = Some(method_arn(api, "$connect"));
    event.headers = handshake.headers.clone();
    event.multi_value_headers = handshake.headers.clone();
    if !handshake.query.is_empty() {
        (event.query_string_parameters, event.multi_value_query_string_parameters) = query_maps(handshake);
    }
    let request_id = new_id();
    event.request_context.request_id = Some(request_id);
    event.request_context.stage = Some(api.stage.clone());
    event.request_context.apiid = Some(api.api_id.clone());
    let mut identity = ApiGatewayCustomAuthorizerRequestTypeRequestIdentity::default();
    identity.source_ip = Some(handshake.source_ip.clone());
    event.request_context.identity = Some(identity);
    event
}

/// `requestContext.authorizer` after an Allow: the authorizer's `context` entries, its
/// `principalId`, and the `integrationLatency` (ms) API Gateway adds. `None` when the
/// context is not an object of strings, numbers and booleans, which API Gateway refuses.
pub fn authorizer_fields(
    response: &ApiGatewayCustomAuthorizerResponse,
    latency_ms: u64,
) -> Option<HashMap<String, Value>> {
    let mut fields: HashMap<String, Value> = match &response.context {
        Value::Null => HashMap::new(),
        Value::Object(context) => context
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
        _ => return None,
    };
    if fields
        .values()
        .any(|value| !(value.is_string() || value.is_number() || value.is_boolean()))
    {
        return None;
    }
    if let Some(principal) = &response.principal_id {
        fields.insert("principalId".to_owned(), Value::String(principal.clone()));
    }
    fields.insert("integrationLatency".to_owned(), json!(latency_ms));
    Some(fields)
}

/// `$connect`: headers and query string of the handshake.
pub fn connect(api: &Api, handshake: &Handshake) -> ApiGatewayWebsocketProxyRequest {
    let mut event = ApiGatewayWebsocketProxyRequest::default();
    event.request_context = context(api, handshake, "$connect", "CONNECT");
    event.headers = handshake.headers.clone();
    event.multi_value_headers = handshake.headers.clone();
    if !handshake.query.is_empty() {
        (event.query_string_parameters, event.multi_value_query_string_parameters) = query_maps(handshake);
    }
    event
}

/// A message on `route`: the frame as `body`, binary frames base64-encoded.
pub fn message(
    api: &Api,
    handshake: &Handshake,
    route: &str,
    payload: &Payload<'_>,
) -> ApiGatewayWebsocketProxyRequest {
    let mut event = ApiGatewayWebsocketProxyRequest::default();
    event.request_context = context(api, handshake, route, "MESSAGE");
    event.request_context.message_id = Some(new_id());
    match payload {
        Payload::Text(text) => event.body = Some((*text).to_owned()),
        Payload::Binary(bytes) => {
            event.body = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
            event.is_base64_encoded = true;
        }
    }
    event
}

/// `$disconnect`, with the close code and reason API Gateway reports.
pub fn disconnect(api: &Api, handshake: &Handshake, code: u16, reason: &str) -> ApiGatewayWebsocketProxyRequest {
    let mut event = ApiGatewayWebsocketProxyRequest::default();
    event.request_context = context(api, handshake, "$disconnect", "DISCONNECT");
    event.request_context.disconnect_status_code = Some(i64::from(code));
    event.request_context.disconnect_reason = Some(reason.to_owned());
    event
}

/// The event Lambda's event source mapping sends for self-managed Kafka: records grouped
/// under `topic-partition`, key and value base64, timestamps in ms, headers as byte arrays.
pub fn kafka_event(records: &[LogRecord], bootstrap_servers: &str) -> KafkaEvent {
    let base64 = base64::engine::general_purpose::STANDARD;
    let mut grouped: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for record in records {
        grouped
            .entry(format!("{}-{}", record.topic, record.partition))
            .or_default()
            .push(json!({
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "timestamp": record.timestamp_ms,
                "timestampType": "CREATE_TIME",
                "key": record.key.as_ref().map(|key| base64.encode(key)),
                "value": base64.encode(&record.value),
                // AWS sends each header as a one-key object of Java (signed) bytes.
                "headers": record
                    .headers
                    .iter()
                    .map(|(key, value)| json!({ key: value.iter().map(|byte| *byte as i8).collect::<Vec<i8>>() }))
                    .collect::<Vec<_>>(),
            }));
    }
    let event = json!({
        "eventSource": "SelfManagedKafka",
        "bootstrapServers": bootstrap_servers,
        "records": grouped,
    });
    serde_json::from_value(event).expect("this JSON is a KafkaEvent")
}

/// `09/Feb/2024:18:23:27 +0000`, API Gateway's `requestTime`.
pub fn request_time(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day, hour, minute, second) = civil(ms);
    format!(
        "{day:02}/{}/{year}:{hour:02}:{minute:02}:{second:02} +0000",
        MONTHS[month as usize - 1]
    )
}

/// ISO 8601 in UTC with milliseconds, as `@connections` GET reports times.
pub fn iso8601(ms: i64) -> String {
    let (year, month, day, hour, minute, second) = civil(ms);
    format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:03}Z",
        ms.rem_euclid(1000)
    )
}

/// Calendar date and time (UTC) of a Unix time in ms (Howard Hinnant's civil_from_days).
fn civil(ms: i64) -> (i64, u32, u32, u32, u32, u32) {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (rest / 3600) as u32,
        (rest % 3600 / 60) as u32,
        (rest % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted_as_api_gateway_does() {
        assert_eq!(request_time(1_707_503_007_396), "09/Feb/2024:18:23:27 +0000");
        assert_eq!(iso8601(1_707_503_007_396), "2024-02-09T18:23:27.396Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn kafka_events_are_shaped_as_aws_sends_them() {
        let record = LogRecord {
            topic: "roomcast-events".into(),
            partition: 2,
            offset: 7,
            timestamp_ms: 1_595_035_749_700,
            key: Some(b"general".to_vec()),
            value: b"{}".to_vec(),
            headers: vec![("trace".into(), vec![104, 200])],
        };
        let event = serde_json::to_value(kafka_event(&[record], "b1:9092")).unwrap();
        assert_eq!(event["eventSource"], "SelfManagedKafka");
        assert_eq!(event["bootstrapServers"], "b1:9092");
        let sent = &event["records"]["roomcast-events-2"][0];
        assert_eq!(sent["offset"], 7);
        assert_eq!(sent["key"], "Z2VuZXJhbA==");
        assert_eq!(sent["value"], "e30=");
        assert_eq!(sent["headers"], json!([{ "trace": [104, -56] }]));
    }

    fn handshake() -> Handshake {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer abc".parse().unwrap());
        Handshake {
            connection_id: "Zx0abcDEFgoAcdE=".into(),
            connected_at_ms: 1_707_503_007_396,
            source_ip: "127.0.0.1".into(),
            user_agent: None,
            headers,
            query: HashMap::from([("token".to_owned(), vec!["t1".to_owned(), "t2".to_owned()])]),
            authorizer: HashMap::new(),
        }
    }

    #[test]
    fn the_authorizer_event_is_shaped_as_api_gateway_sends_it() {
        let api = Api {
            api_id: "local".into(),
            stage: "dev".into(),
            domain_name: "127.0.0.1:3001".into(),
        };
        let request = authorizer_request(&api, &handshake());
        assert_eq!(request.query_string_parameters.first("token"), Some("t2"));
        assert_eq!(
            request.multi_value_query_string_parameters.all("token"),
            Some(vec!["t1", "t2"])
        );
        let event = serde_json::to_value(request).unwrap();
        assert_eq!(event["type"], "REQUEST");
        assert_eq!(
            event["methodArn"],
            "arn:aws:execute-api:local:000000000000:local/dev/$connect"
        );
        assert_eq!(event["headers"]["authorization"], "Bearer abc");
        assert_eq!(event["requestContext"]["apiId"], "local");
        assert_eq!(event["requestContext"]["stage"], "dev");
        assert_eq!(event["requestContext"]["identity"]["sourceIp"], "127.0.0.1");
    }

    #[test]
    fn the_authorizer_context_rides_on_every_event_of_the_connection() {
        let api = Api {
            api_id: "local".into(),
            stage: "local".into(),
            domain_name: "127.0.0.1:3001".into(),
        };
        let response = ws_authorizer::allow(
            "arn",
            "u-alice",
            serde_json::Map::from_iter([
                ("userId".to_owned(), json!("u-alice")),
                ("roles".to_owned(), json!("admin")),
            ]),
        );
        let mut handshake = handshake();
        handshake.authorizer = authorizer_fields(&response, 12).unwrap();
        let events = [
            connect(&api, &handshake),
            message(&api, &handshake, "whoami", &Payload::Text("{}")),
            disconnect(&api, &handshake, 1000, ""),
        ];
        for event in events {
            let event = serde_json::to_value(event).unwrap();
            assert_eq!(
                event["requestContext"]["authorizer"],
                json!({"userId": "u-alice", "roles": "admin", "principalId": "u-alice", "integrationLatency": 12}),
                "{event}"
            );
        }
        // API Gateway accepts only strings, numbers and booleans as context values.
        let nested = ws_authorizer::allow(
            "arn",
            "u",
            serde_json::Map::from_iter([("roles".to_owned(), json!(["a"]))]),
        );
        assert_eq!(authorizer_fields(&nested, 1), None);
    }

    #[test]
    fn routes_follow_the_body_action() {
        let routes = ["join", "send"];
        assert_eq!(route_key(&Payload::Text(r#"{"action":"join"}"#), &routes), "join");
        assert_eq!(route_key(&Payload::Text(r#"{"action":"dance"}"#), &routes), "$default");
        assert_eq!(route_key(&Payload::Text("not json"), &routes), "$default");
        assert_eq!(route_key(&Payload::Binary(b"{}"), &routes), "$default");
        let id = new_id();
        assert_eq!(id.len(), 16);
        assert!(id.ends_with('=') && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_=".contains(c)));
    }
}
