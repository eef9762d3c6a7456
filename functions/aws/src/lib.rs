//! roomcast's adapters to AWS and Kafka: the DynamoDB [`Store`](roomcast_core::Store), the
//! `@connections` [`Notifier`](roomcast_core::Notifier), the Kafka
//! [`Publisher`](roomcast_core::Publisher), what the Kafka-triggered functions share, and
//! the configuration every function reads from its environment.

pub mod apigw;
pub mod config;
pub mod connections;
pub mod credentials;
pub mod dynamo;
pub mod event_source;
pub mod kafka;
pub mod telemetry;
