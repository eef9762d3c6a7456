//! A run from start to end: connect every client, create the rooms and join them, start
//! the senders, wait for them and then for the answers and deliveries to drain, collect
//! every client's books and make the report. Every wait has a timeout; Ctrl-C ends the
//! sending early and still reports.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::stream::{self, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};
use tokio_tungstenite::tungstenite;

use crate::client::{self, Command, Context, Identity, Outcome, Schedule, Socket};
use crate::memory::{rss_kb, Sampler};
use crate::options::Options;
use crate::progress::{self, Counters, Phase};
use crate::report::{Course, Header, Plan, Report, Setup};

/// Longest wait for a client to hand in its books after `Stop`.
const BOOKS_TIMEOUT: Duration = Duration::from_secs(10);

struct Handle {
    commands: mpsc::Sender<Command>,
    task: JoinHandle<Outcome>,
}

pub async fn run(options: Options) -> anyhow::Result<Report> {
    options.validate()?;
    let run = run_id();
    let started = Instant::now();
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64);
    let counters = Arc::new(Counters::default());
    let context = Arc::new(Context {
        run: run.clone(),
        rooms: options.rooms,
        shared_user: options.shared_user(),
        text_bytes: options.text_bytes,
        reply_timeout: options.reply_timeout,
        keepalive: options.keepalive,
        started,
        counters: counters.clone(),
    });

    // How many times Ctrl-C was pressed: the first ends the sending, the next the drain.
    let (interrupt_tx, mut interrupt) = watch::channel(0u32);
    let ctrl_c = tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            interrupt_tx.send_modify(|presses| *presses += 1);
        }
    });

    let before_kb = match options.gateway_pid {
        Some(pid) => Some(rss_kb(pid).ok_or_else(|| {
            anyhow::anyhow!("--gateway-pid {pid}: cannot read /proc/{pid}/status (is the gateway running?)")
        })?),
        None => None,
    };
    let sampler = options.gateway_pid.map(|pid| Sampler::start(pid, counters.clone()));
    let progress = progress::start(counters.clone(), options.clients, options.progress_every);

    // Connect every client.
    let http = match &options.token_url {
        Some(_) => Some(reqwest::Client::builder().timeout(options.connect_timeout).build()?),
        None => None,
    };
    let mut setup = Setup::default();
    let mut handles: Vec<Option<Handle>> = (0..options.clients).map(|_| None).collect();
    let connect_started = Instant::now();
    {
        let (options, run, http, interrupt) = (&options, run.as_str(), http.as_ref(), &interrupt);
        let mut connecting = stream::iter(0..options.clients)
            .map(|index| async move {
                if *interrupt.borrow() > 0 {
                    return (index, Err("interrupted".to_owned()));
                }
                (index, connect(options, run, index, http).await)
            })
            .buffer_unordered(options.concurrency as usize);
        while let Some((index, result)) = connecting.next().await {
            match result {
                Ok(socket) => {
                    Counters::one(&counters.connected);
                    let room = index % options.rooms;
                    let identity = Identity {
                        index,
                        room,
                        room_name: room_name(options, run, room),
                    };
                    let (commands, inbox) = mpsc::channel(16);
                    let task = tokio::spawn(client::run(socket, identity, context.clone(), inbox));
                    handles[index] = Some(Handle { commands, task });
                }
                Err(cause) => {
                    Counters::one(&counters.connect_failed);
                    *setup.connect_failures.entry(cause).or_default() += 1;
                }
            }
        }
    }
    setup.connect_seconds = connect_started.elapsed().as_secs_f64();
    setup.connected = counters.connected.load(std::sync::atomic::Ordering::Relaxed);

    // Create the rooms (each by its first connected member), then everyone joins.
    counters.set_phase(Phase::Joining);
    let creators: Vec<usize> = (0..options.rooms)
        .filter_map(|room| {
            (room..options.clients)
                .step_by(options.rooms)
                .find(|&i| handles[i].is_some())
        })
        .collect();
    let mut created = vec![false; options.rooms];
    for (creator, result) in ask_all(&handles, creators, Ask::CreateRoom, &options, &counters, &interrupt).await {
        match result {
            Ok(()) => {
                setup.rooms_created += 1;
                created[creator % options.rooms] = true;
            }
            Err(cause) => *setup.room_failures.entry(cause).or_default() += 1,
        }
    }
    // Members of a room that could not be made do not try to join it.
    let (joiners, roomless): (Vec<usize>, Vec<usize>) = (0..options.clients)
        .filter(|&i| handles[i].is_some())
        .partition(|&i| created[i % options.rooms]);
    if !roomless.is_empty() {
        setup
            .join_failures
            .insert("room not created".to_owned(), roomless.len() as u64);
    }
    setup.members = vec![Vec::new(); options.rooms];
    let joins_started_us = context.clock_us();
    for (index, result) in ask_all(&handles, joiners, Ask::Join, &options, &counters, &interrupt).await {
        match result {
            Ok(()) => {
                setup.joined += 1;
                setup.members[index % options.rooms].push(index);
            }
            Err(cause) => *setup.join_failures.entry(cause).or_default() += 1,
        }
    }
    for members in &mut setup.members {
        members.sort_unstable();
    }
    let joins_ended_us = context.clock_us();
    setup.join_seconds = (joins_ended_us - joins_started_us) as f64 / 1e6;
    counters.set_phase(Phase::Settling);
    setup.settle_seconds = settle(&counters, options.settle)
        .await
        .map(|waited| waited.as_secs_f64());
    // The figure of a join storm: how long until everyone had heard of everyone they will.
    setup.presence_seconds = setup.settle_seconds.map(|_| {
        let last_us = Counters::get(&counters.last_presence_us).max(joins_ended_us);
        (last_us - joins_started_us) as f64 / 1e6
    });
    let joined_kb = options.gateway_pid.and_then(rss_kb);

    // Send.
    counters.set_phase(Phase::Sending);
    let senders: Vec<usize> = (0..options.senders)
        .filter(|i| setup.members[i % options.rooms].contains(i))
        .collect();
    let interval = match (options.burst, options.rate) {
        (false, Some(rate)) => Duration::from_secs_f64(options.senders as f64 / rate),
        _ => Duration::ZERO,
    };
    let send_started = Instant::now();
    let send_started_us = context.clock_us();
    let until = options.duration.map(|duration| send_started + duration);
    let joined_total = setup.joined;
    for &sender in &senders {
        let audience = if options.shared_user() {
            joined_total.saturating_sub(1)
        } else {
            setup.members[sender % options.rooms].len() as u64 - 1
        };
        let share = options.messages.map(|total| {
            let senders = options.senders as u64;
            total / senders + u64::from((sender as u64) < total % senders)
        });
        let schedule = Schedule {
            first_slot: send_started + interval.mul_f64(sender as f64 / options.senders as f64),
            interval,
            quota: share,
            until,
            wait_for_window: options.burst || options.messages.is_some(),
            window: options.window as usize,
            audience,
        };
        if let Some(handle) = &handles[sender] {
            let _ = handle.commands.send(Command::Send(schedule)).await;
        }
    }
    let sending_deadline = until.map(|until| until + interval + Duration::from_secs(5));
    let mut interrupted = false;
    let mut stalled = false;
    let answers = || Counters::get(&counters.acked) + Counters::get(&counters.refused);
    let (mut answered, mut answered_at) = (answers(), Instant::now());
    loop {
        if Counters::get(&counters.senders_done) >= senders.len() as u64 {
            break;
        }
        if answers() != answered || Counters::get(&counters.awaiting) == 0 {
            (answered, answered_at) = (answers(), Instant::now());
        }
        stalled = answered_at.elapsed() >= options.reply_timeout;
        let overdue = sending_deadline.is_some_and(|deadline| Instant::now() >= deadline);
        if *interrupt.borrow() > 0 || overdue || stalled {
            interrupted = *interrupt.borrow() > 0;
            for &sender in &senders {
                if let Some(handle) = &handles[sender] {
                    let _ = handle.commands.send(Command::StopSending).await;
                }
            }
            break;
        }
        tokio::select! {
            () = sleep(Duration::from_millis(100)) => {}
            _ = interrupt.changed() => {}
        }
    }
    // A duration run sends only before its end, however late the last sender noticed it.
    let send_seconds = match options.duration {
        Some(duration) if !interrupted => send_started.elapsed().min(duration),
        _ => send_started.elapsed(),
    }
    .as_secs_f64();

    // Drain: wait for every answer and every delivery owed while they keep coming, then
    // linger for late duplicates.
    counters.set_phase(Phase::Draining);
    let drain_started = Instant::now();
    let arrivals = || {
        Counters::get(&counters.acked)
            + Counters::get(&counters.refused)
            + Counters::get(&counters.delivered)
            + Counters::get(&counters.duplicated)
    };
    let (mut arrived, mut arrived_at) = (arrivals(), Instant::now());
    let mut complete_since: Option<Instant> = None;
    let presses = *interrupt.borrow();
    let drained = loop {
        let now = Instant::now();
        let complete = Counters::get(&counters.awaiting) == 0
            && Counters::get(&counters.delivered) >= Counters::get(&counters.expected);
        if complete {
            let since = *complete_since.get_or_insert(now);
            if now.duration_since(since) >= options.linger {
                break true;
            }
        } else {
            complete_since = None;
        }
        if arrivals() != arrived {
            (arrived, arrived_at) = (arrivals(), now);
        }
        let idle = now.duration_since(arrived_at) >= options.drain;
        if *interrupt.borrow() > presses {
            interrupted = true;
            break complete;
        }
        if idle || now.duration_since(drain_started) >= options.drain_max {
            break complete;
        }
        sleep(Duration::from_millis(50)).await;
    };
    let drain_seconds = drain_started.elapsed().as_secs_f64();

    // Collect the books.
    counters.set_phase(Phase::Closing);
    for handle in handles.iter().flatten() {
        let _ = handle.commands.send(Command::Stop).await;
    }
    let mut outcomes = Vec::with_capacity(handles.len());
    let mut missing_books = 0;
    for handle in handles.into_iter().flatten() {
        let abort = handle.task.abort_handle();
        match timeout(BOOKS_TIMEOUT, handle.task).await {
            Ok(Ok(outcome)) => outcomes.push(outcome),
            Ok(Err(_)) => missing_books += 1,
            Err(_) => {
                abort.abort();
                missing_books += 1;
            }
        }
    }
    progress::stop(progress);
    ctrl_c.abort();
    let memory = sampler.map(|sampler| sampler.finish(before_kb, joined_kb));

    let plan = Plan {
        clients: options.clients,
        rooms: options.rooms,
        senders: options.senders,
        rate: options.rate.filter(|_| !options.burst),
        burst: options.burst,
        duration_s: options.duration.map(|duration| duration.as_secs_f64()),
        messages: options.messages,
        window: options.window,
        text_bytes: options.text_bytes,
        shared_user: options.shared_user(),
        reply_timeout_s: options.reply_timeout.as_secs_f64(),
        drain_s: options.drain.as_secs_f64(),
        drain_max_s: options.drain_max.as_secs_f64(),
    };
    let course = Course {
        send_started_us,
        send_seconds,
        drain_seconds,
        drained,
        interrupted,
        stalled,
        missing_books,
    };
    let header = Header {
        run,
        url: options.url.clone(),
        started_unix_ms,
    };
    Ok(Report::build(header, plan, setup, course, outcomes, memory))
}

