//! The producers' SASL sign-in read from Secrets Manager (moto's) at cold start, as every
//! producing function reads it with `ROOMCAST_KAFKA_SECRET_ARN`: the user name and password
//! of the secret reach the producer's settings, and a secret that is missing or not
//! credentials stops the start with a message that names it but never shows its content.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::config::{Credentials, SharedCredentialsProvider};
use roomcast_aws::config::Env;
use roomcast_aws::kafka::{KafkaAuth, SaslMechanism};
use roomcast_aws::secrets::kafka_settings;
use roomcast_tests::{init_tracing, moto, unique_name};

/// The functions' SDK configuration, pointed at moto.
fn sdk() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "test",
            "test",
            None,
            None,
            "roomcast-tests",
        )))
        .endpoint_url(moto::endpoint())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .build()
}

/// A new secret holding `value`; its ARN.
async fn secret(sdk: &SdkConfig, value: &str) -> String {
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(unique_name("roomcast-kafka"))
        .secret_string(value)
        .send()
        .await
        .expect("moto creates the secret")
        .arn
        .expect("an ARN")
}

/// A producer's environment as the template gives it with SCRAM, naming `arn`.
fn producer_environment(arn: &str) -> Env<impl Fn(&str) -> Option<String> + '_> {
    Env::new(move |name: &str| match name {
        "ROOMCAST_KAFKA_BOOTSTRAP" => Some("b-1.example:9096".to_owned()),
        "ROOMCAST_KAFKA_AUTH" => Some("scram-sha-512".to_owned()),
        "ROOMCAST_KAFKA_SECRET_ARN" => Some(arn.to_owned()),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producers_sasl_sign_in_comes_from_the_secret() {
    init_tracing();
    let sdk = sdk();
    let password = "s3cr3t-of-the-kafka-user";
    let arn = secret(
        &sdk,
        &format!(r#"{{"username": "roomcast", "password": "{password}"}}"#),
    )
    .await;
    let settings = kafka_settings(&producer_environment(&arn), &sdk)
        .await
        .expect("the settings with the secret's sign-in");
    assert_eq!(
        settings.security.auth,
        KafkaAuth::Password {
            mechanism: SaslMechanism::ScramSha512,
            username: "roomcast".to_owned(),
            password: password.to_owned(),
        }
    );
    assert!(settings.security.tls, "SCRAM goes over TLS");
    assert!(
        !format!("{settings:?}").contains(password),
        "the password stays out of Debug output"
    );

    // Not credentials, or no such secret: the start fails naming the secret, not its content.
    let not_credentials = secret(&sdk, "just-the-password-itself").await;
    let missing = arn.replace("roomcast-kafka", "no-such-secret");
    for (arn, said) in [
        (&not_credentials, "`username` and `password`"),
        (&missing, "ROOMCAST_KAFKA_SECRET_ARN"),
    ] {
        let error = kafka_settings(&producer_environment(arn), &sdk)
            .await
            .expect_err("no sign-in")
            .to_string();
        assert!(error.contains(arn.as_str()) && error.contains(said), "{error}");
        assert!(!error.contains("just-the-password-itself"), "{error}");
    }

    // Without the secret's ARN the variables are read, as before.
    let from_variables = Env::new(|name: &str| match name {
        "ROOMCAST_KAFKA_BOOTSTRAP" => Some("b-1.example:9096".to_owned()),
        "ROOMCAST_KAFKA_AUTH" => Some("scram-sha-512".to_owned()),
        _ => None,
    });
    let error = kafka_settings(&from_variables, &sdk)
        .await
        .expect_err("no password")
        .to_string();
    assert!(error.contains("ROOMCAST_KAFKA_USERNAME"), "{error}");
}
