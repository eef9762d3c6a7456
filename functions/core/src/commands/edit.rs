//! `edit` → a new text for one of the caller's own messages, in a room or a direct
//! conversation. Goes through Kafka keyed like the message itself, so kafka-archive
//! applies it after the message, and `edited` reaches the room or both sides.

use serde::Deserialize;
use serde_json::Value;

use super::context::Context;
use super::conversation::{kept_message, ConversationFields, ConversationRef};
use super::fields;
use super::publish::publish_about;
use crate::config::Config;
use crate::error::ClientError;
use crate::model::MessageId;
use crate::protocol::ServerFrame;

#[derive(Debug)]
pub struct Edit {
    pub conversation: ConversationRef,
    pub id: MessageId,
    pub text: String,
}

impl Edit {
    pub fn parse(frame: Value, config: &Config) -> Result<Self, ClientError> {
        #[derive(Deserialize)]
        struct Fields {
            #[serde(flatten)]
            conversation: ConversationFields,
            id: String,
            text: String,
        }
        let Fields { conversation, id, text } = fields::read(frame)?;
        Ok(Self {
            conversation: ConversationRef::parse(conversation, config.limits.room_name_chars)?,
            id: MessageId::parse(&id)?,
            text: fields::text(text, &config.limits)?,
        })
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
        let conversation = self.conversation.resolve(ctx).await?;
        let message = kept_message(ctx, &conversation, &self.id).await?;
        if message.deleted {
            return Err(ClientError::not_found(format!("message `{}` was deleted", self.id)));
        }
        if message.from.user_id != ctx.caller.user.user_id {
            return Err(ClientError::forbidden("only its author may edit a message"));
        }
        let (room, _) = self.conversation.fields();
        let edited = ServerFrame::Edited {
            room,
            with: None,
            id: self.id.clone(),
            text: self.text,
            edited_at: ctx.now_ms,
            by: ctx.caller.user.clone(),
        };
        publish_about(ctx, &self.conversation, &edited).await?;
        Ok(self.conversation.ack(self.id, ctx.now_ms))
    }
}
