//! Logging set-up: JSON lines for CloudWatch in Lambda, readable lines locally. Handlers
//! open a span with the connection id and request id, so every line of a request has both.

use std::ffi::OsStr;
use std::io::IsTerminal as _;

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

/// For the local gateway: human-readable lines on stdout, in colour only when stdout is a
/// terminal and `NO_COLOR` is not set, so that a file, a pipe or a log collector gets
/// plain text.
pub fn init_local() {
    let ansi = colours_wanted(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_target(false)
        .with_writer(std::io::stdout)
        .with_ansi(ansi)
        .init();
}

/// Whether log lines may carry ANSI colour codes: only on a terminal, and not when
/// `NO_COLOR` is set to anything but the empty string (<https://no-color.org>).
fn colours_wanted(writes_to_terminal: bool, no_color: Option<&OsStr>) -> bool {
    writes_to_terminal && no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(colours_wanted(true, None));
        assert!(colours_wanted(true, Some(OsStr::new(""))), "an empty NO_COLOR is unset");
        assert!(!colours_wanted(true, Some(OsStr::new("1"))));
        assert!(!colours_wanted(false, None), "a file or a pipe gets no colours");
        assert!(!colours_wanted(false, Some(OsStr::new("1"))));
    }
}
