//! `roomcast-post-cost`: posts one frame to every member of a set of live connections of a
//! local gateway's `@connections`, with kafka-fanout's notifier (or, with `--sdk`, the
//! official SDK client it used before), the way fan-out does: `--concurrency` posts in
//! flight (32 by default: under valgrind the gateway answers slowly, and the SDK client's
//! own 3 s attempt timeout would cut posts queued behind 200), each under a timeout, the
//! frame's body shared. Run under `valgrind
//! --tool=callgrind` by `scripts/bench-post-cost`, twice with different numbers of posts,
//! the difference of the two runs' instruction counts divided by the difference of their
//! posts is the notifier's cost of one post, with its set-up cancelled out.
//!
//! The members are WebSocket clients of the gateway in a child process of this program
//! (`--serve-members`, not run under valgrind), so their reading is counted neither here
//! nor in the gateway's share; they report how many frames they received, and every post
//! must have been delivered.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use bytes::Bytes;
use clap::Parser;
use futures::stream::{self, StreamExt};
use futures::SinkExt;
use roomcast_aws::notifier::{ConnectionsNotifier, SdkConnectionsNotifier};
use roomcast_core::ports::Notifier;
use roomcast_core::ConnectionId;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
#[command(
    name = "roomcast-post-cost",
    about = "Posts frames to a local gateway's @connections with kafka-fanout's notifier, for callgrind"
)]
struct Options {
    /// The gateway's stage URL, its `@connections` endpoint (`http://127.0.0.1:3001/local`).
    #[arg(long)]
    endpoint: String,
    /// Live connections to post to.
    #[arg(long, default_value_t = 100)]
    members: usize,
    /// Frames posted to each member.
    #[arg(long, default_value_t = 10)]
    posts_per_member: usize,
    /// Posts in flight (and the notifier's pool of connections).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Post with the official SDK client (`SdkConnectionsNotifier`), as kafka-fanout did before.
    #[arg(long)]
    sdk: bool,
    /// Length of the session token signed into every post: a Lambda function's is about
    /// 1,100 characters (its role's temporary credentials); 0 signs without one.
    #[arg(long, default_value_t = 1100)]
    session_token_bytes: usize,
    /// Be the members: connect them, print their ids, count frames (internal).
    #[arg(long, hide = true)]
    serve_members: bool,
}

/// Longest wait for any one step of the run: never reached when things work.
const STEP_WAIT: Duration = Duration::from_secs(120);

/// Longest wait for one post: generous, as both ends may run under valgrind.
const POST_WAIT: Duration = Duration::from_secs(60);

