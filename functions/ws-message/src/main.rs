//! The Lambda function behind every message route of the WebSocket API.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
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
    // Attachments: presigning is local; checks and deletes are one S3 request each.
    let files = env.files(&sdk)?;

    run(service_fn(|event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
        let (store, publisher, files, config) = (&store, &publisher, &files, &config);
        async move { Ok::<_, Error>(ws_message::handle(store, store, publisher, files, config, &event.payload).await) }
    }))
    .await
}
