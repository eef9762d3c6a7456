//! How long a room takes to settle when its members all join at once: real WebSocket
//! clients against the local gateway (embedded backends, no batching window), each joining
//! one room; the room has settled when a message sent after every join has reached every
//! member (a room's records stay in order, so every presence frame is delivered by then).
//! Prints the time and the presence frames delivered; asserts only that the message
//! reached everyone.
//!
//! `cargo bench -p roomcast-tests --bench presence [-- MEMBERS [PRESENCE_MAX_AUDIENCE]]`
//! (defaults: 1000 members, the default limit of 100; give the member count as the limit
//! to see the room without the limit).

use std::time::{Duration, Instant};

use clap::Parser;
use futures::stream::{self, StreamExt};
use futures::SinkExt;
use roomcast_aws::config::Env;
use roomcast_local::settings::Settings;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Longest wait for the room to settle.
const SETTLE_WAIT: Duration = Duration::from_secs(600);

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|arg| arg.parse().ok()).collect();
    let members = args.first().copied().unwrap_or(1000).max(2);
    let limit = args.get(1).copied();

    let settings = Settings::parse_from([
        "roomcast-local",
        "--listen",
        "127.0.0.1:0",
        "--batch-window-ms",
        "0",
        "--rooms",
        "general",
    ]);
    let env = Env::new(|_: &str| None);
    let mut config = env.domain().unwrap();
    if let Some(limit) = limit {
        config.presence_max_audience = limit;
    }
    let cap = config.presence_max_audience;
    let gateway = roomcast_local::start(settings, config, env.fan_out().unwrap())
        .await
        .expect("gateway starts");
    let url = gateway.ws_url();

    let sockets: Vec<Socket> = stream::iter(0..members)
        .map(|n| {
            let url = format!("{url}/?name=m{n}");
            async move { tokio_tungstenite::connect_async(url).await.expect("connect").0 }
        })
        .buffered(64)
        .collect()
        .await;

    let started = Instant::now();
    // Everyone joins at once, then reads until the marker message arrives.
    let readers: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(n, mut socket)| {
            tokio::spawn(async move {
                socket
                    .send(Message::text(r#"{"action":"join","room":"general"}"#))
                    .await
                    .expect("join sent");
                let mut presence = 0usize;
                loop {
                    let next = tokio::time::timeout(SETTLE_WAIT, socket.next()).await;
                    let Ok(Some(Ok(Message::Text(text)))) = next else {
                        panic!("member {n}: no marker within {SETTLE_WAIT:?}: {next:?}");
                    };
                    let frame: Value = serde_json::from_str(&text).expect("JSON frame");
                    match frame["type"].as_str() {
                        Some("presence") => presence += 1,
                        Some("message") if frame["text"] == "settled?" => {
                            return (socket, presence, Instant::now());
                        }
                        _ => {}
                    }
                }
            })
        })
        .collect();
    // The marker goes out once every member is in the room's audience.
    let store = gateway.store();
    let room = roomcast_core::RoomName::trusted("general");
    while roomcast_core::Audience::room_audience(&*store, &room)
        .await
        .unwrap()
        .len()
        < members
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let joined_after = started.elapsed();
    let (mut marker, _) = tokio_tungstenite::connect_async(format!("{url}/?name=marker"))
        .await
        .expect("connect");
    marker
        .send(Message::text(r#"{"action":"join","room":"general"}"#))
        .await
        .unwrap();
    marker
        .send(Message::text(r#"{"action":"send","room":"general","text":"settled?"}"#))
        .await
        .unwrap();
    let mut total_presence = 0;
    let mut last = started;
    for reader in readers {
        let (_socket, presence, at) = reader.await.expect("member task");
        total_presence += presence;
        last = last.max(at);
    }
    let settled = last - started;
    println!(
        "presence: {members} members joined one room at once (presence limit {cap} connections): \
         all joined in {:.2} s, settled (a message after the joins reached everyone) in {:.2} s, \
         {total_presence} presence frames delivered",
        joined_after.as_secs_f64(),
        settled.as_secs_f64(),
    );
    gateway.shutdown().await;
}
