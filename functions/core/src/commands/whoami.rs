//! `whoami` → the caller's connection id, user, nickname, roles and rooms.

use super::Context;
use crate::error::ClientError;
use crate::protocol::ServerFrame;

#[derive(Debug)]
pub struct WhoAmI;

impl WhoAmI {
    pub async fn apply(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
        let caller = ctx.caller;
        let rooms = ctx.store.rooms_of(&caller.user.user_id).await?;
        Ok(ServerFrame::WhoAmI {
            connection_id: caller.connection.clone(),
            user_id: caller.user.user_id.clone(),
            nick: caller.user.nick.clone(),
            roles: caller.roles.clone(),
            rooms,
        })
    }
}
