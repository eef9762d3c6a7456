//! The in-memory store: the [`Connections`], [`Rooms`], [`Audience`], [`Quotas`] and
//! [`Uploads`] ports with the same rules as the DynamoDB adapter, held under one lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::now_secs;
use crate::files::{FileId, Upload};
use crate::model::{
    Arrival, Connection, ConnectionId, Departure, Member, Nick, OnlineUser, Room, RoomName, User, UserId,
};
use crate::ports::{Audience, Connections, Quotas, Rooms, StoreError, Uploads};
use crate::quota::{Bucket, BucketKey};

/// Above this many buckets, the full ones are forgotten.
const BUCKETS_KEPT: usize = 10_000;

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    connections: HashMap<ConnectionId, Connection>,
    users: HashMap<UserId, UserState>,
    nicks: HashMap<Nick, NickClaim>,
    rooms: BTreeMap<RoomName, Room>,
    members: HashMap<RoomName, BTreeMap<UserId, Membership>>,
    rooms_of: HashMap<UserId, BTreeSet<RoomName>>,
    /// Each token bucket's `full_at`, and when it can be forgotten.
    buckets: HashMap<BucketKey, (i64, i64)>,
    /// The latest nickname of each signed-in user ever seen, online or not.
    profiles: HashMap<UserId, Nick>,
    /// The uploads granted, until their `expires_at`.
    uploads: HashMap<FileId, Upload>,
}

/// A user with connections: its latest nickname and each connection's expiry.
struct UserState {
    nick: Nick,
    connections: BTreeMap<ConnectionId, i64>,
}

impl UserState {
    /// Connections whose TTL has not passed: an expired one ended without `$disconnect`.
    fn live(&self, now: i64) -> impl Iterator<Item = &ConnectionId> {
        self.connections
            .iter()
            .filter(move |(_, expires_at)| **expires_at >= now)
            .map(|(id, _)| id)
    }
}

struct Membership {
    user: User,
    expires_at: Option<i64>,
}

impl Membership {
    fn is_live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|expires_at| expires_at >= now)
    }
}

/// Which user holds a nickname, through which connections, until when; and until when
/// its lease (an HTTP caller's, with no connection) holds it.
struct NickClaim {
    user: UserId,
    connections: BTreeSet<ConnectionId>,
    expires_at: i64,
    lease_until: Option<i64>,
}

impl NickClaim {
    /// Whether a live connection or an unlapsed lease holds the nickname at `now`.
    fn owns_something(&self, now: i64) -> bool {
        (!self.connections.is_empty() && self.expires_at >= now) || self.lease_until.is_some_and(|until| until >= now)
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way later
        // calls trip over, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn live_connections(&self, user: &UserId, now: i64) -> Vec<ConnectionId> {
        self.users
            .get(user)
            .map(|state| state.live(now).cloned().collect())
            .unwrap_or_default()
    }

    /// The room's memberships that have not expired.
    fn live_members(&self, room: &RoomName, now: i64) -> impl Iterator<Item = &Membership> {
        self.members
            .get(room)
            .into_iter()
            .flat_map(BTreeMap::values)
            .filter(move |membership| membership.is_live(now))
    }

    fn membership(&self, room: &RoomName, user: &UserId, now: i64) -> Option<&Membership> {
        self.members
            .get(room)
            .and_then(|members| members.get(user))
            .filter(|membership| membership.is_live(now))
    }

    fn member(&self, membership: &Membership, now: i64) -> Member {
        Member {
            user: membership.user.clone(),
            connections: self.live_connections(&membership.user.user_id, now),
            expires_at: membership.expires_at,
        }
    }

    fn rooms_of(&self, user: &UserId, now: i64) -> Vec<RoomName> {
        self.rooms_of
            .get(user)
            .into_iter()
            .flatten()
            .filter(|room| self.membership(room, user, now).is_some())
            .cloned()
            .collect()
    }

    fn remove_membership(&mut self, room: &RoomName, user: &UserId) -> Option<Membership> {
        let removed = self.members.get_mut(room).and_then(|members| members.remove(user));
        if self.members.get(room).is_some_and(BTreeMap::is_empty) {
            self.members.remove(room);
        }
        if let Some(rooms) = self.rooms_of.get_mut(user) {
            rooms.remove(room);
            if rooms.is_empty() {
                self.rooms_of.remove(user);
            }
        }
        removed
    }
}

