//! What every WebSocket handler needs from an API Gateway event: which connection and which
//! signed-in user is asking, a log span naming them, and a response.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use roomcast_core::session::Identity;
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

/// The user the `$connect` authorizer vouched for, from `requestContext.authorizer`: its
/// context is `{userId, nick?, roles}` (roles comma-joined, as an authorizer context holds
/// only strings, numbers and booleans). Only API Gateway can set it; without an authorizer,
/// or when it let an anonymous connection through, there is no `userId` and no identity.
pub fn identity(request: &ApiGatewayWebsocketProxyRequest) -> Option<Identity> {
    Identity::from_context(&request.request_context.authorizer.fields)
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

#[cfg(test)]
mod tests {
    use super::*;
    use roomcast_core::UserId;
    use serde_json::json;

    #[test]
    fn the_identity_is_read_from_the_authorizer_context() {
        let mut request = ApiGatewayWebsocketProxyRequest::default();
        assert_eq!(identity(&request), None, "no authorizer, no identity");
        let fields = &mut request.request_context.authorizer.fields;
        fields.insert("principalId".into(), json!("anonymous"));
        assert_eq!(identity(&request), None, "an anonymous pass has no userId");
        let fields = &mut request.request_context.authorizer.fields;
        fields.insert("userId".into(), json!("u-1"));
        fields.insert("roles".into(), json!("admin, service,"));
        let found = identity(&request).unwrap();
        assert_eq!(found.user_id, UserId::new("u-1"));
        assert_eq!(found.nick, None);
        assert_eq!(found.roles, ["admin", "service"]);
    }
}
