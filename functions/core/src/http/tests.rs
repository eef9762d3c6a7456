//! The HTTP API's routes, statuses and `publish` checks, on the in-memory ports.

use std::sync::Arc;

use super::*;
use crate::commands::chat_frame_types;
use crate::envelope::{Envelope, Target};
use crate::memory::MemoryLog;
use crate::model::{Caller, Nick, User, UserId};
use crate::ports::Ports;

/// In-memory ports publishing to `log`, with a file store in a directory of its own
/// under the system's temporary directory.
fn test_ports(log: &Arc<MemoryLog>) -> Ports {
    let dir = std::env::temp_dir().join(format!("roomcast-http-{}", ulid::Ulid::new()));
    crate::memory::ports(
        log.clone(),
        crate::memory::DirectoryFiles::new(dir, "http://127.0.0.1/files", [1; 32]).unwrap(),
    )
}

/// A service calling over HTTP with `roles`.
fn service(roles: &[&str]) -> Caller {
    Caller {
        user: User {
            user_id: UserId::new("svc"),
            nick: Nick::trusted("svc"),
        },
        roles: roles.iter().map(|role| (*role).to_owned()).collect(),
        connection: None,
        expires_at: None,
        source_ip: None,
    }
}

fn request<'a>(method: &'a str, path: &'a str, body: Option<&'a str>) -> Request<'a> {
    Request {
        method,
        path,
        query: Vec::new(),
        body,
    }
}

fn operation(method: &str, path: &str, body: Option<&str>) -> Result<(&'static str, u16), u16> {
    match route(&request(method, path, body), &Config::default()) {
        Ok(Operation::Command(command, status)) => Ok((command.action(), status)),
        Ok(Operation::Publish(_)) => Ok(("publish", 202)),
        Err(refused) => Err(refused.status),
    }
}

