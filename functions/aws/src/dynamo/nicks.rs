//! Nickname claims (`NICK#<n>` / `#NICK`): the conditional transaction that makes nicknames
//! unique among connected users and registers the connection with its claim, the lease an
//! HTTP caller (no connection) holds in the same claim, the takeover of a stale claim, and
//! the release when a connection goes.

use std::time::Duration;

use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::types::builders::PutBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use roomcast_core::clock::now_secs;
use roomcast_core::model::{Connection, Nick, User};
use roomcast_core::ports::StoreError;

use super::item::{self, Item, NickClaim};
use super::keys::{self, attr};
use super::retry::Backoff;
use super::store::DynamoStore;
use super::table::{corrupt, unless_condition_failed};

/// Rounds of the nickname claim when its item keeps changing under us.
const CLAIM_ATTEMPTS: u32 = 5;

fn claim_key(nick: &Nick) -> Item {
    item::key(keys::nick(nick), keys::NICK_SK)
}

fn connection_set(connection: &Connection) -> AttributeValue {
    AttributeValue::Ss(vec![connection.id.as_str().to_owned()])
}

impl DynamoStore {
    /// Claims (or extends) the connection's nickname for its user and puts the connection's
    /// `#META`, in one transaction (2 writes). When the claim's condition fails, the claim is
    /// read (from the cancellation reason, else one GetItem) and either joined by the same
    /// user, taken over when stale, or refused with `NickTaken`: one more transaction.
    pub(super) async fn claim_nick_and_register(&self, connection: &Connection) -> Result<(), StoreError> {
        let table = &self.table;
        let user = &connection.user;
        let meta = || table.transact_put(item::connection_meta(connection), |put| put);
        let mut backoff = Backoff::new("add_connection", CLAIM_ATTEMPTS);
        loop {
            // `expiresAt` is only ever raised: the claim must outlive every connection in it.
            // An update expression cannot take a maximum, so the condition lets the SET
            // through only when it raises the value; otherwise the second round adds the
            // connection without touching `expiresAt`.
            let claim = table.transact_update(claim_key(&user.nick), |update| {
                update
                    .update_expression("SET #u = :u, #e = :e ADD #c :c")
                    .condition_expression("attribute_not_exists(#pk) OR (#u = :u AND #e <= :e)")
                    .expression_attribute_names("#pk", attr::PK)
                    .expression_attribute_names("#u", attr::USER_ID)
                    .expression_attribute_names("#e", attr::EXPIRES_AT)
                    .expression_attribute_names("#c", attr::CONNECTIONS)
                    .expression_attribute_values(":u", item::s(user.user_id.as_str()))
                    .expression_attribute_values(":e", item::n(connection.expires_at))
                    .expression_attribute_values(":c", connection_set(connection))
                    .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            })?;
            let cancelled = match table.transact("add_connection", vec![claim, meta()?]).await? {
                Ok(()) => return Ok(()),
                Err(cancelled) => cancelled,
            };
            let seen = match cancelled.old_item(0) {
                Some(old) => Some(old.clone()),
                None => {
                    tracing::debug!(reasons = ?cancelled.reasons, "no claim in the cancellation reasons; reading it");
                    table.get(claim_key(&user.nick), &[]).await?
                }
            };
            // Released in between: claim it afresh.
            if let Some(seen) = seen {
                let claim = item::parse_nick_claim(&seen).map_err(corrupt)?;
                let second = if claim.user == user.user_id {
                    table.transact_update(claim_key(&user.nick), |update| {
                        update
                            .update_expression("ADD #c :c")
                            .condition_expression("#u = :u")
                            .expression_attribute_names("#u", attr::USER_ID)
                            .expression_attribute_names("#c", attr::CONNECTIONS)
                            .expression_attribute_values(":u", item::s(user.user_id.as_str()))
                            .expression_attribute_values(":c", connection_set(connection))
                    })?
                } else if owns_nothing(&claim, now_secs()) {
                    tracing::info!(nick = %user.nick, "taking over a stale nickname claim");
                    let mut fresh = claim_key(&user.nick);
                    fresh.insert(attr::USER_ID.to_owned(), item::s(user.user_id.as_str()));
                    fresh.insert(attr::CONNECTIONS.to_owned(), connection_set(connection));
                    fresh.insert(attr::EXPIRES_AT.to_owned(), item::n(connection.expires_at));
                    self.table.transact_put(fresh, |put| unchanged_since(put, &claim))?
                } else {
                    return Err(StoreError::NickTaken);
                };
                if table.transact("add_connection", vec![second, meta()?]).await?.is_ok() {
                    return Ok(());
                }
                // The claim changed since we read it: look again.
            }
            if !backoff.retry().await {
                return Err(StoreError::unavailable(
                    backoff.gave_up("the nickname claim kept changing"),
                ));
            }
        }
    }

