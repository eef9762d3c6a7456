//! PLACEHOLDER, being replaced: the [`History`] port on the table.

use async_trait::async_trait;
use roomcast_core::history::{Conversation, Cursor, MessageEdit, Page, StoredMessage};
use roomcast_core::model::MessageId;
use roomcast_core::ports::{History, StoreError};

use super::store::DynamoStore;

#[async_trait]
impl History for DynamoStore {
    async fn keep(&self, _message: &StoredMessage) -> Result<(), StoreError> {
        todo!()
    }
    async fn edit(&self, _c: &Conversation, _id: &MessageId, _edit: &MessageEdit) -> Result<bool, StoreError> {
        todo!()
    }
    async fn delete(&self, _c: &Conversation, _id: &MessageId) -> Result<bool, StoreError> {
        todo!()
    }
    async fn message(&self, _c: &Conversation, _id: &MessageId) -> Result<Option<StoredMessage>, StoreError> {
        todo!()
    }
    async fn page(&self, _c: &Conversation, _cursor: &Cursor, _limit: usize) -> Result<Page, StoreError> {
        todo!()
    }
}