/// Waits until no presence frame arrived for a second, at most `longest`; how long it
/// waited, or `None` if the frames never stopped.
async fn settle(counters: &Counters, longest: Duration) -> Option<Duration> {
    const QUIET: Duration = Duration::from_secs(1);
    let started = Instant::now();
    if longest.is_zero() {
        return Some(Duration::ZERO);
    }
    let mut seen = Counters::get(&counters.presence);
    let mut quiet_since = Instant::now();
    loop {
        sleep(Duration::from_millis(100)).await;
        let now = Counters::get(&counters.presence);
        if now != seen {
            (seen, quiet_since) = (now, Instant::now());
        } else if quiet_since.elapsed() >= QUIET {
            return Some(started.elapsed());
        }
        if started.elapsed() >= longest {
            return None;
        }
    }
}

/// A setup step.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ask {
    CreateRoom,
    Join,
}

/// Asks each client in `who` to do one setup step and waits for its answer, a few at
/// once; after a Ctrl-C, asks no more.
async fn ask_all(
    handles: &[Option<Handle>],
    who: Vec<usize>,
    step: Ask,
    options: &Options,
    counters: &Counters,
    interrupt: &watch::Receiver<u32>,
) -> Vec<(usize, Result<(), String>)> {
    let wait = options.setup_timeout;
    stream::iter(who)
        .map(|index| {
            let commands = handles[index].as_ref().map(|handle| handle.commands.clone());
            async move {
                let Some(commands) = commands else {
                    return (index, Err("not connected".to_owned()));
                };
                if *interrupt.borrow() > 0 {
                    return (index, Err("interrupted".to_owned()));
                }
                let (reply, answer) = oneshot::channel();
                let command = match step {
                    Ask::CreateRoom => Command::CreateRoom(reply),
                    Ask::Join => Command::Join(reply),
                };
                if commands.send(command).await.is_err() {
                    return (index, Err("client gone".to_owned()));
                }
                let result = match timeout(wait, answer).await {
                    Ok(Ok(result)) => result,
                    Ok(Err(_)) => Err("client gone".to_owned()),
                    Err(_) => Err(format!("no answer within {} s", wait.as_secs_f64())),
                };
                if step == Ask::Join && result.is_ok() {
                    Counters::one(&counters.joined);
                }
                (index, result)
            }
        })
        .buffer_unordered(options.concurrency as usize)
        .collect()
        .await
}

