//! `send` → a chat message to a room the sender's user is a member of. The sender gets an
//! `ack` with the server id once Kafka has the record; every other member connection gets
//! `message`. A `replyTo` must name a message of the same room. When users sign in, only the `admin` role may send to the broadcast room.

use serde::Deserialize;
use serde_json::Value;

use super::body::{BodyFields, MessageBody};
use super::context::Context;
use super::fields;
use super::publish::publish;
use crate::config::Config;
use crate::envelope::{Envelope, Target};
use crate::error::ClientError;
use crate::history::Conversation;
use crate::model::RoomName;
use crate::protocol::ServerFrame;

/// The role that may send to the broadcast room when users sign in.
pub const BROADCAST_ROLE: &str = super::context::ADMIN_ROLE;

#[derive(Debug)]
pub struct SendToRoom {
    pub room: RoomName,
    pub body: MessageBody,
}

impl SendToRoom {
    pub fn parse(frame: Value, config: &Config) -> Result<Self, ClientError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Fields {
            room: String,
            #[serde(flatten)]
            body: BodyFields,
        }
        let Fields { room, body } = fields::read(frame)?;
        let limits = &config.limits;
        Ok(Self {
            room: RoomName::parse(&room, limits.room_name_chars)?,
            body: MessageBody::parse(body, limits)?,
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
        let files = self.body.check(ctx, &Conversation::Room(self.room.clone())).await?;
        let message = ServerFrame::Message {
            room: self.room.clone(),
            id: None,
            from: member.user,
            text: self.body.text,
            ts: ctx.now_ms,
            reply_to: self.body.reply_to,
            files,
        };
        // The record's position names the message: the `ack`, fan-out and the archive all
        // derive its id from it, so the room has one order (docs/protocol.md, "One order").
        let stamp = ctx.stamp();
        let envelope = Envelope::stamped(Target::Room(self.room.clone()), ctx.except(), stamp, &message);
        let id = stamp.id_at(publish(ctx, &envelope).await?);
        Ok(ServerFrame::Ack {
            room: Some(self.room),
            to: None,
            with: None,
            id,
            client_msg_id: self.body.client_msg_id,
            ts: ctx.now_ms,
        })
    }
}
