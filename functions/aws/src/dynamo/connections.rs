//! The [`Connections`] port: a connection's `#META`, its user's live connections
//! (`USER#<u>` / `#CONNS`, whose atomic ADD and DELETE decide `first` and `last`), and the
//! audience of the user's rooms, which every connection joins and leaves with its user.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use roomcast_core::clock::now_secs;
use roomcast_core::model::{Arrival, Connection, ConnectionId, Departure, Nick, OnlineUser, User, UserId};
use roomcast_core::ports::{Connections, StoreError};

use super::item::{self, Entry, Item, Reader};
use super::keys::{self, attr};
use super::rooms::{add_to_membership, remove_from_membership};
use super::store::DynamoStore;
use super::table::{bounded, corrupt, unavailable, unless_condition_failed};

/// How many memberships an arriving or departing connection updates at once.
pub(super) const MEMBERSHIP_WRITES_IN_FLIGHT: usize = 16;

fn meta_key(id: &ConnectionId) -> Item {
    item::key(keys::connection(id), keys::META)
}

fn conns_key(user: &UserId) -> Item {
    item::key(keys::user(user), keys::CONNS)
}

/// How long a signed-in user's profile outlives its last connection: direct messages may
/// wait for it that long (a year, and a month to come back).
const PROFILE_SECS: i64 = 395 * 24 * 3600;

fn profile_key(user: &UserId) -> Item {
    item::key(keys::user(user), keys::PROFILE)
}

impl DynamoStore {
    /// Records a signed-in user's latest nickname (one UpdateItem), for direct messages
    /// sent while it is offline.
    async fn remember(&self, user: &User, now: i64) -> Result<(), StoreError> {
        self.table
            .update(profile_key(&user.user_id))
            .update_expression("SET #u = :u, #n = :n, #e = :e")
            .expression_attribute_names("#u", attr::USER_ID)
            .expression_attribute_names("#n", attr::NICK)
            .expression_attribute_names("#e", attr::EXPIRES_AT)
            .expression_attribute_values(":u", item::s(user.user_id.as_str()))
            .expression_attribute_values(":n", item::s(user.nick.as_str()))
            .expression_attribute_values(":e", item::n(now + PROFILE_SECS))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// The entries of the user's `#CONNS`, expired ones included (one consistent GetItem of
    /// the `conns` attribute).
    pub(super) async fn user_entries(&self, user: &UserId) -> Result<Vec<Entry>, StoreError> {
        let found = self.table.get(conns_key(user), &[attr::CONNS]).await?;
        found
            .map_or_else(|| Ok(Vec::new()), |found| item::entries(&found))
            .map_err(corrupt)
    }

    /// The part of `add_connection` after the claim: the user's `#CONNS`, then its rooms.
    async fn arrive(&self, connection: &Connection) -> Result<Arrival, StoreError> {
        let now = now_secs();
        let user = &connection.user;
        let mine = Entry::of(connection);
        // Write first, then read the rooms: of this arrival and a join at the same moment,
        // at least one sees the other (a join writes the membership, then reads `#CONNS`).
        let old = self
            .table
            .update(conns_key(&user.user_id))
            .update_expression("SET #u = :u, #n = :n, #e = :e ADD #c :c")
            .expression_attribute_names("#u", attr::USER_ID)
            .expression_attribute_names("#n", attr::NICK)
            .expression_attribute_names("#e", attr::EXPIRES_AT)
            .expression_attribute_names("#c", attr::CONNS)
            .expression_attribute_values(":u", item::s(user.user_id.as_str()))
            .expression_attribute_values(":n", item::s(user.nick.as_str()))
            .expression_attribute_values(":e", item::n(connection.expires_at))
            .expression_attribute_values(":c", item::entry_set([&mine]))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable)?
            .attributes
            .unwrap_or_default();
        let before = item::entries(&old).map_err(corrupt)?;
        let first = arrives_first(&before, &mine, now);

        // The item lives until its longest-lived connection ends; the SET above put this
        // connection's expiry, which is usually the latest one.
        let longest = before
            .iter()
            .filter(|entry| entry.id != mine.id)
            .map(|entry| entry.expires_at)
            .max();
        if let Some(longest) = longest.filter(|longest| *longest > mine.expires_at) {
            let raised = self
                .table
                .update(conns_key(&user.user_id))
                .update_expression("SET #e = :e")
                .condition_expression("#e < :e")
                .expression_attribute_names("#e", attr::EXPIRES_AT)
                .expression_attribute_values(":e", item::n(longest))
                .send()
                .await;
            unless_condition_failed(raised)?;
        }

        // Entries past their expiry (connections whose `$disconnect` never came) count for
        // nothing; forget them so that the sets do not grow.
        let stale = stale_entries(&before, &mine, now);
        if !stale.is_empty() {
            self.table
                .update(conns_key(&user.user_id))
                .update_expression("DELETE #c :c")
                .expression_attribute_names("#c", attr::CONNS)
                .expression_attribute_values(":c", item::entry_set(&stale))
                .send()
                .await
                .map_err(unavailable)?;
        }

        if connection.authenticated {
            self.remember(user, now).await?;
        }

        let rooms = self.user_rooms(&user.user_id, now).await?;
        let joined = bounded(rooms, MEMBERSHIP_WRITES_IN_FLIGHT, |room| {
            let table = self.table.clone();
            let user = user.clone();
            let mine = mine.clone();
            let stale = stale.clone();
            async move {
                // A room left in between is skipped: its membership is gone.
                let added = add_to_membership(&table, &room, &user.user_id, &[mine], Some(&user.nick)).await?;
                if added && !stale.is_empty() {
                    remove_from_membership(&table, &room, &user.user_id, &stale).await?;
                }
                Ok(added.then_some(room))
            }
        })
        .await?;
        let mut rooms: Vec<_> = joined.into_iter().flatten().collect();
        rooms.sort();
        Ok(Arrival { first, rooms })
    }

