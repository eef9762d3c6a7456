//! How long after its `ack` a poller of the HTTP API can read a message: a sender posts
//! messages over HTTP at a steady pace while a poller reads the room on with
//! `GET /api/rooms/{room}/messages?after=<the last id it got>` every poll interval. For
//! each message, the time from its 202 to the poll that first returned it. The local
//! gateway runs with AWS's default batching window (500 ms) unless told otherwise, on the
//! embedded backends, or on moto + tansu with `--real`. A poll returns a message as soon
//! as kafka-archive holds it: there is no settle delay (docs/protocol.md, "One order").
//!
//! `cargo bench -p roomcast-tests --bench poll_latency -- [--real] [--messages N]
//! [--interval-ms MS] [--send-every-ms MS] [--batch-window-ms MS]`

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::Parser;
use roomcast_local::settings::Settings;
use roomcast_tests::gateways::start;
use roomcast_tests::http_client::HttpApi;

#[derive(Parser)]
struct Options {
    /// moto + tansu instead of the embedded backends.
    #[arg(long)]
    real: bool,
    /// Messages sent.
    #[arg(long, default_value_t = 40)]
    messages: usize,
    /// Between two polls.
    #[arg(long, default_value_t = 250)]
    interval_ms: u64,
    /// Between two sends.
    #[arg(long, default_value_t = 200)]
    send_every_ms: u64,
    /// The emulated Kafka trigger's batching window (AWS's default: 500 ms).
    #[arg(long, default_value_t = 500)]
    batch_window_ms: u64,
    /// `cargo bench` passes `--bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let options = Options::parse();
    let mut args: Vec<String> = ["roomcast-local", "--listen", "127.0.0.1:0", "--rooms", "polled"]
        .map(str::to_owned)
        .to_vec();
    args.extend(["--batch-window-ms".to_owned(), options.batch_window_ms.to_string()]);
    if options.real {
        args.extend(roomcast_tests::real_backend_args());
    }
    let gateway = start(Settings::parse_from(args)).await;
    let api = HttpApi::new(gateway.http_url());
    let (sender, poller) = (api.dev_token("sender", &[]).await, api.dev_token("poller", &[]).await);
    for token in [&sender, &poller] {
        let reply = api.call("PUT", "/api/rooms/polled/members/me", Some(token), None).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let messages = "/api/rooms/polled/messages";
    let interval = Duration::from_millis(options.interval_ms);

    // The poller: reads on `after` the last id it got, one poll per interval, and notes
    // when each id first came.
    let (done, mut stop) = tokio::sync::watch::channel(false);
    let polling = {
        let (api, poller) = (api.clone(), poller.clone());
        tokio::spawn(async move {
            let mut seen: HashMap<String, Instant> = HashMap::new();
            let mut last: Option<String> = None;
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stop.changed() => return seen,
                }
                let path = match &last {
                    Some(last) => format!("{messages}?after={last}&limit=100"),
                    None => format!("{messages}?limit=100"),
                };
                let page = api.call("GET", &path, Some(&poller), None).await;
                assert_eq!(page.status, 200, "{page:?}");
                let now = Instant::now();
                for message in page.body["messages"].as_array().unwrap() {
                    let id = message["id"].as_str().unwrap().to_owned();
                    seen.entry(id.clone()).or_insert(now);
                    last = Some(id);
                }
            }
        })
    };

    let mut acked: Vec<(String, Instant)> = Vec::new();
    let mut pace = tokio::time::interval(Duration::from_millis(options.send_every_ms));
    for n in 0..options.messages {
        pace.tick().await;
        let body = format!(r#"{{"text":"message {n}"}}"#);
        let ack = api.call("POST", messages, Some(&sender), Some(&body)).await;
        assert_eq!(ack.status, 202, "{ack:?}");
        acked.push((ack.body["id"].as_str().unwrap().to_owned(), Instant::now()));
    }
    // Until the poller has them all, or 60 s.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = api
            .call("GET", &format!("{messages}?limit=1"), Some(&poller), None)
            .await;
        assert_eq!(page.status, 200, "{page:?}");
        let newest = page.body["messages"][0]["id"].as_str().map(str::to_owned);
        if newest.as_deref() == acked.last().map(|(id, _)| id.as_str()) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(interval).await;
    }
    tokio::time::sleep(interval * 2).await;
    done.send_replace(true);
    let seen = polling.await.expect("the poller");

    let mut delays: Vec<Duration> = acked
        .iter()
        .filter_map(|(id, at)| seen.get(id).map(|seen| seen.saturating_duration_since(*at)))
        .collect();
    let missed = acked.len() - delays.len();
    delays.sort();
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    println!(
        "poll latency ({}, batching window {} ms, a poll every {} ms, a send every {} ms): {} messages, {} never seen",
        if options.real { "moto + tansu" } else { "embedded" },
        options.batch_window_ms,
        options.interval_ms,
        options.send_every_ms,
        acked.len(),
        missed
    );
    if !delays.is_empty() {
        println!(
            "ack → first poll that returned it: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            ms(percentile(&delays, 0.5)),
            ms(percentile(&delays, 0.9)),
            ms(percentile(&delays, 0.99)),
            ms(*delays.last().unwrap())
        );
    }
    gateway.shutdown().await;
    if missed > 0 {
        std::process::exit(1);
    }
}
