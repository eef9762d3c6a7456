//! The [`Rooms`] port: the room catalog (`ROOM#<r>` / `#META`, listed through `gsi1`) and the
//! memberships of users, written in both directions (`ROOM#<r>` / `USER#<u>` with the
//! member's live connections, and `USER#<u>` / `ROOM#<r>`) by one transaction.

use async_trait::async_trait;
use roomcast_core::clock::now_secs;
use roomcast_core::model::{Member, Nick, Room, RoomName, User, UserId};
use roomcast_core::ports::{Rooms, StoreError};

use super::item::{self, Entry, Item, Reader};
use super::keys::{self, attr};
use super::store::DynamoStore;
use super::table::{corrupt, query_all, unless_condition_failed, Table};

fn membership_key(room: &RoomName, user: &UserId) -> Item {
    item::key(keys::room(room), keys::user(user))
}

fn reverse_key(room: &RoomName, user: &UserId) -> Item {
    item::key(keys::user(user), keys::room(room))
}

/// Adds connection entries to a membership's `conns` (and sets the member's nick), if the
/// membership still exists (one conditional UpdateItem). Returns whether it did.
pub(super) async fn add_to_membership(
    table: &Table,
    room: &RoomName,
    user: &UserId,
    entries: &[Entry],
    nick: Option<&Nick>,
) -> Result<bool, StoreError> {
    let mut update = table
        .update(membership_key(room, user))
        .condition_expression("attribute_exists(#pk)")
        .expression_attribute_names("#pk", attr::PK)
        .expression_attribute_names("#c", attr::CONNS)
        .expression_attribute_values(":c", item::entry_set(entries));
    update = match nick {
        Some(nick) => update
            .update_expression("SET #n = :n ADD #c :c")
            .expression_attribute_names("#n", attr::NICK)
            .expression_attribute_values(":n", item::s(nick.as_str())),
        None => update.update_expression("ADD #c :c"),
    };
    Ok(unless_condition_failed(update.send().await)?.is_some())
}

/// Takes connection entries out of a membership's `conns`, if the membership still exists
/// (one conditional UpdateItem, which never creates an item). Returns whether it did.
pub(super) async fn remove_from_membership(
    table: &Table,
    room: &RoomName,
    user: &UserId,
    entries: &[Entry],
) -> Result<bool, StoreError> {
    let update = table
        .update(membership_key(room, user))
        .update_expression("DELETE #c :c")
        .condition_expression("attribute_exists(#pk)")
        .expression_attribute_names("#pk", attr::PK)
        .expression_attribute_names("#c", attr::CONNS)
        .expression_attribute_values(":c", item::entry_set(entries));
    Ok(unless_condition_failed(update.send().await)?.is_some())
}

impl DynamoStore {
    /// The rooms the user is a member of, sorted by name (one consistent Query of the user's
    /// partition; memberships past their expiry are left out).
    pub(super) async fn user_rooms(&self, user: &UserId, now: i64) -> Result<Vec<RoomName>, StoreError> {
        let query = self.table.query_prefix(keys::user(user), keys::ROOM_PREFIX);
        let mut rooms = Vec::new();
        for found in query_all(query).await? {
            if Reader(&found).is_live(now).map_err(corrupt)? {
                rooms.push(item::parse_reverse_room(&found).map_err(corrupt)?);
            }
        }
        Ok(rooms)
    }

    /// The membership item, if it exists and has not expired (one consistent GetItem).
    async fn live_membership(&self, room: &RoomName, user: &UserId, now: i64) -> Result<Option<Item>, StoreError> {
        let Some(found) = self.table.get(membership_key(room, user), &[]).await? else {
            return Ok(None);
        };
        Ok(Reader(&found).is_live(now).map_err(corrupt)?.then_some(found))
    }
}

#[async_trait]
impl Rooms for DynamoStore {
    /// One transaction of two writes: the catalog item, on condition that the name is free,
    /// and the catalog's room count, on condition that it is under `max_rooms`. (A table
    /// from before the count starts it at 0.)
    async fn create_room(&self, room: &Room, max_rooms: usize) -> Result<(), StoreError> {
        let max = i64::try_from(max_rooms).unwrap_or(i64::MAX);
        let put = self.table.transact_put(item::room_meta(room), |put| {
            put.condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", attr::PK)
        })?;
        let count = self
            .table
            .transact_update(item::key(keys::CATALOG.to_owned(), keys::COUNT), |update| {
                update
                    .update_expression("ADD #n :one")
                    .condition_expression("attribute_not_exists(#n) OR #n < :max")
                    .expression_attribute_names("#n", attr::ROOM_COUNT)
                    .expression_attribute_values(":one", item::n(1))
                    .expression_attribute_values(":max", item::n(max))
            })?;
        let cancelled = match self.table.transact("create_room", vec![put, count]).await? {
            Ok(()) => return Ok(()),
            Err(cancelled) => cancelled,
        };
        match cancelled.condition_failed(0, 2) {
            Some(true) => Err(StoreError::RoomExists),
            Some(false) => Err(StoreError::CatalogFull),
            // No reasons given: the room tells which condition failed.
            None if self.room(&room.name).await?.is_some() => Err(StoreError::RoomExists),
            None => Err(StoreError::CatalogFull),
        }
    }