/// A message frame as fan-out posts it (about 260 bytes).
fn frame() -> Bytes {
    let frame = json!({
        "type": "message",
        "id": "01JF0Z6X7Y8Q9R0S1T2V3W4X5Y",
        "room": "general",
        "from": {"userId": "01JF0Z6X7Y8Q9R0S1T2V3W4X5Z", "nick": "alice"},
        "text": "The quick brown fox jumps over the lazy dog, twice: the quick brown fox.",
        "ts": 1_765_000_000_000u64,
        "seq": 42,
    });
    Bytes::from(frame.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    if options.serve_members {
        return serve_members(&options).await;
    }
    // The members, in a process of their own.
    let mut members = tokio::process::Command::new(std::env::current_exe()?)
        .args(["--serve-members", "--endpoint", &options.endpoint])
        .args(["--members", &options.members.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the members")?;
    let mut lines = BufReader::new(members.stdout.take().expect("piped")).lines();
    let mut ids = Vec::with_capacity(options.members);
    while ids.len() < options.members {
        let line = tokio::time::timeout(STEP_WAIT, lines.next_line())
            .await
            .context("the members did not connect in time")??
            .context("the members ended")?;
        ids.push(ConnectionId::new(line));
    }

    let credentials = Credentials::new(
        "local",
        "local",
        (options.session_token_bytes > 0).then(|| "T".repeat(options.session_token_bytes)),
        None,
        "roomcast-post-cost",
    );
    let notifier: Arc<dyn Notifier> = if options.sdk {
        let sdk = roomcast_aws::config::sdk_config_loader()
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(credentials)
            .load()
            .await;
        Arc::new(SdkConnectionsNotifier::new(&sdk, &options.endpoint))
    } else {
        let provider = SharedCredentialsProvider::new(credentials);
        Arc::new(ConnectionsNotifier::with_credentials(
            provider,
            "us-east-1",
            &options.endpoint,
            options.concurrency,
        )?)
    };

    let frame = frame();
    let posts = options.members * options.posts_per_member;
    let started = Instant::now();
    let outcomes: Vec<bool> = stream::iter(0..posts)
        .map(|index| {
            let (notifier, frame, id) = (&notifier, &frame, &ids[index % ids.len()]);
            async move {
                match tokio::time::timeout(POST_WAIT, notifier.send_shared(id, frame)).await {
                    Ok(Ok(())) => true,
                    Ok(Err(error)) => {
                        eprintln!("post to {id} failed: {error}: {:?}", std::error::Error::source(&error));
                        false
                    }
                    Err(_) => {
                        eprintln!("post to {id}: no answer within {POST_WAIT:?}");
                        false
                    }
                }
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    let elapsed = started.elapsed();
    let delivered = outcomes.iter().filter(|ok| **ok).count();

    // The members say how many frames they got once they have all of them.
    let mut stdin = members.stdin.take().expect("piped");
    stdin.write_all(format!("{delivered}\n").as_bytes()).await?;
    drop(stdin);
    let received: usize = tokio::time::timeout(STEP_WAIT, lines.next_line())
        .await
        .context("the members did not receive every frame in time")??
        .context("the members ended without a count")?
        .parse()?;
    let report = json!({
        "notifier": if options.sdk { "sdk" } else { "signed" },
        "posts": posts,
        "delivered": delivered,
        "received": received,
        "session_token_bytes": options.session_token_bytes,
        "frame_bytes": frame.len(),
        "elapsed_ms": elapsed.as_millis() as u64,
    });
    println!("{report}");
    if delivered != posts || received != posts {
        bail!(
            "{} of {posts} posts were not delivered",
            posts - delivered.min(received)
        );
    }
    Ok(())
}

/// The members: `--members` WebSocket clients, their connection ids on stdout, then every
/// frame read until as many as the number given on stdin have arrived, and that count.
async fn serve_members(options: &Options) -> anyhow::Result<()> {
    let ws = options.endpoint.replacen("http://", "ws://", 1);
    let (frames_tx, mut frames_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut stdout = tokio::io::stdout();
    for index in 0..options.members {
        let url = format!("{ws}?name=member{index}");
        let (mut socket, _) = tokio::time::timeout(STEP_WAIT, tokio_tungstenite::connect_async(&url))
            .await
            .context("no handshake in time")??;
        socket
            .send(Message::text(json!({"action": "whoami"}).to_string()))
            .await?;
        let id = loop {
            let message = tokio::time::timeout(STEP_WAIT, socket.next())
                .await
                .context("no answer to whoami")?
                .context("closed")??;
            if let Message::Text(text) = message {
                let reply: Value = serde_json::from_str(&text)?;
                if let Some(id) = reply["connectionId"].as_str() {
                    break id.to_owned();
                }
            }
        };
        stdout.write_all(format!("{id}\n").as_bytes()).await?;
        let frames = frames_tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                if message.is_text() {
                    let _ = frames.send(());
                }
            }
        });
    }
    stdout.flush().await?;
    let mut expected = String::new();
    BufReader::new(tokio::io::stdin()).read_line(&mut expected).await?;
    let expected: usize = expected.trim().parse().context("a count on stdin")?;
    let mut received = 0;
    while received < expected {
        match tokio::time::timeout(STEP_WAIT, frames_rx.recv()).await {
            Ok(Some(())) => received += 1,
            _ => break,
        }
    }
    stdout.write_all(format!("{received}\n").as_bytes()).await?;
    stdout.flush().await?;
    Ok(())
}
