//! End to end through the local gateway, with real WebSocket clients (a Rust client and
//! `wscat`) and the official AWS SDK on `@connections`, in both modes: embedded backends,
//! and moto + tansu.

use std::process::Stdio;
use std::time::Duration;

use futures::SinkExt;
use roomcast_core::RoomName;
use roomcast_local::Running;
use roomcast_tests::each_backend;
use roomcast_tests::gateways::Mode;
use roomcast_tests::gateways::{gateway, gateway_with};
use roomcast_tests::ws_client::Client;
use roomcast_tests::ws_client::FRAME_WAIT;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

each_backend!(
    embedded => gateway(Mode::Embedded).await,
    real => gateway(Mode::Real).await;
    [
        join_send_leave_with_ack_and_sender_exclusion,
    the_broadcast_room_reaches_each_room_member_exactly_once,
    a_taken_nickname_is_refused_at_the_handshake_with_409,
    malformed_frames_get_error_frames_on_a_connection_that_stays_usable,
    fifty_quick_messages_arrive_complete_and_in_order,
    a_client_dropped_without_a_close_frame_is_cleaned_up,
    connections_api_works_with_the_aws_sdk,
    a_message_over_128_kb_closes_the_connection_with_1009,
    shutdown_closes_connections_and_runs_disconnect,
    wscat_chats_with_a_rust_client,
    ]
);

async fn join_send_leave_with_ack_and_sender_exclusion(gateway: Running) {
    let mut alice = Client::connect(&gateway, "alice").await;
    let mut bob = Client::connect(&gateway, "bob").await;
    alice.join("general").await;
    bob.join("general").await;

    let ack = alice
        .ask(json!({"action": "send", "room": "general", "text": "hi bob", "clientMsgId": "a1"}))
        .await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["clientMsgId"], "a1");
    let message = bob.next_non_presence().await;
    assert_eq!(message["type"], "message");
    assert_eq!(message["text"], "hi bob");
    assert_eq!(message["from"]["nick"], "alice");
    assert_eq!(message["id"], ack["id"]);

    bob.ask(json!({"action": "send", "room": "general", "text": "hi alice"}))
        .await;
    // Alice's own message, had it been echoed, would come before bob's (same room, same order).
    let next = alice.next_non_presence().await;
    assert_eq!(next["text"], "hi alice", "alice got {next}");

    assert_eq!(
        bob.ask(json!({"action": "leave", "room": "general"})).await["type"],
        "left"
    );
    loop {
        let frame = alice.next().await;
        if frame["type"] == "presence" && frame["event"] == "left" {
            assert_eq!(frame["user"]["nick"], "bob");
            break;
        }
    }
    gateway.shutdown().await;
}

async fn the_broadcast_room_reaches_each_room_member_exactly_once(gateway: Running) {
    let mut boss = Client::connect(&gateway, "boss").await;
    let mut a = Client::connect(&gateway, "a").await;
    let mut b = Client::connect(&gateway, "b").await;
    boss.join("admin").await;
    a.join("general").await;
    a.join("random").await;
    a.join("admin").await;
    b.join("random").await;
    for text in ["maintenance at noon", "end of notices"] {
        assert_eq!(
            boss.ask(json!({"action": "send", "room": "admin", "text": text})).await["type"],
            "ack"
        );
    }
    // Per connection, frames keep their order: a duplicate would show up before the second.
    for client in [&mut a, &mut b] {
        assert_eq!(
            client.next_non_presence().await["text"],
            "maintenance at noon",
            "{}",
            client.name
        );
        assert_eq!(
            client.next_non_presence().await["text"],
            "end of notices",
            "{}",
            client.name
        );
    }
    gateway.shutdown().await;
}

async fn a_taken_nickname_is_refused_at_the_handshake_with_409(gateway: Running) {
    let _alice = Client::connect(&gateway, "alice").await;
    for (name, status) in [("alice", 409), ("bad%20name", 400), (&"n".repeat(40)[..], 400)] {
        let url = format!("{}/?name={name}", gateway.ws_url());
        match tokio_tungstenite::connect_async(url).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), status, "{name}"),
            other => panic!("{name}: expected HTTP {status}, got {other:?}"),
        }
    }
    gateway.shutdown().await;
}

