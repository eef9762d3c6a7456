//! The WebSocket API: the handshake goes through the authorizer when sign-in is on (401 on
//! `Unauthorized`) and `$connect` (a non-2xx answer refuses it with that status), every
//! frame through its route, and every end of a connection — a close frame, a dropped
//! socket, a quota, `DELETE @connections` — through `$disconnect` with the close code and
//! reason. A plain GET of `/` (no upgrade) gets the chat page instead ([`crate::page`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerPolicy;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};

use crate::events::{self, Handshake, Payload};
use crate::registry::{Live, Outbound, OUTBOX_FRAMES};
use crate::Gateway;

/// tungstenite reads into a buffer of this size, zero-filling all of it before each read:
/// its default of 128 KB made every idle connection hold 128 KB of resident memory. Client
/// frames are small (a few hundred bytes); a larger one, up to the frame quota, grows the
/// buffer for as long as it takes to read it.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Frames queued for a client are written out once this many bytes are waiting (or when
/// the queue runs dry), so that a burst of deliveries takes a few writes rather than one
/// each, while the write buffer a connection keeps stays small.
const WRITE_BUFFER_BYTES: usize = 8 * 1024;

/// `GET /` (or `/{stage}`) with an upgrade: the `$connect` route decides. Without one, a
/// browser asks for the chat page (`/`, `/app.js`, ...), which never invokes anything.
pub async fn upgrade(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<Vec<(String, String)>>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return crate::page::serve(uri.path(), &gateway.page_policy).unwrap_or_else(|| rejection.into_response())
        }
    };
    let mut grouped: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in query {
        grouped.entry(name).or_default().push(value);
    }
    let mut handshake = Handshake {
        connection_id: events::new_id(),
        connected_at_ms: roomcast_core::clock::now_ms(),
        source_ip: peer.ip().to_string(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|agent| agent.to_str().ok())
            .map(str::to_owned),
        headers,
        query: grouped,
        authorizer: HashMap::new(),
    };
    match authorize(&gateway, &handshake).await {
        Ok(fields) => handshake.authorizer = fields,
        Err(refused) => return refused,
    }
    let response = gateway
        .functions
        .connect(&events::connect(&gateway.api, &handshake))
        .await;
    if !(200..300).contains(&response.status_code) {
        let status = u16::try_from(response.status_code)
            .ok()
            .and_then(|status| StatusCode::from_u16(status).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, body_text(response.body)).into_response();
    }
    // Only the authorizer and `$connect` see the handshake's headers and query string;
    // the connection's later events do not carry them. Kept, the header values (slices of
    // the HTTP connection's read buffer) would hold that whole buffer, some 16 KB, for as
    // long as the connection lives.
    handshake.headers = HeaderMap::new();
    handshake.query = HashMap::new();
    let failed = (gateway.clone(), handshake.clone());
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_frame_size(gateway.quotas.frame_bytes)
        .max_message_size(gateway.quotas.message_bytes)
        .on_failed_upgrade(move |error| {
            // `$connect` succeeded but the socket never opened: API Gateway still tells
            // `$disconnect`, so the registration does not linger.
            tracing::warn!(%error, "upgrade failed after $connect");
            let (gateway, handshake) = failed;
            tokio::spawn(async move {
                let event = events::disconnect(&gateway.api, &handshake, 1006, "upgrade failed");
                gateway.functions.disconnect(&event).await;
            });
        })
        .on_upgrade(move |socket| run(gateway, handshake, socket))
}

