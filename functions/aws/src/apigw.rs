//! What every WebSocket handler needs from an API Gateway event: who is asking, a log span
//! naming them, and a response.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use roomcast_core::ConnectionId;

/// The connection that sent the event. API Gateway always sets it; an event without one
/// was not sent by API Gateway.
pub fn connection_id(request: &ApiGatewayWebsocketProxyRequest) -> Option<ConnectionId> {
    request
        .request_context
        .connection_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .map(ConnectionId::new)
}

/// A span carrying the connection id and API Gateway's request id onto every log line.
pub fn span(request: &ApiGatewayWebsocketProxyRequest) -> tracing::Span {
    let context = &request.request_context;
    tracing::info_span!(
        "request",
        route = context.route_key.as_deref().unwrap_or("-"),
        connection_id = context.connection_id.as_deref().unwrap_or("-"),
        request_id = context.request_id.as_deref().unwrap_or("-"),
    )
}

/// A proxy response: for `$connect` the status decides the handshake; for message routes
/// API Gateway sends `body` back to the client as one text frame.
pub fn response(status: u16, body: impl Into<String>) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    let body = body.into();
    if !body.is_empty() {
        response.body = Some(Body::Text(body));
    }
    response
}
