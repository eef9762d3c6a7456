//! The run's report: every message accounted for from the clients' books (acknowledged,
//! refused, unanswered; delivered, lost, duplicated, out of order, to each member of its
//! room), the figures (deliveries/s, latency percentiles, connect rate, gateway memory),
//! what fails the run and what only warns; serialised as the JSON report, and told to
//! people by [`summary`].

mod summary;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use summary::tally;

use crate::client::Outcome;
use crate::memory::MemoryReport;

/// What was asked.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub clients: usize,
    pub rooms: usize,
    pub senders: usize,
    /// Messages per second in total; none for a burst.
    pub rate: Option<f64>,
    pub burst: bool,
    pub duration_s: Option<f64>,
    pub messages: Option<u64>,
    pub window: u64,
    pub text_bytes: usize,
    /// All clients sign in with one token: one user, in every room.
    pub shared_user: bool,
    pub reply_timeout_s: f64,
    pub drain_s: f64,
    pub drain_max_s: f64,
}

/// What happened before the messages: connections, rooms, joins.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Setup {
    pub connected: u64,
    /// By cause: `HTTP 409`, `timeout`, `connection refused`, ...
    pub connect_failures: BTreeMap<String, u64>,
    pub connect_seconds: f64,
    pub rooms_created: u64,
    pub room_failures: BTreeMap<String, u64>,
    pub joined: u64,
    pub join_failures: BTreeMap<String, u64>,
    /// From the first join asked to the last one answered.
    pub join_seconds: f64,
    /// How long the joins' presence frames took to stop; none if they had not within --settle.
    pub settle_seconds: Option<f64>,
    /// From the first join asked to the last presence frame received (to the last join
    /// answered if no presence frame came); none if the frames had not stopped within --settle.
    pub presence_seconds: Option<f64>,
    /// The clients that joined each room, by room.
    #[serde(skip)]
    pub members: Vec<Vec<usize>>,
}

