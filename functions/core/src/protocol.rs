//! Server frames of client protocol v1: every reply, event and error is a JSON object with
//! a `type`. Client frames are parsed in [`crate::commands`].

use serde::{Deserialize, Serialize};

use crate::error::{ClientError, ErrorCode};
use crate::files::{Attachment, UploadSlot};
use crate::history::{ConversationEntry, HistoryEntry};
use crate::model::{ConnectionId, MessageId, Nick, RoomName, User, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PresenceEvent {
    /// The user became a member of the room.
    Joined,
    /// The user's membership ended.
    Left,
    /// A member's first connection arrived.
    Online,
    /// A member's last connection went.
    Offline,
}

/// One online member in a `who` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnlineMember {
    pub user_id: UserId,
    pub nick: Nick,
    /// How many live connections the user has.
    pub connections: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomInfo {
    pub name: RoomName,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ServerFrame {
    Joined {
        room: RoomName,
    },
    Left {
        room: RoomName,
    },
    Presence {
        room: RoomName,
        event: PresenceEvent,
        user: User,
    },
    /// The server accepted a `send`, a `dm`, an `edit` or a `delete`: `id` is the message's
    /// server id.
    Ack {
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        /// The recipient of a `dm`.
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<User>,
        /// The other user of the direct conversation an `edit` or `delete` changed.
        #[serde(skip_serializing_if = "Option::is_none")]
        with: Option<UserId>,
        id: MessageId,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
        ts: i64,
    },
    /// A room's message. `id` is absent only in the record a chat function writes, whose
    /// log position gives the id ([`crate::envelope::Stamp`]): every client gets it.
    Message {
        room: RoomName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<MessageId>,
        from: User,
        text: String,
        ts: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        reply_to: Option<MessageId>,
        /// Its files, each with a GET signed when the frame was made.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<Attachment>,
    },
    /// A direct message, to the recipient's connections and the sender's other ones.
    Dm {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<MessageId>,
        from: User,
        to: User,
        text: String,
        ts: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        reply_to: Option<MessageId>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<Attachment>,
    },
    /// A message's new text, to the room or to both sides of a direct conversation, where
    /// `with` is the other user as the receiver sees it.
    Edited {
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        #[serde(skip_serializing_if = "Option::is_none")]
        with: Option<UserId>,
        id: MessageId,
        text: String,
        edited_at: i64,
        by: User,
    },
    /// A message was deleted; `room` and `with` as in `edited`.
    Deleted {
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        #[serde(skip_serializing_if = "Option::is_none")]
        with: Option<UserId>,
        id: MessageId,
        by: User,
    },
    /// A page of a room's or a direct conversation's messages, oldest first; `more` when
    /// there are more beyond it in the direction asked.
    History {
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        #[serde(skip_serializing_if = "Option::is_none")]
        with: Option<UserId>,
        messages: Vec<HistoryEntry>,
        more: bool,
    },
    Rooms {
        rooms: Vec<RoomInfo>,
    },
    /// The caller's direct conversations, latest first; `more` when older ones follow.
    Conversations {
        conversations: Vec<ConversationEntry>,
        more: bool,
    },
    /// The HTTP API took a service's frame (`POST /api/publish`): `id` is its envelope's.
    Published {
        id: MessageId,
    },
    /// The room's online members, by nickname; `more` when the list was cut at the limit.
    Who {
        room: RoomName,
        users: Vec<OnlineMember>,
        more: bool,
    },
    RoomCreated {
        room: RoomName,
    },
    /// Where to PUT a file of an `upload`.
    Upload(UploadSlot),
    #[serde(rename = "whoami")]
    WhoAmI {
        /// Absent when the caller came over HTTP.
        #[serde(skip_serializing_if = "Option::is_none")]
        connection_id: Option<ConnectionId>,
        user_id: UserId,
        nick: Nick,
        roles: Vec<String>,
        rooms: Vec<RoomName>,
    },
    Pong,
    Error {
        code: ErrorCode,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        action: Option<String>,
        /// The refused message's `clientMsgId`: a client with several messages in flight
        /// learns which one to send again (API Gateway may answer them in any order).
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
}

impl ServerFrame {
    /// The error frame of a refusal. This is the edge where a refusal leaves the domain,
    /// over either transport: a refusal with a cause (a dependency failed) is logged here,
    /// once, cause and all.
    pub fn error(error: ClientError, action: Option<&str>) -> Self {
        if let Some(source) = &error.source {
            tracing::error!(
                error = &**source as &dyn std::error::Error,
                code = ?error.code,
                action = action.unwrap_or("-"),
                "{}",
                error.message
            );
        }
        Self::Error {
            code: error.code,
            message: error.message,
            action: action.map(str::to_owned),
            client_msg_id: None,
        }
    }

    /// The error frame naming the refused message's `clientMsgId`; other frames unchanged.
    pub fn for_message(mut self, id: Option<&str>) -> Self {
        if let Self::Error { client_msg_id, .. } = &mut self {
            *client_msg_id = id.map(str::to_owned);
        }
        self
    }

    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail: no maps with non-string keys.
        serde_json::to_string(self).expect("server frames always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames_have_the_documented_shape() {
        let user = User {
            user_id: UserId::new("u1"),
            nick: Nick::trusted("alice"),
        };
        let message = ServerFrame::Message {
            room: RoomName::trusted("general"),
            id: Some(MessageId::parse("01HZY3J5Q6V9W8X7Y6Z5A4B3C2").unwrap()),
            from: user.clone(),
            text: "hi".into(),
            ts: 5,
            reply_to: None,
            files: vec![],
        };
        assert_eq!(
            serde_json::to_value(&message).unwrap(),
            json!({"type": "message", "room": "general", "id": "01HZY3J5Q6V9W8X7Y6Z5A4B3C2",
                   "from": {"userId": "u1", "nick": "alice"}, "text": "hi", "ts": 5})
        );
        let error = ServerFrame::error(ClientError::not_member("x"), Some("send"));
        assert_eq!(serde_json::to_value(&error).unwrap()["code"], json!("not_member"));
        let whoami = ServerFrame::WhoAmI {
            connection_id: Some(ConnectionId::new("c=")),
            user_id: UserId::new("u1"),
            nick: Nick::trusted("alice"),
            roles: vec!["admin".into()],
            rooms: vec![],
        };
        let value = serde_json::to_value(&whoami).unwrap();
        assert_eq!(value["type"], "whoami");
        assert_eq!(value["connectionId"], "c=");
        assert_eq!(value["roles"], json!(["admin"]));
        let presence = ServerFrame::Presence {
            room: RoomName::trusted("general"),
            event: PresenceEvent::Offline,
            user: user.clone(),
        };
        assert_eq!(serde_json::to_value(&presence).unwrap()["event"], "offline");
        assert_eq!(
            serde_json::to_value(ServerFrame::Pong).unwrap(),
            json!({"type": "pong"})
        );
    }
}
