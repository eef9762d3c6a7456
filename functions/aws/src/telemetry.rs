//! Logging set-up: JSON lines for CloudWatch in Lambda, readable lines locally. Handlers
//! open a span with the connection id and request id, so every line of a request has both.

use tracing_subscriber::EnvFilter;

fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// For a Lambda function: one JSON object per line, no ANSI colours, no timestamp
/// (CloudWatch adds its own), the current span's fields on every line.
pub fn init_lambda() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter())
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .init();
}

/// For a terminal: human-readable lines.
pub fn init_local() {
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_target(false)
        .init();
}
