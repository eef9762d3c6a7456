//! Nickname claims (`NICK#<n>` / `#NICK`): the conditional transaction that makes nicknames
//! unique among connected users and registers the connection with its claim, the takeover
//! of a stale claim, and the release when a connection goes.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use roomcast_core::clock::now_secs;
use roomcast_core::model::{Connection, Nick};
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
                    self.takeover(connection, &claim)?
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

    /// Replaces a claim that owns nothing (its connections ended without `$disconnect`, or
    /// its release stopped half-way), but only if it is still the claim we judged.
    fn takeover(
        &self,
        connection: &Connection,
        seen: &NickClaim,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
        let mut fresh = claim_key(&connection.user.nick);
        fresh.insert(attr::USER_ID.to_owned(), item::s(connection.user.user_id.as_str()));
        fresh.insert(attr::CONNECTIONS.to_owned(), connection_set(connection));
        fresh.insert(attr::EXPIRES_AT.to_owned(), item::n(connection.expires_at));
        let unchanged = if seen.held {
            "#e = :seen AND #u = :owner AND attribute_exists(#c)"
        } else {
            "#e = :seen AND #u = :owner AND attribute_not_exists(#c)"
        };
        self.table.transact_put(fresh, |put| {
            put.condition_expression(unchanged)
                .expression_attribute_names("#e", attr::EXPIRES_AT)
                .expression_attribute_names("#u", attr::USER_ID)
                .expression_attribute_names("#c", attr::CONNECTIONS)
                .expression_attribute_values(":seen", item::n(seen.expires_at))
                .expression_attribute_values(":owner", item::s(seen.user.as_str()))
        })
    }

    /// Takes the connection out of its nickname claim (1 write), and deletes the claim once
    /// no connection holds it (1 more). Both writes are conditional so they never touch a
    /// claim that another user has taken over, nor one the same user re-joined in between.
    /// Idempotent.
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
        // DynamoDB drops a set attribute that becomes empty.
        if output.attributes.unwrap_or_default().contains_key(attr::CONNECTIONS) {
            return Ok(());
        }
        let deleted = self
            .table
            .delete(claim_key(&connection.user.nick))
            .condition_expression("attribute_not_exists(#c)")
            .expression_attribute_names("#c", attr::CONNECTIONS)
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

/// A claim past its expiry, or held by no connection, owns nothing.
fn owns_nothing(claim: &NickClaim, now: i64) -> bool {
    claim.expires_at < now || !claim.held
}
