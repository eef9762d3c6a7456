//! The `$disconnect` Lambda function.

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
    let store = env.store(&sdk)?;
    let publisher = KafkaPublisher::new(&roomcast_aws::secrets::kafka_settings(&env, &sdk).await?)?;

    run(service_fn(|event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
        let (store, publisher, config) = (&store, &publisher, &config);
        async move { Ok::<_, Error>(ws_disconnect::handle(store, publisher, config, &event.payload).await) }
    }))
    .await
}