/// The `$connect` authorizer, run as API Gateway runs it: `Unauthorized` refuses the
/// handshake with 401, a policy that does not allow `$connect` with 403, a context API
/// Gateway would not accept with 500. On Allow, the context with `principalId` and
/// `integrationLatency` becomes `requestContext.authorizer` of all the connection's events.
/// Without an authorizer (sign-in off), nothing happens.
async fn authorize(gateway: &Gateway, handshake: &Handshake) -> Result<HashMap<String, serde_json::Value>, Response> {
    let event = events::authorizer_request(&gateway.api, handshake);
    let started = std::time::Instant::now();
    let Some(outcome) = gateway.functions.authorize(&event).await else {
        return Ok(HashMap::new());
    };
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let refuse = |status: StatusCode, message: &str| {
        (status, axum::Json(serde_json::json!({ "message": message }))).into_response()
    };
    let response = outcome.map_err(|_unauthorized| refuse(StatusCode::UNAUTHORIZED, "Unauthorized"))?;
    let method_arn = event.method_arn.as_deref().unwrap_or_default();
    if !allows(&response.policy_document, method_arn) {
        return Err(refuse(StatusCode::FORBIDDEN, "Forbidden"));
    }
    events::authorizer_fields(&response, latency_ms).ok_or_else(|| {
        tracing::error!("the authorizer's context holds values other than strings, numbers and booleans");
        refuse(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    })
}

/// Whether `policy` allows invoking `method_arn`: an `Allow` statement covers it and no
/// `Deny` statement does (resources may end in `*`).
fn allows(policy: &ApiGatewayCustomAuthorizerPolicy, method_arn: &str) -> bool {
    let covers = |statement: &IamPolicyStatement| {
        let action = statement
            .action
            .iter()
            .any(|action| matches!(action.as_str(), "execute-api:Invoke" | "execute-api:*" | "*"));
        let resource = statement
            .resource
            .iter()
            .any(|resource| match resource.strip_suffix('*') {
                Some(prefix) => method_arn.starts_with(prefix),
                None => resource == method_arn,
            });
        action && resource
    };
    let mut allowed = false;
    for statement in policy.statement.iter().filter(|statement| covers(statement)) {
        match statement.effect {
            IamPolicyEffect::Allow => allowed = true,
            _ => return false,
        }
    }
    allowed
}

fn body_text(body: Option<Body>) -> String {
    match body {
        Some(Body::Text(text)) => text,
        Some(Body::Binary(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        _ => String::new(),
    }
}

/// One connection, from the open socket to `$disconnect`.
async fn run(gateway: Arc<Gateway>, handshake: Handshake, socket: WebSocket) {
    let id = handshake.connection_id.clone();
    let handshake = Arc::new(handshake);
    let (outbox, frames) = mpsc::channel(OUTBOX_FRAMES);
    let last_active_ms = Arc::new(AtomicI64::new(roomcast_core::clock::now_ms()));
    let live = Arc::new(Live {
        handshake: handshake.clone(),
        outbox: outbox.clone(),
        last_active_ms: last_active_ms.clone(),
    });
    gateway.registry.insert(live);

    let (sink, mut stream) = socket.split();
    let (closed_tx, mut closed_by_server) = oneshot::channel();
    let writer = tokio::spawn(write(sink, frames, closed_tx));

    let quotas = &gateway.quotas;
    let lifetime = tokio::time::sleep(quotas.max_lifetime);
    tokio::pin!(lifetime);
    let (code, reason): (u16, String) = loop {
        tokio::select! {
            closed = &mut closed_by_server => {
                break closed.unwrap_or((1006, "connection lost".to_owned()));
            }
            () = &mut lifetime => {
                let _ = outbox.send(Outbound::Close(1001, "Going away".to_owned())).await;
                break (1001, "Going away".to_owned());
            }
            next = tokio::time::timeout(quotas.idle_timeout, stream.next()) => match next {
                Err(_idle) => {
                    let _ = outbox.send(Outbound::Close(1001, "Going away".to_owned())).await;
                    break (1001, "Going away".to_owned());
                }
                Ok(None) => break (1006, "Connection closed abnormally".to_owned()),
                Ok(Some(Err(error))) => {
                    if is_too_big(error) {
                        let _ = outbox.send(Outbound::Close(1009, "Message too big".to_owned())).await;
                        break (1009, "Message too big".to_owned());
                    }
                    break (1006, "Connection closed abnormally".to_owned());
                }
                Ok(Some(Ok(message))) => {
                    last_active_ms.store(roomcast_core::clock::now_ms(), Ordering::Relaxed);
                    // The handler's future is boxed: inline, its few KB would be part of this
                    // task, and so of every idle connection, for the connection's whole life.
                    let reply = match &message {
                        Message::Text(text) => Some(Box::pin(route(&gateway, &handshake, Payload::Text(text.as_str()))).await),
                        Message::Binary(bytes) => Some(Box::pin(route(&gateway, &handshake, Payload::Binary(bytes))).await),
                        Message::Close(frame) => {
                            break frame.as_ref().map_or((1005, String::new()), |f| (f.code, f.reason.to_string()));
                        }
                        Message::Ping(_) | Message::Pong(_) => None,
                    };
                    if let Some(Some(reply)) = reply {
                        if outbox.send(Outbound::Text(reply)).await.is_err() {
                            break (1006, "Connection closed abnormally".to_owned());
                        }
                    }
                }
            },
        }
    };

    gateway.registry.remove(&id);
    drop(outbox);
    // Let queued frames and the close frame go out, but never wait on a stuck client.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), writer).await;
    tracing::info!(connection_id = %id, code, %reason, "connection closed");
    let event = events::disconnect(&gateway.api, &handshake, code, &reason);
    Box::pin(gateway.functions.disconnect(&event)).await;
    gateway.registry.finished();
}

/// Runs a frame through its route; the route's answer goes back to the client.
async fn route(gateway: &Gateway, handshake: &Handshake, payload: Payload<'_>) -> Option<String> {
    let route = events::route_key(&payload, roomcast_core::commands::ACTIONS);
    let event = events::message(&gateway.api, handshake, &route, &payload);
    let response = gateway.functions.message(&event).await;
    Some(body_text(response.body)).filter(|body| !body.is_empty())
}

/// Sends what the gateway queues for this connection; reports a server-side close. Frames
/// already queued go out together: each is handed to the socket without a flush, and the
/// flush comes once the queue is empty.
async fn write(
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    mut frames: mpsc::Receiver<Outbound>,
    closed: oneshot::Sender<(u16, String)>,
) {
    while let Some(mut frame) = frames.recv().await {
        loop {
            let fed = match frame {
                Outbound::Text(text) => sink.feed(Message::Text(text.into())).await,
                Outbound::Binary(bytes) => sink.feed(Message::Binary(bytes.into())).await,
                Outbound::Close(code, reason) => {
                    let frame = CloseFrame {
                        code,
                        reason: reason.clone().into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    let _ = closed.send((code, reason));
                    return;
                }
            };
            if fed.is_err() {
                return;
            }
            match frames.try_recv() {
                Ok(next) => frame = next,
                Err(_) => break,
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    // Completes a close handshake the client started.
    let _ = sink.close().await;
}

/// Whether a read failed because the client exceeded the frame or message quota.
fn is_too_big(error: axum::Error) -> bool {
    let error = error.into_inner();
    matches!(
        error.downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}
