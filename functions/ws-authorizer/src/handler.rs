//! The REQUEST authorizer of the WebSocket `$connect` route: takes the token from
//! `?token=` or `Authorization: Bearer`, verifies it, and answers an `Allow` policy on the
//! event's `methodArn` with the user in `context` (`userId`, `nick`, `roles`), which API
//! Gateway hands to ws-connect as `requestContext.authorizer`. A refusal is the error
//! `Unauthorized`, which API Gateway turns into HTTP 401.

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse,
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
            Ok(allow(method_arn, &identity.user_id, identity.context()))
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
        .flat_map(|headers| headers.get_all(http::header::AUTHORIZATION))
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
