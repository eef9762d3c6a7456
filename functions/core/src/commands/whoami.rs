//! `whoami` → the caller's connection id, user, nickname, roles and rooms.

use serde_json::Value;

use super::context::Context;
use crate::config::Config;
use crate::error::ClientError;
use crate::protocol::ServerFrame;

#[derive(Debug)]
pub struct WhoAmI;

impl WhoAmI {
    /// It has no fields; any other is ignored.
    pub fn parse(_: Value, _: &Config) -> Result<Self, ClientError> {
        Ok(Self)
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
        let caller = ctx.caller;
        let rooms = ctx.ports.store.rooms_of(&caller.user.user_id).await?;
        Ok(ServerFrame::WhoAmI {
            connection_id: caller.connection.clone(),
            user_id: caller.user.user_id.clone(),
            nick: caller.user.nick.clone(),
            roles: caller.roles.clone(),
            rooms,
        })
    }
}
