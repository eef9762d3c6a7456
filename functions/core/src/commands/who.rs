//! `who` → the room's online members, by nickname: a user with several connections is
//! listed once, with how many it has. Members only.

use serde_json::Value;

use super::context::Context;
use super::fields;
use crate::config::Config;
use crate::error::ClientError;
use crate::model::RoomName;
use crate::protocol::{OnlineMember, ServerFrame};

#[derive(Debug)]
pub struct Who {
    pub room: RoomName,
}

impl Who {
    pub fn parse(frame: Value, config: &Config) -> Result<Self, ClientError> {
        Ok(Self {
            room: fields::room(frame, config)?,
        })
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
        ctx.require_member(&self.room).await?;
        let mut users: Vec<OnlineMember> = ctx
            .ports
            .store
            .members(&self.room)
            .await?
            .into_iter()
            .filter(|member| !member.connections.is_empty())
            .map(|member| OnlineMember {
                user_id: member.user.user_id,
                nick: member.user.nick,
                connections: member.connections.len(),
            })
            .collect();
        users.sort_by(|a, b| (&a.nick, &a.user_id).cmp(&(&b.nick, &b.user_id)));
        let more = users.len() > ctx.config.who_max_users;
        users.truncate(ctx.config.who_max_users);
        Ok(ServerFrame::Who {
            room: self.room,
            users,
            more,
        })
    }
}
