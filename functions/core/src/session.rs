//! The life of a connection: `$connect` registers it under a unique nickname for its user
//! (signed in, or anonymous), `$disconnect` forgets it; the user's rooms hear when the
//! user comes online and goes offline.

use crate::config::Config;
use crate::model::{Caller, Connection, ConnectionId, Departure, Nick, User, UserId};
use crate::ports::{Connections, Publisher, Quotas, Rooms, StoreError};
use crate::presence;
use crate::protocol::PresenceEvent;
use crate::quota::BucketKey;

/// A user an authorizer vouched for (`requestContext.authorizer` of `$connect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: UserId,
    /// The nickname from the token's claims, if it had a valid one.
    pub nick: Option<String>,
    pub roles: Vec<String>,
}

/// The keys of the authorizer context that carries an [`Identity`] from ws-authorizer to
/// the WebSocket functions.
pub const CONTEXT_USER_ID: &str = "userId";
pub const CONTEXT_NICK: &str = "nick";
pub const CONTEXT_ROLES: &str = "roles";
/// HTTP API only: why the token was refused. The HTTP API's authorizer lets a refused
/// request through with this key alone, so that http-api answers 401 with the reason
/// (an HTTP API Lambda authorizer can only answer 403 itself).
pub const CONTEXT_REFUSED: &str = "refused";

impl Identity {
    /// The authorizer `context`: `{"userId", "nick" (when there is one), "roles"
    /// (comma-joined, "" when none)}`, as an authorizer context holds only strings,
    /// numbers and booleans.
    pub fn to_context(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut context = serde_json::Map::new();
        context.insert(CONTEXT_USER_ID.into(), self.user_id.as_str().into());
        if let Some(nick) = &self.nick {
            context.insert(CONTEXT_NICK.into(), nick.as_str().into());
        }
        context.insert(CONTEXT_ROLES.into(), self.roles.join(",").into());
        context
    }

