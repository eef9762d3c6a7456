//! `roomcast-ceiling`: the machine's ceiling for the benchmarks. A minimal broadcast server
//! on tokio-tungstenite (its default settings, one reader and one writer task per
//! connection) that speaks just enough of roomcast's protocol for `roomcast-load`:
//! `createRoom`, `join` and `send` (an `ack` to the sender, a `message` to every other
//! member). No store, no log, no `@connections`: what the same load client gets from the
//! same machine when nothing but WebSocket work is done, to set roomcast's figures beside.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

#[derive(Parser, Debug)]
#[command(
    name = "roomcast-ceiling",
    version,
    about = "A minimal tokio-tungstenite broadcast server speaking roomcast's createRoom/join/send, \
             to measure the machine's ceiling with roomcast-load"
)]
struct Options {
    /// Where to listen; port 0 picks a free one. The address is printed on the first line.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

/// Longest wait for a client's WebSocket handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// A room's members: each connection's number and outbox.
type Members = Vec<(u64, mpsc::UnboundedSender<Message>)>;

#[derive(Default)]
struct Rooms {
    created: Mutex<HashSet<String>>,
    members: Mutex<HashMap<String, Members>>,
    next_connection: AtomicU64,
    next_message: AtomicU64,
}

#[derive(Deserialize)]
struct Frame {
    action: String,
    #[serde(default)]
    room: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default, rename = "clientMsgId")]
    client_msg_id: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let listener = TcpListener::bind(options.listen).await?;
    println!("roomcast-ceiling on ws://{}", listener.local_addr()?);
    let rooms = Arc::new(Rooms::default());
    loop {
        let (stream, _) = listener.accept().await?;
        let rooms = rooms.clone();
        tokio::spawn(async move {
            if let Ok(Ok(socket)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, tokio_tungstenite::accept_async(stream)).await
            {
                serve(rooms, socket).await;
            }
        });
    }
}

async fn serve(rooms: Arc<Rooms>, socket: tokio_tungstenite::WebSocketStream<TcpStream>) {
    let id = rooms.next_connection.fetch_add(1, Ordering::Relaxed);
    let nick = format!("c{id}");
    let (mut sink, mut stream) = socket.split();
    let (outbox, mut frames) = mpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        while let Some(frame) = frames.recv().await {
            if sink.send(frame).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let mut joined: Vec<String> = Vec::new();
    while let Some(Ok(message)) = stream.next().await {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => break,
            _ => continue,
        };
        let Ok(frame) = serde_json::from_str::<Frame>(text.as_str()) else {
            let _ = outbox.send(reply(
                json!({"type": "error", "code": "bad_request", "message": "not JSON"}),
            ));
            continue;
        };
        let room = frame.room.unwrap_or_default();
        match frame.action.as_str() {
            "createRoom" => {
                let created = rooms.created.lock().expect("rooms lock").insert(room.clone());
                let answer = if created {
                    json!({"type": "roomCreated", "room": room})
                } else {
                    json!({"type": "error", "code": "conflict", "message": "exists", "action": "createRoom"})
                };
                let _ = outbox.send(reply(answer));
            }
            "join" => {
                rooms
                    .members
                    .lock()
                    .expect("members lock")
                    .entry(room.clone())
                    .or_default()
                    .push((id, outbox.clone()));
                joined.push(room.clone());
                let _ = outbox.send(reply(json!({"type": "joined", "room": room})));
            }
            "send" => {
                let ts = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |elapsed| elapsed.as_millis() as u64);
                let message_id = format!("{:026}", rooms.next_message.fetch_add(1, Ordering::Relaxed));
                let _ = outbox.send(reply(json!({
                    "type": "ack", "id": message_id, "room": room, "ts": ts, "clientMsgId": frame.client_msg_id,
                })));
                // One encoding shared by every member, as roomcast's fan-out shares a frame.
                let delivered = Utf8Bytes::from(
                    json!({
                        "type": "message", "room": room, "id": message_id,
                        "from": {"userId": nick, "nick": nick}, "text": frame.text, "ts": ts,
                    })
                    .to_string(),
                );
                let members = rooms.members.lock().expect("members lock");
                for (member, member_outbox) in members.get(&room).into_iter().flatten() {
                    if *member != id {
                        let _ = member_outbox.send(Message::Text(delivered.clone()));
                    }
                }
            }
            "ping" => {
                let _ = outbox.send(reply(json!({"type": "pong"})));
            }
            _ => {
                let _ = outbox.send(reply(
                    json!({"type": "error", "code": "unknown_action", "message": "?"}),
                ));
            }
        }
    }
    let mut members = rooms.members.lock().expect("members lock");
    for room in joined {
        if let Some(list) = members.get_mut(&room) {
            list.retain(|(member, _)| *member != id);
        }
    }
    drop(members);
    // The writer ends once the last handle on its queue is gone.
    drop(outbox);
    drop(writer);
}

fn reply(value: serde_json::Value) -> Message {
    Message::text(value.to_string())
}
