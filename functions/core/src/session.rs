//! The life of a connection: `$connect` registers it under a unique nickname,
//! `$disconnect` forgets it and tells its rooms.

use crate::config::Config;
use crate::envelope::{Envelope, Target};
use crate::model::{Connection, ConnectionId, ConnectionState, MessageId, Nick, User, UserId};
use crate::ports::{Publisher, Store, StoreError};
use crate::protocol::{PresenceEvent, ServerFrame};

/// What `$connect` knows about a new connection.
#[derive(Debug, Clone)]
pub struct NewConnection<'a> {
    pub connection_id: ConnectionId,
    /// `?name=` from the handshake; a guest name is made up when absent.
    pub name: Option<&'a str>,
    /// The authenticated user, when an authorizer vouched for one.
    pub user_id: Option<UserId>,
    /// API Gateway's `connectedAt`, milliseconds since the epoch.
    pub connected_at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("bad nickname: {0}")]
    BadName(String),
    #[error("nickname `{0}` is taken")]
    NickTaken(Nick),
    #[error(transparent)]
    Store(StoreError),
}

impl ConnectError {
    /// The HTTP status that refuses the WebSocket handshake.
    pub fn status(&self) -> u16 {
        match self {
            ConnectError::BadName(_) => 400,
            ConnectError::NickTaken(_) => 409,
            ConnectError::Store(_) => 500,
        }
    }
}

/// How many made-up guest names to try before giving up on a crowded store.
const GUEST_NAME_TRIES: usize = 5;

pub async fn connect<S: Store + ?Sized>(
    store: &S,
    config: &Config,
    request: NewConnection<'_>,
) -> Result<Connection, ConnectError> {
    let chosen = request
        .name
        .map(|name| Nick::parse(name, config.limits.nick_chars).map_err(ConnectError::BadName))
        .transpose()?;
    let user_id = request.user_id.unwrap_or_else(UserId::anonymous);
    let expires_at = request.connected_at_ms / 1000 + config.connection_ttl.as_secs() as i64;
    let tries = if chosen.is_some() { 1 } else { GUEST_NAME_TRIES };
    for _ in 0..tries {
        let nick = chosen.clone().unwrap_or_else(guest_name);
        let connection = Connection {
            id: request.connection_id.clone(),
            user: User {
                user_id: user_id.clone(),
                nick: nick.clone(),
            },
            connected_at_ms: request.connected_at_ms,
            expires_at,
        };
        match store.add_connection(&connection).await {
            Ok(()) => return Ok(connection),
            Err(StoreError::NickTaken) if chosen.is_none() => continue,
            Err(StoreError::NickTaken) => return Err(ConnectError::NickTaken(nick)),
            Err(error) => return Err(ConnectError::Store(error)),
        }
    }
    Err(ConnectError::Store(StoreError::unavailable(
        "no free guest nickname found",
    )))
}

fn guest_name() -> Nick {
    Nick::trusted(format!("guest-{:06x}", fastrand::u32(..0x100_0000)))
}

/// Forgets the connection and tells each of its rooms it left. Idempotent: API Gateway
/// may call `$disconnect` for a connection that fan-out already removed as gone.
pub async fn disconnect<S, P>(
    store: &S,
    publisher: &P,
    id: &ConnectionId,
) -> Result<Option<ConnectionState>, StoreError>
where
    S: Store + ?Sized,
    P: Publisher + ?Sized,
{
    let removed = store.remove_connection(id).await?;
    if let Some(state) = &removed {
        for room in &state.rooms {
            let presence = ServerFrame::Presence {
                room: room.clone(),
                event: PresenceEvent::Left,
                user: state.connection.user.clone(),
            };
            let envelope = Envelope::new(
                MessageId::generate().to_string(),
                Target::Room(room.clone()),
                None,
                &presence,
            );
            // The connection is gone whatever happens here; a lost presence event is
            // logged, and clients see the truth in their next `who`.
            if let Err(error) = publisher.publish(&envelope).await {
                tracing::warn!(error = &error as &dyn std::error::Error, %room, "presence after disconnect not published");
            }
        }
    }
    Ok(removed)
}
