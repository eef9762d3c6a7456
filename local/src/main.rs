//! `cargo run`: the local gateway on 127.0.0.1:3001 with the embedded backends, or real
//! ones when configured (`--help`).

use clap::Parser;
use roomcast_aws::config::Env;
use roomcast_local::settings::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    roomcast_aws::telemetry::init_local();
    let settings = Settings::parse();
    let env = Env::from_process();
    let running = roomcast_local::start(settings, env.domain()?, env.fan_out()?).await?;

    tracing::info!("roomcast local gateway on {}", running.ws_url());
    for line in &running.backends {
        tracing::info!("{line}");
    }
    tracing::info!("@connections: {}/@connections/{{id}}", running.connections_endpoint());
    tracing::info!("connect with: wscat -c '{}/?name=alice'", running.ws_url());

    tokio::signal::ctrl_c().await?;
    tracing::info!(open = running.live_connections(), "shutting down");
    running.shutdown().await;
    Ok(())
}
