//! The Kafka-triggered archive Lambda function.

use aws_lambda_events::kafka::KafkaEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use roomcast_aws::config::{aws_sdk_config, Env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    roomcast_aws::telemetry::init_lambda();
    let env = Env::from_process();
    let config = env.archive()?;
    let sdk = aws_sdk_config().await;
    let history = env.store(&sdk)?;

    run(service_fn(|event: LambdaEvent<KafkaEvent>| {
        let (history, config) = (&history, &config);
        async move { kafka_archive::handle(history, config, &event.payload).await.map(|_| ()) }
    }))
    .await
}
