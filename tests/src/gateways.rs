//! The local gateway started in the test process, as the tests start it: a free port, a
//! short batching window, the rooms `general` and `random`, on the embedded backends or on
//! moto + tansu, with sign-in when a test wants it.

use clap::Parser;
use roomcast_aws::config::Env;
use roomcast_local::settings::Settings;
use roomcast_local::Running;

use crate::{init_tracing, real_backend_args, tokens};

/// Which backends a gateway runs on.
pub enum Mode {
    /// The embedded stand-ins, in memory.
    Embedded,
    /// moto's DynamoDB and S3 and a tansu broker, each with fresh names.
    Real,
}

/// The gateway's settings for a test: a free port, a short batching window, the rooms
/// `general` and `random`, and for [`Mode::Real`] a fresh table, topic and consumer groups
/// (kafka-fanout's and kafka-archive's) on moto and tansu; `extra` flags last.
pub fn settings(mode: Mode, extra: &[&str]) -> Settings {
    init_tracing();
    let mut args: Vec<String> = [
        "roomcast-local",
        "--listen",
        "127.0.0.1:0",
        "--batch-window-ms",
        "20",
        "--rooms",
        "general,random",
    ]
    .map(str::to_owned)
    .to_vec();
    if let Mode::Real = mode {
        args.extend(real_backend_args());
    }
    args.extend(extra.iter().map(|arg| arg.to_string()));
    Settings::parse_from(args)
}

/// The gateway of [`settings`], without sign-in.
pub async fn gateway(mode: Mode) -> Running {
    gateway_with(mode, &[]).await
}

/// The gateway of [`settings`] with `extra` flags.
pub async fn gateway_with(mode: Mode, extra: &[&str]) -> Running {
    start(settings(mode, extra)).await
}

/// A gateway with sign-in `optional` and the tests' HS256 secret
/// ([`tokens::signed_in_auth`]): tokens of [`tokens::signed_token`] name users, and the
/// HTTP API offers no dev tokens.
pub async fn signed_in_gateway(mode: Mode) -> Running {
    let mut settings = settings(mode, &[]);
    settings.auth = tokens::signed_in_auth();
    start(settings).await
}

/// A gateway with `settings` and the domain's defaults (no process environment).
pub async fn start(settings: Settings) -> Running {
    start_in(settings, Env::new(|_: &str| None)).await
}

/// A gateway with `settings` and the configuration `env` gives, as the gateway's `main`
/// reads it from the process environment.
pub async fn start_in(settings: Settings, env: Env<impl Fn(&str) -> Option<String>>) -> Running {
    let config = env.domain().expect("the configuration");
    roomcast_local::start(settings, config, env.fan_out().expect("fan-out defaults"))
        .await
        .expect("gateway starts")
}
