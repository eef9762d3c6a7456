//! The books each client keeps: what a sender sent and what became of it (acknowledged,
//! refused, unanswered), what a receiver got from each sender (first copies, duplicates,
//! out of order, latency); and the text that carries a message's run, sender, sequence
//! and send time.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

/// A growable set of sequence numbers.
#[derive(Debug, Default, Clone)]
pub struct Bits(Vec<u64>);

impl Bits {
    /// Adds `n`; false when it was there already.
    pub fn insert(&mut self, n: u64) -> bool {
        let (word, bit) = ((n / 64) as usize, n % 64);
        if word >= self.0.len() {
            self.0.resize(word + 1, 0);
        }
        let fresh = self.0[word] & (1 << bit) == 0;
        self.0[word] |= 1 << bit;
        fresh
    }

    pub fn contains(&self, n: u64) -> bool {
        let (word, bit) = ((n / 64) as usize, n % 64);
        self.0.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }
}

/// What a message's text carries: `load:<run>:<sender>:<seq>:<sent µs>`, then padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub sender: usize,
    pub seq: u64,
    /// Microseconds from the start of the run to the send.
    pub sent_us: u64,
}

impl Stamp {
    pub fn text(&self, run: &str, padding: usize) -> String {
        let mut text = format!("load:{run}:{}:{}:{}", self.sender, self.seq, self.sent_us);
        if padding > 0 {
            text.push(' ');
            text.extend(std::iter::repeat_n('x', padding - 1));
        }
        text
    }

    /// The stamp of a text of this run; `None` for anything else.
    pub fn read(text: &str, run: &str) -> Option<Stamp> {
        let rest = text.strip_prefix("load:")?.strip_prefix(run)?.strip_prefix(':')?;
        let rest = rest.split(' ').next()?;
        let mut parts = rest.split(':');
        let stamp = Stamp {
            sender: parts.next()?.parse().ok()?,
            seq: parts.next()?.parse().ok()?,
            sent_us: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(stamp)
    }
}

/// A sender's books. Sequence numbers run from 0 to `sent - 1`.
#[derive(Debug, Default)]
pub struct SenderLedger {
    pub sent: u64,
    pub acked: Bits,
    pub acks: u64,
    /// Send → ack, µs.
    pub ack_latencies_us: Vec<u32>,
    /// Refused sends: sequence and error code.
    pub refused: Vec<(u64, String)>,
    /// Answers (ack or error) that came after the reply timeout.
    pub late_replies: u64,
    /// Paced slots skipped because the window was full.
    pub skipped: u64,
    /// Sends awaiting an answer within the reply timeout, oldest first.
    pub window: VecDeque<(u64, Instant)>,
    /// Sends whose answer is past the reply timeout.
    pub overdue: BTreeMap<u64, Instant>,
}

/// What became of an answered send.
pub enum Answer {
    /// The first answer to this send; `late` if it came after the reply timeout.
    First { late: bool },
    /// Not a send of ours awaiting an answer (a second answer, or a foreign id).
    Unexpected,
}

impl SenderLedger {
    /// Sends awaiting an answer, overdue or not.
    pub fn awaiting(&self) -> usize {
        self.window.len() + self.overdue.len()
    }

    pub fn record_send(&mut self, seq: u64, at: Instant) {
        self.sent = self.sent.max(seq + 1);
        self.window.push_back((seq, at));
    }

    pub fn record_ack(&mut self, seq: u64, now: Instant) -> Answer {
        let (sent_at, late) = if let Some(position) = self.window.iter().position(|(s, _)| *s == seq) {
            (self.window.remove(position).map(|(_, at)| at), false)
        } else {
            (self.overdue.remove(&seq), true)
        };
        let Some(sent_at) = sent_at else {
            return Answer::Unexpected;
        };
        if self.acked.insert(seq) {
            self.acks += 1;
        }
        self.ack_latencies_us.push(micros(now - sent_at));
        if late {
            self.late_replies += 1;
        }
        Answer::First { late }
    }

    /// An error frame answering a `send`: it answers the oldest send awaiting one, as the
    /// gateway answers one connection's frames in order (error frames carry no
    /// `clientMsgId`).
    pub fn record_refusal(&mut self, code: &str) -> Answer {
        // The oldest send awaiting an answer: overdue ones are older than the window's.
        let (seq, late) = if let Some((seq, _)) = self.overdue.pop_first() {
            (seq, true)
        } else if let Some((seq, _)) = self.window.pop_front() {
            (seq, false)
        } else {
            return Answer::Unexpected;
        };
        self.refused.push((seq, code.to_owned()));
        if late {
            self.late_replies += 1;
        }
        Answer::First { late }
    }

