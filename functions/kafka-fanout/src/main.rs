//! The Kafka-triggered fan-out Lambda function.

use aws_lambda_events::kafka::KafkaEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use roomcast_aws::config::{aws_sdk_config, Env};
use roomcast_aws::kafka::KafkaPublisher;
use roomcast_aws::notifier::ConnectionsNotifier;

#[tokio::main]
async fn main() -> Result<(), Error> {
    roomcast_aws::telemetry::init_lambda();
    let env = Env::from_process();
    let config = env.fan_out()?;
    let sdk = aws_sdk_config().await;
    let store = env.store(&sdk)?;
    // One pooled connection per post in flight, kept alive between batches.
    let notifier = ConnectionsNotifier::new(&sdk, &env.connections_endpoint()?, config.concurrency)?;
    // Presence of users whose connections fan-out finds gone.
    let publisher = KafkaPublisher::new(&roomcast_aws::secrets::kafka_settings(&env, &sdk).await?)?;

    run(service_fn(|event: LambdaEvent<KafkaEvent>| {
        let (store, publisher, notifier, config) = (&store, &publisher, &notifier, &config);
        async move {
            kafka_fanout::handle(store, publisher, notifier, config, &event.payload)
                .await
                .map(|_| ())
        }
    }))
    .await
}
