//! The HTTP API through the local gateway, with a real HTTP client, on both backends.
//!
//! What a polling client or a service notices: every route answers as the WebSocket
//! command it stands for, with its status; refused requests get their status and change
//! nothing; a message POSTed over HTTP reaches WebSocket members and one sent over
//! WebSocket is read by polling `after`, which never skips nor repeats a message even
//! while several senders write at once; `POST /api/publish` reaches exactly its target;
//! and a signed-in user is one user over WebSocket and HTTP.

mod polling;
mod publish;
mod routes;
mod signed_in;

use serde_json::Value;

/// The ids of a history page's messages.
fn ids(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|message| message["id"].as_str().expect("an id").to_owned())
        .collect()
}

fn has_id(id: &Value) -> impl Fn(&[Value]) -> bool + '_ {
    move |messages| messages.iter().any(|message| message["id"] == *id)
}

fn is_message(id: &Value) -> impl Fn(&Value) -> bool + '_ {
    move |frame| frame["type"] == "message" && frame["id"] == *id
}
