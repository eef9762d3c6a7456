//! `send` → a chat message to a room the sender's user is a member of. The sender gets an
//! `ack` with the server id once Kafka has the record; every other member connection gets
//! `message`. A `replyTo` must name a message of the same room. When users sign in, only the `admin` role may send to the broadcast room.

use serde::Deserialize;
use serde_json::Value;

use super::conversation::kept_message;
use super::upload::{attach, parse_files};
use super::{fields, parse_client_msg_id, parse_text, publish, Context};
use crate::config::Config;
use crate::envelope::{Envelope, Target};
use crate::error::ClientError;
use crate::files::FileId;
use crate::history::Conversation;
use crate::model::{MessageId, RoomName};
use crate::protocol::ServerFrame;

/// The role that may send to the broadcast room when users sign in.
pub const BROADCAST_ROLE: &str = super::ADMIN_ROLE;

#[derive(Debug)]
pub struct Send {
    pub room: RoomName,
    pub text: String,
    pub reply_to: Option<MessageId>,
    pub client_msg_id: Option<String>,
    /// Files the sender uploaded for this room.
    pub files: Vec<FileId>,
}

impl Send {
    pub fn parse(frame: Value, config: &Config) -> Result<Self, ClientError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Fields {
            room: String,
            text: String,
            #[serde(default)]
            reply_to: Option<String>,
            #[serde(default)]
            client_msg_id: Option<String>,
            #[serde(default)]
            files: Option<Vec<String>>,
        }
        let Fields {
            room,
            text,
            reply_to,
            client_msg_id,
            files,
        } = fields(frame)?;
        let limits = &config.limits;
        Ok(Self {
            room: RoomName::parse(&room, limits.room_name_chars)?,
            text: parse_text(text, limits)?,
            reply_to: reply_to.as_deref().map(MessageId::parse).transpose()?,
            client_msg_id: parse_client_msg_id(client_msg_id, limits)?,
            files: parse_files(files)?,
        })
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
        if ctx.config.auth.is_on()
            && ctx.config.is_broadcast(self.room.as_str())
            && !ctx.caller.has_role(BROADCAST_ROLE)
        {
            return Err(ClientError::forbidden(format!(
                "only the `{BROADCAST_ROLE}` role may send to the broadcast room `{}`",
                self.room
            )));
        }
        let member = ctx.require_member(&self.room).await?;
        if let Some(reply_to) = &self.reply_to {
            kept_message(ctx, &Conversation::Room(self.room.clone()), reply_to).await?;
        }
        let files = attach(ctx, &Conversation::Room(self.room.clone()), &self.files).await?;
        let message = ServerFrame::Message {
            room: self.room.clone(),
            id: None,
            from: member.user,
            text: self.text,
            ts: ctx.now_ms,
            reply_to: self.reply_to,
            files,
        };
        // The record's position names the message: the `ack`, fan-out and the archive all
        // derive its id from it, so the room has one order (docs/protocol.md, "One order").
        let stamp = ctx.stamp();
        let envelope = Envelope::stamped(Target::Room(self.room.clone()), ctx.except(), stamp, &message);
        let id = stamp.id_at(publish(ctx.publisher, &envelope).await?);
        Ok(ServerFrame::Ack {
            room: Some(self.room),
            to: None,
            with: None,
            id,
            client_msg_id: self.client_msg_id,
            ts: ctx.now_ms,
        })
    }
}