#[async_trait]
impl Connections for MemoryStore {
    async fn add_connection(&self, connection: &Connection) -> Result<Arrival, StoreError> {
        let mut state = self.state();
        let now = now_secs();
        let user = &connection.user;
        match state.nicks.get_mut(&user.nick) {
            Some(claim) if claim.user == user.user_id => {
                claim.connections.insert(connection.id.clone());
                claim.expires_at = claim.expires_at.max(connection.expires_at);
            }
            Some(claim) if claim.owns_something(now) => return Err(StoreError::NickTaken),
            _ => {
                state.nicks.insert(
                    user.nick.clone(),
                    NickClaim {
                        user: user.user_id.clone(),
                        connections: BTreeSet::from([connection.id.clone()]),
                        expires_at: connection.expires_at,
                        lease_until: None,
                    },
                );
            }
        }
        state.connections.insert(connection.id.clone(), connection.clone());
        if connection.authenticated {
            state.profiles.insert(user.user_id.clone(), user.nick.clone());
        }
        let entry = state.users.entry(user.user_id.clone()).or_insert_with(|| UserState {
            nick: user.nick.clone(),
            connections: BTreeMap::new(),
        });
        let first = entry.live(now).all(|id| *id == connection.id);
        entry.nick = user.nick.clone();
        entry.connections.insert(connection.id.clone(), connection.expires_at);
        let rooms = state.rooms_of(&user.user_id, now);
        // Memberships show the nickname of the user's latest connection.
        for room in &rooms {
            if let Some(membership) = state
                .members
                .get_mut(room)
                .and_then(|members| members.get_mut(&user.user_id))
            {
                membership.user.nick = user.nick.clone();
            }
        }
        Ok(Arrival { first, rooms })
    }

    async fn connection(&self, id: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        Ok(self.state().connections.get(id).cloned())
    }

    async fn remove_connection(&self, id: &ConnectionId) -> Result<Option<Departure>, StoreError> {
        let mut state = self.state();
        let now = now_secs();
        let Some(connection) = state.connections.remove(id) else {
            return Ok(None);
        };
        let user = &connection.user.user_id;
        let mut last = true;
        if let Some(entry) = state.users.get_mut(user) {
            entry.connections.remove(id);
            last = entry.live(now).next().is_none();
            if entry.connections.is_empty() {
                state.users.remove(user);
            }
        }
        let nick = &connection.user.nick;
        // A claim another user has taken over is theirs, and a lease outlives the connection.
        if let Some(claim) = state.nicks.get_mut(nick).filter(|claim| claim.user == *user) {
            claim.connections.remove(id);
            if claim.connections.is_empty() && claim.lease_until.is_none_or(|until| until < now) {
                state.nicks.remove(nick);
            }
        }
        let rooms = state.rooms_of(user, now);
        Ok(Some(Departure {
            connection,
            last,
            rooms,
        }))
    }

    async fn online_user(&self, user: &UserId) -> Result<Option<OnlineUser>, StoreError> {
        let state = self.state();
        let now = now_secs();
        Ok(state.users.get(user).and_then(|entry| {
            let connections: Vec<ConnectionId> = entry.live(now).cloned().collect();
            (!connections.is_empty()).then(|| OnlineUser {
                user: User {
                    user_id: user.clone(),
                    nick: entry.nick.clone(),
                },
                connections,
            })
        }))
    }

    async fn nick_owner(&self, nick: &Nick) -> Result<Option<UserId>, StoreError> {
        let state = self.state();
        Ok(state
            .nicks
            .get(nick)
            .filter(|claim| claim.owns_something(now_secs()))
            .map(|claim| claim.user.clone()))
    }

    async fn lease_nick(&self, user: &User, now: i64, lease: Duration) -> Result<(), StoreError> {
        let mut state = self.state();
        let lease = lease.as_secs() as i64;
        let until = now + lease;
        match state.nicks.get_mut(&user.nick) {
            Some(claim) if claim.user == user.user_id => {
                // As the DynamoDB adapter: renewed only once less than half of it is left.
                if claim.lease_until.is_none_or(|held| 2 * (held - now) < lease) {
                    claim.lease_until = Some(until);
                }
            }
            Some(claim) if claim.owns_something(now) => return Err(StoreError::NickTaken),
            _ => {
                state.nicks.insert(
                    user.nick.clone(),
                    NickClaim {
                        user: user.user_id.clone(),
                        connections: BTreeSet::new(),
                        expires_at: until,
                        lease_until: Some(until),
                    },
                );
            }
        }
        Ok(())
    }

    async fn remember_user(&self, user: &User) -> Result<(), StoreError> {
        self.state().profiles.insert(user.user_id.clone(), user.nick.clone());
        Ok(())
    }

    async fn known_user(&self, user: &UserId) -> Result<Option<User>, StoreError> {
        if let Some(online) = self.online_user(user).await? {
            return Ok(Some(online.user));
        }
        Ok(self.state().profiles.get(user).map(|nick| User {
            user_id: user.clone(),
            nick: nick.clone(),
        }))
    }
}

