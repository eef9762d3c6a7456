//! The gateway's memory as the kernel counts it: its resident set (`VmRSS` in
//! `/proc/PID/status`), sampled every second while the run lasts.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::progress::Counters;

/// The resident memory of `pid` in KB, or `None` if it cannot be read (no such process).
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Samples every second until stopped.
pub struct Sampler {
    pid: u32,
    samples: Arc<Mutex<Vec<u64>>>,
    task: tokio::task::JoinHandle<()>,
}

/// What the samples say, in KB.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    pub pid: u32,
    pub samples: usize,
    /// Before the first connection.
    pub before_kb: Option<u64>,
    /// Once every client had joined.
    pub joined_kb: Option<u64>,
    pub min_kb: Option<u64>,
    pub max_kb: Option<u64>,
    /// At the end of the run.
    pub last_kb: Option<u64>,
    /// Whether the process was gone at some sample.
    pub vanished: bool,
    /// One sample per second.
    pub series_kb: Vec<u64>,
}

impl Sampler {
    pub fn start(pid: u32, counters: Arc<Counters>) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let kept = samples.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                // A sample of 0 marks a moment the process could not be read.
                let kb = rss_kb(pid).unwrap_or(0);
                counters.gateway_rss_kb.store(kb, Ordering::Relaxed);
                kept.lock().expect("samples lock").push(kb);
            }
        });
        Sampler { pid, samples, task }
    }

    pub fn finish(self, before_kb: Option<u64>, joined_kb: Option<u64>) -> MemoryReport {
        self.task.abort();
        let mut series = self.samples.lock().expect("samples lock").clone();
        let last = rss_kb(self.pid);
        series.push(last.unwrap_or(0));
        let read: Vec<u64> = series.iter().copied().filter(|&kb| kb > 0).collect();
        MemoryReport {
            pid: self.pid,
            samples: series.len(),
            before_kb,
            joined_kb,
            min_kb: read.iter().copied().min(),
            max_kb: read.iter().copied().max(),
            last_kb: last,
            vanished: series.contains(&0),
            series_kb: series,
        }
    }
}
