//! `dm` → a direct message to a user named by nickname (`to`: whoever holds it now) or by
//! user id (`toUser`: online or not). One record, keyed by the conversation (`dm:<a>:<b>`),
//! reaches every connection of both users but the sending one, so the conversation has one
//! order; kafka-archive keeps it, so a user who is offline reads it with `history` when
//! it comes. A `replyTo` must name a message of the same conversation.

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
use crate::model::{Nick, User, UserId};
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
    pub body: MessageBody,
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
            #[serde(flatten)]
            body: BodyFields,
        }
        let Fields { to, to_user, body } = fields::read(frame)?;
        let limits = &config.limits;
        let to = match (to, to_user) {
            (Some(nick), None) => {
                Recipient::Nick(Nick::parse(&nick, limits.nick_chars).map_err(ClientError::bad_request)?)
            }
            (None, Some(user)) => Recipient::User(fields::user_id("toUser", user)?),
            _ => {
                return Err(ClientError::bad_request(
                    "a dm needs exactly one of `to` (a nickname) or `toUser` (a user id)",
                ))
            }
        };
        Ok(Self {
            to,
            body: MessageBody::parse(body, limits)?,
        })
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
        let recipient = self.recipient(ctx).await?;
        let sender = &ctx.caller.user;
        let conversation = Conversation::direct(sender.user_id.clone(), recipient.user_id.clone());
        let files = self.body.check(ctx, &conversation).await?;
        let dm = ServerFrame::Dm {
            id: None,
            from: sender.clone(),
            to: recipient.clone(),
            text: self.body.text,
            ts: ctx.now_ms,
            reply_to: self.body.reply_to,
            files,
        };
        let target = Target::direct(sender.user_id.clone(), recipient.user_id.clone());
        let stamp = ctx.stamp();
        let id = stamp.id_at(publish(ctx, &Envelope::stamped(target, ctx.except(), stamp, &dm)).await?);
        Ok(ServerFrame::Ack {
            room: None,
            to: Some(recipient),
            with: None,
            id,
            client_msg_id: self.body.client_msg_id,
            ts: ctx.now_ms,
        })
    }

    /// The recipient: the user who holds the nickname now, or the user named by id, online
    /// or not, as last seen (an anonymous user is gone with its connection, and a user never
    /// seen has no name to show).
    async fn recipient(&self, ctx: &Context<'_>) -> Result<User, ClientError> {
        match &self.to {
            Recipient::Nick(nick) => match ctx.ports.store.nick_owner(nick).await? {
                Some(user_id) => Ok(User {
                    user_id,
                    nick: nick.clone(),
                }),
                None => Err(ClientError::not_found(format!(
                    "nobody called `{nick}` is online; name a user who is offline by `toUser`"
                ))),
            },
            Recipient::User(user_id) => ctx.ports.store.known_user(user_id).await?.ok_or_else(|| {
                ClientError::not_found(format!(
                    "no user `{user_id}` is known: a signed-in user who has connected once, or an anonymous one online"
                ))
            }),
        }
    }
}
