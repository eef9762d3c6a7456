//! `dm` → a direct message to every connection of a user, named by nickname (`to`) or by
//! user id (`toUser`), copied to the sender's other connections. Each side's records are
//! keyed `user:<id>`, so every conversation reaches each of its users in order. A
//! `replyTo` must name a message of the same conversation.

use serde::Deserialize;
use serde_json::Value;

use super::conversation::kept_message;
use super::{fields, parse_client_msg_id, parse_text, parse_user_id, publish, Context};
use crate::config::Config;
use crate::envelope::{Envelope, Target};
use crate::error::ClientError;
use crate::history::Conversation;
use crate::model::{MessageId, Nick, OnlineUser, UserId};
use crate::protocol::ServerFrame;

/// Who a direct message is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Nick(Nick),
    User(UserId),
}

#[derive(Debug)]
pub struct Dm {
    pub to: Recipient,
    pub text: String,
    pub reply_to: Option<MessageId>,
    pub client_msg_id: Option<String>,
}

impl Dm {
    pub fn parse(frame: Value, config: &Config) -> Result<Self, ClientError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Fields {
            #[serde(default)]
            to: Option<String>,
            #[serde(default)]
            to_user: Option<String>,
            text: String,
            #[serde(default)]
            reply_to: Option<String>,
            #[serde(default)]
            client_msg_id: Option<String>,
        }
        let Fields {
            to,
            to_user,
            text,
            reply_to,
            client_msg_id,
        } = fields(frame)?;
        let limits = &config.limits;
        let to = match (to, to_user) {
            (Some(nick), None) => {
                Recipient::Nick(Nick::parse(&nick, limits.nick_chars).map_err(ClientError::bad_request)?)
            }
            (None, Some(user)) => Recipient::User(parse_user_id("toUser", user)?),
            _ => {
                return Err(ClientError::bad_request(
                    "a dm needs exactly one of `to` (a nickname) or `toUser` (a user id)",
                ))
            }
        };
        Ok(Self {
            to,
            text: parse_text(text, limits)?,
            reply_to: reply_to.as_deref().map(MessageId::parse).transpose()?,
            client_msg_id: parse_client_msg_id(client_msg_id, limits)?,
        })
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
        let recipient = self.recipient(ctx).await?;
        let sender = &ctx.caller.user;
        if let Some(reply_to) = &self.reply_to {
            let conversation = Conversation::direct(sender.user_id.clone(), recipient.user.user_id.clone());
            kept_message(ctx, &conversation, reply_to).await?;
        }
        let id = MessageId::generate();
        let dm = ServerFrame::Dm {
            id: id.clone(),
            from: sender.clone(),
            to: recipient.user.clone(),
            text: self.text,
            ts: ctx.now_ms,
            reply_to: self.reply_to,
        };
        let to_recipient = Envelope::new(
            id.to_string(),
            Target::User(recipient.user.user_id.clone()),
            ctx.except(),
            &dm,
        );
        if recipient.user.user_id == sender.user_id {
            // A note to oneself: one record reaches all of one's other connections.
            publish(ctx.publisher, &to_recipient).await?;
        } else {
            let copy = Envelope::new(id.to_string(), Target::User(sender.user_id.clone()), ctx.except(), &dm);
            // Both, or the sender hears `unavailable`: then one side may have it already,
            // and a retry sends it again under a new id.
            let (sent, copied) = futures::join!(publish(ctx.publisher, &to_recipient), publish(ctx.publisher, &copy));
            sent.and(copied)?;
        }
        Ok(ServerFrame::Ack {
            room: None,
            to: Some(recipient.user),
            with: None,
            id,
            client_msg_id: self.client_msg_id,
            ts: ctx.now_ms,
        })
    }

    /// The recipient, who must be online: a dm to nobody would be lost.
    async fn recipient(&self, ctx: &Context<'_>) -> Result<OnlineUser, ClientError> {
        let (user_id, named) = match &self.to {
            Recipient::Nick(nick) => match ctx.store.nick_owner(nick).await? {
                Some(user_id) => (user_id, format!("`{nick}`")),
                None => return Err(ClientError::not_found(format!("nobody called `{nick}` is online"))),
            },
            Recipient::User(user_id) => (user_id.clone(), format!("user `{user_id}`")),
        };
        ctx.store
            .online_user(&user_id)
            .await?
            .ok_or_else(|| ClientError::not_found(format!("{named} is not online")))
    }
}
