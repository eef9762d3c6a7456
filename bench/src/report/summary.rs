//! The report told to people: one line each for connecting, sending, delivering,
//! latency, other frames and the gateway's memory, then the warnings, the failures and
//! the result.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::Report;

impl Report {
    /// The report for people.
    pub fn summary(&self) -> String {
        let (p, c, m, d) = (&self.plan, &self.connect, &self.messages, &self.deliveries);
        let mut out = String::new();
        let pace = match p.rate {
            Some(rate) if !p.burst => format!("{rate} msgs/s"),
            _ => "a burst".to_owned(),
        };
        let length = match (p.duration_s, p.messages) {
            (Some(seconds), _) => format!("for {seconds} s"),
            (None, Some(messages)) => format!("{messages} messages"),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "roomcast-load run {} against {}: {} clients in {} rooms, {} senders, {pace} {length}{}",
            self.run,
            self.url,
            p.clients,
            p.rooms,
            p.senders,
            if p.shared_user { " (one user)" } else { "" }
        );
        let _ = writeln!(
            out,
            "connect   {}/{} in {:.1} s ({:.1}/s), failures: {}; rooms created {}/{}; joined {} in {:.2} s; presence settled {}",
            c.connected,
            c.attempted,
            c.seconds,
            c.per_second,
            tally(&c.failures),
            c.rooms_created,
            p.rooms,
            c.joined,
            c.join_seconds,
            c.presence_seconds
                .map_or("not within --settle".to_owned(), |seconds| format!("{seconds:.2} s after the first join"))
        );
        let _ = writeln!(
            out,
            "send      {} sent by {} senders in {:.1} s ({:.1}/s): {} acknowledged, {} refused{}, {} unanswered, {} late, {} slots skipped",
            m.sent,
            m.senders_active,
            m.send_seconds,
            m.sent_per_second,
            m.acknowledged,
            m.refused,
            if m.refused > 0 { format!(" ({})", tally(&m.refused_by_code)) } else { String::new() },
            m.unanswered,
            m.late_answers,
            m.skipped_slots
        );
        let _ = writeln!(
            out,
            "deliver   {} of {} expected, {:.1}/s: {} lost ({} messages), {} duplicated, {} out of order, {} misrouted; drain {:.1} s",
            d.expected - d.lost,
            d.expected,
            d.per_second,
            d.lost,
            d.lost_messages,
            d.duplicated,
            d.out_of_order,
            d.misrouted,
            self.drain_seconds
        );
        for example in &d.lost_examples {
            let _ = writeln!(out, "          lost: {example}");
        }
        for example in &d.duplicate_examples {
            let _ = writeln!(out, "          duplicate: {example}");
        }
        let (r, a) = (&self.latency_ms.send_to_receive, &self.latency_ms.send_to_ack);
        let _ = writeln!(
            out,
            "latency   send→receive p50 {} / p90 {} / p99 {} / max {} ms; send→ack p50 {} / p99 {} / max {} ms",
            r.p50, r.p90, r.p99, r.max, a.p50, a.p99, a.max
        );
        let presence: u64 = self.presence.values().sum();
        let _ = writeln!(
            out,
            "frames    presence {presence} ({}); other: {}",
            tally(&self.presence),
            tally(&self.other_frames)
        );
        if let Some(memory) = &self.gateway_memory {
            let mb = |kb: Option<u64>| kb.map_or("?".to_owned(), |kb| format!("{:.1}", kb as f64 / 1024.0));
            let per_connection = match (memory.before_kb, memory.joined_kb) {
                (Some(before), Some(joined)) if c.connected > 0 => format!(
                    " (+{:.1} KB per connection after joining)",
                    joined.saturating_sub(before) as f64 / c.connected as f64
                ),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "gateway   RSS MB: before {}, joined {}{per_connection}, min {}, max {}, last {} ({} samples)",
                mb(memory.before_kb),
                mb(memory.joined_kb),
                mb(memory.min_kb),
                mb(memory.max_kb),
                mb(memory.last_kb),
                memory.samples
            );
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "warning   {warning}");
        }
        for failure in &self.failures {
            let _ = writeln!(out, "FAILURE   {failure}");
        }
        let _ = writeln!(out, "result    {}", if self.passed { "passed" } else { "FAILED" });
        out
    }
}

/// `what ×n, ...` for counts by kind, or `none`.
pub(super) fn tally(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(what, n)| format!("{what} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
