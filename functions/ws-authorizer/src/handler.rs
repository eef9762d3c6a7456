//! The REQUEST authorizer of the WebSocket `$connect` route and of the HTTP API's routes.
//!
//! WebSocket: takes the token from `?token=` or `Authorization: Bearer`, verifies it, and
//! answers an `Allow` policy on the event's `methodArn` with the user in `context`
//! (`userId`, `nick`, `roles`), which API Gateway hands to ws-connect as
//! `requestContext.authorizer`. A refusal is the error `Unauthorized`, which API Gateway
//! turns into HTTP 401.
//!
//! HTTP API (payload format 2.0, simple responses): the token from `Authorization:
//! Bearer`; the same user in `context`, which reaches http-api as
//! `requestContext.authorizer.lambda`. A token the client got wrong is let through with
//! only `refused` (the reason) in `context`, for http-api to answer 401 with that reason:
//! an HTTP API authorizer itself can only deny with 403, and a 403 would tell a client
//! with an expired token that it is forbidden rather than signed out.

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse,
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use serde_json::{Map, Value};
use tracing::Instrument;

mod jwks;
mod settings;
mod token;
mod verify;

pub use jwks::JwksError;
pub use settings::{mode_name, AuthMode, HmacKey, Secret, Settings, SettingsError, MIN_SECRET_BYTES};
pub use token::{sign_hs256, NewToken};
pub use verify::{Authorizer, Identity, Reason, Unauthorized, CONTEXT_NICK, CONTEXT_ROLES, CONTEXT_USER_ID};

pub type Request = ApiGatewayCustomAuthorizerRequestTypeRequest;
pub type Response = ApiGatewayCustomAuthorizerResponse;
/// An HTTP API route's authorizer event (payload format 2.0).
pub type HttpRequest = ApiGatewayV2CustomAuthorizerV2Request;
/// An HTTP API authorizer's simple response.
pub type HttpResponse = ApiGatewayV2CustomAuthorizerSimpleResponse;

pub use roomcast_core::session::CONTEXT_REFUSED;

/// One invocation's event: the function serves both APIs, told apart by the shape.
pub enum Event {
    WebSocket(Box<Request>),
    Http(Box<HttpRequest>),
}

impl Event {
    /// An HTTP API sends `version: "2.0"` and a `routeArn`; the WebSocket API a `methodArn`.
    pub fn parse(event: Value) -> Result<Self, serde_json::Error> {
        let http = event.get("version").and_then(Value::as_str) == Some("2.0") && event.get("routeArn").is_some();
        Ok(if http {
            Event::Http(Box::new(serde_json::from_value(event)?))
        } else {
            Event::WebSocket(Box::new(serde_json::from_value(event)?))
        })
    }
}

/// Authorizes one invocation of either API; the answer as JSON.
pub async fn handle_event(authorizer: &Authorizer, event: Event) -> Result<Value, Unauthorized> {
    let answer = match event {
        Event::WebSocket(request) => serde_json::to_value(handle(authorizer, &request).await?),
        Event::Http(request) => serde_json::to_value(handle_http(authorizer, &request).await?),
    };
    // Both are plain structs of strings and maps: serialising them cannot fail.
    Ok(answer.unwrap_or_default())
}

/// Authorizes one HTTP API request, logging the outcome once (never the token). Fails
/// only when the keys could not be had (the JWKS is down): API Gateway answers 500.
pub async fn handle_http(authorizer: &Authorizer, request: &HttpRequest) -> Result<HttpResponse, Unauthorized> {
    let span = tracing::info_span!(
        "authorize",
        request_id = request.request_context.request_id.as_deref().unwrap_or("-"),
        route = request.route_key.as_deref().unwrap_or("-"),
    );
    async {
        let Some(token) = bearer_token(&request.headers) else {
            tracing::info!("refused: no bearer token");
            return Ok(pass_refused("expected the header `Authorization: Bearer <token>`"));
        };
        let verified = authorizer.verify_token(token).await;
        let mut response = HttpResponse::default();
        response.is_authorized = true;
        match verified {
            Ok(identity) => {
                tracing::info!(principal = %identity.user_id, "allowed");
                response.context = Value::Object(identity.to_context());
            }
            Err(refused) if refused.reason().is_client_error() => {
                tracing::info!(error = refused.reason() as &dyn std::error::Error, "refused");
                return Ok(pass_refused(&refused.reason().to_string()));
            }
            Err(refused) => {
                tracing::warn!(error = refused.reason() as &dyn std::error::Error, "refused");
                return Err(refused);
            }
        }
        Ok(response)
    }
    .instrument(span)
    .await
}