#[test]
fn every_route_of_the_table_is_its_command() {
    let room = Some(r#"{"room":"general"}"#);
    let text = Some(r#"{"text":"hi"}"#);
    assert_eq!(operation("GET", "/api/rooms", None), Ok(("rooms", 200)));
    assert_eq!(operation("POST", "/api/rooms", room), Ok(("createRoom", 201)));
    assert_eq!(
        operation("PUT", "/api/rooms/general/members/me", None),
        Ok(("join", 200))
    );
    assert_eq!(
        operation("DELETE", "/api/rooms/general/members/me", None),
        Ok(("leave", 200))
    );
    assert_eq!(
        operation("GET", "/api/rooms/general/messages", None),
        Ok(("history", 200))
    );
    assert_eq!(
        operation("POST", "/api/rooms/general/messages", text),
        Ok(("send", 202))
    );
    assert_eq!(operation("GET", "/api/rooms/general/who", None), Ok(("who", 200)));
    let id = "1000000000000000000000000A";
    let message = format!("/api/rooms/general/messages/{id}");
    assert_eq!(operation("PATCH", &message, text), Ok(("edit", 200)));
    assert_eq!(operation("DELETE", &message, None), Ok(("delete", 200)));
    assert_eq!(operation("GET", "/api/conversations", None), Ok(("conversations", 200)));
    assert_eq!(
        operation("GET", "/api/users/u%3A1/messages", None),
        Ok(("history", 200))
    );
    assert_eq!(operation("POST", "/api/users/u%3A1/messages", text), Ok(("dm", 202)));
    let direct = format!("/api/users/u%3A1/messages/{id}");
    assert_eq!(operation("PATCH", &direct, text), Ok(("edit", 200)));
    assert_eq!(operation("DELETE", &direct, None), Ok(("delete", 200)));
    // The path names the recipient: a body's `to` cannot add a second one.
    let to = Some(r#"{"text":"hi","to":"mallory"}"#);
    assert_eq!(operation("POST", "/api/users/u1/messages", to), Ok(("dm", 202)));
    assert_eq!(operation("PATCH", "/api/rooms/general/messages/nope", text), Err(400));
    let publish = Some(r#"{"target":{"user":"u1"},"frame":{"type":"notice"}}"#);
    assert_eq!(operation("POST", "/api/publish", publish), Ok(("publish", 202)));
}

#[test]
fn bad_requests_get_their_status() {
    assert_eq!(operation("GET", "/api/nothing", None), Err(404));
    assert_eq!(operation("PATCH", "/api/rooms", None), Err(404));
    assert_eq!(operation("POST", "/api/rooms", Some("not json")), Err(400));
    assert_eq!(operation("POST", "/api/rooms", Some("[1]")), Err(400));
    assert_eq!(operation("POST", "/api/rooms", None), Err(400));
    assert_eq!(
        operation("POST", "/api/rooms/general/messages", Some(r#"{"text":""}"#)),
        Err(400)
    );
    let huge = format!(r#"{{"text":"{}"}}"#, "x".repeat(40 * 1024));
    assert_eq!(operation("POST", "/api/rooms/general/messages", Some(&huge)), Err(413));
    let long = format!(r#"{{"text":"{}"}}"#, "x".repeat(5000));
    assert_eq!(operation("POST", "/api/rooms/general/messages", Some(&long)), Err(413));
    assert_eq!(operation("PUT", "/api/rooms/bad%20name/members/me", None), Err(400));
    assert_eq!(
        operation(
            "POST",
            "/api/publish",
            Some(r#"{"target":{"room":"a","user":"b"},"frame":{"type":"x"}}"#)
        ),
        Err(400)
    );
    assert_eq!(
        operation(
            "POST",
            "/api/publish",
            Some(r#"{"target":{"all":true},"frame":"text"}"#)
        ),
        Err(400)
    );
}

#[test]
fn the_path_names_the_room_and_the_query_pages() {
    let body = Some(r#"{"room":"elsewhere","text":"hi"}"#);
    let Ok(Operation::Command(Command::SendToRoom(send), _)) = route(
        &request("POST", "/api/rooms/general/messages", body),
        &Config::default(),
    ) else {
        panic!("a send");
    };
    assert_eq!(send.room.as_str(), "general");
    let mut history = request("GET", "/api/rooms/general/messages", None);
    history.query = vec![
        ("after".into(), "01HZY3J5Q6V9W8X7Y6Z5A4B3C2".into()),
        ("limit".into(), "10".into()),
        ("room".into(), "ignored".into()),
    ];
    let Ok(Operation::Command(Command::ReadHistory(history), _)) = route(&history, &Config::default()) else {
        panic!("a history page");
    };
    assert_eq!(history.limit, 10);
    let mut bad = request("GET", "/api/rooms/general/messages", None);
    bad.query = vec![("limit".into(), "ten".into())];
    assert_eq!(route(&bad, &Config::default()).map(|_| ()).unwrap_err().status, 400);
}

#[tokio::test]
async fn publish_needs_the_service_or_admin_role() {
    let log = Arc::new(MemoryLog::new("t", 1, 100));
    let ports = test_ports(&log);
    let config = Config::default();
    let body = r#"{"target":{"user":"u1"},"frame":{"type":"notice","text":"hello"}}"#;
    for (roles, status) in [
        (&[][..], 403),
        (&["reader"][..], 403),
        (&["service"][..], 202),
        (&["admin"][..], 202),
    ] {
        let caller = service(roles);
        let ctx = Context {
            ports: &ports,
            config: &config,
            caller: &caller,
            now_ms: 0,
        };
        let response = handle(&ctx, &request("POST", "/api/publish", Some(body))).await;
        assert_eq!(response.status, status, "{roles:?}: {}", response.body);
    }
    let published = log.read(0, 0, 10);
    assert_eq!(published.len(), 2, "only the two allowed publishes reached the log");
    let envelope = Envelope::decode(&published[0].value).unwrap();
    assert_eq!(envelope.target, Target::User(UserId::new("u1")));
    let frame: Value = serde_json::from_str(envelope.frame.get()).unwrap();
    assert_eq!(frame, serde_json::json!({"type": "notice", "text": "hello"}));
}

#[tokio::test]
async fn publish_refuses_every_frame_type_of_the_chat_protocol() {
    let types = chat_frame_types();
    for kind in [
        "message", "dm", "edited", "deleted", "presence", "ack", "error", "history", "whoami",
    ] {
        assert!(types.contains(&kind), "{kind} is missing from {types:?}");
    }
    let log = Arc::new(MemoryLog::new("t", 1, 100));
    let ports = test_ports(&log);
    let config = Config::default();
    let caller = service(&["admin"]);
    let ctx = Context {
        ports: &ports,
        config: &config,
        caller: &caller,
        now_ms: 0,
    };
    for kind in types.iter().copied().chain(["MESSAGE", "Deleted"]) {
        let body = serde_json::json!({"target": {"room": "general"}, "frame": {"type": kind, "text": "forged"}});
        let response = handle(&ctx, &request("POST", "/api/publish", Some(&body.to_string()))).await;
        assert_eq!(response.status, 400, "{kind}: {}", response.body);
        let error: Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(error["code"], "bad_request");
        let named = format!("{:?}", kind.to_ascii_lowercase());
        assert!(
            error["message"].as_str().unwrap().to_ascii_lowercase().contains(&named),
            "{kind}: {error}"
        );
    }
    assert!(log.read(0, 0, 10).is_empty(), "no chat frame reached the log");
    // A type of the service's own goes through.
    let body = r#"{"target":{"room":"general"},"frame":{"type":"maintenance"}}"#;
    assert_eq!(
        handle(&ctx, &request("POST", "/api/publish", Some(body))).await.status,
        202
    );
}

#[test]
fn error_codes_map_to_statuses() {
    assert_eq!(status_of(ErrorCode::NotMember), 403);
    assert_eq!(status_of(ErrorCode::NotFound), 404);
    assert_eq!(status_of(ErrorCode::TooLarge), 413);
    assert_eq!(status_of(ErrorCode::Unavailable), 503);
    assert_eq!(percent_decoded("a%2Db"), "a-b");
    assert_eq!(percent_decoded("bad%2"), "bad%2");
    assert_eq!(percent_decoded("%zz"), "%zz");
}
