//! `leave` → ends a membership; the other members get a `presence` event.

use serde::Deserialize;
use serde_json::Value;

use super::{fields, publish, Context};
use crate::config::Config;
use crate::envelope::{Envelope, Target};
use crate::error::ClientError;
use crate::model::{MessageId, RoomName};
use crate::ports::{Publisher, Store};
use crate::protocol::{PresenceEvent, ServerFrame};

#[derive(Debug)]
pub struct Leave {
    pub room: RoomName,
}

impl Leave {
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
        let Some(member) = ctx.store.leave(&room, ctx.connection_id).await? else {
            return Err(ClientError::not_member(room.as_str()));
        };
        let presence = ServerFrame::Presence {
            room: room.clone(),
            event: PresenceEvent::Left,
            user: member.user.clone(),
        };
        let envelope = Envelope::new(
            MessageId::generate().to_string(),
            Target::Room(room.clone()),
            Some(ctx.connection_id.clone()),
            &presence,
        );
        if let Err(error) = publish(ctx.publisher, &envelope).await {
            // The others were not told: stay a member, so what they see stays true.
            if let Err(undo) = ctx.store.join(&room, &member).await {
                tracing::error!(error = &undo as &dyn std::error::Error, %room, "could not undo leave");
            }
            return Err(error);
        }
        Ok(ServerFrame::Left { room })
    }
}
