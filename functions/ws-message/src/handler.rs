//! Every message route (`join`, `send`, ... and `$default`): parses the client frame, runs
//! the command, and answers with one frame that API Gateway returns to the client. A bad
//! frame is answered with an error frame; nothing here closes the connection.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use base64::Engine as _;
use roomcast_aws::apigw::{connection_id, response, span};
use roomcast_core::commands::{handle_frame, Frame};
use roomcast_core::{ClientError, Config, Ports, ServerFrame};
use tracing::Instrument;

pub async fn handle(
    ports: &Ports,
    config: &Config,
    request: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    async {
        let Some(connection_id) = connection_id(request) else {
            tracing::warn!("event has no connectionId");
            return response(400, "missing connectionId");
        };
        let frame = match body_text(request) {
            Ok(body) => {
                let frame = Frame {
                    ports,
                    config,
                    connection_id: &connection_id,
                    source_ip: request.request_context.identity.source_ip.as_deref(),
                    now_ms: request_time(request),
                };
                handle_frame(&frame, &body).await
            }
            Err(error) => ServerFrame::error(error, None),
        };
        if let ServerFrame::Error {
            code, message, action, ..
        } = &frame
        {
            tracing::info!(?code, %message, action = action.as_deref().unwrap_or("-"), "frame refused");
        }
        response(200, frame.to_json())
    }
    .instrument(span(request))
    .await
}

/// The frame's text. API Gateway base64-encodes binary frames; the protocol is text only.
fn body_text(request: &ApiGatewayWebsocketProxyRequest) -> Result<String, ClientError> {
    let body = request.body.clone().unwrap_or_default();
    if !request.is_base64_encoded {
        return Ok(body);
    }
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| ClientError::bad_request("frames must be UTF-8 JSON text"))
}

/// API Gateway's `requestTimeEpoch` (ms); the clock, when an event lacks it.
fn request_time(request: &ApiGatewayWebsocketProxyRequest) -> i64 {
    match request.request_context.request_time_epoch {
        0 => roomcast_core::clock::now_ms(),
        epoch => epoch,
    }
}
