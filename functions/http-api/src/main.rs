//! The Lambda function behind every route of the HTTP API.

use lambda_http::{run, service_fn, Error, Request};
use roomcast_aws::config::{aws_sdk_config, Env};
use roomcast_aws::kafka::KafkaPublisher;
use roomcast_core::Ports;

#[tokio::main]
async fn main() -> Result<(), Error> {
    roomcast_aws::telemetry::init_lambda();
    let env = Env::from_process();
    let config = env.domain()?;
    let sdk = aws_sdk_config().await;
    // One table holds connections, rooms and the message history.
    let ports = Ports::one_store(
        env.store(&sdk)?,
        KafkaPublisher::new(&roomcast_aws::secrets::kafka_settings(&env, &sdk).await?)?,
        env.files(&sdk)?,
    );

    run(service_fn(|request: Request| {
        let (ports, config) = (&ports, &config);
        async move { Ok::<_, Error>(http_api::handle(ports, config, request).await) }
    }))
    .await
}
