//! A client's WebSocket text frame, as ws-message (and through it the local gateway) hands
//! it to `roomcast_core::commands::handle_frame`: parsed with the default limits, then run
//! for a registered connection against in-memory backends that hold a room, two members
//! and a kept message, so that valid frames reach the commands' `apply`.
//!
//! Invariants: nothing panics; a frame that parses names its command in `action`, within
//! the frame limit; a frame that does not parse is refused with a code that needs no state
//! (not `not_member`, `not_found`, `rate_limited`, `unavailable`), `unknown_action` exactly
//! when the action is not one of protocol v1's, `too_large` over the frame limit, and
//! changes nothing; every answer is a JSON object with a string `type` that reads back as
//! the same frame, and an error's `code` is one of protocol v1's; every envelope a command
//! publishes is one fan-out can decode.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use roomcast_core::clock::now_ms;
use roomcast_core::commands::{handle_frame, Command, Frame, ParseError, ACTIONS};
use roomcast_core::history::{Conversation, StoredMessage};
use roomcast_core::memory::{DirectoryFiles, MemoryLog};
use roomcast_core::{
    Config, ConnectionId, Envelope, ErrorCode, MessageId, Nick, Ports, RoomName, ServerFrame, User, UserId,
};
use roomcast_fuzz::runtime;
use serde_json::Value;

/// The id of the message kept in `general` (docs/protocol.md's example id): seeds edit, delete,
/// reply to and page around it.
const KEPT: &str = "01JD6Q0G7R3W6Y8ZB1V5N2K4XH";

/// The `code`s of the error frames of protocol v1, as docs/protocol.md lists them.
const PROTOCOL_CODES: &[&str] = &[
    "bad_request",
    "unknown_action",
    "not_member",
    "forbidden",
    "not_found",
    "too_large",
    "conflict",
    "rate_limited",
    "unavailable",
];

struct Backends {
    /// The file store is never written: no upload of the fuzzer's is ever PUT, so `files`
    /// are `not_found`.
    ports: Ports,
    /// The ports' publisher, read back.
    log: Arc<MemoryLog>,
}

/// `general` (created by alice) and the broadcast room; alice (`c-alice`, signed in, the
/// caller) and bob (`c-bob`) are online and members of `general`, where alice's message
/// `KEPT` is kept. Rooms are made and joined with frames, as clients do.
async fn backends(config: &Config, now: i64) -> Backends {
    let log = Arc::new(MemoryLog::new("roomcast-events", 2, 10_000));
    let files = DirectoryFiles::new(
        std::env::temp_dir().join(format!("roomcast-fuzz-files-{}", std::process::id())),
        "http://127.0.0.1:9/files",
        [3; 32],
    )
    .expect("a scratch directory");
    let backends = Backends {
        ports: roomcast_core::memory::ports(log.clone(), files),
        log,
    };
    let user = |id: &str, nick: &str| User {
        user_id: UserId::new(id),
        nick: Nick::trusted(nick),
    };
    let alice = user("u-alice", "alice");
    for (id, user, frames) in [
        (
            "c-alice",
            &alice,
            &[
                r#"{"action":"createRoom","room":"general"}"#,
                r#"{"action":"join","room":"general"}"#,
            ][..],
        ),
        (
            "c-bob",
            &user("u-bob", "bob"),
            &[r#"{"action":"join","room":"general"}"#][..],
        ),
    ] {
        let connection = roomcast_core::model::Connection {
            id: ConnectionId::new(id),
            user: user.clone(),
            roles: Vec::new(),
            authenticated: true,
            connected_at_ms: now,
            expires_at: now / 1000 + config.connection_ttl.as_secs() as i64,
        };
        backends
            .ports
            .store
            .add_connection(&connection)
            .await
            .expect("a free nickname");
        for body in frames {
            let reply = handle_frame(&backends.frame(config, &connection.id, now), body).await;
            assert!(!matches!(reply, ServerFrame::Error { .. }), "{body}: {reply:?}");
        }
    }
    let id = MessageId::parse(KEPT).expect("a ULID");
    backends
        .ports
        .history
        .keep(&StoredMessage {
            ts: id.timestamp_ms(),
            id,
            conversation: Conversation::Room(RoomName::trusted("general")),
            from: alice,
            to: None,
            text: Some("hi all".into()),
            reply_to: None,
            edited_at: None,
            edit_id: None,
            deleted: false,
            expires_at: i64::MAX,
            files: vec![],
        })
        .await
        .expect("the memory history keeps");
    backends
}

impl Backends {
    fn frame<'a>(&'a self, config: &'a Config, connection_id: &'a ConnectionId, now: i64) -> Frame<'a> {
        Frame {
            ports: &self.ports,
            config,
            connection_id,
            source_ip: None,
            now_ms: now,
        }
    }

    /// Where each partition of the log ends now.
    fn ends(&self) -> Vec<i64> {
        (0..self.log.partition_count())
            .map(|partition| self.log.end_offset(partition))
            .collect()
    }

    /// The values appended to the log since `ends`.
    fn since(&self, ends: &[i64]) -> Vec<Vec<u8>> {
        ends.iter()
            .enumerate()
            .flat_map(|(partition, end)| self.log.read(partition, *end, usize::MAX))
            .map(|record| record.value)
            .collect()
    }
}

