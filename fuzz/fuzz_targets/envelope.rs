//! A Kafka record value, read with `Envelope::decode` as kafka-fanout and kafka-archive
//! read every record (from roomcast or from any other service).
//!
//! Invariants: nothing panics; an envelope that decodes has version 1 and a frame that is a
//! JSON object with a string `type`; encoded again (as roomcast's own producers write it),
//! it decodes to the same envelope, whose encoding does not change any more.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roomcast_core::envelope::{Envelope, ENVELOPE_VERSION};
use roomcast_fuzz::is_server_frame;

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::decode(data) else {
        return;
    };
    assert_eq!(envelope.v, ENVELOPE_VERSION);
    assert!(
        is_server_frame(envelope.frame.get().as_bytes()),
        "{}",
        envelope.frame.get()
    );
    let _ = envelope.target.record_key();

    let json = envelope.to_json();
    let again = match Envelope::decode(json.as_bytes()) {
        Ok(again) => again,
        Err(error) => panic!("a re-encoded envelope does not decode ({error}): {json}"),
    };
    assert_eq!(again.v, envelope.v);
    assert_eq!(again.id, envelope.id);
    assert_eq!(again.target, envelope.target);
    assert_eq!(again.except, envelope.except);
    assert_eq!(again.max_audience, envelope.max_audience);
    assert_eq!(
        again.frame.get(),
        envelope.frame.get(),
        "the frame is kept byte for byte"
    );
    assert_eq!(again.to_json(), json, "encoding is stable");
});
