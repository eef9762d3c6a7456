//! The HTTP API, emulated as API Gateway runs it (payload format 2.0): a request no route
//! takes is answered 404 without invoking anything; a route with the authorizer and no
//! `Authorization` header is answered 401 without invoking it (its identity source is
//! missing); otherwise ws-authorizer runs on the HTTP API authorizer event and its
//! `context` reaches http-api as `requestContext.authorizer.lambda`, exactly as in AWS.
//! Locally only, without a configured key, `POST /api/dev/token` signs tokens with the
//! gateway's own secret, so that a polling client works after `cargo run` alone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayV2CustomAuthorizerV2Request, ApiGatewayV2httpRequest,
    ApiGatewayV2httpRequestContext,
};
use aws_lambda_events::query_map::QueryMap;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use base64::Engine as _;
use roomcast_core::http::{Route, OPENAPI_PATH};
use roomcast_core::Nick;
use serde_json::{json, Value};

use crate::events::{self, Api};
use crate::Gateway;

/// Where the gateway signs tokens when no identity provider is configured.
pub const DEV_TOKEN_PATH: &str = "/api/dev/token";
/// How long a dev token lasts: a working day of a browser tab.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);
/// At most this many roles in a dev token, each at most this long.
const DEV_TOKEN_ROLES: usize = 8;
const DEV_TOKEN_ROLE_CHARS: usize = 64;

/// API Gateway's HTTP API takes request bodies of up to 10 MB.
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// A larger body is still read, up to this much more, before the 413.
const DRAIN_BYTES: usize = 4 * MAX_BODY_BYTES;
/// A body whose next bytes take longer than this is given up on.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/api", any(serve))
        .route("/api/{*path}", any(serve))
}

/// The request's body, if it is within API Gateway's limit; otherwise its answer.
///
/// A body over the limit is read on (within bounds) and dropped before the 413 goes out:
/// a server that closes a connection with unread bytes makes its kernel reset it, and a
/// client still writing then sees a broken connection instead of the answer.
async fn read_body(body: Body) -> Result<Bytes, Response> {
    use futures::StreamExt as _;
    let bad_request = || api_gateway_error(StatusCode::BAD_REQUEST, "Bad Request");
    let too_large = || api_gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut read = 0usize;
    loop {
        let chunk = match tokio::time::timeout(BODY_IDLE_TIMEOUT, stream.next()).await {
            Ok(Some(Ok(chunk))) => chunk,
            Ok(None) => break,
            // A client that stops sending, or breaks off, mid-body.
            Ok(Some(Err(_))) | Err(_) if read > MAX_BODY_BYTES => return Err(too_large()),
            Ok(Some(Err(_))) | Err(_) => return Err(bad_request()),
        };
        read = read.saturating_add(chunk.len());
        if read <= MAX_BODY_BYTES {
            kept.extend_from_slice(&chunk);
        } else if read > MAX_BODY_BYTES + DRAIN_BYTES {
            break;
        }
    }
    if read > MAX_BODY_BYTES {
        return Err(too_large());
    }
    Ok(Bytes::from(kept))
}

