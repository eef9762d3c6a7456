//! Secrets Manager, read once per cold start with the shared SDK configuration's timeouts:
//! ws-authorizer's HS256 key (`ROOMCAST_JWT_SECRET_ARN`) and the Kafka producers' SASL
//! sign-in (`ROOMCAST_KAFKA_SECRET_ARN`). A secret kept this way is not in the functions'
//! configuration, where whoever may read that (`lambda:GetFunctionConfiguration`) would
//! read it too, and a rotated secret reaches every new instance without a deploy.

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use serde::Deserialize;

use crate::config::{ConfigError, Env};
use crate::kafka::KafkaSettings;

/// Why a secret could not be had. Never contains the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading the secret {arn} ({variable}): {reason}")]
    Unreadable {
        arn: String,
        variable: &'static str,
        reason: String,
    },
    #[error("the secret {arn} ({variable}) has no SecretString")]
    NotAString { arn: String, variable: &'static str },
    #[error("the secret {arn} ({variable}) is not a JSON object with the strings `username` and `password`")]
    NotCredentials { arn: String, variable: &'static str },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The secret string of `arn`, which the variable `variable` named.
pub async fn secret_string(sdk: &SdkConfig, arn: &str, variable: &'static str) -> Result<String, SecretError> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|error| SecretError::Unreadable {
            arn: arn.to_owned(),
            variable,
            reason: DisplayErrorContext(&error).to_string(),
        })?;
    output
        .secret_string()
        .map(str::to_owned)
        .ok_or_else(|| SecretError::NotAString {
            arn: arn.to_owned(),
            variable,
        })
}

/// The Kafka producer's settings ([`Env::kafka`]), with the SASL user name and password of
/// the secret `ROOMCAST_KAFKA_SECRET_ARN` names when it is set: the `{"username",
/// "password"}` secret that the event source mappings sign in with too.
pub async fn kafka_settings<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    sdk: &SdkConfig,
) -> Result<KafkaSettings, SecretError> {
    const VARIABLE: &str = "ROOMCAST_KAFKA_SECRET_ARN";
    let Some(arn) = env.kafka_secret_arn() else {
        return Ok(env.kafka()?);
    };
    #[derive(Deserialize)]
    struct Credentials {
        username: String,
        password: String,
    }
    let secret = secret_string(sdk, &arn, VARIABLE).await?;
    // serde's message could quote a part of the secret: it is not passed on.
    let credentials: Credentials = serde_json::from_str(&secret).map_err(|_| SecretError::NotCredentials {
        arn: arn.clone(),
        variable: VARIABLE,
    })?;
    Ok(env.kafka_signed_in(Some((credentials.username, credentials.password)))?)
}