    /// The part of `remove_connection` that decides `last`: one UpdateItem taking the
    /// connection out of its user's `#CONNS` (returning the old set) and, if this call took
    /// it out, one recording the outcome on the `#META` for a call that completes the
    /// removal. `None` if the `#META` went meanwhile.
    async fn depart(&self, connection: &Connection, now: i64) -> Result<Option<bool>, StoreError> {
        let mine = Entry::of(connection);
        let old = self
            .table
            .update(conns_key(&connection.user.user_id))
            .update_expression("DELETE #c :c")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#c", attr::CONNS)
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_values(":c", item::entry_set([&mine]))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let old = unless_condition_failed(old)?
            .and_then(|output| output.attributes)
            .unwrap_or_default();
        let (removed_here, last) = departs(&item::entries(&old).map_err(corrupt)?, &mine, now);
        if !removed_here {
            // Not in `#CONNS` (a concurrent removal took it, or the arrival stopped before
            // adding it): whether any live connection is left is all this call knows.
            return Ok(Some(last));
        }
        let record = self
            .table
            .update(meta_key(&connection.id))
            .update_expression("SET #l = :l")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#l", attr::DEPARTED_LAST)
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_values(":l", AttributeValue::Bool(last))
            .send()
            .await;
        Ok(unless_condition_failed(record)?.map(|_| last))
    }
}

/// Whether a connection arriving at `#CONNS` that held `before` is its user's first live one.
fn arrives_first(before: &[Entry], mine: &Entry, now: i64) -> bool {
    !before.iter().any(|entry| entry.id != mine.id && entry.is_live(now))
}

/// The entries an arrival forgets: past their expiry, or an older entry of its own id.
fn stale_entries(before: &[Entry], mine: &Entry, now: i64) -> Vec<Entry> {
    before
        .iter()
        .filter(|entry| *entry != mine && (entry.id == mine.id || !entry.is_live(now)))
        .cloned()
        .collect()
}

