//! The DynamoDB store (to be written).
