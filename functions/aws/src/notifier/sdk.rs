//! The `@connections` [`Notifier`] through the official SDK's client (`PostToConnection`
//! with its orchestrator, interceptors and signer), with its errors sorted as
//! [`super::ConnectionsNotifier`]'s. No longer what kafka-fanout posts with: kept as the
//! reference its benchmark compares against (`roomcast-post-cost --sdk`).

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_apigatewaymanagement::config::StalledStreamProtectionConfig;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_smithy_types::retry::RetryConfig;
use roomcast_core::ports::{Notifier, NotifyError};
use roomcast_core::ConnectionId;

pub struct SdkConnectionsNotifier {
    client: aws_sdk_apigatewaymanagement::Client,
}

impl SdkConnectionsNotifier {
    /// `endpoint` is the stage URL, `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`
    /// in AWS or the local gateway's address. The SDK's own retries are off: fan-out retries
    /// with its own backoff, and two layers of retries would multiply. So is its stalled
    /// stream protection: a frame is a few hundred bytes sent in one write, which no
    /// throughput check can judge, while the check set a timer for every post (fan-out's
    /// post timeout bounds each post anyway).
    pub fn new(sdk: &SdkConfig, endpoint: &str) -> Self {
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .retry_config(RetryConfig::disabled())
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .build();
        Self {
            client: aws_sdk_apigatewaymanagement::Client::from_conf(config),
        }
    }

    pub fn from_client(client: aws_sdk_apigatewaymanagement::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Notifier for SdkConnectionsNotifier {
    async fn send(&self, connection: &ConnectionId, frame: &[u8]) -> Result<(), NotifyError> {
        self.client
            .post_to_connection()
            .connection_id(connection.as_str())
            .data(Blob::new(frame))
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

fn classify(error: SdkError<PostToConnectionError>) -> NotifyError {
    let status = error.raw_response().map(|response| response.status().as_u16());
    match (&error, status) {
        (SdkError::ServiceError(service), _) if service.err().is_gone_exception() => NotifyError::Gone,
        (_, Some(410)) => NotifyError::Gone,
        (SdkError::ServiceError(service), _) if service.err().is_limit_exceeded_exception() => {
            NotifyError::Retryable(Box::new(error))
        }
        (_, Some(429 | 500..=599)) => NotifyError::Retryable(Box::new(error)),
        // No answer at all: the request may not have arrived, so it is worth another try.
        (SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_), _) => {
            NotifyError::Retryable(Box::new(error))
        }
        _ => NotifyError::Failed(Box::new(error)),
    }
}
