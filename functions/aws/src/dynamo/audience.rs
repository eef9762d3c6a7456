//! The [`Audience`] port: who a fan-out record reaches, read from the `conns` sets of the
//! memberships (one Query per room) and of the users' `#CONNS` (one GetItem per user), and
//! for the broadcast room from the memberships' audience shards on `gsi1`.

use std::collections::BTreeSet;

use async_trait::async_trait;
use roomcast_core::clock::now_secs;
use roomcast_core::model::{ConnectionId, RoomName, UserId};
use roomcast_core::ports::{Audience, StoreError};

use super::item::{self, Reader};
use super::keys::{self, attr};
use super::store::DynamoStore;
use super::table::{bounded, corrupt, query_all};

#[async_trait]
impl Audience for DynamoStore {
    /// One consistent, paginated Query of the room's partition, projecting only the
    /// members' `conns` and expiry: whatever the room's size, one Query per room.
    async fn room_audience(&self, room: &RoomName) -> Result<Vec<ConnectionId>, StoreError> {
        let now = now_secs();
        let query = self
            .table
            .query_prefix(keys::room(room), keys::USER_PREFIX)
            .projection_expression("#c, #e")
            .expression_attribute_names("#c", attr::CONNS)
            .expression_attribute_names("#e", attr::EXPIRES_AT);
        let mut audience = Vec::new();
        for found in query_all(query).await? {
            if Reader(&found).is_live(now).map_err(corrupt)? {
                audience.extend(item::live_ids(&item::entries(&found).map_err(corrupt)?, now));
            }
        }
        Ok(audience)
    }

    /// One paginated Query per audience shard on `gsi1` (8, all at once), projecting the
    /// memberships' `conns` and expiry; a user in several rooms appears once per room,
    /// hence the set. Like every `gsi1` read it is eventually consistent: a join or an
    /// arrival of the last instant (usually well under a second) may be missing.
    async fn broadcast_audience(&self) -> Result<Vec<ConnectionId>, StoreError> {
        let now = now_secs();
        let shards = bounded(0..keys::AUDIENCE_SHARDS, keys::AUDIENCE_SHARDS as usize, |shard| {
            let query = self
                .table
                .query()
                .index_name(keys::GSI1)
                .key_condition_expression("#pk = :pk")
                .projection_expression("#c, #e")
                .expression_attribute_names("#pk", attr::GSI1_PK)
                .expression_attribute_names("#c", attr::CONNS)
                .expression_attribute_names("#e", attr::EXPIRES_AT)
                .expression_attribute_values(":pk", item::s(keys::audience_shard(shard)));
            query_all(query)
        })
        .await?;
        let mut audience = BTreeSet::new();
        for found in shards.iter().flatten() {
            if Reader(found).is_live(now).map_err(corrupt)? {
                audience.extend(item::live_ids(&item::entries(found).map_err(corrupt)?, now));
            }
        }
        Ok(audience.into_iter().collect())
    }

    /// One consistent GetItem of the user's `#CONNS` (its `conns` only).
    async fn user_audience(&self, user: &UserId) -> Result<Vec<ConnectionId>, StoreError> {
        Ok(item::live_ids(&self.user_entries(user).await?, now_secs()))
    }
}
