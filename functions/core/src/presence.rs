//! Presence: the one place that decides how a change of membership or of being online is
//! told to a room. Every presence envelope carries the room's presence limit, so fan-out
//! drops it in rooms too large for per-user announcements (clients there use `who`).

use crate::config::Config;
use crate::envelope::{Envelope, Target};
use crate::model::{ConnectionId, MessageId, RoomName, User};
use crate::ports::Publisher;
use crate::protocol::{PresenceEvent, ServerFrame};

/// The envelope that tells `room` about `user`; `except` is the connection that caused it
/// (it learns from its own reply).
pub fn envelope(
    config: &Config,
    room: &RoomName,
    event: PresenceEvent,
    user: &User,
    except: Option<&ConnectionId>,
) -> Envelope {
    let frame = ServerFrame::Presence {
        room: room.clone(),
        event,
        user: user.clone(),
    };
    Envelope::new(
        MessageId::generate().to_string(),
        Target::Room(room.clone()),
        except.cloned(),
        &frame,
    )
    .with_max_audience(config.presence_max_audience)
}

/// Tells each of `rooms` about `user`, best-effort: the change itself already happened
/// (a connection arrived or went), so a lost announcement is logged and clients see the
/// truth in their next `who`.
pub async fn announce<P: Publisher + ?Sized>(
    publisher: &P,
    config: &Config,
    rooms: &[RoomName],
    event: PresenceEvent,
    user: &User,
    except: Option<&ConnectionId>,
) {
    let sends = rooms.iter().map(|room| async move {
        let envelope = envelope(config, room, event, user, except);
        if let Err(error) = publisher.publish(&envelope).await {
            tracing::warn!(error = &error as &dyn std::error::Error, %room, ?event, "presence not published");
        }
    });
    futures::future::join_all(sends).await;
}
