//! The [`Quotas`] port: one item per token bucket (`QUOTA#<bucket>` / `#BUCKET`) holding
//! when the bucket is full again, taken from with a conditional UpdateItem and forgotten by
//! its TTL once full.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use roomcast_core::ports::{Quotas, StoreError};
use roomcast_core::quota::{Bucket, BucketKey};

use super::item::{self, Item, Reader};
use super::keys::{self, attr};
use super::store::DynamoStore;
use super::table::corrupt;

/// How many times a token is tried for when other calls change the bucket meanwhile.
const ATTEMPTS: usize = 3;

fn bucket_key(key: &BucketKey) -> Item {
    item::key(keys::bucket(key), keys::BUCKET)
}

#[async_trait]
impl Quotas for DynamoStore {
    /// One conditional UpdateItem when the bucket is full (the usual case: a person's
    /// messages are seconds apart) or empty; two when it is partly used (a burst), the
    /// first failing and returning the bucket's state. No read, and no retry loop beyond
    /// three attempts when concurrent calls race for the same bucket (refused then).
    async fn take_token(&self, key: &BucketKey, bucket: &Bucket, now_ms: i64) -> Result<bool, StoreError> {
        // What the last attempt learned of the bucket: `None` is "full, as far as known".
        let mut known: Option<i64> = None;
        for _ in 0..ATTEMPTS {
            let Some(full_at) = bucket.take(known, now_ms) else {
                return Ok(false);
            };
            let update = self
                .table
                .update(bucket_key(key))
                .update_expression("SET #f = :f, #e = :e")
                .expression_attribute_names("#f", attr::FULL_AT)
                .expression_attribute_names("#e", attr::EXPIRES_AT)
                .expression_attribute_values(":f", item::n(full_at))
                .expression_attribute_values(":e", item::n(bucket.forget_after(full_at).div_euclid(1000) + 1))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
            let update = match known {
                // Full: whatever it holds has refilled by now.
                None => update
                    .condition_expression("attribute_not_exists(#f) OR #f <= :now")
                    .expression_attribute_values(":now", item::n(now_ms)),
                // Partly used: only if no one took a token since it was seen.
                Some(seen) => update
                    .condition_expression("#f = :seen")
                    .expression_attribute_values(":seen", item::n(seen)),
            };
            let old = match update.send().await {
                Ok(_) => return Ok(true),
                Err(error) => match error.into_service_error() {
                    UpdateItemError::ConditionalCheckFailedException(failed) => failed.item,
                    other => return Err(StoreError::unavailable(other)),
                },
            };
            let old = match old {
                Some(old) => Some(old),
                // Some DynamoDB look-alikes return no item: read it.
                None => self.table.get(bucket_key(key), &[attr::FULL_AT]).await?,
            };
            known = match old {
                Some(old) => Reader(&old).opt_n(attr::FULL_AT).map_err(corrupt)?,
                None => None,
            };
            if Bucket::is_full(known, now_ms) {
                known = None;
            }
        }
        Ok(false)
    }
}
