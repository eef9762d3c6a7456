//! The report's books and figures, checked on a made-up run: every message accounted for at each member of its room, and the percentiles.

use super::*;
use crate::ledger::{ReceiverLedger, SenderLedger, Stamp};
use std::time::Instant;

fn plan(clients: usize, rooms: usize, senders: usize) -> Plan {
    Plan {
        clients,
        rooms,
        senders,
        rate: Some(10.0),
        burst: false,
        duration_s: Some(1.0),
        messages: None,
        window: 100,
        text_bytes: 0,
        shared_user: false,
        reply_timeout_s: 30.0,
        drain_s: 30.0,
        drain_max_s: 600.0,
    }
}

fn outcome(index: usize, sender: Option<SenderLedger>, receiver: ReceiverLedger) -> Outcome {
    Outcome {
        index,
        sender,
        receiver,
        dropped: None,
    }
}

#[test]
fn every_message_is_accounted_for_each_member_of_its_room() {
    // Room 0: clients 0 (sender) and 2; room 1: clients 1 (sender) and 3.
    let now = Instant::now();
    let mut zero = SenderLedger::default();
    for seq in 0..3 {
        zero.record_send(seq, now);
    }
    let _ = zero.record_ack(0, now);
    let _ = zero.record_ack(1, now);
    let _ = zero.record_refusal("unavailable"); // seq 2
    let mut one = SenderLedger::default();
    one.record_send(0, now);
    one.record_send(1, now);
    let _ = one.record_ack(1, now); // seq 0 unanswered
    let stamp = |sender, seq| Stamp {
        sender,
        seq,
        sent_us: 0,
    };
    let mut two = ReceiverLedger::default();
    two.record(stamp(0, 0), 1000); // seq 1 lost
    let mut three = ReceiverLedger::default();
    three.record(stamp(1, 1), 2000);
    three.record(stamp(1, 1), 2000);
    let setup = Setup {
        connected: 4,
        joined: 4,
        rooms_created: 2,
        connect_seconds: 1.0,
        members: vec![vec![0, 2], vec![1, 3]],
        ..Setup::default()
    };
    let report = Report::build(
        Header {
            run: "r".to_owned(),
            url: "ws://x".to_owned(),
            started_unix_ms: 0,
        },
        plan(4, 2, 2),
        setup,
        Course {
            send_seconds: 1.0,
            drained: true,
            ..Course::default()
        },
        vec![
            outcome(0, Some(zero), ReceiverLedger::default()),
            outcome(1, Some(one), ReceiverLedger::default()),
            outcome(2, None, two),
            outcome(3, None, three),
        ],
        None,
    );
    let (m, d) = (&report.messages, &report.deliveries);
    assert_eq!((m.sent, m.acknowledged, m.refused, m.unanswered), (5, 3, 1, 1));
    assert_eq!(
        (d.expected, d.delivered, d.lost, d.lost_messages, d.duplicated),
        (3, 2, 1, 1, 1)
    );
    assert_eq!(
        d.lost_examples,
        vec!["sender 0 seq 1: missed by 1 of 1, e.g. client 2".to_owned()]
    );
    assert!(!report.passed);
    assert_eq!(report.failures.len(), 3, "{:?}", report.failures);
    assert_eq!(report.latency_ms.send_to_receive.max, 2.0);
}

#[test]
fn percentiles_are_nearest_rank_in_milliseconds() {
    let p = Percentiles::of((1..=100).map(|ms| ms * 1000).collect());
    assert_eq!((p.count, p.p50, p.p90, p.p99, p.max), (100, 50.0, 90.0, 99.0, 100.0));
}
