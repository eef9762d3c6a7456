//! `$disconnect`: forgets the connection and its claim on its nickname, and tells its
//! user's rooms when the user went offline (or, anonymous, left). API Gateway calls it
//! best-effort; TTLs and fan-out's 410 Gone clean up after the calls it misses.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use roomcast_aws::apigw::{connection_id, response, span};
use roomcast_core::session;
use roomcast_core::{Config, Publisher, Store};
use tracing::Instrument;

pub async fn handle<S, P>(
    store: &S,
    publisher: &P,
    config: &Config,
    request: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse
where
    S: Store + ?Sized,
    P: Publisher + ?Sized,
{
    async {
        let Some(connection_id) = connection_id(request) else {
            tracing::warn!("event has no connectionId");
            return response(400, "missing connectionId");
        };
        let context = &request.request_context;
        match session::disconnect(store, publisher, config, &connection_id).await {
            Ok(removed) => {
                tracing::info!(
                    code = context.disconnect_status_code,
                    reason = context.disconnect_reason.as_deref().unwrap_or(""),
                    rooms = removed.as_ref().map_or(0, |departure| departure.rooms.len()),
                    last = removed.as_ref().is_some_and(|departure| departure.last),
                    known = removed.is_some(),
                    "disconnected"
                );
                response(200, "")
            }
            Err(error) => {
                tracing::error!(
                    error = &error as &dyn std::error::Error,
                    "disconnect cleanup failed; TTL will expire the items"
                );
                response(500, "")
            }
        }
    }
    .instrument(span(request))
    .await
}
