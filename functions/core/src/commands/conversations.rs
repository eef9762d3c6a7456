//! `conversations` → the caller's direct conversations, latest first, each with the other
//! user and its latest message; `before` (the latest message id of the last one listed)
//! pages to older ones. One Query.

use serde::Deserialize;
use serde_json::Value;

use super::context::Context;
use super::fields;
use crate::config::Config;
use crate::error::ClientError;
use crate::history::ConversationEntry;
use crate::model::MessageId;
use crate::protocol::ServerFrame;

#[derive(Debug)]
pub struct Conversations {
    pub before: Option<MessageId>,
    pub limit: usize,
}

impl Conversations {
    pub fn parse(frame: Value, _config: &Config) -> Result<Self, ClientError> {
        #[derive(Deserialize)]
        struct Fields {
            #[serde(default)]
            before: Option<String>,
            #[serde(default)]
            limit: Option<i64>,
        }
        let Fields { before, limit } = fields::read(frame)?;
        Ok(Self {
            before: before.as_deref().map(MessageId::parse).transpose()?,
            limit: super::history::parse_limit(limit)?,
        })
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
        let page = ctx
            .ports
            .history
            .conversations(&ctx.caller.user.user_id, self.before.as_ref(), self.limit)
            .await?;
        Ok(ServerFrame::Conversations {
            conversations: page.conversations.into_iter().map(ConversationEntry::from).collect(),
            more: page.more,
        })
    }
}