/// What a removal learns from `#CONNS` as it was before its DELETE: whether this call took
/// the entry out, and whether no other live connection of the user is left.
fn departs(before: &[Entry], mine: &Entry, now: i64) -> (bool, bool) {
    let removed_here = before.contains(mine);
    let last = !before.iter().any(|entry| entry.id != mine.id && entry.is_live(now));
    (removed_here, last)
}

#[async_trait]
impl Connections for DynamoStore {
    /// The nickname claim and the `#META` in one transaction (2 writes; a second transaction
    /// when the claim is held by the same user or stale, after reading it); then one UpdateItem
    /// of the user's `#CONNS` (ADD, returning the old set: `first` is decided atomically),
    /// one consistent Query of the user's rooms, and one conditional UpdateItem per room
    /// (16 at once). Entries past their expiry cost one more write per item they are in.
    /// If a step fails, the connection is removed again before the error is returned: a
    /// write whose answer timed out may have landed all the same, and a claim left behind
    /// would refuse the nickname (409) to every retry until the claim expired.
    async fn add_connection(&self, connection: &Connection) -> Result<Arrival, StoreError> {
        let added = match self.claim_nick_and_register(connection).await {
            Ok(()) => self.arrive(connection).await,
            Err(StoreError::NickTaken) => return Err(StoreError::NickTaken),
            Err(error) => Err(error),
        };
        if added.is_err() {
            if let Err(undo) = self.remove_connection(&connection.id).await {
                tracing::warn!(
                    connection_id = %connection.id,
                    error = &undo as &dyn std::error::Error,
                    "could not undo a connection registered half-way; its TTL will end it"
                );
            }
        }
        added
    }

    /// One consistent GetItem of the `#META`.
    async fn connection(&self, id: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        let found = self.table.get(meta_key(id), &[]).await?;
        found.as_ref().map(item::parse_connection).transpose().map_err(corrupt)
    }

    /// One consistent GetItem of the `#META`; one UpdateItem taking the connection out of
    /// `#CONNS` (DELETE, returning the old set: `last` is decided atomically) and, when this
    /// call took it out, one recording `last` on the `#META`; one consistent Query of the
    /// user's rooms and a conditional UpdateItem per room (16 at once); the release of the
    /// nickname (1 or 2 writes); and last the conditional DeleteItem of the `#META`.
    ///
    /// The `#META` goes last, so a removal that stopped half-way (a Lambda timeout) is
    /// completed by the next call (a redelivered `$disconnect`, a 410 in fan-out), which
    /// reports the `last` the first one recorded. Only the call whose DeleteItem removed the
    /// `#META` returns the departure; the others return `None`. (A call stopped between its
    /// DELETE and its record leaves the next call to judge `last` from what is left.)
    async fn remove_connection(&self, id: &ConnectionId) -> Result<Option<Departure>, StoreError> {
        let now = now_secs();
        let Some(meta) = self.table.get(meta_key(id), &[]).await? else {
            return Ok(None);
        };
        let connection = item::parse_connection(&meta).map_err(corrupt)?;
        let user = &connection.user.user_id;
        let mine = Entry::of(&connection);
        let last = match Reader(&meta).opt_bool(attr::DEPARTED_LAST).map_err(corrupt)? {
            // An earlier call took the connection out of `#CONNS` and stopped after that.
            Some(recorded) => recorded,
            None => match self.depart(&connection, now).await? {
                Some(last) => last,
                // A concurrent removal completed it, and returns the departure.
                None => return Ok(None),
            },
        };

        let rooms = self.user_rooms(user, now).await?;
        bounded(rooms.clone(), MEMBERSHIP_WRITES_IN_FLIGHT, |room| {
            let table = self.table.clone();
            let user = user.clone();
            let mine = mine.clone();
            async move { remove_from_membership(&table, &room, &user, &[mine]).await }
        })
        .await?;
        self.release_nick(&connection).await?;

        let deleted = self
            .table
            .delete(meta_key(id))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", attr::PK)
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let Some(output) = unless_condition_failed(deleted)? else {
            return Ok(None);
        };
        // Of two calls at once, the one deleting the `#META` may not be the one that took the
        // entry out of `#CONNS`: the outcome recorded by that one wins.
        let old = output.attributes.unwrap_or_default();
        let recorded = Reader(&old).opt_bool(attr::DEPARTED_LAST).map_err(corrupt)?;
        Ok(Some(Departure {
            connection,
            last: recorded.unwrap_or(last),
            rooms,
        }))
    }

