//! The `@connections` management API, as API Gateway serves it at
//! `https://{api}.execute-api.{region}.amazonaws.com/{stage}/@connections/{id}`: POST sends
//! one frame, GET describes the connection, DELETE closes it. Errors carry AWS's error type
//! in `x-amzn-ErrorType`, so the official SDKs work against it with only an endpoint
//! override. With `--verify-signatures` every request must carry a valid SigV4 signature
//! made with the gateway's own AWS credentials, as API Gateway checks the caller's: a
//! missing or wrong one is answered 403 ([`Signatures`]).

mod signatures;

pub use signatures::Signatures;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::mpsc::error::TrySendError;

use crate::events::iso8601;
use crate::registry::Outbound;
use crate::Gateway;

pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/@connections/{id}", post(send).get(describe).delete(close))
        .route(
            "/{stage}/@connections/{id}",
            post(staged_send).get(staged_describe).delete(staged_close),
        )
}

/// An error as the management API answers it.
fn aws_error(status: StatusCode, kind: &'static str, message: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("x-amzn-ErrorType", HeaderValue::from_static(kind));
    (status, headers, Json(json!({ "message": message }))).into_response()
}

/// The round trip `--connections-delay-ms` asks for, before any answer.
async fn round_trip(gateway: &Gateway) {
    if !gateway.connections_delay.is_zero() {
        tokio::time::sleep(gateway.connections_delay).await;
    }
}

fn gone() -> Response {
    aws_error(StatusCode::GONE, "GoneException", "")
}

/// The most of a request's body read (axum's default limit, as before the signature
/// check needed the whole request): above the management API's own quota anyway.
const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// What every request carries besides its path's id, for the signature check.
struct Call {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

/// The signature check, when the gateway makes it: the 403 to answer when it fails.
fn refusal(gateway: &Gateway, request: &Call) -> Option<Response> {
    let signatures = gateway.signatures.as_ref()?;
    let refusal = signatures
        .verify(&request.method, &request.uri, &request.headers, &request.body)
        .err()?;
    Some(aws_error(StatusCode::FORBIDDEN, refusal.kind(), &refusal.to_string()))
}

async fn send(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>, request: Call) -> Response {
    round_trip(&gateway).await;
    if let Some(refused) = refusal(&gateway, &request) {
        return refused;
    }
    let body = request.body;
    if body.len() > gateway.quotas.message_bytes {
        let message = format!(
            "data is {} bytes; the limit is {}",
            body.len(),
            gateway.quotas.message_bytes
        );
        return aws_error(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException", &message);
    }
    let Some(live) = gateway.registry.get(&id) else {
        return gone();
    };
    let frame = match String::from_utf8(body.to_vec()) {
        Ok(text) => Outbound::Text(text),
        Err(error) => Outbound::Binary(error.into_bytes()),
    };
    match live.outbox.try_send(frame) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(TrySendError::Full(_)) => aws_error(
            StatusCode::TOO_MANY_REQUESTS,
            "LimitExceededException",
            "the client is not reading its frames",
        ),
        Err(TrySendError::Closed(_)) => gone(),
    }
}

async fn describe(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>, request: Call) -> Response {
    round_trip(&gateway).await;
    if let Some(refused) = refusal(&gateway, &request) {
        return refused;
    }
    let Some(live) = gateway.registry.get(&id) else {
        return gone();
    };
    let handshake = &live.handshake;
    Json(json!({
        "connectedAt": iso8601(handshake.connected_at_ms),
        "identity": { "sourceIp": handshake.source_ip, "userAgent": handshake.user_agent },
        "lastActiveAt": iso8601(live.last_active_ms()),
    }))
    .into_response()
}

async fn close(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>, request: Call) -> Response {
    round_trip(&gateway).await;
    if let Some(refused) = refusal(&gateway, &request) {
        return refused;
    }
    let Some(live) = gateway.registry.get(&id) else {
        return gone();
    };
    // The connection's task runs `$disconnect` once the socket is closed.
    match live.outbox.send(Outbound::Close(1000, String::new())).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => gone(),
    }
}

async fn staged_send(state: State<Arc<Gateway>>, Path((_, id)): Path<(String, String)>, request: Call) -> Response {
    send(state, Path(id), request).await
}

async fn staged_describe(state: State<Arc<Gateway>>, Path((_, id)): Path<(String, String)>, request: Call) -> Response {
    describe(state, Path(id), request).await
}

async fn staged_close(state: State<Arc<Gateway>>, Path((_, id)): Path<(String, String)>, request: Call) -> Response {
    close(state, Path(id), request).await
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for Call {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|_| {
            let message = format!("the body is over {BODY_LIMIT} bytes or was cut short");
            aws_error(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException", &message)
        })?;
        Ok(Call {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
        })
    }
}