/// One client's WebSocket: its token first if each client gets one, then the handshake.
async fn connect(options: &Options, run: &str, index: usize, http: Option<&reqwest::Client>) -> Result<Socket, String> {
    let nick = nick(run, index);
    let attempt = async {
        let query = match (&options.token, &options.token_url, http) {
            (Some(token), _, _) => format!("token={token}"),
            (None, Some(token_url), Some(http)) => format!("token={}", dev_token(http, token_url, &nick).await?),
            _ => format!("name={nick}"),
        };
        let url = with_query(&options.url, &query);
        // tungstenite's default 128 KB read buffer per connection would make 10,000
        // clients take over a gigabyte; the gateway's frames are small.
        let config = tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(8 * 1024)
            .write_buffer_size(0);
        tokio_tungstenite::connect_async_with_config(url, Some(config), true)
            .await
            .map(|(socket, _)| socket)
            .map_err(describe)
    };
    timeout(options.connect_timeout, attempt)
        .await
        .unwrap_or_else(|_| Err("timeout".to_owned()))
}

/// A token from the local gateway's `POST /api/dev/token`.
async fn dev_token(http: &reqwest::Client, url: &str, nick: &str) -> Result<String, String> {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::json!({ "nick": nick }).to_string())
        .send()
        .await
        .map_err(|error| {
            format!(
                "token: {}",
                if error.is_timeout() {
                    "timeout"
                } else {
                    "request failed"
                }
            )
        })?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|_| "token: answer cut short".to_owned())?;
    if !status.is_success() {
        return Err(format!("token: HTTP {}", status.as_u16()));
    }
    let answer: serde_json::Value = serde_json::from_str(&body).map_err(|_| "token: not JSON".to_owned())?;
    answer["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "token: no `token` in the answer".to_owned())
}

