//! The Lambda function behind every message route of the WebSocket API.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use roomcast_aws::config::{aws_sdk_config, Env};
use roomcast_aws::kafka::KafkaPublisher;
use roomcast_core::Ports;

#[tokio::main]
async fn main() -> Result<(), Error> {
    roomcast_aws::telemetry::init_lambda();
    let env = Env::from_process();
    let config = env.domain()?;
    let sdk = aws_sdk_config().await;
    // One table holds connections, rooms and the message history. Attachments: presigning
    // is local; checks and deletes are one S3 request each.
    let ports = Ports::one_store(
        env.store(&sdk)?,
        KafkaPublisher::new(&roomcast_aws::secrets::kafka_settings(&env, &sdk).await?)?,
        env.files(&sdk)?,
    );

    run(service_fn(|event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
        let (ports, config) = (&ports, &config);
        async move { Ok::<_, Error>(ws_message::handle(ports, config, &event.payload).await) }
    }))
    .await
}
