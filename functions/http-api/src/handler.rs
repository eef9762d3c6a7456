//! http-api: the function behind every route of the HTTP API (docs/protocol.md, "HTTP API"), for
//! polling clients and for services that push to users. Each request runs the very command
//! a WebSocket frame would (`roomcast_core::http`), for the user the authorizer vouched for
//! and with no connection; the answer is that command's server frame, or an error frame,
//! with an HTTP status.

use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use roomcast_core::commands::Context;
use roomcast_core::http::{self as api, OPENAPI_PATH};
use roomcast_core::session::{Identity, CONTEXT_REFUSED};
use roomcast_core::{ClientError, Config, Ports, ServerFrame};
use tracing::Instrument;

/// The OpenAPI 3 document of the API, as kept in the repository.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Handles one request end to end with the ports and settings built once per cold start.
/// Always has an answer; nothing here panics on input.
pub async fn handle(ports: &Ports, config: &Config, request: Request) -> Response<Body> {
    let context = request.request_context_ref().and_then(|context| match context {
        RequestContext::ApiGatewayV2(context) => Some(context.clone()),
        #[allow(unreachable_patterns)]
        _ => None,
    });
    let request_id = context.as_ref().and_then(|c| c.request_id.clone()).unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    async {
        let method = request.method().as_str().to_owned();
        let path = request.uri().path().to_owned();
        if method == "GET" && path == OPENAPI_PATH {
            return reply(200, OPENAPI.to_owned());
        }
        let authorizer = context.as_ref().and_then(|context| context.authorizer.as_ref());
        let fields = authorizer.map(|authorizer| &authorizer.fields);
        let caller = match fields.and_then(Identity::from_context) {
            Some(identity) => identity.caller(config),
            None => {
                let reason = fields
                    .and_then(|fields| fields.get(CONTEXT_REFUSED))
                    .and_then(|reason| reason.as_str())
                    .unwrap_or("no token given (Authorization: Bearer)");
                tracing::info!(reason, "unauthorized");
                return refused(ClientError::unauthorized(reason));
            }
        };
        let body = match request.body() {
            Body::Empty => None,
            Body::Text(text) => Some(text.as_str()),
            Body::Binary(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => Some(text),
                // Only a POST reads its body; the other routes ignore whatever they get.
                Err(_) if method != "POST" => None,
                Err(_) => return refused(ClientError::bad_request("the body must be UTF-8 JSON")),
            },
            #[allow(unreachable_patterns)]
            _ => None,
        };
        let query = request
            .query_string_parameters_ref()
            .map(|query| {
                query
                    .iter()
                    .map(|(name, value)| (name.to_owned(), value.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let now_ms = match context.as_ref().map(|context| context.time_epoch) {
            Some(epoch) if epoch > 0 => epoch,
            _ => roomcast_core::clock::now_ms(),
        };
        let ctx = Context {
            ports,
            config,
            caller: &caller,
            now_ms,
        };
        let answer = api::handle(
            &ctx,
            &api::Request {
                method: &method,
                path: &path,
                query,
                body,
            },
        )
        .await;
        if answer.status >= 400 {
            tracing::info!(status = answer.status, user = %caller.user.user_id, body = %answer.body, "request refused");
        }
        reply(answer.status, answer.body)
    }
    .instrument(span)
    .await
}

fn refused(error: ClientError) -> Response<Body> {
    let status = api::status_of(error.code);
    reply(status, ServerFrame::error(error, None).to_json())
}

/// A JSON answer that no cache keeps: every poll must reach the table.
fn reply(status: u16, body: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = lambda_http::http::StatusCode::from_u16(status).unwrap_or_default();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    headers.insert(CACHE_CONTROL, lambda_http::http::HeaderValue::from_static("no-store"));
    response
}