    /// One consistent GetItem of the user's `#CONNS`.
    async fn online_user(&self, user: &UserId) -> Result<Option<OnlineUser>, StoreError> {
        let Some(found) = self.table.get(conns_key(user), &[]).await? else {
            return Ok(None);
        };
        item::parse_online_user(&found, now_secs()).map_err(corrupt)
    }

    /// One consistent GetItem of the claim; a claim past its expiry or held by no
    /// connection owns nothing.
    async fn nick_owner(&self, nick: &Nick) -> Result<Option<UserId>, StoreError> {
        Ok(self.nick_claim(nick).await?.map(|claim| claim.user))
    }

    /// One consistent GetItem of the claim, and one conditional write when the lease is
    /// past half its life or the claim is absent or stale (see `lease_claim`).
    async fn lease_nick(&self, user: &User, now: i64, lease: Duration) -> Result<(), StoreError> {
        self.lease_claim(user, now, lease).await
    }

    async fn remember_user(&self, user: &User) -> Result<(), StoreError> {
        self.remember(user, now_secs()).await
    }

    /// The online user (one GetItem), else the profile (one more GetItem) while its TTL
    /// has not passed.
    async fn known_user(&self, user: &UserId) -> Result<Option<User>, StoreError> {
        if let Some(online) = self.online_user(user).await? {
            return Ok(Some(online.user));
        }
        let Some(found) = self.table.get(profile_key(user), &[]).await? else {
            return Ok(None);
        };
        let r = Reader(&found);
        if r.n(attr::EXPIRES_AT).map_err(corrupt)? < now_secs() {
            return Ok(None);
        }
        Ok(Some(User {
            user_id: user.clone(),
            nick: Nick::trusted(r.s(attr::NICK).map_err(corrupt)?),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, expires_at: i64) -> Entry {
        Entry {
            id: ConnectionId::new(id),
            expires_at,
        }
    }

    #[test]
    fn only_a_live_other_connection_makes_an_arrival_not_first() {
        let mine = entry("c1", 200);
        assert!(arrives_first(&[], &mine, 100));
        assert!(arrives_first(std::slice::from_ref(&mine), &mine, 100), "a retried ADD");
        assert!(arrives_first(&[entry("c0", 99)], &mine, 100), "c0 expired");
        assert!(!arrives_first(&[entry("c0", 100)], &mine, 100));
        assert_eq!(
            stale_entries(
                &[entry("c0", 99), entry("c1", 150), entry("c2", 300), mine.clone()],
                &mine,
                100
            ),
            [entry("c0", 99), entry("c1", 150)]
        );
    }

    #[test]
    fn only_the_removal_that_took_the_entry_out_knows_it() {
        let mine = entry("c1", 200);
        assert_eq!(departs(std::slice::from_ref(&mine), &mine, 100), (true, true));
        assert_eq!(departs(&[mine.clone(), entry("c2", 200)], &mine, 100), (true, false));
        assert_eq!(departs(&[mine.clone(), entry("c2", 99)], &mine, 100), (true, true));
        assert_eq!(departs(&[entry("c2", 200)], &mine, 100), (false, false));
        assert_eq!(departs(&[], &mine, 100), (false, true));
    }
}