async fn serve(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let path = uri.path();
    if path == DEV_TOKEN_PATH && method == Method::POST {
        return dev_token(&gateway, &body);
    }
    let open = method == Method::GET && path == OPENAPI_PATH;
    let Some(route_key) = route_key(&method, path, open) else {
        return api_gateway_error(StatusCode::NOT_FOUND, "Not Found");
    };
    let mut event = request_event(&gateway.api, peer, &method, &uri, &headers, &body, &route_key);
    if !open {
        if !has_identity_source(&headers) {
            return api_gateway_error(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
        let authorizer = authorizer_event(&gateway.api, &event);
        match gateway.functions.authorize_http(&authorizer).await {
            Ok(answer) if answer.is_authorized => {
                let mut fields = std::collections::HashMap::new();
                if let Value::Object(context) = answer.context {
                    fields.extend(context);
                }
                let mut description = ApiGatewayRequestAuthorizer::default();
                description.fields = fields;
                event.request_context.authorizer = Some(description);
            }
            Ok(_) => return api_gateway_error(StatusCode::FORBIDDEN, "Forbidden"),
            Err(_) => return api_gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        }
    }
    // The function gets the event as JSON and decodes it as lambda_http does in AWS.
    let request = match serde_json::to_string(&event)
        .map_err(|error| error.to_string())
        .and_then(|json| lambda_http::request::from_str(&json).map_err(|error| error.to_string()))
    {
        Ok(request) => request,
        Err(error) => {
            tracing::error!(%error, "could not build the HTTP API event");
            return api_gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };
    let answer = gateway.functions.http(request).await;
    let (parts, body) = answer.into_parts();
    let body = match body {
        lambda_http::Body::Empty => Vec::new(),
        lambda_http::Body::Text(text) => text.into_bytes(),
        lambda_http::Body::Binary(bytes) => bytes,
        #[allow(unreachable_patterns)]
        _ => Vec::new(),
    };
    (parts.status, parts.headers, body).into_response()
}

/// The route key API Gateway matches (`POST /api/rooms/{room}/messages`), if a route
/// takes the request.
fn route_key(method: &Method, path: &str, open: bool) -> Option<String> {
    if open {
        return Some(format!("GET {OPENAPI_PATH}"));
    }
    let (route, _) = Route::find(method.as_str(), path)?;
    Some(format!("{} {}", route.method, route.path))
}

/// API Gateway runs a Lambda authorizer only when every identity source is present and
/// not empty: here the `Authorization` header.
fn has_identity_source(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| !value.trim().is_empty())
}

/// API Gateway's own answers (`{"message":"Not Found"}`), which no function wrote.
fn api_gateway_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "message": message }).to_string(),
    )
        .into_response()
}

/// The payload format 2.0 event of a request, field for field as API Gateway sends it.
fn request_event(
    api: &Api,
    peer: SocketAddr,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    route_key: &str,
) -> ApiGatewayV2httpRequest {
    let now = roomcast_core::clock::now_ms();
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(route_key.to_owned());
    context.account_id = Some("000000000000".to_owned());
    context.stage = Some("$default".to_owned());
    context.request_id = Some(events::new_id());
    context.apiid = Some(api.api_id.clone());
    context.domain_name = Some(api.domain_name.clone());
    context.domain_prefix = Some(api.api_id.clone());
    context.time = Some(events::request_time(now));
    context.time_epoch = now;
    context.http.method = method.clone();
    context.http.path = Some(uri.path().to_owned());
    context.http.protocol = Some("HTTP/1.1".to_owned());
    context.http.source_ip = Some(peer.ip().to_string());
    context.http.user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|agent| agent.to_str().ok())
        .map(str::to_owned);

    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".to_owned());
    event.route_key = Some(route_key.to_owned());
    event.raw_path = Some(uri.path().to_owned());
    event.raw_query_string = Some(uri.query().unwrap_or_default().to_owned());
    event.query_string_parameters = uri.query().unwrap_or_default().parse::<QueryMap>().unwrap_or_default();
    event.headers = headers.clone();
    if let Some((_, parameters)) = Route::find(method.as_str(), uri.path()) {
        for (name, value) in parameters.0 {
            event.path_parameters.insert(name.to_owned(), value.to_owned());
        }
    }
    if !body.is_empty() {
        match std::str::from_utf8(body) {
            Ok(text) => event.body = Some(text.to_owned()),
            Err(_) => {
                event.body = Some(base64::engine::general_purpose::STANDARD.encode(body));
                event.is_base64_encoded = true;
            }
        }
    }
    event.request_context = context;
    event
}

