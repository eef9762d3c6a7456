//! `delete` → one message of a room or a direct conversation becomes a tombstone: by its
//! author, or by a caller with the `admin` role. Goes through Kafka like `edit`.

use serde::Deserialize;
use serde_json::Value;

use super::context::{Context, ADMIN_ROLE};
use super::conversation::{kept_message, ConversationFields, ConversationRef};
use super::fields;
use super::publish::publish_about;
use super::upload::delete_files;
use crate::config::Config;
use crate::error::ClientError;
use crate::model::MessageId;
use crate::protocol::ServerFrame;

#[derive(Debug)]
pub struct Delete {
    pub conversation: ConversationRef,
    pub id: MessageId,
}

impl Delete {
    pub fn parse(frame: Value, config: &Config) -> Result<Self, ClientError> {
        #[derive(Deserialize)]
        struct Fields {
            #[serde(flatten)]
            conversation: ConversationFields,
            id: String,
        }
        let Fields { conversation, id } = fields::read(frame)?;
        Ok(Self {
            conversation: ConversationRef::parse(conversation, config.limits.room_name_chars)?,
            id: MessageId::parse(&id)?,
        })
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
        let conversation = self.conversation.resolve(ctx).await?;
        let message = kept_message(ctx, &conversation, &self.id).await?;
        if message.deleted {
            return Err(ClientError::not_found(format!(
                "message `{}` was deleted already",
                self.id
            )));
        }
        if message.from.user_id != ctx.caller.user.user_id && !ctx.caller.has_role(ADMIN_ROLE) {
            return Err(ClientError::forbidden(format!(
                "only its author or the `{ADMIN_ROLE}` role may delete a message"
            )));
        }
        let (room, _) = self.conversation.fields();
        let deleted = ServerFrame::Deleted {
            room,
            with: None,
            id: self.id.clone(),
            by: ctx.caller.user.clone(),
        };
        publish_about(ctx, &self.conversation, &deleted).await?;
        delete_files(ctx, &message.files).await;
        Ok(self.conversation.ack(self.id, ctx.now_ms))
    }
}
