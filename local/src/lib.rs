//! roomcast's local gateway: API Gateway's WebSocket API, its `@connections` management
//! API and Lambda's Kafka event source mapping, emulated in one process around the very same
//! handler code the Lambda functions run — in front of real backends (a DynamoDB endpoint,
//! a Kafka broker) or the embedded in-memory ones.

pub mod kafka_source;
pub mod source;
