//! `send` → a chat message to a room the sender is in. The sender gets an `ack` with the
//! server id once Kafka has the record; every other member connection gets `message`.

use serde::Deserialize;
use serde_json::Value;

use super::{fields, publish, Context};
use crate::config::Config;
use crate::envelope::{Envelope, Target};
use crate::error::{ClientError, ErrorCode};
use crate::model::{MessageId, RoomName};
use crate::ports::{Publisher, Store};
use crate::protocol::ServerFrame;

#[derive(Debug)]
pub struct Send {
    pub room: RoomName,
    pub text: String,
    pub reply_to: Option<MessageId>,
    pub client_msg_id: Option<String>,
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
        }
        let Fields {
            room,
            text,
            reply_to,
            client_msg_id,
        } = fields(frame)?;
        let limits = &config.limits;
        let room = RoomName::parse(&room, limits.room_name_chars)?;
        if text.trim().is_empty() {
            return Err(ClientError::bad_request("text must not be empty"));
        }
        if text.len() > limits.text_bytes {
            return Err(ClientError::new(
                ErrorCode::TooLarge,
                format!("text is {} bytes; the limit is {}", text.len(), limits.text_bytes),
            ));
        }
        let reply_to = reply_to.as_deref().map(MessageId::parse).transpose()?;
        if let Some(id) = &client_msg_id {
            if id.is_empty() || id.chars().count() > limits.client_msg_id_chars {
                return Err(ClientError::bad_request(format!(
                    "clientMsgId must be 1 to {} characters",
                    limits.client_msg_id_chars
                )));
            }
        }
        Ok(Self {
            room,
            text,
            reply_to,
            client_msg_id,
        })
    }

    pub async fn apply<S, P>(self, ctx: &Context<'_, S, P>) -> Result<ServerFrame, ClientError>
    where
        S: Store + ?Sized,
        P: Publisher + ?Sized,
    {
        let Some(member) = ctx.store.member(&self.room, ctx.connection_id).await? else {
            return Err(ClientError::not_member(self.room.as_str()));
        };
        let id = MessageId::generate();
        let message = ServerFrame::Message {
            room: self.room.clone(),
            id: id.clone(),
            from: member.user,
            text: self.text,
            ts: ctx.now_ms,
            reply_to: self.reply_to,
        };
        let envelope = Envelope::new(
            id.to_string(),
            Target::Room(self.room.clone()),
            Some(ctx.connection_id.clone()),
            &message,
        );
        publish(ctx.publisher, &envelope).await?;
        Ok(ServerFrame::Ack {
            room: Some(self.room),
            id,
            client_msg_id: self.client_msg_id,
            ts: ctx.now_ms,
        })
    }
}
