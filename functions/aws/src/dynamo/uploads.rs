//! The [`Uploads`] port: one item per granted upload (`FILE#<fileId>` / `#UPLOAD`, see
//! [`super::keys`]), written once by `upload` and read by the `send` or `dm` that attaches
//! it; its TTL forgets it a day on, whether a message named it or not (the message keeps
//! what it needs of it).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use roomcast_core::clock::now_secs;
use roomcast_core::files::{FileId, Upload};
use roomcast_core::history::Conversation;
use roomcast_core::model::{RoomName, UserId};
use roomcast_core::ports::{StoreError, Uploads};

use super::item::{self, CorruptItem, Item, Reader};
use super::keys::{self, attr};
use super::store::DynamoStore;
use super::table::{corrupt, unavailable};

fn upload_key(file: &FileId) -> Item {
    item::key(keys::upload(file), keys::UPLOAD)
}

fn upload_item(upload: &Upload) -> Item {
    let mut item = upload_key(&upload.file_id);
    item.extend([
        (attr::UPLOADER.to_owned(), item::s(upload.uploader.as_str())),
        (attr::NAME.to_owned(), item::s(&upload.name)),
        (attr::CONTENT_TYPE.to_owned(), item::s(&upload.content_type)),
        (
            attr::SIZE.to_owned(),
            item::n(i64::try_from(upload.size).unwrap_or(i64::MAX)),
        ),
        (attr::EXPIRES_AT.to_owned(), item::n(upload.expires_at)),
    ]);
    match &upload.conversation {
        Conversation::Room(room) => item.insert(attr::ROOM.to_owned(), item::s(room.as_str())),
        Conversation::Direct(a, b) => item.insert(
            attr::USERS.to_owned(),
            AttributeValue::L(vec![item::s(a.as_str()), item::s(b.as_str())]),
        ),
    };
    item
}

fn parse_upload(file: &FileId, item: &Item) -> Result<Upload, CorruptItem> {
    let r = Reader(item);
    let conversation = match (r.opt_s(attr::ROOM)?, item.get(attr::USERS)) {
        (Some(room), None) => Conversation::Room(RoomName::trusted(room)),
        (None, Some(AttributeValue::L(users))) => match users.as_slice() {
            [AttributeValue::S(a), AttributeValue::S(b)] => Conversation::direct(UserId::new(a), UserId::new(b)),
            _ => return Err(r.corrupt(attr::USERS, "is not a list of two user ids")),
        },
        _ => return Err(r.corrupt(attr::ROOM, "an upload names a room or two users")),
    };
    Ok(Upload {
        file_id: file.clone(),
        uploader: UserId::new(r.s(attr::UPLOADER)?),
        conversation,
        name: r.s(attr::NAME)?.to_owned(),
        content_type: r.s(attr::CONTENT_TYPE)?.to_owned(),
        size: u64::try_from(r.n(attr::SIZE)?).map_err(|_| r.corrupt(attr::SIZE, "is negative"))?,
        expires_at: r.n(attr::EXPIRES_AT)?,
    })
}

#[async_trait]
impl Uploads for DynamoStore {
    /// One PutItem (the file id is new: nothing to overwrite).
    async fn add_upload(&self, upload: &Upload) -> Result<(), StoreError> {
        self.table.put(upload_item(upload)).send().await.map_err(unavailable)?;
        Ok(())
    }

    /// One strongly consistent GetItem; an expired item not yet deleted is `None`.
    async fn upload(&self, file: &FileId) -> Result<Option<Upload>, StoreError> {
        let Some(item) = self.table.get(upload_key(file), &[]).await? else {
            return Ok(None);
        };
        let upload = parse_upload(file, &item).map_err(corrupt)?;
        Ok((upload.expires_at >= now_secs()).then_some(upload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_item_reads_back_as_written() {
        for conversation in [
            Conversation::Room(RoomName::trusted("general")),
            Conversation::direct(UserId::new("u#2"), UserId::new("u1")),
        ] {
            let upload = Upload {
                file_id: FileId::generate(),
                uploader: UserId::new("u1"),
                conversation,
                name: "notes.pdf".into(),
                content_type: "application/pdf".into(),
                size: 25 * 1024 * 1024,
                expires_at: 1_700_000_000,
            };
            assert_eq!(parse_upload(&upload.file_id, &upload_item(&upload)).unwrap(), upload);
        }
    }
}