    /// Moves sends awaiting an answer longer than `timeout` out of the window; returns how many.
    pub fn expire(&mut self, now: Instant, timeout: std::time::Duration) -> usize {
        let mut moved = 0;
        while let Some(&(seq, at)) = self.window.front() {
            if now.duration_since(at) < timeout {
                break;
            }
            self.window.pop_front();
            self.overdue.insert(seq, at);
            moved += 1;
        }
        moved
    }
}

/// What one receiver got from one sender.
#[derive(Debug, Default)]
pub struct Heard {
    pub seen: Bits,
    pub highest: Option<u64>,
}

/// A receiver's books.
#[derive(Debug, Default)]
pub struct ReceiverLedger {
    /// By sender (client index).
    pub heard: HashMap<usize, Heard>,
    /// First copies of this run's messages.
    pub delivered: u64,
    pub duplicated: u64,
    /// The first few duplicates: sender, sequence, and when (µs on the run's clock).
    pub duplicate_examples: Vec<(usize, u64, u64)>,
    /// First copies whose sequence is below one already received from the same sender.
    pub out_of_order: u64,
    /// This run's messages from a room this client is not in, or its own.
    pub misrouted: u64,
    /// `message` frames that are not this run's.
    pub foreign: u64,
    /// Send → receive of first copies, µs.
    pub latencies_us: Vec<u32>,
    /// Presence frames by event.
    pub presence: BTreeMap<String, u64>,
    /// Any other pushed frame, by type.
    pub other: BTreeMap<String, u64>,
    /// When the last first copy arrived, µs from the start of the run.
    pub last_delivery_us: u64,
}

/// How one delivery counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    First,
    Duplicate,
}

impl ReceiverLedger {
    pub fn record(&mut self, stamp: Stamp, now_us: u64) -> Delivery {
        let heard = self.heard.entry(stamp.sender).or_default();
        if !heard.seen.insert(stamp.seq) {
            self.duplicated += 1;
            if self.duplicate_examples.len() < 10 {
                self.duplicate_examples.push((stamp.sender, stamp.seq, now_us));
            }
            return Delivery::Duplicate;
        }
        if heard.highest.is_some_and(|highest| stamp.seq < highest) {
            self.out_of_order += 1;
        }
        heard.highest = Some(heard.highest.map_or(stamp.seq, |highest| highest.max(stamp.seq)));
        self.delivered += 1;
        self.latencies_us
            .push(u32::try_from(now_us.saturating_sub(stamp.sent_us)).unwrap_or(u32::MAX));
        self.last_delivery_us = self.last_delivery_us.max(now_us);
        Delivery::First
    }

    pub fn has(&self, sender: usize, seq: u64) -> bool {
        self.heard.get(&sender).is_some_and(|heard| heard.seen.contains(seq))
    }
}

pub fn micros(duration: std::time::Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_stamp_reads_back_from_its_text_and_only_in_its_run() {
        let stamp = Stamp {
            sender: 12,
            seq: 3456,
            sent_us: 789,
        };
        assert_eq!(Stamp::read(&stamp.text("k3x9q2", 0), "k3x9q2"), Some(stamp));
        let padded = stamp.text("k3x9q2", 20);
        assert_eq!(padded.len(), stamp.text("k3x9q2", 0).len() + 20);
        assert_eq!(Stamp::read(&padded, "k3x9q2"), Some(stamp));
        assert_eq!(Stamp::read(&stamp.text("other1", 0), "k3x9q2"), None);
        assert_eq!(Stamp::read("hello", "k3x9q2"), None);
        assert_eq!(Stamp::read("load:k3x9q2:1:2", "k3x9q2"), None);
    }

    #[test]
    fn a_receiver_counts_duplicates_and_disorder_per_sender() {
        let mut books = ReceiverLedger::default();
        let at = |sender, seq| Stamp {
            sender,
            seq,
            sent_us: 0,
        };
        assert_eq!(books.record(at(1, 0), 10), Delivery::First);
        assert_eq!(books.record(at(1, 2), 10), Delivery::First);
        assert_eq!(books.record(at(1, 1), 10), Delivery::First);
        assert_eq!(books.record(at(1, 2), 10), Delivery::Duplicate);
        assert_eq!(books.record(at(2, 0), 10), Delivery::First);
        assert_eq!((books.delivered, books.duplicated, books.out_of_order), (4, 1, 1));
        assert!(books.has(1, 1) && !books.has(2, 1));
    }

    #[test]
    fn a_sender_matches_acks_by_id_and_refusals_in_order() {
        let start = Instant::now();
        let mut books = SenderLedger::default();
        for seq in 0..4 {
            books.record_send(seq, start);
        }
        assert!(matches!(books.record_ack(1, start), Answer::First { late: false }));
        assert!(matches!(books.record_ack(1, start), Answer::Unexpected));
        assert!(matches!(books.record_refusal("unavailable"), Answer::First { .. }));
        assert_eq!(books.refused, vec![(0, "unavailable".to_owned())]);
        assert_eq!(
            books.expire(start + Duration::from_secs(31), Duration::from_secs(30)),
            2
        );
        assert!(matches!(books.record_ack(3, start), Answer::First { late: true }));
        assert_eq!((books.acks, books.late_replies, books.awaiting()), (2, 1, 1));
    }

    #[test]
    fn a_refusal_answers_the_oldest_send_even_when_it_is_overdue() {
        let start = Instant::now();
        let mut books = SenderLedger::default();
        books.record_send(0, start);
        books.expire(start + Duration::from_secs(31), Duration::from_secs(30));
        books.record_send(1, start + Duration::from_secs(31));
        assert!(matches!(
            books.record_refusal("unavailable"),
            Answer::First { late: true }
        ));
        assert_eq!(books.refused, vec![(0, "unavailable".to_owned())]);
        assert!(matches!(books.record_ack(1, start), Answer::First { late: false }));
    }
}
