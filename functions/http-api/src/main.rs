//! The Lambda function behind every route of the HTTP API.

use lambda_http::{run, service_fn, Error, Request};
use roomcast_aws::config::{aws_sdk_config, Env};
use roomcast_aws::kafka::KafkaPublisher;

#[tokio::main]
async fn main() -> Result<(), Error> {
    roomcast_aws::telemetry::init_lambda();
    let env = Env::from_process();
    let config = env.domain()?;
    let sdk = aws_sdk_config().await;
    // One table holds connections, rooms and the message history.
    let store = env.store(&sdk)?;
    let publisher = KafkaPublisher::new(&roomcast_aws::secrets::kafka_settings(&env, &sdk).await?)?;
    let files = env.files(&sdk)?;
    let api = http_api::HttpApi {
        store: &store,
        history: &store,
        publisher: &publisher,
        files: &files,
        config: &config,
    };

    run(service_fn(|request: Request| {
        let api = &api;
        async move { Ok::<_, Error>(http_api::handle(api, request).await) }
    }))
    .await
}
