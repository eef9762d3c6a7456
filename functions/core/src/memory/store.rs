//! The in-memory [`Store`]: the same rules as the DynamoDB store, held under one lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::clock::now_secs;
use crate::model::{Connection, ConnectionId, ConnectionState, Member, Nick, Room, RoomName, UserId};
use crate::ports::{Store, StoreError};

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    connections: HashMap<ConnectionId, Connection>,
    nicks: HashMap<Nick, NickClaim>,
    rooms: BTreeMap<RoomName, Room>,
    members: HashMap<RoomName, BTreeMap<ConnectionId, Member>>,
    rooms_of: HashMap<ConnectionId, BTreeSet<RoomName>>,
}

/// Which user holds a nickname, through which connections, until when.
struct NickClaim {
    user: UserId,
    connections: BTreeSet<ConnectionId>,
    expires_at: i64,
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
    fn rooms_of(&self, id: &ConnectionId) -> Vec<RoomName> {
        self.rooms_of
            .get(id)
            .map(|rooms| rooms.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn add_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        let mut state = self.state();
        let now = now_secs();
        let nick = connection.user.nick.clone();
        match state.nicks.get_mut(&nick) {
            Some(claim) if claim.user == connection.user.user_id => {
                claim.connections.insert(connection.id.clone());
                claim.expires_at = claim.expires_at.max(connection.expires_at);
            }
            Some(claim) if claim.expires_at >= now => return Err(StoreError::NickTaken),
            _ => {
                state.nicks.insert(
                    nick,
                    NickClaim {
                        user: connection.user.user_id.clone(),
                        connections: BTreeSet::from([connection.id.clone()]),
                        expires_at: connection.expires_at,
                    },
                );
            }
        }
        state.connections.insert(connection.id.clone(), connection.clone());
        Ok(())
    }

    async fn connection(&self, id: &ConnectionId) -> Result<Option<ConnectionState>, StoreError> {
        let state = self.state();
        Ok(state.connections.get(id).map(|connection| ConnectionState {
            connection: connection.clone(),
            rooms: state.rooms_of(id),
        }))
    }

    async fn remove_connection(&self, id: &ConnectionId) -> Result<Option<ConnectionState>, StoreError> {
        let mut state = self.state();
        let Some(connection) = state.connections.remove(id) else {
            return Ok(None);
        };
        let rooms = state.rooms_of(id);
        for room in &rooms {
            if let Some(members) = state.members.get_mut(room) {
                members.remove(id);
                if members.is_empty() {
                    state.members.remove(room);
                }
            }
        }
        state.rooms_of.remove(id);
        let nick = &connection.user.nick;
        if let Some(claim) = state.nicks.get_mut(nick) {
            claim.connections.remove(id);
            if claim.connections.is_empty() {
                state.nicks.remove(nick);
            }
        }
        Ok(Some(ConnectionState { connection, rooms }))
    }

    async fn create_room(&self, room: &Room) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.rooms.contains_key(&room.name) {
            return Err(StoreError::RoomExists);
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

    async fn join(&self, room: &RoomName, member: &Member) -> Result<bool, StoreError> {
        let mut state = self.state();
        if !state.connections.contains_key(&member.connection_id) {
            return Err(StoreError::NotConnected);
        }
        let members = state.members.entry(room.clone()).or_default();
        if members.contains_key(&member.connection_id) {
            return Ok(false);
        }
        members.insert(member.connection_id.clone(), member.clone());
        state
            .rooms_of
            .entry(member.connection_id.clone())
            .or_default()
            .insert(room.clone());
        Ok(true)
    }

    async fn leave(&self, room: &RoomName, connection: &ConnectionId) -> Result<Option<Member>, StoreError> {
        let mut state = self.state();
        let removed = state
            .members
            .get_mut(room)
            .and_then(|members| members.remove(connection));
        if state.members.get(room).is_some_and(BTreeMap::is_empty) {
            state.members.remove(room);
        }
        if let Some(rooms) = state.rooms_of.get_mut(connection) {
            rooms.remove(room);
            if rooms.is_empty() {
                state.rooms_of.remove(connection);
            }
        }
        Ok(removed)
    }

    async fn member(&self, room: &RoomName, connection: &ConnectionId) -> Result<Option<Member>, StoreError> {
        Ok(self
            .state()
            .members
            .get(room)
            .and_then(|members| members.get(connection))
            .cloned())
    }

    async fn members(&self, room: &RoomName) -> Result<Vec<Member>, StoreError> {
        Ok(self
            .state()
            .members
            .get(room)
            .map(|members| members.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn broadcast_audience(&self) -> Result<Vec<ConnectionId>, StoreError> {
        let mut audience: Vec<ConnectionId> = self.state().rooms_of.keys().cloned().collect();
        audience.sort();
        Ok(audience)
    }

    async fn user_connections(&self, user: &UserId) -> Result<Vec<ConnectionId>, StoreError> {
        let mut ids: Vec<ConnectionId> = self
            .state()
            .connections
            .values()
            .filter(|connection| &connection.user.user_id == user)
            .map(|connection| connection.id.clone())
            .collect();
        ids.sort();
        Ok(ids)
    }
}
