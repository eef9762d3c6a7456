//! `$connect`: registers the connection for the user the authorizer vouched for (or an
//! anonymous one) under its nickname (the token's, else `?name=`), and tells the user's
//! rooms when it comes online; or refuses the WebSocket handshake with the status API
//! Gateway passes on to the client (400 for a malformed name, 409 for a taken one, 429 for a user
//! connecting too often).

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use roomcast_aws::apigw::{connection_id, identity, response, span};
use roomcast_core::session::{self, NewConnection};
use roomcast_core::{Config, Connections, Publisher, Quotas};
use tracing::Instrument;

pub async fn handle<S, P>(
    store: &S,
    publisher: &P,
    config: &Config,
    request: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse
where
    S: Connections + Quotas + ?Sized,
    P: Publisher + ?Sized,
{
    async {
        let Some(connection_id) = connection_id(request) else {
            tracing::warn!("event has no connectionId");
            return response(400, "missing connectionId");
        };
        let new = NewConnection {
            connection_id,
            name: request.query_string_parameters.first("name"),
            identity: identity(request),
            connected_at_ms: request.request_context.connected_at,
        };
        match session::connect(store, publisher, config, new).await {
            Ok(connection) => {
                tracing::info!(nick = %connection.user.nick, user_id = %connection.user.user_id, "connected");
                response(200, "")
            }
            Err(error) => {
                let status = error.status();
                if status >= 500 {
                    tracing::error!(error = &error as &dyn std::error::Error, "connect failed");
                } else {
                    tracing::info!(%error, status, "handshake refused");
                }
                response(status, error.to_string())
            }
        }
    }
    .instrument(span(request))
    .await
}
