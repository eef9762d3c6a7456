//! roomcast's adapters to AWS and Kafka: the DynamoDB [`Store`](roomcast_core::Store), the
//! `@connections` [`Notifier`](roomcast_core::Notifier), the S3 [`Files`](roomcast_core::Files), the Kafka
//! [`Publisher`](roomcast_core::Publisher), what the Kafka-triggered functions share, and
//! the configuration every function reads from its environment.
//!
//! The adapters need the `adapters` feature (on by default); without it only the event
//! helpers remain, which need neither the AWS SDK nor librdkafka.

pub mod apigw;
#[cfg(feature = "adapters")]
pub mod config;
#[cfg(feature = "adapters")]
pub mod credentials;
#[cfg(feature = "adapters")]
pub mod dynamo;
pub mod event_source;
#[cfg(feature = "adapters")]
pub mod files;
#[cfg(feature = "adapters")]
pub mod https;
#[cfg(feature = "adapters")]
pub mod kafka;
#[cfg(feature = "adapters")]
pub mod notifier;
#[cfg(feature = "adapters")]
pub mod secrets;
#[cfg(feature = "adapters")]
pub mod telemetry;
