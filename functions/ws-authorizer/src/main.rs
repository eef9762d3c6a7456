//! The authorizer Lambda function of the WebSocket `$connect` route and of the HTTP API:
//! settings and keys read once per cold start (the HS256 secret from Secrets Manager when
//! `ROOMCAST_JWT_SECRET_ARN` is set).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use ws_authorizer::{Authorizer, Event, HmacKey, Secret, Settings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    roomcast_aws::telemetry::init_lambda();
    let mut settings = Settings::from_lookup(|name| std::env::var(name).ok())?;
    if let Some(arn) = settings.secret_arn() {
        let sdk = roomcast_aws::config::aws_sdk_config().await;
        let secret = roomcast_aws::secrets::secret_string(&sdk, arn, "ROOMCAST_JWT_SECRET_ARN").await?;
        settings.hmac = Some(HmacKey::Secret(Secret::new(secret)));
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
