//! The OpenAPI document against what the HTTP API does.