    /// One consistent GetItem.
    async fn room(&self, name: &RoomName) -> Result<Option<Room>, StoreError> {
        let found = self.table.get(item::key(keys::room(name), keys::META), &[]).await?;
        found.as_ref().map(item::parse_room).transpose().map_err(corrupt)
    }

    /// One paginated Query on `gsi1`, eventually consistent: a room created an instant ago
    /// may be missing ([`Rooms::room`] reads consistently).
    async fn rooms(&self) -> Result<Vec<Room>, StoreError> {
        let query = self
            .table
            .query()
            .index_name(keys::GSI1)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", attr::GSI1_PK)
            .expression_attribute_values(":pk", item::s(keys::CATALOG));
        // gsi1sk is `ROOM#{name}`, so the index returns the catalog sorted by name.
        query_all(query)
            .await?
            .iter()
            .map(item::parse_room)
            .collect::<Result<_, _>>()
            .map_err(corrupt)
    }

    /// One transaction writing both directions of the membership (2 writes), on condition
    /// that there is none (or only an expired one); then one consistent GetItem of the
    /// user's `#CONNS` and, if it has live connections, one conditional UpdateItem adding
    /// them to the membership. Written first and read after, so that of this join and a
    /// connection arriving at the same moment at least one sees the other.
    async fn join(&self, room: &RoomName, user: &User, expires_at: Option<i64>) -> Result<bool, StoreError> {
        let now = now_secs();
        let table = &self.table;
        let membership = table.transact_put(item::membership(room, user, expires_at), |put| {
            put.condition_expression("attribute_not_exists(#pk) OR #e < :now")
                .expression_attribute_names("#pk", attr::PK)
                .expression_attribute_names("#e", attr::EXPIRES_AT)
                .expression_attribute_values(":now", item::n(now))
        })?;
        let reverse = table.transact_put(item::reverse_membership(room, &user.user_id, expires_at), |put| put)?;
        if let Err(cancelled) = table.transact("join", vec![membership, reverse]).await? {
            if cancelled.condition_failed(0, 2) == Some(true) {
                return Ok(false);
            }
            // No usable reasons: a live membership is what a failed condition means.
            tracing::debug!(reasons = ?cancelled.reasons, "join cancelled without usable reasons; reading back");
            if self.live_membership(room, &user.user_id, now).await?.is_some() {
                return Ok(false);
            }
            return Err(cancelled.into_error());
        }
        let live: Vec<Entry> = self
            .user_entries(&user.user_id)
            .await?
            .into_iter()
            .filter(|entry| entry.is_live(now))
            .collect();
        if !live.is_empty() {
            add_to_membership(table, room, &user.user_id, &live, None).await?;
        }
        Ok(true)
    }

    /// One consistent GetItem of the membership (to return it with its connections), then
    /// one transaction deleting both directions (2 writes), on condition that it still
    /// exists: of two leaves at once, one gets the member and the other `None`.
    async fn leave(&self, room: &RoomName, user: &UserId) -> Result<Option<Member>, StoreError> {
        let now = now_secs();
        let Some(found) = self.table.get(membership_key(room, user), &[]).await? else {
            return Ok(None);
        };
        let live = Reader(&found).is_live(now).map_err(corrupt)?;
        let member = item::parse_member(&found, now).map_err(corrupt)?;
        let delete_member = self.table.transact_delete(membership_key(room, user), |delete| {
            delete
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", attr::PK)
        })?;
        let delete_reverse = self.table.transact_delete(reverse_key(room, user), |delete| delete)?;
        match self
            .table
            .transact("leave", vec![delete_member, delete_reverse])
            .await?
        {
            // An expired membership is removed too, but there was nothing to leave.
            Ok(()) => Ok(live.then_some(member)),
            Err(_) => Ok(None),
        }
    }

    /// One consistent GetItem.
    async fn member(&self, room: &RoomName, user: &UserId) -> Result<Option<Member>, StoreError> {
        let now = now_secs();
        let found = self.live_membership(room, user, now).await?;
        found
            .map(|found| item::parse_member(&found, now))
            .transpose()
            .map_err(corrupt)
    }

    /// One consistent, paginated Query of the room's partition; sorted by user id.
    async fn members(&self, room: &RoomName) -> Result<Vec<Member>, StoreError> {
        let now = now_secs();
        let query = self.table.query_prefix(keys::room(room), keys::USER_PREFIX);
        let mut members = Vec::new();
        for found in query_all(query).await? {
            if Reader(&found).is_live(now).map_err(corrupt)? {
                members.push(item::parse_member(&found, now).map_err(corrupt)?);
            }
        }
        Ok(members)
    }

    /// One consistent, paginated Query of the user's partition.
    async fn rooms_of(&self, user: &UserId) -> Result<Vec<RoomName>, StoreError> {
        self.user_rooms(user, now_secs()).await
    }
}