    /// The identity in an authorizer context that [`Identity::to_context`] wrote; `None`
    /// without a `userId` (no authorizer, or an anonymous pass).
    pub fn from_context(fields: &std::collections::HashMap<String, serde_json::Value>) -> Option<Self> {
        let text = |name: &str| {
            fields
                .get(name)
                .and_then(|value| value.as_str())
                .filter(|value| !value.is_empty())
        };
        Some(Self {
            user_id: UserId::new(text(CONTEXT_USER_ID)?),
            nick: text(CONTEXT_NICK).map(str::to_owned),
            roles: text(CONTEXT_ROLES)
                .map(|roles| {
                    roles
                        .split(',')
                        .map(str::trim)
                        .filter(|role| !role.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

impl Identity {
    /// The caller of an HTTP request signed in as this identity: no connection, so its
    /// memberships are the user's and outlive the request. Its nickname is the token's, or
    /// else its user id when that is a valid nickname, or else `user`: a name shown in
    /// `from`, which the user id beside it disambiguates.
    pub fn caller(self, config: &Config) -> Caller {
        let max = config.limits.nick_chars;
        let nick = self
            .nick
            .as_deref()
            .and_then(|nick| Nick::parse(nick, max).ok())
            .or_else(|| Nick::parse(self.user_id.as_str(), max).ok())
            .unwrap_or_else(|| Nick::trusted("user"));
        Caller {
            user: User {
                user_id: self.user_id,
                nick,
            },
            roles: self.roles,
            connection: None,
            expires_at: None,
            source_ip: None,
        }
    }
}

/// What `$connect` knows about a new connection.
#[derive(Debug, Clone)]
pub struct NewConnection<'a> {
    pub connection_id: ConnectionId,
    /// `?name=` from the handshake: the nickname when the token gives none; a guest name
    /// is made up when there is neither.
    pub name: Option<&'a str>,
    /// The signed-in user; `None` for an anonymous connection.
    pub identity: Option<Identity>,
    /// API Gateway's `connectedAt`, milliseconds since the epoch.
    pub connected_at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("bad nickname: {0}")]
    BadName(String),
    #[error("nickname `{0}` is taken")]
    NickTaken(Nick),
    #[error("too many connections: at most {burst} at once, then one every {every_ms} ms; wait and try again")]
    RateLimited { burst: u32, every_ms: u128 },
    #[error("the store failed")]
    Store(#[source] StoreError),
}

impl ConnectError {
    /// The HTTP status that refuses the WebSocket handshake.
    pub fn status(&self) -> u16 {
        match self {
            ConnectError::BadName(_) => 400,
            ConnectError::NickTaken(_) => 409,
            ConnectError::RateLimited { .. } => 429,
            ConnectError::Store(_) => 500,
        }
    }
}

/// How many made-up guest names to try before giving up on a crowded store.
const GUEST_NAME_TRIES: usize = 5;

/// Registers the connection under its nickname. When it is its user's first connection,
/// the user's rooms hear that it came online. A signed-in user's connections draw from the
/// `arrivals` bucket: a reconnect loop of a user in many rooms would otherwise announce
/// it in every room each turn. (An anonymous user is in no room when it connects.)
pub async fn connect<S, P>(
    store: &S,
    publisher: &P,
    config: &Config,
    request: NewConnection<'_>,
) -> Result<Connection, ConnectError>
where
    S: Connections + Quotas + ?Sized,
    P: Publisher + ?Sized,
{
    if let (Some(identity), Some(bucket)) = (&request.identity, &config.limits.arrivals) {
        let key = BucketKey::arrivals(&identity.user_id);
        if !store
            .take_token(&key, bucket, arrived_at(&request))
            .await
            .map_err(ConnectError::Store)?
        {
            return Err(ConnectError::RateLimited {
                burst: bucket.burst,
                every_ms: bucket.every.as_millis(),
            });
        }
    }
    let authenticated = request.identity.is_some();
    let (user_id, claimed, roles) = match request.identity {
        Some(identity) => (identity.user_id, identity.nick, identity.roles),
        None => (UserId::anonymous(), None, Vec::new()),
    };
    let chosen = claimed
        .as_deref()
        .or(request.name)
        .map(|name| Nick::parse(name, config.limits.nick_chars).map_err(ConnectError::BadName))
        .transpose()?;
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
            roles: roles.clone(),
            authenticated,
            connected_at_ms: request.connected_at_ms,
            expires_at,
        };
        match store.add_connection(&connection).await {
            Ok(arrival) => {
                if arrival.first {
                    presence::announce(
                        publisher,
                        config,
                        &arrival.rooms,
                        PresenceEvent::Online,
                        &connection.user,
                        Some(&connection.id),
                    )
                    .await;
                }
                return Ok(connection);
            }
            Err(StoreError::NickTaken) if chosen.is_none() => continue,
            Err(StoreError::NickTaken) => return Err(ConnectError::NickTaken(nick)),
            Err(error) => return Err(ConnectError::Store(error)),
        }
    }
    Err(ConnectError::Store(StoreError::unavailable(
        "no free guest nickname found",
    )))
}

/// When the connection arrived: API Gateway's `connectedAt`, or the clock if it is missing.
fn arrived_at(request: &NewConnection<'_>) -> i64 {
    match request.connected_at_ms {
        0 => crate::clock::now_ms(),
        at => at,
    }
}

fn guest_name() -> Nick {
    Nick::trusted(format!("guest-{:06x}", fastrand::u32(..0x100_0000)))
}

/// Forgets the connection, however it ended (`$disconnect`, or a 410 Gone found by
/// fan-out). When it was its user's last connection, the user's rooms hear that it went
/// offline — or, for an anonymous user, whose memberships end with its one connection,
/// that it left. Idempotent: API Gateway may call `$disconnect` for a connection that
/// fan-out already removed as gone, and only the removal that happened announces it.
pub async fn disconnect<S, P>(
    store: &S,
    publisher: &P,
    config: &Config,
    id: &ConnectionId,
) -> Result<Option<Departure>, StoreError>
where
    S: Connections + Rooms + ?Sized,
    P: Publisher + ?Sized,
{
    let Some(departure) = store.remove_connection(id).await? else {
        return Ok(None);
    };
    if departure.last {
        let user = &departure.connection.user;
        if departure.connection.authenticated {
            presence::announce(publisher, config, &departure.rooms, PresenceEvent::Offline, user, None).await;
        } else {
            let mut left = Vec::with_capacity(departure.rooms.len());
            for room in &departure.rooms {
                if store.leave(room, &user.user_id).await?.is_some() {
                    left.push(room.clone());
                }
            }
            presence::announce(publisher, config, &left, PresenceEvent::Left, user, None).await;
        }
    }
    Ok(Some(departure))
}