    /// Holds the nickname for a user without a connection until `lease` past `now`
    /// ([`roomcast_core::ports::Connections::lease_nick`]): one consistent GetItem of the
    /// claim, and only when the user's lease has less than half of `lease` left, or the
    /// claim is absent or owns nothing, one conditional write (an UpdateItem that renews,
    /// a PutItem that claims). A write whose condition fails (the claim changed since it
    /// was read) reads it again.
    pub(super) async fn lease_claim(&self, user: &User, now: i64, lease: Duration) -> Result<(), StoreError> {
        let lease = i64::try_from(lease.as_secs()).unwrap_or(i64::MAX / 2);
        let until = now.saturating_add(lease);
        let mut backoff = Backoff::new("lease_nick", CLAIM_ATTEMPTS);
        loop {
            let seen = match self.table.get(claim_key(&user.nick), &[]).await? {
                Some(found) => Some(item::parse_nick_claim(&found).map_err(corrupt)?),
                None => None,
            };
            let written = match seen {
                Some(claim) if claim.user == user.user_id => {
                    if claim.lease_until.is_some_and(|held| 2 * (held - now) >= lease) {
                        return Ok(());
                    }
                    // `expiresAt` is only ever raised: a connection in the claim may outlive
                    // the lease. A connection that raised it since the read fails the
                    // condition, and the next round reads it again.
                    let renewed = self
                        .table
                        .update(claim_key(&user.nick))
                        .update_expression("SET #l = :l, #e = :e")
                        .condition_expression("#u = :u AND #e <= :e")
                        .expression_attribute_names("#l", attr::LEASE_UNTIL)
                        .expression_attribute_names("#e", attr::EXPIRES_AT)
                        .expression_attribute_names("#u", attr::USER_ID)
                        .expression_attribute_values(":l", item::n(until))
                        .expression_attribute_values(":e", item::n(claim.expires_at.max(until)))
                        .expression_attribute_values(":u", item::s(user.user_id.as_str()))
                        .send()
                        .await;
                    unless_condition_failed(renewed)?.is_some()
                }
                Some(claim) if !owns_nothing(&claim, now) => return Err(StoreError::NickTaken),
                seen => {
                    let mut fresh = claim_key(&user.nick);
                    fresh.insert(attr::USER_ID.to_owned(), item::s(user.user_id.as_str()));
                    fresh.insert(attr::LEASE_UNTIL.to_owned(), item::n(until));
                    fresh.insert(attr::EXPIRES_AT.to_owned(), item::n(until));
                    let put = self.table.put(fresh);
                    let put = match &seen {
                        Some(stale) => {
                            tracing::info!(nick = %user.nick, "taking over a stale nickname claim for a lease");
                            unchanged_since(put, stale)
                        }
                        None => put
                            .condition_expression("attribute_not_exists(#pk)")
                            .expression_attribute_names("#pk", attr::PK),
                    };
                    unless_condition_failed(put.send().await)?.is_some()
                }
            };
            if written {
                return Ok(());
            }
            if !backoff.retry().await {
                return Err(StoreError::unavailable(
                    backoff.gave_up("the nickname claim kept changing"),
                ));
            }
        }
    }

