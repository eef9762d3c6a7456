//! `createRoom` → adds a room to the catalog; the name must be new.

use serde::Deserialize;
use serde_json::Value;

use super::{current_connection, fields, Context};
use crate::config::Config;
use crate::error::{ClientError, ErrorCode};
use crate::model::{Room, RoomName};
use crate::ports::Store;
use crate::protocol::ServerFrame;

#[derive(Debug)]
pub struct CreateRoom {
    pub room: RoomName,
}

impl CreateRoom {
    pub fn parse(frame: Value, config: &Config) -> Result<Self, ClientError> {
        #[derive(Deserialize)]
        struct Fields {
            room: String,
        }
        let Fields { room } = fields(frame)?;
        let room = RoomName::parse(&room, config.limits.room_name_chars)?;
        if room.as_str() == config.broadcast_room {
            return Err(ClientError::new(ErrorCode::Conflict, "room already exists"));
        }
        Ok(Self { room })
    }

    pub async fn apply<S: Store + ?Sized, P: ?Sized>(
        self,
        ctx: &Context<'_, S, P>,
    ) -> Result<ServerFrame, ClientError> {
        let creator = current_connection(ctx).await?.connection.user.user_id;
        let room = Room {
            name: self.room,
            created_by: creator,
            created_at_ms: ctx.now_ms,
        };
        ctx.store.create_room(&room).await?;
        Ok(ServerFrame::RoomCreated { room: room.name })
    }
}