/// A connect failure as a cause to count: the HTTP status of a refused handshake, the
/// kind of an I/O error.
fn describe(error: tungstenite::Error) -> String {
    match error {
        tungstenite::Error::Http(response) => format!("HTTP {}", response.status().as_u16()),
        tungstenite::Error::Io(error) => error.kind().to_string(),
        tungstenite::Error::Tls(error) => format!("TLS: {error}"),
        tungstenite::Error::Url(error) => format!("URL: {error}"),
        other => other.to_string(),
    }
}

/// `url` with `query` added, and a `/` path if it had none.
fn with_query(url: &str, query: &str) -> String {
    let authority = url.find("://").map_or(0, |at| at + 3);
    let mut url = url.to_owned();
    match url[authority..].find(['/', '?']).map(|at| at + authority) {
        Some(at) if url.as_bytes()[at] == b'/' => {}
        Some(at) => url.insert(at, '/'),
        None => url.push('/'),
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{query}")
}

/// Six base-36 characters, different for each run.
fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    let mut n = (nanos ^ (u64::from(std::process::id()) << 40)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20;
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..6)
        .map(|_| {
            let digit = digits[(n % 36) as usize] as char;
            n /= 36;
            digit
        })
        .collect()
}

/// A client's nickname: unique per run, at most 32 characters.
fn nick(run: &str, index: usize) -> String {
    format!("ld{run}-{index}")
}

fn room_name(options: &Options, run: &str, room: usize) -> String {
    format!("{}-{run}-{room}", options.room_prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_goes_after_a_path() {
        assert_eq!(with_query("ws://h:1", "name=a"), "ws://h:1/?name=a");
        assert_eq!(with_query("ws://h:1/", "name=a"), "ws://h:1/?name=a");
        assert_eq!(with_query("wss://h/prod", "token=t"), "wss://h/prod?token=t");
        assert_eq!(with_query("wss://h/prod?x=1", "token=t"), "wss://h/prod?x=1&token=t");
        assert_eq!(with_query("ws://h:1?x=1", "name=a"), "ws://h:1/?x=1&name=a");
    }

    #[test]
    fn names_fit_the_protocol() {
        let run = run_id();
        assert_eq!(run.len(), 6);
        assert!(run.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(nick(&run, 999_999).len() <= 32);
    }
}
