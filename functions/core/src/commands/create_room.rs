//! `createRoom` → adds a room to the catalog; the name must be new.

use serde_json::Value;

use super::context::Context;
use super::fields;
use crate::config::Config;
use crate::error::{ClientError, ErrorCode};
use crate::model::{Room, RoomName};
use crate::protocol::ServerFrame;
use crate::quota::BucketKey;

#[derive(Debug)]
pub struct CreateRoom {
    pub room: RoomName,
}

impl CreateRoom {
    pub fn parse(frame: Value, config: &Config) -> Result<Self, ClientError> {
        let room = fields::room(frame, config)?;
        if config.is_broadcast(room.as_str()) {
            return Err(ClientError::new(ErrorCode::Conflict, "room already exists"));
        }
        Ok(Self { room })
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
        let room = Room {
            name: self.room,
            created_by: ctx.caller.user.user_id.clone(),
            created_at_ms: ctx.now_ms,
        };
        // A new connection is a new anonymous user: their rooms count by address instead.
        let limits = &ctx.config.limits;
        let bucket = match ctx.caller.expires_at {
            Some(_) if ctx.caller.source_ip.is_some() => limits.anonymous_room_creations,
            _ => limits.room_creations,
        };
        ctx.take_token(BucketKey::room_creations(ctx.caller), bucket, "new rooms")
            .await?;
        ctx.ports.store.create_room(&room, ctx.config.limits.max_rooms).await?;
        Ok(ServerFrame::RoomCreated { room: room.name })
    }
}
