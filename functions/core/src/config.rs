//! Settings of the domain rules: input limits, the broadcast room, connection lifetime,
//! sign-in, presence, how long to wait for the archive.

use std::time::Duration;

use crate::quota::Bucket;

/// Input limits. Defaults follow the protocol documentation, docs/protocol.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest room name, in characters of `[A-Za-z0-9_.-]`.
    pub room_name_chars: usize,
    /// Longest nickname, in characters of `[A-Za-z0-9_.-]`.
    pub nick_chars: usize,
    /// Largest message text, in UTF-8 bytes.
    pub text_bytes: usize,
    /// Largest client frame we parse at all; API Gateway's own frame limit is 32 KB.
    pub frame_bytes: usize,
    /// Longest `clientMsgId`, which we echo back and so must bound.
    pub client_msg_id_chars: usize,
    /// The messages (`send`, `dm`, `edit`, `delete`) of one signed-in user, or of one
    /// anonymous connection; `None`: unlimited.
    pub messages: Option<Bucket>,
    /// The reads (`history`, `who`, `rooms`, `whoami`) of one signed-in user, or of one
    /// anonymous connection; `None`: unlimited.
    pub reads: Option<Bucket>,
    /// The changes of membership (`join`, `leave`: each one announced to the room) of one
    /// signed-in user, or of one anonymous connection; `None`: unlimited.
    pub memberships: Option<Bucket>,
    /// The rooms one signed-in user creates; `None`: unlimited.
    pub room_creations: Option<Bucket>,
    /// The rooms anonymous users create from one source IP address; `None`: unlimited.
    pub anonymous_room_creations: Option<Bucket>,
    /// The connections one signed-in user opens (each one that comes online is announced
    /// to all the user's rooms); `None`: unlimited.
    pub arrivals: Option<Bucket>,
    /// Most rooms one user is a member of at once.
    pub rooms_per_user: usize,
    /// Most rooms in the catalog: `rooms` lists them all in one frame, which must stay
    /// under API Gateway's 128 KB.
    pub max_rooms: usize,
    /// Largest file an `upload` may declare, in bytes (`ROOMCAST_MAX_FILE_BYTES`).
    pub file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            room_name_chars: 64,
            nick_chars: 32,
            text_bytes: 4096,
            frame_bytes: 32 * 1024,
            client_msg_id_chars: 64,
            // A person types a few messages a second at most; a paste of lines, or a client
            // flushing what it queued while offline, is a burst.
            messages: Bucket::per_second(10.0, 50),
            // A page loads its rooms, who is online and a page of history for each room it
            // shows; a poller reads once a second or so, and pages on at once while there is
            // more (the tests' pollers read every 50 ms, and a page per message as messages
            // settle).
            reads: Bucket::per_second(25.0, 250),
            // Joining the rooms one had after a restart is a burst; a loop is not.
            memberships: Bucket::per_second(1.0, 30),
            // Ten rooms at once, then one every six minutes.
            room_creations: Bucket::per_second(1.0 / 360.0, 10),
            // One address may be a whole office behind NAT: twenty at once, twenty an hour.
            anonymous_room_creations: Bucket::per_second(20.0 / 3600.0, 20),
            // Reconnecting a flaky network or opening a few tabs is a burst; a reconnect
            // loop of a user in 100 rooms would otherwise announce 200 presence events a turn.
            arrivals: Bucket::per_second(1.0 / 3.0, 20),
            rooms_per_user: 100,
            // 1,000 names of up to 64 characters as `{"name":"..."}`: under 80 KB.
            max_rooms: 1_000,
            file_bytes: 25 * 1024 * 1024,
        }
    }
}

/// Whether users sign in (`ROOMCAST_AUTH`): the authorizer checks tokens; the domain only
/// needs to know whether roles mean anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Anonymous users named by `?name=` (the local default).
    #[default]
    None,
    /// A token is used when given.
    Optional,
    /// No valid token, no connection.
    Required,
}

impl AuthMode {
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "none" => Some(Self::None),
            "optional" => Some(Self::Optional),
            "required" => Some(Self::Required),
            _ => None,
        }
    }

    pub fn is_on(self) -> bool {
        self != Self::None
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub limits: Limits,
    /// A message sent here reaches every connection that is in any room.
    pub broadcast_room: String,
    /// How long items tied to a connection live: a little past API Gateway's 2-hour
    /// connection limit, because `$disconnect` is best-effort.
    pub connection_ttl: Duration,
    /// How long an HTTP caller holds its nickname after an action that shows it, as a
    /// connection holds it while it lasts (`ROOMCAST_NICK_LEASE_SECS`): another user's
    /// token with that nickname is refused meanwhile. Renewed by a call that finds less
    /// than half of it left, so steady polling mostly reads.
    pub nick_lease: Duration,
    pub auth: AuthMode,
    /// Presence events (`joined`, `left`, `online`, `offline`) reach a room only while it
    /// has at most this many live connections: announcing every arrival to every member
    /// costs the square of the room's size. Larger rooms use `who` instead.
    pub presence_max_audience: usize,
    /// Most users one `who` answer lists (the frame must stay under API Gateway's 128 KB).
    pub who_max_users: usize,
    /// `ROOMCAST_LOG_EPOCH`: the first part of every message id made from a log position
    /// (`MessageId::at`). Raise it when the topic is made anew (its offsets start again),
    /// so that new ids still sort after the kept ones.
    pub log_epoch: u8,
    /// How long the URL of a file in a message or a history page stays valid
    /// (`ROOMCAST_FILE_URL_SECS`): it is signed afresh for each frame.
    pub file_url_validity: Duration,
}

impl Config {
    /// Whether `room` is the broadcast room: it needs no creating, and what is sent there
    /// reaches every connection in any room.
    pub fn is_broadcast(&self, room: &str) -> bool {
        room == self.broadcast_room
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            broadcast_room: "admin".to_owned(),
            connection_ttl: Duration::from_secs(2 * 3600 + 15 * 60),
            // A polling client calls every few seconds; a service that posts now and then
            // holds the name a few minutes past its post.
            nick_lease: Duration::from_secs(5 * 60),
            auth: AuthMode::None,
            presence_max_audience: 100,
            who_max_users: 500,
            log_epoch: 0,
            file_url_validity: Duration::from_secs(3600),
        }
    }
}
