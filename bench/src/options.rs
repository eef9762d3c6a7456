//! The command line of `roomcast-load`: where to connect, how many clients in how many
//! rooms, who sends at what pace for how long, and where the report goes.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Parser};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "roomcast-load",
    version,
    about = "Load generator for roomcast: N WebSocket clients in M rooms, S of them sending; \
             accounts for every message (acknowledged, refused, delivered, lost, duplicated, \
             out of order) and reports deliveries/s, latency and connect rate.",
    long_about = None,
    // A later flag wins over an earlier one, so a script's defaults can be overridden.
    args_override_self = true,
    group(ArgGroup::new("pace").required(true).args(["rate", "burst"])),
    group(ArgGroup::new("length").required(true).args(["duration", "messages"])),
)]
pub struct Options {
    /// The WebSocket URL: the local gateway or a deployed stack's `wss://` URL.
    #[arg(long, env = "ROOMCAST_LOAD_URL", default_value = "ws://127.0.0.1:3001")]
    pub url: String,

    /// A token (JWT) for every client: they are then all one user, in every room.
    #[arg(long, env = "ROOMCAST_LOAD_TOKEN", conflicts_with = "token_url")]
    pub token: Option<String>,

    /// Where each client gets a token of its own: the local gateway's
    /// `http://HOST:PORT/api/dev/token` (`POST {"nick"}` answering `{"token"}`).
    #[arg(long)]
    pub token_url: Option<String>,

    /// WebSocket clients (each with its own nickname, anonymous unless a token is given).
    #[arg(long, default_value_t = 10)]
    pub clients: usize,

    /// Rooms; client i is in room i mod M. Each run makes fresh rooms.
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,

    /// Clients that send (the first S, so they spread over the rooms).
    #[arg(long, default_value_t = 1)]
    pub senders: usize,

    /// Messages per second, in total over the senders.
    #[arg(long, overrides_with = "burst")]
    pub rate: Option<f64>,

    /// Senders send without pacing: all their messages at once, as far as the window allows.
    #[arg(long, overrides_with = "rate")]
    pub burst: bool,

    /// How long the senders send (e.g. 60s, 10m, 1h, 500ms).
    #[arg(long, value_parser = parse_duration, overrides_with = "messages")]
    pub duration: Option<Duration>,

    /// How many messages to send in total.
    #[arg(long, overrides_with = "duration")]
    pub messages: Option<u64>,

    /// Most sends one sender has awaiting their answer (overdue ones too). A paced slot that
    /// finds the window full is skipped (and counted); in --burst and --messages runs the
    /// sender waits, and the sending stops if no answer came for --reply-timeout.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub window: u64,

    /// Extra bytes of text per message beyond its sequence and timestamp.
    #[arg(long, default_value_t = 0)]
    pub text_bytes: usize,

    /// Prefix of the rooms' names (`PREFIX-RUN-INDEX`).
    #[arg(long, default_value = "load")]
    pub room_prefix: String,

    /// Connections (and, after, joins) in progress at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    pub concurrency: u64,

    /// Longest wait for one connection's handshake (and its token).
    #[arg(long, value_parser = parse_duration, default_value = "15s")]
    pub connect_timeout: Duration,

    /// Longest wait for the answer to `createRoom` or `join`.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub setup_timeout: Duration,

    /// Longest wait after the joins for their presence frames to stop (a second without
    /// any), so that the first messages do not queue behind them; 0: do not wait.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub settle: Duration,

    /// An answer that comes later than this after its send counts as late; sending stops
    /// if no send was answered for this long while some awaited an answer.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub reply_timeout: Duration,

    /// After the last send, how long to wait for answers and deliveries while none comes
    /// (what has not come by then is unanswered or lost).
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub drain: Duration,

    /// Longest wait after the last send however the answers and deliveries trickle in.
    #[arg(long, value_parser = parse_duration, default_value = "10m")]
    pub drain_max: Duration,

    /// How long to keep listening once everything expected has arrived (late duplicates).
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub linger: Duration,

    /// A WebSocket ping on a connection that wrote nothing for this long (the gateway
    /// closes a connection idle for 10 minutes).
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub keepalive: Duration,

    /// The gateway's process id: its resident memory (VmRSS) is sampled every second.
    #[arg(long)]
    pub gateway_pid: Option<u32>,

    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Exit 0 whatever the report says (by default a loss, a duplicate, an unanswered send,
    /// a failed or dropped connection, or an interrupted run exits 1).
    #[arg(long)]
    pub report_only: bool,

    /// Seconds between progress lines when stderr is not a terminal (on a terminal the
    /// line is redrawn every second); 0: none.
    #[arg(long, default_value_t = 10)]
    pub progress_every: u64,
}

impl Options {
    /// Checks what clap cannot: the numbers fit together.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.clients >= 1, "--clients must be at least 1");
        anyhow::ensure!(
            (1..=self.clients).contains(&self.rooms),
            "--rooms must be between 1 and --clients ({}): every room needs a member",
            self.clients
        );
        anyhow::ensure!(
            (1..=self.clients).contains(&self.senders),
            "--senders must be between 1 and --clients ({})",
            self.clients
        );
        if let Some(rate) = self.rate {
            anyhow::ensure!(rate.is_finite() && rate > 0.0, "--rate must be a positive number");
        }
        if let Some(messages) = self.messages {
            anyhow::ensure!(messages >= 1, "--messages must be at least 1");
        }
        if let Some(duration) = self.duration {
            anyhow::ensure!(!duration.is_zero(), "--duration must not be zero");
        }
        anyhow::ensure!(
            self.url.starts_with("ws://") || self.url.starts_with("wss://"),
            "--url must start with ws:// or wss://"
        );
        anyhow::ensure!(
            !self.room_prefix.is_empty()
                && self.room_prefix.len() <= 40
                && self
                    .room_prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
            "--room-prefix must be 1-40 characters of [A-Za-z0-9_.-]"
        );
        Ok(())
    }

    /// Whether every client signs in with the same token (one user in every room).
    pub fn shared_user(&self) -> bool {
        self.token.is_some()
    }
}

/// `90`, `90s`, `1.5s`, `500ms`, `10m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 60s, 10m, 500ms)"))?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        other => return Err(format!("unknown unit {other:?} in {text:?}: use ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|error| format!("{text:?}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn a_later_flag_overrides_an_earlier_one() {
        let options = Options::try_parse_from([
            "roomcast-load",
            "--rate",
            "5",
            "--duration",
            "1m",
            "--clients",
            "4",
            "--clients",
            "8",
            "--burst",
            "--messages",
            "10",
        ])
        .unwrap();
        assert_eq!(options.clients, 8);
        assert!(options.burst);
        assert_eq!(options.rate, None);
        assert_eq!(options.messages, Some(10));
        assert_eq!(options.duration, None);
    }

    #[test]
    fn a_pace_and_a_length_are_required() {
        assert!(Options::try_parse_from(["roomcast-load", "--rate", "5"]).is_err());
        assert!(Options::try_parse_from(["roomcast-load", "--messages", "5"]).is_err());
    }
}
