//! The run's live counters, which every client updates as it goes, and the progress line
//! they make on stderr: redrawn every second on a terminal, one line every few seconds
//! in a log.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the run is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Connecting = 0,
    Joining = 1,
    Settling = 2,
    Sending = 3,
    Draining = 4,
    Closing = 5,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Joining => "joining",
            Phase::Settling => "settling",
            Phase::Sending => "sending",
            Phase::Draining => "draining",
            Phase::Closing => "closing",
        }
    }

    fn from_u8(value: u8) -> Phase {
        match value {
            0 => Phase::Connecting,
            1 => Phase::Joining,
            2 => Phase::Settling,
            3 => Phase::Sending,
            4 => Phase::Draining,
            _ => Phase::Closing,
        }
    }
}

/// Counts so far, shared by every client; the ledgers hold the exact books.
#[derive(Debug, Default)]
pub struct Counters {
    phase: AtomicU8,
    pub connected: AtomicU64,
    pub connect_failed: AtomicU64,
    pub joined: AtomicU64,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub refused: AtomicU64,
    /// Sends awaiting an answer (in a window or overdue).
    pub awaiting: AtomicU64,
    /// Sends past the reply timeout still awaiting an answer.
    pub overdue: AtomicU64,
    pub skipped: AtomicU64,
    /// Deliveries the acknowledged messages owe (their audiences).
    pub expected: AtomicU64,
    /// First copies delivered.
    pub delivered: AtomicU64,
    pub duplicated: AtomicU64,
    pub misrouted: AtomicU64,
    pub presence: AtomicU64,
    /// When the last presence frame came, µs on the run's clock (0: none yet).
    pub last_presence_us: AtomicU64,
    pub senders_done: AtomicU64,
    pub dropped: AtomicU64,
    /// The gateway's resident memory, KB (0: not sampled).
    pub gateway_rss_kb: AtomicU64,
}

impl Counters {
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Relaxed))
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn one(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn less(counter: &AtomicU64) {
        // Never below zero, whatever order the updates come in.
        let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(1)));
    }

    /// Raises `counter` to `value` if it is lower.
    pub fn at_least(counter: &AtomicU64, value: u64) {
        counter.fetch_max(value, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Prints the progress line until the returned handle is aborted.
pub fn start(counters: Arc<Counters>, clients: usize, every_secs: u64) -> Option<tokio::task::JoinHandle<()>> {
    let terminal = std::io::stderr().is_terminal();
    if every_secs == 0 && !terminal {
        return None;
    }
    let every = if terminal { 1 } else { every_secs };
    Some(tokio::spawn(async move {
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(every));
        tick.tick().await;
        let (mut sent_before, mut delivered_before) = (0, 0);
        loop {
            tick.tick().await;
            let get = |counter: &AtomicU64| Counters::get(counter);
            let (sent, delivered) = (get(&counters.sent), get(&counters.delivered));
            let rss = get(&counters.gateway_rss_kb);
            let mut line = format!(
                "[{:>5}s] {:<10} connected {}/{clients} joined {} · sent {sent} ({:.0}/s) acked {} refused {} awaiting {} · delivered {delivered}/{} ({:.0}/s) dup {}",
                started.elapsed().as_secs(),
                counters.phase().name(),
                get(&counters.connected),
                get(&counters.joined),
                (sent - sent_before) as f64 / every as f64,
                get(&counters.acked),
                get(&counters.refused),
                get(&counters.awaiting),
                get(&counters.expected),
                (delivered - delivered_before) as f64 / every as f64,
                get(&counters.duplicated),
            );
            if rss > 0 {
                line.push_str(&format!(" · gateway {:.1} MB", rss as f64 / 1024.0));
            }
            (sent_before, delivered_before) = (sent, delivered);
            let mut stderr = std::io::stderr().lock();
            let _ = if terminal {
                write!(stderr, "\r\x1b[2K{line}")
            } else {
                writeln!(stderr, "{line}")
            };
            let _ = stderr.flush();
        }
    }))
}

/// Ends the progress line so the summary starts on a line of its own.
pub fn stop(handle: Option<tokio::task::JoinHandle<()>>) {
    if let Some(handle) = handle {
        handle.abort();
        if std::io::stderr().is_terminal() {
            eprintln!();
        }
    }
}
