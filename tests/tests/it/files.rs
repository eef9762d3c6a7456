//! Attachments end to end through the local gateway, with real WebSocket clients and real
//! HTTP PUTs and GETs of the presigned URLs, on both backends: the embedded store (its
//! directory served by the gateway) and moto's DynamoDB and S3 with tansu.

use roomcast_local::Running;
use roomcast_tests::each_backend;
use roomcast_tests::files::{get, not_there, put};
use roomcast_tests::gateways::{gateway, Mode};
use roomcast_tests::ws_client::Client;
use serde_json::{json, Value};

each_backend!(
    embedded => gateway(Mode::Embedded).await,
    real => gateway(Mode::Real).await;
    [
        a_file_sent_to_a_room_downloads_the_same_for_members_and_from_history,
        a_file_must_be_uploaded_whole_before_it_is_sent,
        only_the_uploader_may_attach_a_file_and_only_where_it_was_meant,
        uploads_are_for_members_within_the_limits,
        an_html_file_comes_back_as_an_attachment,
        deleting_a_message_deletes_its_files,
        a_dm_carries_files_to_the_other_user,
    ]
);

/// Asks for an upload slot; the `upload` answer.
async fn slot(client: &mut Client, room: &str, name: &str, content_type: &str, size: usize) -> Value {
    let frame = json!({"action": "upload", "room": room, "name": name, "contentType": content_type, "size": size});
    let answer = client.ask(frame).await;
    assert_eq!(answer["type"], "upload", "{answer}");
    assert_eq!(answer["method"], "PUT");
    answer
}

/// PUTs `body` as the slot says; the status.
async fn put_to(slot: &Value, body: Vec<u8>) -> u16 {
    let headers: Vec<(String, String)> = slot["headers"]
        .as_object()
        .expect("headers")
        .iter()
        .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
        .collect();
    put(slot["url"].as_str().unwrap(), &headers, body).await
}

/// A slot granted and filled: its file id.
async fn uploaded(client: &mut Client, room: &str, name: &str, content_type: &str, body: &[u8]) -> String {
    let slot = slot(client, room, name, content_type, body.len()).await;
    assert_eq!(put_to(&slot, body.to_vec()).await, 200);
    slot["fileId"].as_str().unwrap().to_owned()
}

async fn two_in_general(gateway: &Running) -> (Client, Client) {
    let mut alice = Client::connect(gateway, "alice").await;
    let mut bob = Client::connect(gateway, "bob").await;
    alice.join("general").await;
    bob.join("general").await;
    (alice, bob)
}

fn image(len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..len).map(|i| (i % 251) as u8));
    bytes
}

