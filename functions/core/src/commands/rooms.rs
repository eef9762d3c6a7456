//! `rooms` → the room catalog, the broadcast room first.

use serde_json::Value;

use super::context::Context;
use crate::config::Config;
use crate::error::ClientError;
use crate::model::RoomName;
use crate::protocol::{RoomInfo, ServerFrame};

#[derive(Debug)]
pub struct ListRooms;

impl ListRooms {
    /// It has no fields; any other is ignored.
    pub fn parse(_: Value, _: &Config) -> Result<Self, ClientError> {
        Ok(Self)
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
        let broadcast = RoomName::trusted(ctx.config.broadcast_room.clone());
        let catalog = ctx.ports.store.rooms().await?;
        let rooms = std::iter::once(broadcast.clone())
            .chain(
                catalog
                    .into_iter()
                    .map(|room| room.name)
                    .filter(|name| *name != broadcast),
            )
            .map(|name| RoomInfo { name })
            .collect();
        Ok(ServerFrame::Rooms { rooms })
    }
}
