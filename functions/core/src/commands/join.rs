//! `join` → the caller's user becomes a member of a room from the catalog (or the
//! broadcast room), with all its connections; the room gets a `presence` event and the
//! user's other connections a `joined`. Joining twice is answered `joined` and announced once.

use serde_json::Value;

use super::context::Context;
use super::fields;
use super::publish::publish;
use crate::config::Config;
use crate::envelope::{Envelope, Target};
use crate::error::{ClientError, ErrorCode};
use crate::model::{MessageId, RoomName};
use crate::presence;
use crate::protocol::{PresenceEvent, ServerFrame};

#[derive(Debug)]
pub struct Join {
    pub room: RoomName,
}

impl Join {
    pub fn parse(frame: Value, config: &Config) -> Result<Self, ClientError> {
        Ok(Self {
            room: fields::room(frame, config)?,
        })
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
        let room = self.room;
        if !ctx.config.is_broadcast(room.as_str()) && ctx.ports.store.room(&room).await?.is_none() {
            return Err(ClientError::not_found(format!(
                "room `{room}` does not exist; `rooms` lists them, `createRoom` makes one"
            )));
        }
        let user = &ctx.caller.user;
        let max = ctx.config.limits.rooms_per_user;
        let mine = ctx.ports.store.rooms_of(&user.user_id).await?;
        if mine.len() >= max && !mine.contains(&room) {
            return Err(ClientError::new(
                ErrorCode::Conflict,
                format!(
                    "you are in {} rooms, the most one user may be in; leave one first",
                    mine.len()
                ),
            ));
        }
        if ctx.ports.store.join(&room, user, ctx.caller.expires_at).await? {
            let presence = presence::envelope(
                ctx.config,
                &room,
                PresenceEvent::Joined,
                user,
                ctx.caller.connection.as_ref(),
            );
            if let Err(error) = publish(ctx, &presence).await {
                // Nobody was told, so the join must not stand either.
                if let Err(undo) = ctx.ports.store.leave(&room, &user.user_id).await {
                    tracing::error!(error = &undo as &dyn std::error::Error, %room, "could not undo join");
                }
                return Err(error);
            }
            tell_own_connections(ctx, ServerFrame::Joined { room: room.clone() }).await;
        }
        Ok(ServerFrame::Joined { room })
    }
}

/// Tells the caller's user's other connections, which follow it into and out of rooms.
/// Best-effort: the change stands and was announced; a connection that missed this sees
/// its rooms in `whoami`.
pub(super) async fn tell_own_connections(ctx: &Context<'_>, frame: ServerFrame) {
    // An anonymous user has one connection: the caller's own, which has its reply.
    if ctx.caller.expires_at.is_some() && ctx.caller.connection.is_some() {
        return;
    }
    let envelope = Envelope::new(
        MessageId::generate().to_string(),
        Target::User(ctx.caller.user.user_id.clone()),
        ctx.except(),
        &frame,
    );
    if let Err(error) = ctx.ports.publisher.publish(&envelope).await {
        tracing::warn!(error = &error as &dyn std::error::Error, "own connections not told");
    }
}
