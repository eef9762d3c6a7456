//! `leave` → ends the user's membership, for all its connections; the room gets a
//! `presence` event and the user's other connections a `left`.

use serde_json::Value;

use super::context::Context;
use super::fields;
use super::join::tell_own_connections;
use super::publish::publish;
use crate::config::Config;
use crate::error::ClientError;
use crate::model::RoomName;
use crate::presence;
use crate::protocol::{PresenceEvent, ServerFrame};

#[derive(Debug)]
pub struct Leave {
    pub room: RoomName,
}

impl Leave {
    pub fn parse(frame: Value, config: &Config) -> Result<Self, ClientError> {
        Ok(Self {
            room: fields::room(frame, config)?,
        })
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
        let room = self.room;
        let user = &ctx.caller.user;
        let Some(member) = ctx.ports.store.leave(&room, &user.user_id).await? else {
            return Err(ClientError::not_member(room.as_str()));
        };
        let presence = presence::envelope(
            ctx.config,
            &room,
            PresenceEvent::Left,
            &member.user,
            ctx.caller.connection.as_ref(),
        );
        if let Err(error) = publish(ctx, &presence).await {
            // The others were not told: stay a member, so what they see stays true.
            if let Err(undo) = ctx.ports.store.join(&room, &member.user, member.expires_at).await {
                tracing::error!(error = &undo as &dyn std::error::Error, %room, "could not undo leave");
            }
            return Err(error);
        }
        tell_own_connections(ctx, ServerFrame::Left { room: room.clone() }).await;
        Ok(ServerFrame::Left { room })
    }
}
