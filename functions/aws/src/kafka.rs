//! The Kafka publisher (to be written).
