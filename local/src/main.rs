//! `cargo run`: the local gateway on 127.0.0.1:3001 with the embedded backends, or real
//! ones when configured (`--help`); `cargo run -- token --user u-alice` prints a token
//! signed with `ROOMCAST_JWT_SECRET` for trying sign-in with wscat or the HTTP API.

use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use roomcast_aws::config::Env;
use roomcast_core::Nick;
use roomcast_local::settings::Settings;
use ws_authorizer::NewToken;

#[derive(Parser, Debug)]
#[command(
    name = "roomcast-local",
    version,
    about = "roomcast's local gateway: API Gateway's WebSocket API, @connections and the Kafka trigger, emulated around the Lambda handlers",
    long_about = None,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    settings: Settings,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Prints an HS256 token signed with ROOMCAST_JWT_SECRET (with ROOMCAST_JWT_ISSUER,
    /// ROOMCAST_JWT_AUDIENCE and the claim names the gateway checks), for
    /// `wscat -c 'ws://127.0.0.1:3001/?token=...'`.
    Token(TokenArgs),
}

#[derive(Args, Debug)]
struct TokenArgs {
    /// The user id (`sub`).
    #[arg(long)]
    user: String,

    /// The nickname.
    #[arg(long)]
    nick: Option<String>,

    /// A role; repeat for several (`--role admin --role ops`).
    #[arg(long = "role")]
    roles: Vec<String>,

    /// Seconds until the token expires.
    #[arg(long, default_value_t = 3600)]
    ttl_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let auth = ws_authorizer::Settings::from_lookup(|name| std::env::var(name).ok())?;
    if let Some(Command::Token(args)) = cli.command {
        println!("{}", token(&auth, args)?);
        return Ok(());
    }

    roomcast_aws::telemetry::init_local();
    // Listening before the gateway starts: a stop asked for while it starts up then waits
    // until it can shut down cleanly, instead of killing it half-started.
    let mut stop = StopSignals::listen()?;
    let mut settings = cli.settings;
    let has_keys = auth.hmac.is_some() || auth.jwks_url.is_some();
    settings.auth = auth;
    let env = Env::from_process();
    let running = roomcast_local::start(settings, env.domain()?, env.fan_out()?).await?;

    tracing::info!("roomcast local gateway on {}", running.ws_url());
    tracing::info!("chat page: {}/ (open it in two browser tabs)", running.http_url());
    for line in &running.backends {
        tracing::info!("{line}");
    }
    tracing::info!("@connections: {}/@connections/{{id}}", running.connections_endpoint());
    if running.auth_mode().is_on() {
        tracing::info!(
            "sign-in: {}; connect with: wscat -c \"{}/?token=$(cargo run -q -- token --user u-alice --nick alice)\"",
            ws_authorizer::mode_name(running.auth_mode()),
            running.ws_url()
        );
    } else {
        tracing::info!("connect with: wscat -c '{}/?name=alice'", running.ws_url());
    }

    if running.offers_dev_tokens() {
        tracing::info!(
            "HTTP API: {}/api (openapi.json); a token: curl -s -XPOST {}/api/dev/token -d '{{\"nick\":\"alice\"}}'",
            running.http_url(),
            running.http_url()
        );
    } else if has_keys {
        tracing::info!(
            "HTTP API: {}/api (openapi.json), with a token of the configured keys",
            running.http_url()
        );
    } else {
        tracing::info!(
            "HTTP API: {}/api (openapi.json); no tokens: no keys are configured and dev tokens are off beyond loopback",
            running.http_url()
        );
    }

    let signal = stop.received().await?;
    tracing::info!(signal, open = running.live_connections(), "shutting down");
    running.shutdown().await;
    Ok(())
}

/// What stops the gateway cleanly (connections closed so each runs `$disconnect`, the
/// consumer groups left): Ctrl-C, and on Unix SIGTERM too — what Docker, systemd,
/// Kubernetes and test harnesses send. Without a handler SIGTERM would end the process on
/// the spot, leaving its connections in the store and its consumer group members to time out.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Takes over SIGINT and SIGTERM from now on. Must be called within a tokio runtime.
    fn listen() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
                terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// Waits for a stop signal; returns its name.
    async fn received(&mut self) -> anyhow::Result<&'static str> {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => Ok("SIGINT"),
                _ = self.terminate.recv() => Ok("SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.context("cannot wait for Ctrl-C")?;
            Ok("Ctrl-C")
        }
    }
}

/// A token for `args`, signed with the configured HS256 secret and made for the
/// authorizer these settings configure.
fn token(auth: &ws_authorizer::Settings, args: TokenArgs) -> anyhow::Result<String> {
    let secret = auth
        .secret()
        .context("ROOMCAST_JWT_SECRET is not set: the token command signs with it (at least 32 bytes, e.g. `export ROOMCAST_JWT_SECRET=$(openssl rand -base64 48)`)")?;
    if args.user.trim().is_empty() {
        anyhow::bail!("--user must not be empty");
    }
    let mut token = NewToken::new(args.user)
        .roles(args.roles)
        .ttl(Duration::from_secs(args.ttl_secs))
        .matching(auth);
    if let Some(nick) = args.nick {
        Nick::parse(&nick, auth.max_nick_chars).map_err(|reason| anyhow::anyhow!("--nick {nick:?}: {reason}"))?;
        token = token.nick(nick);
    }
    if let Some(role) = token
        .roles
        .iter()
        .find(|role| role.contains(',') || role.trim().is_empty())
    {
        anyhow::bail!("--role {role:?}: a role must not be empty nor contain `,`");
    }
    ws_authorizer::sign_hs256(secret.expose(), &token).context("signing the token")
}