    /// Takes the connection out of its nickname claim (1 write), and deletes the claim once
    /// no connection holds it and no lease (1 more). Both writes are conditional so they
    /// never touch a claim that another user has taken over, nor one the same user
    /// re-joined or leased in between. Idempotent.
    pub(super) async fn release_nick(&self, connection: &Connection) -> Result<(), StoreError> {
        let updated = self
            .table
            .update(claim_key(&connection.user.nick))
            .update_expression("DELETE #c :c")
            .condition_expression("#u = :u")
            .expression_attribute_names("#c", attr::CONNECTIONS)
            .expression_attribute_names("#u", attr::USER_ID)
            .expression_attribute_values(":c", connection_set(connection))
            .expression_attribute_values(":u", item::s(connection.user.user_id.as_str()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let Some(output) = unless_condition_failed(updated)? else {
            return Ok(());
        };
        // DynamoDB drops a set attribute that becomes empty. The user's lease, if it has one
        // that has not lapsed, holds the nickname on.
        let now = now_secs();
        let left = item::parse_nick_claim(&output.attributes.unwrap_or_default()).map_err(corrupt)?;
        if left.held || leased(&left, now) {
            return Ok(());
        }
        let deleted = self
            .table
            .delete(claim_key(&connection.user.nick))
            .condition_expression("attribute_not_exists(#c) AND #u = :u AND (attribute_not_exists(#l) OR #l < :now)")
            .expression_attribute_names("#c", attr::CONNECTIONS)
            .expression_attribute_names("#u", attr::USER_ID)
            .expression_attribute_names("#l", attr::LEASE_UNTIL)
            .expression_attribute_values(":u", item::s(connection.user.user_id.as_str()))
            .expression_attribute_values(":now", item::n(now))
            .send()
            .await;
        unless_condition_failed(deleted).map(drop)
    }

    /// The claim on a nickname, if one owns it (one consistent GetItem).
    pub(super) async fn nick_claim(&self, nick: &Nick) -> Result<Option<NickClaim>, StoreError> {
        let Some(found) = self.table.get(claim_key(nick), &[]).await? else {
            return Ok(None);
        };
        let claim = item::parse_nick_claim(&found).map_err(corrupt)?;
        Ok((!owns_nothing(&claim, now_secs())).then_some(claim))
    }
}

/// A claim past its expiry, or held by neither a connection nor a lease, owns nothing. (A
/// lease never outlasts `expiresAt`: past it, the lease has lapsed too.)
fn owns_nothing(claim: &NickClaim, now: i64) -> bool {
    claim.expires_at < now || !(claim.held || leased(claim, now))
}

/// The parts of a condition, as a transaction's Put and a PutItem both take them.
trait ConditionalBuilder: Sized {
    fn names(self, placeholder: &str, attribute: &str) -> Self;
    fn values(self, placeholder: &str, value: AttributeValue) -> Self;
    fn condition(self, expression: &str) -> Self;
}

macro_rules! conditional_builder {
    ($($builder:ty),*) => {$(
        impl ConditionalBuilder for $builder {
            fn names(self, placeholder: &str, attribute: &str) -> Self {
                self.expression_attribute_names(placeholder, attribute)
            }
            fn values(self, placeholder: &str, value: AttributeValue) -> Self {
                self.expression_attribute_values(placeholder, value)
            }
            fn condition(self, expression: &str) -> Self {
                self.condition_expression(expression)
            }
        }
    )*};
}

conditional_builder!(PutBuilder, PutItemFluentBuilder);

/// Whether the claim's lease holds the nickname at `now`.
fn leased(claim: &NickClaim, now: i64) -> bool {
    claim.lease_until.is_some_and(|until| until >= now)
}

/// The condition that a claim is still the one judged as `seen` (its owner, expiry, whether
/// connections hold it, its lease), for a write that replaces it whole: a claim that owns
/// nothing is only ever taken over as it was judged, never after its owner came back.
fn unchanged_since<B: ConditionalBuilder>(write: B, seen: &NickClaim) -> B {
    let held = if seen.held {
        "attribute_exists(#c)"
    } else {
        "attribute_not_exists(#c)"
    };
    let write = write
        .names("#e", attr::EXPIRES_AT)
        .names("#u", attr::USER_ID)
        .names("#c", attr::CONNECTIONS)
        .names("#l", attr::LEASE_UNTIL)
        .values(":seen", item::n(seen.expires_at))
        .values(":owner", item::s(seen.user.as_str()));
    match seen.lease_until {
        Some(lease) => write
            .values(":lease", item::n(lease))
            .condition(&format!("#e = :seen AND #u = :owner AND {held} AND #l = :lease")),
        None => write.condition(&format!(
            "#e = :seen AND #u = :owner AND {held} AND attribute_not_exists(#l)"
        )),
    }
}
