//! The ceiling of `lambda-init`: a lambda_runtime function that echoes its event and does
//! nothing else at cold start, so its size and its time to the first `/next` are what the
//! runtime crate, tokio and the build settings cost by themselves.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(event.payload)
    }))
    .await
}
