//! What `send` and `dm` both carry — the text, the message it replies to, the client's id
//! for its `ack`, the files attached — parsed and checked the same way for both.

use serde::Deserialize;

use super::context::Context;
use super::conversation::kept_message;
use super::fields;
use super::upload::{attach, parse_files};
use crate::config::Limits;
use crate::error::ClientError;
use crate::files::{Attachment, FileId};
use crate::history::Conversation;
use crate::model::MessageId;

/// The body's fields as sent: flattened into `send`'s and `dm`'s own.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BodyFields {
    text: String,
    #[serde(default)]
    reply_to: Option<String>,
    #[serde(default)]
    client_msg_id: Option<String>,
    #[serde(default)]
    files: Option<Vec<String>>,
}

#[derive(Debug)]
pub struct MessageBody {
    pub text: String,
    pub reply_to: Option<MessageId>,
    pub client_msg_id: Option<String>,
    /// Files the sender uploaded for this conversation.
    pub files: Vec<FileId>,
}

impl MessageBody {
    pub fn parse(sent: BodyFields, limits: &Limits) -> Result<Self, ClientError> {
        Ok(Self {
            text: fields::text(sent.text, limits)?,
            reply_to: sent.reply_to.as_deref().map(MessageId::parse).transpose()?,
            client_msg_id: fields::client_msg_id(sent.client_msg_id, limits)?,
            files: parse_files(sent.files)?,
        })
    }

    /// Checks what the body names against `conversation`: the message it replies to must
    /// be one of it, and its files uploaded by the caller for it. The files as the frame
    /// carries them.
    pub async fn check(&self, ctx: &Context<'_>, conversation: &Conversation) -> Result<Vec<Attachment>, ClientError> {
        if let Some(reply_to) = &self.reply_to {
            kept_message(ctx, conversation, reply_to).await?;
        }
        attach(ctx, conversation, &self.files).await
    }
}
