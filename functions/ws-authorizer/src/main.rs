//! The authorizer Lambda function of the WebSocket `$connect` route and of the HTTP API:
//! settings and keys read once per cold start (the HS256 secret from Secrets Manager when
//! `ROOMCAST_JWT_SECRET_ARN` is set).

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use ws_authorizer::{Authorizer, Event, HmacKey, Secret, Settings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    roomcast_aws::telemetry::init_lambda();
    let mut settings = Settings::from_lookup(|name| std::env::var(name).ok())?;
    if let Some(arn) = settings.secret_arn() {
        let secret = read_secret(arn).await?;
        settings.hmac = Some(HmacKey::Secret(secret));
    }
    let authorizer = Authorizer::new(settings)?;
    tracing::info!(mode = ws_authorizer::mode_name(authorizer.mode()), "authorizer ready");

    run(service_fn(|event: LambdaEvent<Value>| {
        let authorizer = &authorizer;
        async move {
            let event = Event::parse(event.payload)?;
            ws_authorizer::handle_event(authorizer, event)
                .await
                .map_err(Error::from)
        }
    }))
    .await
}

/// The secret string of `arn`, with the shared SDK configuration's timeouts.
async fn read_secret(arn: &str) -> Result<Secret, Error> {
    let sdk = roomcast_aws::config::aws_sdk_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let output = client.get_secret_value().secret_id(arn).send().await.map_err(|error| {
        format!(
            "reading the secret {arn} (ROOMCAST_JWT_SECRET_ARN): {}",
            DisplayErrorContext(&error)
        )
    })?;
    let secret = output
        .secret_string()
        .ok_or_else(|| format!("the secret {arn} has no SecretString"))?;
    Ok(Secret::new(secret))
}
