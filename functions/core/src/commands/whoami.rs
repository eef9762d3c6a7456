//! `whoami` → the caller's connection id, user, nickname and rooms.

use super::{current_connection, Context};
use crate::error::ClientError;
use crate::ports::Store;
use crate::protocol::ServerFrame;

#[derive(Debug)]
pub struct WhoAmI;

impl WhoAmI {
    pub async fn apply<S: Store + ?Sized, P: ?Sized>(
        self,
        ctx: &Context<'_, S, P>,
    ) -> Result<ServerFrame, ClientError> {
        let state = current_connection(ctx).await?;
        Ok(ServerFrame::WhoAmI {
            connection_id: state.connection.id,
            user_id: state.connection.user.user_id,
            nick: state.connection.user.nick,
            rooms: state.rooms,
        })
    }
}