/// The principal of a connection allowed without a token.
pub const ANONYMOUS_PRINCIPAL: &str = "anonymous";

/// Authorizes one `$connect`, logging the outcome once (never the token).
pub async fn handle(authorizer: &Authorizer, request: &Request) -> Result<Response, Unauthorized> {
    let span = tracing::info_span!(
        "authorize",
        request_id = request.request_context.request_id.as_deref().unwrap_or("-"),
    );
    async {
        match authorize(authorizer, request).await {
            Ok(response) => {
                tracing::info!(principal = response.principal_id.as_deref().unwrap_or("-"), "allowed");
                Ok(response)
            }
            Err(refused) => {
                let reason = refused.reason() as &dyn std::error::Error;
                if refused.reason().is_client_error() {
                    tracing::info!(error = reason, "refused");
                } else {
                    tracing::warn!(error = reason, "refused");
                }
                Err(refused)
            }
        }
    }
    .instrument(span)
    .await
}

/// Lets a refused HTTP API request through to http-api with only the reason.
fn pass_refused(reason: &str) -> HttpResponse {
    let mut context = Map::new();
    context.insert(CONTEXT_REFUSED.into(), reason.into());
    let mut response = HttpResponse::default();
    response.is_authorized = true;
    response.context = Value::Object(context);
    response
}

/// The decision, without logging.
pub async fn authorize(authorizer: &Authorizer, request: &Request) -> Result<Response, Unauthorized> {
    let method_arn = request
        .method_arn
        .as_deref()
        .filter(|arn| !arn.is_empty())
        .ok_or(Reason::MissingMethodArn)?;
    let anonymous = || allow(method_arn, ANONYMOUS_PRINCIPAL, Map::new());
    if !authorizer.mode().is_on() {
        return Ok(anonymous());
    }
    match token(request) {
        Some(token) => {
            let identity = authorizer.verify_token(token).await?;
            Ok(allow(method_arn, identity.user_id.as_str(), identity.to_context()))
        }
        None if authorizer.mode() == AuthMode::Optional => Ok(anonymous()),
        None => Err(Reason::MissingToken.into()),
    }
}

/// The token of a request: `?token=` first (browsers cannot set headers on a WebSocket),
/// then an `Authorization: Bearer` header. Empty values count as none.
pub fn token(request: &Request) -> Option<&str> {
    if let Some(token) = request
        .query_string_parameters
        .first("token")
        .map(str::trim)
        .filter(|token| !token.is_empty())
    {
        return Some(token);
    }
    [&request.headers, &request.multi_value_headers]
        .into_iter()
        .find_map(bearer_token)
}

/// The token of an `Authorization: Bearer` header among `headers`.
pub fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get_all(http::header::AUTHORIZATION)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(bearer)
}

fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// An `Allow` on `execute-api:Invoke` for `method_arn`.
pub fn allow(method_arn: &str, principal: &str, context: Map<String, Value>) -> Response {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".into()];
    statement.effect = IamPolicyEffect::Allow;
    statement.resource = vec![method_arn.into()];
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".into());
    policy.statement = vec![statement];
    let mut response = Response::default();
    response.principal_id = Some(principal.into());
    response.policy_document = policy;
    response.context = Value::Object(context);
    response
}
