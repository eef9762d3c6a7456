//! The Kafka consumer-group record source (to be written).