async fn malformed_frames_get_error_frames_on_a_connection_that_stays_usable(gateway: Running) {
    let mut alice = Client::connect(&gateway, "alice").await;
    for (frame, code) in [
        ("not json".to_owned(), "bad_request"),
        (r#"{"action":"dance"}"#.to_owned(), "unknown_action"),
        (r#"{"action":"join"}"#.to_owned(), "bad_request"),
        (r#"{"action":"join","room":"nowhere"}"#.to_owned(), "not_found"),
        (
            r#"{"action":"send","room":"general","text":"not joined"}"#.to_owned(),
            "not_member",
        ),
        (
            json!({"action": "send", "room": "general", "text": "x".repeat(5000)}).to_string(),
            "too_large",
        ),
    ] {
        alice.send_text(frame.clone()).await;
        let reply = alice.next().await;
        assert_eq!(
            (reply["type"].as_str(), reply["code"].as_str()),
            (Some("error"), Some(code)),
            "{frame:.60}"
        );
    }
    alice.socket.send(Message::binary(vec![0xff, 0x00])).await.unwrap();
    assert_eq!(alice.next().await["code"], "bad_request");
    assert_eq!(alice.ask(json!({"action": "ping"})).await, json!({"type": "pong"}));
    gateway.shutdown().await;
}

async fn fifty_quick_messages_arrive_complete_and_in_order(gateway: Running) {
    let mut alice = Client::connect(&gateway, "alice").await;
    let mut bob = Client::connect(&gateway, "bob").await;
    alice.join("general").await;
    bob.join("general").await;
    let texts: Vec<String> = (1..=50).map(|n| format!("quick {n}")).collect();
    for text in &texts {
        alice
            .send(json!({"action": "send", "room": "general", "text": text, "clientMsgId": text}))
            .await;
    }
    for text in &texts {
        let ack = alice.next_non_presence().await;
        assert_eq!(
            (ack["type"].as_str(), ack["clientMsgId"].as_str()),
            (Some("ack"), Some(text.as_str()))
        );
    }
    let mut received = Vec::new();
    while received.len() < texts.len() {
        received.push(bob.next_non_presence().await["text"].as_str().unwrap().to_owned());
    }
    assert_eq!(received, texts);
    gateway.shutdown().await;
}

async fn a_client_dropped_without_a_close_frame_is_cleaned_up(gateway: Running) {
    let mut carol = Client::connect(&gateway, "carol").await;
    carol.join("general").await;
    // Gone without a close frame: the TCP connection just ends.
    drop(carol);
    let store = gateway.store();
    let deadline = tokio::time::Instant::now() + FRAME_WAIT;
    loop {
        let members = store.members(&RoomName::trusted("general")).await.unwrap();
        if members.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "carol still in general: {members:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Her nickname is free again.
    let _carol = Client::connect(&gateway, "carol").await;
    gateway.shutdown().await;
}

/// The official SDK's management API client, pointed at the gateway's `@connections`.
fn connections_sdk(gateway: &Running) -> aws_sdk_apigatewaymanagement::Client {
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
        .region(aws_sdk_apigatewaymanagement::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_apigatewaymanagement::config::Credentials::new(
            "k", "s", None, None, "test",
        ))
        .endpoint_url(gateway.connections_endpoint())
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

async fn connections_api_works_with_the_aws_sdk(gateway: Running) {
    let mut alice = Client::connect(&gateway, "alice").await;
    let id = alice.connection_id().await;
    let sdk = connections_sdk(&gateway);

    sdk.post_to_connection()
        .connection_id(&id)
        .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(
            r#"{"type":"notice","text":"from a service"}"#,
        ))
        .send()
        .await
        .expect("post to a live connection");
    assert_eq!(alice.next().await, json!({"type": "notice", "text": "from a service"}));

    let info = sdk
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("get a live connection");
    assert!(
        info.connected_at().is_some() && info.last_active_at().is_some(),
        "{info:?}"
    );
    assert_eq!(
        info.identity().and_then(|identity| identity.source_ip()),
        Some("127.0.0.1")
    );
    assert!(info.identity().and_then(|identity| identity.user_agent()).is_some());

    let unknown = sdk
        .post_to_connection()
        .connection_id("AAAAAAAAAAAAAAA=")
        .data(b"x".to_vec().into())
        .send()
        .await;
    let error = unknown.expect_err("an unknown id is gone");
    assert!(
        error.as_service_error().is_some_and(|e| e.is_gone_exception()),
        "{error:?}"
    );

    let too_big = sdk
        .post_to_connection()
        .connection_id(&id)
        .data(vec![b'x'; 129 * 1024].into())
        .send()
        .await;
    assert!(too_big
        .expect_err("over 128 KB")
        .as_service_error()
        .is_some_and(|e| e.is_payload_too_large_exception()));

    sdk.delete_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("delete a live connection");
    alice.close_code().await;
    let gone = sdk
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect_err("closed");
    assert!(gone.as_service_error().is_some_and(|e| e.is_gone_exception()));
    gateway.shutdown().await;
}

async fn a_message_over_128_kb_closes_the_connection_with_1009(gateway: Running) {
    let mut alice = Client::connect(&gateway, "alice").await;
    alice.join("general").await;
    alice.send_text("x".repeat(129 * 1024)).await;
    assert_eq!(alice.close_code().await, CloseCode::Size);
    // The connection is gone: its membership too.
    let store = gateway.store();
    let deadline = tokio::time::Instant::now() + FRAME_WAIT;
    while !store.members(&RoomName::trusted("general")).await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "$disconnect did not run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gateway.shutdown().await;
}

async fn shutdown_closes_connections_and_runs_disconnect(gateway: Running) {
    let mut alice = Client::connect(&gateway, "alice").await;
    alice.join("general").await;
    let store = gateway.store();
    let closing = tokio::spawn(async move {
        let code = alice.close_code().await;
        (alice, code)
    });
    gateway.shutdown().await;
    let (_alice, code) = closing.await.unwrap();
    assert_eq!(code, CloseCode::Away);
    assert!(
        store.members(&RoomName::trusted("general")).await.unwrap().is_empty(),
        "$disconnect ran"
    );
}

/// `wscat`, as a user runs it, chatting with a Rust client.
async fn wscat_chats_with_a_rust_client(gateway: Running) {
    let url = format!("{}/?name=wally", gateway.ws_url());
    let mut wscat = tokio::process::Command::new("wscat")
        .args(["-c", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("wscat on PATH (npm install -g wscat)");
    let mut stdin = wscat.stdin.take().unwrap();
    let mut lines = BufReader::new(wscat.stdout.take().unwrap()).lines();
    // The next frame of type `wanted` that wscat prints (`< {...}`, maybe after its prompt),
    // or None if it printed none within `wait`.
    let mut read_until = async |wanted: &str, wait: Duration| -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let line = tokio::time::timeout_at(deadline, lines.next_line())
                .await
                .ok()?
                .expect("wscat output")
                .unwrap_or_else(|| panic!("wscat exited before {wanted}"));
            let Some(start) = line.find('{') else { continue };
            if let Ok(frame) = serde_json::from_str::<Value>(&line[start..]) {
                if frame["type"] == wanted {
                    return Some(frame);
                }
            }
        }
    };

    // wscat drops what is typed before its socket is open, as a person's early typing
    // would be: repeat the (idempotent) join until it is answered.
    let deadline = tokio::time::Instant::now() + FRAME_WAIT;
    let joined = loop {
        assert!(tokio::time::Instant::now() < deadline, "wscat never joined");
        stdin
            .write_all(b"{\"action\":\"join\",\"room\":\"general\"}\n")
            .await
            .unwrap();
        if let Some(joined) = read_until("joined", Duration::from_millis(500)).await {
            break joined;
        }
    };
    assert_eq!(joined["room"], "general");

    let mut bob = Client::connect(&gateway, "bob").await;
    bob.join("general").await;
    bob.ask(json!({"action": "send", "room": "general", "text": "hello wally"}))
        .await;
    assert_eq!(
        read_until("message", FRAME_WAIT).await.expect("bob's message")["text"],
        "hello wally"
    );

    stdin
        .write_all(b"{\"action\":\"send\",\"room\":\"general\",\"text\":\"hello bob\"}\n")
        .await
        .unwrap();
    assert_eq!(
        read_until("ack", FRAME_WAIT).await.expect("wscat's ack")["room"],
        "general"
    );
    assert_eq!(bob.next_non_presence().await["text"], "hello bob");
    drop(stdin);
    let _ = wscat.kill().await;
    gateway.shutdown().await;
}

/// API Gateway's idle timeout and connection lifetime, shortened to a second each: the
/// connection is closed with 1001 and `$disconnect` runs. (The quotas are the gateway's
/// own: the same on either backend.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_overlong_connections_are_closed_with_1001() {
    for quota in ["--idle-timeout-secs", "--max-connection-secs"] {
        let gateway = gateway_with(Mode::Embedded, &[quota, "1"]).await;
        let mut alice = Client::connect(&gateway, "alice").await;
        alice.join("general").await;
        if quota == "--max-connection-secs" {
            // Busy, not idle: only the lifetime can end it. Stop once the server has closed.
            let deadline = tokio::time::Instant::now() + FRAME_WAIT;
            while tokio::time::Instant::now() < deadline {
                let ping = Message::text(json!({"action": "ping"}).to_string());
                if alice.socket.send(ping).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        assert_eq!(alice.close_code().await, CloseCode::Away, "{quota}");
        let store = gateway.store();
        let deadline = tokio::time::Instant::now() + FRAME_WAIT;
        while !store.members(&RoomName::trusted("general")).await.unwrap().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{quota}: $disconnect did not run"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        gateway.shutdown().await;
    }
}

/// A client frame much larger than the gateway's read buffer (up to the 32 KB frame quota)
/// is read whole: a `send` of 30 KB of text is answered (`too_large`: over the text limit,
/// not the frame quota), and the connection goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_near_the_frame_quota_is_read_whole() {
    let gateway = gateway(Mode::Embedded).await;
    let mut alice = Client::connect(&gateway, "alice").await;
    alice.join("general").await;
    let text = "y".repeat(30 * 1024);
    let reply = alice
        .ask(json!({"action": "send", "room": "general", "text": text}))
        .await;
    assert_eq!(reply["code"], "too_large", "{reply}");
    assert_eq!(alice.ask(json!({"action": "ping"})).await["type"], "pong");
    gateway.shutdown().await;
}

/// `--connections-delay-ms`: every `@connections` request is answered after the delay (a
/// round trip as in AWS), and still works with the AWS SDK and fan-out alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_answer_after_the_configured_delay() {
    let gateway = gateway_with(Mode::Embedded, &["--connections-delay-ms", "50"]).await;
    let mut alice = Client::connect(&gateway, "alice").await;
    let mut bob = Client::connect(&gateway, "bob").await;
    alice.join("general").await;
    bob.join("general").await;
    let id = bob.connection_id().await;
    let sdk = connections_sdk(&gateway);
    let started = std::time::Instant::now();
    sdk.post_to_connection()
        .connection_id(&id)
        .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(
            r#"{"type":"notice"}"#,
        ))
        .send()
        .await
        .expect("post to a live connection");
    // A lower bound only: the answer cannot come before the delay, however loaded the machine.
    assert!(
        started.elapsed() >= Duration::from_millis(50),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(bob.next_non_presence().await["type"], "notice");

    alice
        .ask_for(
            json!({"action": "send", "room": "general", "text": "slow but sure"}),
            "ack",
        )
        .await;
    assert_eq!(bob.wait_for("message").await["text"], "slow but sure");
    gateway.shutdown().await;
}
