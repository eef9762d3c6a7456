//! `join` → membership of a room from the catalog (or the broadcast room); the other
//! members get a `presence` event. Joining twice is answered `joined` and announced once.

use serde::Deserialize;
use serde_json::Value;

use super::{current_connection, fields, publish, Context};
use crate::config::Config;
use crate::envelope::{Envelope, Target};
use crate::error::{ClientError, ErrorCode};
use crate::model::{Member, MessageId, RoomName};
use crate::ports::{Publisher, Store};
use crate::protocol::{PresenceEvent, ServerFrame};

#[derive(Debug)]
pub struct Join {
    pub room: RoomName,
}

impl Join {
    pub fn parse(frame: Value, config: &Config) -> Result<Self, ClientError> {
        #[derive(Deserialize)]
        struct Fields {
            room: String,
        }
        let Fields { room } = fields(frame)?;
        Ok(Self {
            room: RoomName::parse(&room, config.limits.room_name_chars)?,
        })
    }

    pub async fn apply<S, P>(self, ctx: &Context<'_, S, P>) -> Result<ServerFrame, ClientError>
    where
        S: Store + ?Sized,
        P: Publisher + ?Sized,
    {
        let room = self.room;
        if room.as_str() != ctx.config.broadcast_room && ctx.store.room(&room).await?.is_none() {
            return Err(ClientError::new(
                ErrorCode::NotFound,
                format!("room `{room}` does not exist; `rooms` lists them, `createRoom` makes one"),
            ));
        }
        let connection = current_connection(ctx).await?.connection;
        let member = Member {
            connection_id: connection.id.clone(),
            user: connection.user.clone(),
            expires_at: connection.expires_at,
        };
        if ctx.store.join(&room, &member).await? {
            let presence = ServerFrame::Presence {
                room: room.clone(),
                event: PresenceEvent::Joined,
                user: connection.user,
            };
            let envelope = Envelope::new(
                MessageId::generate().to_string(),
                Target::Room(room.clone()),
                Some(connection.id.clone()),
                &presence,
            );
            if let Err(error) = publish(ctx.publisher, &envelope).await {
                // Nobody was told, so the join must not stand either.
                if let Err(undo) = ctx.store.leave(&room, &connection.id).await {
                    tracing::error!(error = &undo as &dyn std::error::Error, %room, "could not undo join");
                }
                return Err(error);
            }
        }
        Ok(ServerFrame::Joined { room })
    }
}