fuzz_target!(|data: &[u8]| {
    // API Gateway delivers text frames as UTF-8 strings (binary ones are refused before).
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let config = Config::default();

    let parsed = Command::parse(body, &config);
    let refused = match &parsed {
        Ok(command) => {
            assert!(body.len() <= config.limits.frame_bytes, "a frame over the limit parsed");
            let frame: Value = serde_json::from_str(body).expect("a frame that parsed is JSON");
            assert_eq!(
                frame["action"].as_str(),
                Some(command.action()),
                "the command is the frame's action"
            );
            assert!(ACTIONS.contains(&command.action()));
            None
        }
        Err(ParseError { action, error }) => {
            // Parsing reads no state: it cannot know of members, messages, rate or backends.
            assert!(
                !matches!(
                    error.code,
                    ErrorCode::NotMember
                        | ErrorCode::NotFound
                        | ErrorCode::RateLimited
                        | ErrorCode::Unavailable
                        | ErrorCode::Unauthorized
                ),
                "a parse error that needs state: {error:?}"
            );
            let unknown = action.as_deref().is_some_and(|action| !ACTIONS.contains(&action));
            assert_eq!(
                error.code == ErrorCode::UnknownAction,
                unknown,
                "unknown_action exactly for an action that is not served: {action:?} {error:?}"
            );
            if body.len() > config.limits.frame_bytes {
                assert_eq!(error.code, ErrorCode::TooLarge);
            }
            Some(error.code)
        }
    };

    let now = now_ms();
    let (reply, published) = runtime().block_on(async {
        let backends = backends(&config, now).await;
        let ends = backends.ends();
        let reply = handle_frame(&backends.frame(&config, &ConnectionId::new("c-alice"), now), body).await;
        let published = backends.since(&ends);
        (reply, published)
    });

    if let Some(code) = refused {
        assert!(
            matches!(&reply, ServerFrame::Error { code: answered, .. } if *answered == code),
            "a frame that does not parse is answered with its parse error: {reply:?}"
        );
        assert!(published.is_empty(), "a bad frame reached the log");
    }
    let json = reply.to_json();
    let answer: Value = serde_json::from_str(&json).expect("the answer is JSON");
    assert!(answer["type"].is_string(), "the answer has a string type: {json}");
    if answer["type"] == "error" {
        // The codes of protocol v1 (docs/protocol.md): `unauthorized` is the HTTP API's only.
        let code = answer["code"].as_str().unwrap_or_default();
        assert!(PROTOCOL_CODES.contains(&code), "not a protocol v1 error code: {json}");
    }
    let back: ServerFrame = serde_json::from_str(&json).expect("a client can read the answer back");
    assert_eq!(back, reply, "the answer reads back as itself");

    for value in published {
        if let Err(error) = Envelope::decode(&value) {
            panic!(
                "fan-out cannot decode what a command published ({error}): {}",
                String::from_utf8_lossy(&value)
            );
        }
    }
});