/// The authorizer's event for a request (payload format 2.0).
fn authorizer_event(api: &Api, request: &ApiGatewayV2httpRequest) -> ApiGatewayV2CustomAuthorizerV2Request {
    let route_key = request.route_key.clone().unwrap_or_default();
    let (method, path) = route_key.split_once(' ').unwrap_or(("", ""));
    let mut event = ApiGatewayV2CustomAuthorizerV2Request::default();
    event.version = Some("2.0".to_owned());
    event.type_ = Some("REQUEST".to_owned());
    event.route_arn = Some(format!(
        "arn:aws:execute-api:local:000000000000:{}/$default/{method}{path}",
        api.api_id
    ));
    event.identity_source = Some(
        request
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .into_iter()
            .collect(),
    );
    event.route_key = Some(route_key.clone());
    event.raw_path = request.raw_path.clone();
    event.raw_query_string = request.raw_query_string.clone();
    event.headers = request.headers.clone();
    event.query_string_parameters = request
        .query_string_parameters
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    event.path_parameters = request.path_parameters.clone();
    event.request_context = request.request_context.clone();
    event
}

/// `POST /api/dev/token {nick, roles?}`: a token for the user `dev-<nick>`, signed with the
/// gateway's own secret. Offered only when no key is configured (no identity provider to
/// stand in for); otherwise 404, as any unknown path.
fn dev_token(gateway: &Gateway, body: &[u8]) -> Response {
    let Some(signer) = gateway.functions.dev_signer.as_ref() else {
        return api_gateway_error(StatusCode::NOT_FOUND, "Not Found");
    };
    let refuse = |message: String| {
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            roomcast_core::ServerFrame::error(roomcast_core::ClientError::bad_request(message), None).to_json(),
        )
            .into_response()
    };
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Ask {
        nick: String,
        #[serde(default)]
        roles: Vec<String>,
    }
    let ask: Ask = match serde_json::from_slice(body) {
        Ok(ask) => ask,
        Err(error) => return refuse(format!("expected {{\"nick\": ..., \"roles\": [...]}}: {error}")),
    };
    let nick = match Nick::parse(ask.nick.trim(), gateway.functions.config.limits.nick_chars) {
        Ok(nick) => nick,
        Err(error) => return refuse(error),
    };
    if ask.roles.len() > DEV_TOKEN_ROLES
        || ask.roles.iter().any(|role| {
            role.is_empty()
                || role.chars().count() > DEV_TOKEN_ROLE_CHARS
                || role.contains(',')
                || role.contains(char::is_whitespace)
        })
    {
        return refuse(format!(
            "roles: at most {DEV_TOKEN_ROLES}, each 1 to {DEV_TOKEN_ROLE_CHARS} characters without commas or spaces"
        ));
    }
    let user_id = format!("dev-{}", nick.as_str());
    let token = ws_authorizer::NewToken::new(user_id.clone())
        .matching(signer.settings())
        .nick(nick.as_str())
        .roles(ask.roles.clone())
        .ttl(DEV_TOKEN_TTL);
    match signer.sign(&token) {
        Ok(signed) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json!({
                "token": signed,
                "userId": user_id,
                "nick": nick.as_str(),
                "roles": ask.roles,
                "expiresIn": DEV_TOKEN_TTL.as_secs(),
            })
            .to_string(),
        )
            .into_response(),
        Err(error) => {
            tracing::error!(error = &*error as &dyn std::error::Error, "could not sign a dev token");
            api_gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

/// Signs dev tokens with the gateway's own secret, made up at start.
pub struct DevSigner {
    settings: ws_authorizer::Settings,
}

impl DevSigner {
    /// A signer with a fresh random secret, and the settings that verify its tokens.
    pub fn new(settings: &ws_authorizer::Settings) -> anyhow::Result<Self> {
        let mut secret = [0u8; 48];
        aws_lc_rs::rand::fill(&mut secret).map_err(|_| anyhow::anyhow!("no randomness for the dev secret"))?;
        let mut settings = settings.clone();
        settings.hmac = Some(ws_authorizer::HmacKey::Secret(ws_authorizer::Secret::new(
            secret.to_vec(),
        )));
        Ok(Self { settings })
    }

    /// The settings (with the secret) that verify what this signs.
    pub fn settings(&self) -> &ws_authorizer::Settings {
        &self.settings
    }

    fn sign(&self, token: &ws_authorizer::NewToken) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        let secret = self.settings.secret().ok_or("the dev signer has no secret")?;
        Ok(ws_authorizer::sign_hs256(secret.expose(), token)?)
    }
}