#[async_trait]
impl Rooms for MemoryStore {
    async fn create_room(&self, room: &Room, max_rooms: usize) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.rooms.contains_key(&room.name) {
            return Err(StoreError::RoomExists);
        }
        if state.rooms.len() >= max_rooms {
            return Err(StoreError::CatalogFull);
        }
        state.rooms.insert(room.name.clone(), room.clone());
        Ok(())
    }

    async fn room(&self, name: &RoomName) -> Result<Option<Room>, StoreError> {
        Ok(self.state().rooms.get(name).cloned())
    }

    async fn rooms(&self) -> Result<Vec<Room>, StoreError> {
        Ok(self.state().rooms.values().cloned().collect())
    }

    async fn join(&self, room: &RoomName, user: &User, expires_at: Option<i64>) -> Result<bool, StoreError> {
        let mut state = self.state();
        if state.membership(room, &user.user_id, now_secs()).is_some() {
            return Ok(false);
        }
        state.members.entry(room.clone()).or_default().insert(
            user.user_id.clone(),
            Membership {
                user: user.clone(),
                expires_at,
            },
        );
        state
            .rooms_of
            .entry(user.user_id.clone())
            .or_default()
            .insert(room.clone());
        Ok(true)
    }

    async fn leave(&self, room: &RoomName, user: &UserId) -> Result<Option<Member>, StoreError> {
        let mut state = self.state();
        let now = now_secs();
        let removed = state.remove_membership(room, user);
        Ok(removed
            .filter(|membership| membership.is_live(now))
            .map(|membership| state.member(&membership, now)))
    }

    async fn member(&self, room: &RoomName, user: &UserId) -> Result<Option<Member>, StoreError> {
        let state = self.state();
        let now = now_secs();
        Ok(state
            .membership(room, user, now)
            .map(|membership| state.member(membership, now)))
    }

    async fn members(&self, room: &RoomName) -> Result<Vec<Member>, StoreError> {
        let state = self.state();
        let now = now_secs();
        Ok(state
            .live_members(room, now)
            .map(|membership| state.member(membership, now))
            .collect())
    }

    async fn rooms_of(&self, user: &UserId) -> Result<Vec<RoomName>, StoreError> {
        Ok(self.state().rooms_of(user, now_secs()))
    }
}

#[async_trait]
impl Audience for MemoryStore {
    async fn room_audience(&self, room: &RoomName) -> Result<Vec<ConnectionId>, StoreError> {
        let state = self.state();
        let now = now_secs();
        Ok(state
            .live_members(room, now)
            .flat_map(|membership| state.live_connections(&membership.user.user_id, now))
            .collect())
    }

    async fn broadcast_audience(&self) -> Result<Vec<ConnectionId>, StoreError> {
        let state = self.state();
        let now = now_secs();
        let audience: BTreeSet<ConnectionId> = state
            .rooms_of
            .keys()
            .filter(|user| !state.rooms_of(user, now).is_empty())
            .flat_map(|user| state.live_connections(user, now))
            .collect();
        Ok(audience.into_iter().collect())
    }

    async fn user_audience(&self, user: &UserId) -> Result<Vec<ConnectionId>, StoreError> {
        Ok(self.state().live_connections(user, now_secs()))
    }
}

#[async_trait]
impl Quotas for MemoryStore {
    async fn take_token(&self, key: &BucketKey, bucket: &Bucket, now_ms: i64) -> Result<bool, StoreError> {
        let mut state = self.state();
        if state.buckets.len() >= BUCKETS_KEPT {
            state.buckets.retain(|_, (_, forget_at)| *forget_at > now_ms);
        }
        let full_at = state.buckets.get(key).map(|(full_at, _)| *full_at);
        let Some(full_at) = bucket.take(full_at, now_ms) else {
            return Ok(false);
        };
        state
            .buckets
            .insert(key.clone(), (full_at, bucket.forget_after(full_at)));
        Ok(true)
    }
}

#[async_trait]
impl Uploads for MemoryStore {
    async fn add_upload(&self, upload: &Upload) -> Result<(), StoreError> {
        let mut state = self.state();
        let now = now_secs();
        // Expired records go as new ones come, as DynamoDB's TTL takes them.
        if state.uploads.len() >= BUCKETS_KEPT {
            state.uploads.retain(|_, upload| upload.expires_at >= now);
        }
        state.uploads.insert(upload.file_id.clone(), upload.clone());
        Ok(())
    }

    async fn upload(&self, file: &FileId) -> Result<Option<Upload>, StoreError> {
        let now = now_secs();
        Ok(self
            .state()
            .uploads
            .get(file)
            .filter(|upload| upload.expires_at >= now)
            .cloned())
    }
}