/// How the run went beyond the books.
#[derive(Debug, Clone, Default)]
pub struct Course {
    /// When sending started, µs on the run's clock.
    pub send_started_us: u64,
    pub send_seconds: f64,
    /// From the end of the sending to the end of the drain.
    pub drain_seconds: f64,
    /// Everything expected arrived before the drain period ended.
    pub drained: bool,
    pub interrupted: bool,
    /// Sending stopped because no send was answered for the reply timeout.
    pub stalled: bool,
    /// Clients whose books never came back.
    pub missing_books: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectReport {
    pub attempted: usize,
    pub connected: u64,
    pub failures: BTreeMap<String, u64>,
    pub seconds: f64,
    pub per_second: f64,
    pub rooms_created: u64,
    pub room_failures: BTreeMap<String, u64>,
    pub joined: u64,
    pub join_failures: BTreeMap<String, u64>,
    pub join_seconds: f64,
    pub settle_seconds: Option<f64>,
    pub presence_seconds: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MessageReport {
    pub senders_active: usize,
    pub sent: u64,
    pub acknowledged: u64,
    pub refused: u64,
    /// By error code.
    pub refused_by_code: BTreeMap<String, u64>,
    /// Neither an ack nor an error by the end.
    pub unanswered: u64,
    /// Answered after the reply timeout.
    pub late_answers: u64,
    /// Paced slots skipped because the sender's window was full.
    pub skipped_slots: u64,
    pub send_seconds: f64,
    pub sent_per_second: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DeliveryReport {
    /// Acknowledged messages × the members of their room (but the sending connection).
    pub expected: u64,
    /// First copies of this run's messages, to anyone.
    pub delivered: u64,
    /// Expected deliveries that never came.
    pub lost: u64,
    /// Acknowledged messages that missed at least one member.
    pub lost_messages: u64,
    pub duplicated: u64,
    /// First copies below a sequence already received from the same sender.
    pub out_of_order: u64,
    /// To a client outside the room, or back to the sending connection.
    pub misrouted: u64,
    /// Deliveries of refused sends.
    pub delivered_refused: u64,
    /// Deliveries of sends that got no answer.
    pub delivered_unanswered: u64,
    /// `message` frames not of this run.
    pub foreign: u64,
    pub per_second: f64,
    /// A few duplicates: sender, sequence, receiver, and when the copy came (s into the run).
    pub duplicate_examples: Vec<String>,
    /// A few messages that missed members: sender, sequence, how many, a receiver.
    pub lost_examples: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// From microseconds, in milliseconds.
    fn of(mut micros: Vec<u32>) -> Percentiles {
        if micros.is_empty() {
            return Percentiles::default();
        }
        micros.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * micros.len() as f64).ceil() as usize).clamp(1, micros.len());
            (micros[rank - 1] as f64 / 10.0).round() / 100.0
        };
        Percentiles {
            count: micros.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LatencyReport {
    pub send_to_receive: Percentiles,
    pub send_to_ack: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run: String,
    pub url: String,
    pub started_unix_ms: u64,
    pub plan: Plan,
    pub connect: ConnectReport,
    pub messages: MessageReport,
    pub deliveries: DeliveryReport,
    pub latency_ms: LatencyReport,
    /// Presence frames by event: counted, not accounted.
    pub presence: BTreeMap<String, u64>,
    /// Other frames by type.
    pub other_frames: BTreeMap<String, u64>,
    pub connections_dropped: u64,
    pub drop_reasons: BTreeMap<String, u64>,
    pub gateway_memory: Option<MemoryReport>,
    pub drained: bool,
    pub drain_seconds: f64,
    pub interrupted: bool,
    pub stalled: bool,
    pub passed: bool,
    /// What fails the run: loss, duplicates, silence, failed or dropped connections.
    pub failures: Vec<String>,
    pub warnings: Vec<String>,
}

/// The identity of a run, for the report's header.
pub struct Header {
    pub run: String,
    pub url: String,
    pub started_unix_ms: u64,
}

impl Report {
    pub fn build(
        header: Header,
        plan: Plan,
        setup: Setup,
        course: Course,
        outcomes: Vec<Outcome>,
        gateway_memory: Option<MemoryReport>,
    ) -> Report {
        let by_index: HashMap<usize, &Outcome> = outcomes.iter().map(|outcome| (outcome.index, outcome)).collect();
        let everyone: Vec<usize> = {
            let mut all: Vec<usize> = setup.members.concat();
            all.sort_unstable();
            all
        };

        let mut messages = MessageReport::default();
        let mut deliveries = DeliveryReport::default();
        let mut ack_latencies = Vec::new();
        for outcome in &outcomes {
            let Some(ledger) = &outcome.sender else { continue };
            let sender = outcome.index;
            messages.senders_active += 1;
            messages.sent += ledger.sent;
            messages.acknowledged += ledger.acks;
            messages.late_answers += ledger.late_replies;
            messages.skipped_slots += ledger.skipped;
            ack_latencies.extend_from_slice(&ledger.ack_latencies_us);
            let refused: HashMap<u64, &str> = ledger.refused.iter().map(|(seq, code)| (*seq, code.as_str())).collect();
            for code in refused.values() {
                *messages.refused_by_code.entry((*code).to_owned()).or_default() += 1;
            }
            messages.refused += refused.len() as u64;
            let members = if plan.shared_user {
                &everyone
            } else {
                &setup.members[sender % plan.rooms]
            };
            let audience: Vec<&Outcome> = members
                .iter()
                .filter(|&&member| member != sender)
                .filter_map(|member| by_index.get(member).copied())
                .collect();
            let books_missing = members
                .iter()
                .filter(|&&m| m != sender && !by_index.contains_key(&m))
                .count() as u64;
            for seq in 0..ledger.sent {
                let heard = audience
                    .iter()
                    .filter(|member| member.receiver.has(sender, seq))
                    .count() as u64;
                if ledger.acked.contains(seq) {
                    let owed = audience.len() as u64 + books_missing;
                    deliveries.expected += owed;
                    let missing = owed - heard;
                    if missing > 0 {
                        deliveries.lost += missing;
                        deliveries.lost_messages += 1;
                        if deliveries.lost_examples.len() < 10 {
                            let whom = audience
                                .iter()
                                .find(|member| !member.receiver.has(sender, seq))
                                .map_or_else(
                                    || "clients without books".to_owned(),
                                    |member| format!("client {}", member.index),
                                );
                            deliveries.lost_examples.push(format!(
                                "sender {sender} seq {seq}: missed by {missing} of {owed}, e.g. {whom}"
                            ));
                        }
                    }
                } else if refused.contains_key(&seq) {
                    deliveries.delivered_refused += heard;
                } else {
                    messages.unanswered += 1;
                    deliveries.delivered_unanswered += heard;
                }
            }
        }

        let mut latencies = Vec::new();
        let mut presence = BTreeMap::new();
        let mut other_frames = BTreeMap::new();
        let mut drop_reasons = BTreeMap::new();
        let mut last_delivery_us = 0;
        for outcome in &outcomes {
            let books = &outcome.receiver;
            deliveries.delivered += books.delivered;
            deliveries.duplicated += books.duplicated;
            for (sender, seq, at_us) in &books.duplicate_examples {
                if deliveries.duplicate_examples.len() < 10 {
                    deliveries.duplicate_examples.push(format!(
                        "sender {sender} seq {seq} → client {} again at {:.1} s",
                        outcome.index,
                        *at_us as f64 / 1e6
                    ));
                }
            }
            deliveries.out_of_order += books.out_of_order;
            deliveries.misrouted += books.misrouted;
            deliveries.foreign += books.foreign;
            latencies.extend_from_slice(&books.latencies_us);
            last_delivery_us = last_delivery_us.max(books.last_delivery_us);
            for (event, n) in &books.presence {
                *presence.entry(event.clone()).or_default() += n;
            }
            for (kind, n) in &books.other {
                *other_frames.entry(kind.clone()).or_default() += n;
            }
            if let Some(reason) = &outcome.dropped {
                *drop_reasons.entry(reason.clone()).or_default() += 1;
            }
        }
        let delivering_s = last_delivery_us.saturating_sub(course.send_started_us) as f64 / 1e6;
        deliveries.per_second = rate(deliveries.delivered, delivering_s);
        messages.send_seconds = round3(course.send_seconds);
        messages.sent_per_second = rate(messages.sent, course.send_seconds);
        let connections_dropped = drop_reasons.values().sum();

        let connect = ConnectReport {
            attempted: plan.clients,
            connected: setup.connected,
            failures: setup.connect_failures,
            seconds: round3(setup.connect_seconds),
            per_second: rate(setup.connected, setup.connect_seconds),
            rooms_created: setup.rooms_created,
            room_failures: setup.room_failures,
            joined: setup.joined,
            join_failures: setup.join_failures,
            join_seconds: round3(setup.join_seconds),
            settle_seconds: setup.settle_seconds.map(round3),
            presence_seconds: setup.presence_seconds.map(round3),
        };

        let mut report = Report {
            run: header.run,
            url: header.url,
            started_unix_ms: header.started_unix_ms,
            plan,
            connect,
            messages,
            deliveries,
            latency_ms: LatencyReport {
                send_to_receive: Percentiles::of(latencies),
                send_to_ack: Percentiles::of(ack_latencies),
            },
            presence,
            other_frames,
            connections_dropped,
            drop_reasons,
            gateway_memory,
            drained: course.drained,
            drain_seconds: round3(course.drain_seconds),
            interrupted: course.interrupted,
            stalled: course.stalled,
            passed: false,
            failures: Vec::new(),
            warnings: Vec::new(),
        };
        report.judge(course.missing_books);
        report
    }

    /// Sorts what went wrong into failures and warnings.
    fn judge(&mut self, missing_books: u64) {
        let (m, d, c) = (&self.messages, &self.deliveries, &self.connect);
        let mut failures = Vec::new();
        let mut warnings = Vec::new();
        if d.lost > 0 {
            failures.push(format!(
                "{} deliveries lost: {} acknowledged messages missed at least one member",
                d.lost, d.lost_messages
            ));
        }
        if d.duplicated > 0 {
            failures.push(format!("{} deliveries duplicated", d.duplicated));
        }
        if m.unanswered > 0 {
            failures.push(format!("{} sends got neither an ack nor an error", m.unanswered));
        }
        let connect_failed: u64 = c.failures.values().sum();
        if connect_failed > 0 {
            failures.push(format!("{connect_failed} connections failed: {}", tally(&c.failures)));
        }
        let room_failed: u64 = c.room_failures.values().sum();
        if room_failed > 0 {
            failures.push(format!("{room_failed} rooms not created: {}", tally(&c.room_failures)));
        }
        let join_failed: u64 = c.join_failures.values().sum();
        if join_failed > 0 {
            failures.push(format!("{join_failed} joins failed: {}", tally(&c.join_failures)));
        }
        if self.connections_dropped > 0 {
            failures.push(format!(
                "{} connections dropped during the run: {}",
                self.connections_dropped,
                tally(&self.drop_reasons)
            ));
        }
        if d.misrouted > 0 {
            failures.push(format!(
                "{} deliveries to a client outside the room or to the sender",
                d.misrouted
            ));
        }
        if d.delivered_refused > 0 {
            failures.push(format!("{} deliveries of refused sends", d.delivered_refused));
        }
        if missing_books > 0 {
            failures.push(format!("{missing_books} clients did not hand in their books"));
        }
        if m.acknowledged == 0 {
            failures.push("no message was acknowledged: nothing to account for".to_owned());
        }
        if let Some(memory) = &self.gateway_memory {
            if memory.vanished {
                failures.push(format!("the gateway (pid {}) was gone at some sample", memory.pid));
            }
        }
        if m.refused > 0 {
            warnings.push(format!("{} sends refused: {}", m.refused, tally(&m.refused_by_code)));
        }
        if d.out_of_order > 0 {
            warnings.push(format!(
                "{} deliveries out of order (per sender and receiver)",
                d.out_of_order
            ));
        }
        if m.skipped_slots > 0 {
            warnings.push(format!(
                "{} paced slots skipped: senders had {} sends awaiting an answer (the gateway did not keep up)",
                m.skipped_slots, self.plan.window
            ));
        }
        if m.late_answers > 0 {
            warnings.push(format!(
                "{} answers came after the {} s reply timeout",
                m.late_answers, self.plan.reply_timeout_s
            ));
        }
        if let (Some(asked), false) = (self.plan.rate, self.plan.burst) {
            let share = m.senders_active as f64 / self.plan.senders as f64;
            if m.sent_per_second < 0.9 * asked * share {
                warnings.push(format!("sent {:.1} msgs/s of the {asked} asked", m.sent_per_second));
            }
        }
        if d.delivered_unanswered > 0 {
            warnings.push(format!(
                "{} deliveries of sends that got no answer",
                d.delivered_unanswered
            ));
        }
        if !self.drained {
            warnings.push(format!(
                "the drain ended after {:.1} s (nothing for {} s, or --drain-max {} s) before every answer and delivery arrived",
                self.drain_seconds, self.plan.drain_s, self.plan.drain_max_s
            ));
        }
        if c.settle_seconds.is_none() {
            warnings.push("presence frames were still arriving when sending started (--settle)".to_owned());
        }
        if self.stalled {
            warnings.push(format!(
                "sending stopped early: no send was answered for {} s",
                self.plan.reply_timeout_s
            ));
        }
        if self.interrupted {
            failures.push("interrupted (Ctrl-C): the run is incomplete".to_owned());
        }
        self.passed = failures.is_empty();
        self.failures = failures;
        self.warnings = warnings;
    }
}

fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        (count as f64 / seconds * 10.0).round() / 10.0
    } else {
        0.0
    }
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests;
