//! The HTTP API through the local gateway, with a real HTTP client, on both backends.