async fn a_file_sent_to_a_room_downloads_the_same_for_members_and_from_history(gateway: Running) {
    let (mut alice, mut bob) = two_in_general(&gateway).await;
    let bytes = image(200_000);
    let file = uploaded(&mut alice, "general", "cat.png", "image/png", &bytes).await;
    let ack = alice
        .ask(json!({"action": "send", "room": "general", "text": "look", "files": [file]}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let message = bob.wait_for("message").await;
    let files = message["files"].as_array().expect("files on the message");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["id"], file);
    assert_eq!(files[0]["name"], "cat.png");
    assert_eq!(files[0]["contentType"], "image/png");
    assert_eq!(files[0]["size"], bytes.len());
    let (status, disposition, served) = get(files[0]["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(served, bytes, "bob downloads the bytes alice uploaded");
    assert!(disposition.unwrap().starts_with("inline;"), "a png is shown inline");

    let kept = bob
        .history_until("general", |messages| messages.iter().any(|m| m["id"] == ack["id"]))
        .await;
    let kept = kept.iter().find(|m| m["id"] == ack["id"]).unwrap();
    let url = kept["files"][0]["url"].as_str().expect("history signs a url");
    let (status, _, served) = get(url).await;
    assert_eq!((status, served), (200, bytes), "the history's url works");
}

async fn a_file_must_be_uploaded_whole_before_it_is_sent(gateway: Running) {
    let (mut alice, _bob) = two_in_general(&gateway).await;
    let send = |file: &str| json!({"action": "send", "room": "general", "text": "here", "files": [file]});
    // Granted, never PUT.
    let slot = slot(&mut alice, "general", "a.bin", "application/octet-stream", 1_000).await;
    let file = slot["fileId"].as_str().unwrap();
    let error = alice.ask(send(file)).await;
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("error"), Some("not_found")),
        "{error}"
    );
    // A body longer than declared, sent without the slot's `Content-Length` (a client
    // that ignores it): the embedded store refuses it (413), S3 too (the length is
    // signed); moto, which checks no signature, keeps it, and it is of another size.
    let mut unbound = slot.clone();
    unbound["headers"]
        .as_object_mut()
        .unwrap()
        .retain(|name, _| !name.eq_ignore_ascii_case("content-length"));
    let status = put_to(&unbound, vec![7; 1_500]).await;
    assert!(status == 413 || status == 200, "{status}");
    let error = alice.ask(send(file)).await;
    assert_eq!(error["code"], "not_found", "{error}");
    // An id never granted.
    let error = alice.ask(send("01HZY3J5Q6V9W8X7Y6Z5A4B3C2")).await;
    assert_eq!(error["code"], "not_found", "{error}");
    let error = alice.ask(send("../../etc/passwd")).await;
    assert_eq!(error["code"], "bad_request", "{error}");
}

async fn only_the_uploader_may_attach_a_file_and_only_where_it_was_meant(gateway: Running) {
    let (mut alice, mut bob) = two_in_general(&gateway).await;
    alice.join("random").await;
    let file = uploaded(&mut alice, "general", "notes.txt", "text/plain", b"alice's notes").await;
    let error = bob
        .ask(json!({"action": "send", "room": "general", "text": "mine now", "files": [file]}))
        .await;
    assert_eq!(error["code"], "forbidden", "another user's file: {error}");
    let error = alice
        .ask(json!({"action": "send", "room": "random", "text": "elsewhere", "files": [file]}))
        .await;
    assert_eq!(error["code"], "forbidden", "another room's file: {error}");
    let error = alice
        .ask(json!({"action": "send", "room": "general", "text": "twice", "files": [file, file]}))
        .await;
    assert_eq!(error["code"], "bad_request", "{error}");
    let eleven: Vec<String> = (0..11).map(|_| file.clone()).collect();
    let error = alice
        .ask(json!({"action": "send", "room": "general", "text": "many", "files": eleven}))
        .await;
    assert_eq!(error["code"], "too_large", "{error}");
    let ack = alice
        .ask(json!({"action": "send", "room": "general", "text": "fine", "files": [file]}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
}

async fn uploads_are_for_members_within_the_limits(gateway: Running) {
    let mut carol = Client::connect(&gateway, "carol").await;
    let upload = |size: u64, name: &str| json!({"action": "upload", "room": "general", "name": name, "contentType": "image/png", "size": size});
    let error = carol.ask(upload(10, "a.png")).await;
    assert_eq!(error["code"], "not_member", "{error}");
    carol.join("general").await;
    let error = carol.ask(upload(25 * 1024 * 1024 + 1, "big.png")).await;
    assert_eq!(error["code"], "too_large", "{error}");
    for bad_name in ["", "a/b.png", "x\ny"] {
        let error = carol.ask(upload(10, bad_name)).await;
        assert_eq!(error["code"], "bad_request", "{bad_name:?}: {error}");
    }
    let error = carol
        .ask(json!({"action": "upload", "room": "general", "name": "a", "contentType": "png", "size": 3}))
        .await;
    assert_eq!(error["code"], "bad_request", "{error}");
    assert_eq!(carol.ask(upload(25 * 1024 * 1024, "ok.png")).await["type"], "upload");
}

async fn an_html_file_comes_back_as_an_attachment(gateway: Running) {
    let (mut alice, mut bob) = two_in_general(&gateway).await;
    let page = b"<html><script>alert(document.cookie)</script></html>";
    let file = uploaded(&mut alice, "general", "page.html", "text/html", page).await;
    alice
        .ask_for(
            json!({"action": "send", "room": "general", "text": "see", "files": [file]}),
            "ack",
        )
        .await;
    let message = bob.wait_for("message").await;
    let (status, disposition, served) = get(message["files"][0]["url"].as_str().unwrap()).await;
    assert_eq!((status, served.as_slice()), (200, &page[..]));
    let disposition = disposition.expect("a Content-Disposition");
    assert!(disposition.starts_with("attachment;"), "{disposition}");
}

async fn deleting_a_message_deletes_its_files(gateway: Running) {
    let (mut alice, mut bob) = two_in_general(&gateway).await;
    let file = uploaded(&mut alice, "general", "a.txt", "text/plain", b"to be deleted").await;
    let ack = alice
        .ask_for(
            json!({"action": "send", "room": "general", "text": "oops", "files": [file]}),
            "ack",
        )
        .await;
    let url = bob.wait_for("message").await["files"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(get(&url).await.0, 200);
    let deleted = alice
        .ask_for(json!({"action": "delete", "room": "general", "id": ack["id"]}), "ack")
        .await;
    assert_eq!(deleted["id"], ack["id"]);
    let status = get(&url).await.0;
    assert!(not_there(status), "the object is gone with its message: {status}");
    let files = gateway.files();
    let id = roomcast_core::files::FileId::parse(&file).unwrap();
    assert_eq!(files.uploaded_size(&id).await.unwrap(), None);
}

async fn a_dm_carries_files_to_the_other_user(gateway: Running) {
    let mut alice = Client::connect(&gateway, "alice").await;
    let mut bob = Client::connect(&gateway, "bob").await;
    let bob_id = bob.ask(json!({"action": "whoami"})).await["userId"]
        .as_str()
        .unwrap()
        .to_owned();
    let frame =
        json!({"action": "upload", "with": bob_id, "name": "plan.pdf", "contentType": "application/pdf", "size": 4});
    let slot = alice.ask(frame).await;
    assert_eq!(slot["type"], "upload", "{slot}");
    assert_eq!(put_to(&slot, b"%PDF".to_vec()).await, 200);
    let ack = alice
        .ask(json!({"action": "dm", "toUser": bob_id, "text": "the plan", "files": [slot["fileId"]]}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let dm = bob.wait_for("dm").await;
    let (status, _, served) = get(dm["files"][0]["url"].as_str().unwrap()).await;
    assert_eq!((status, served.as_slice()), (200, &b"%PDF"[..]));
}
