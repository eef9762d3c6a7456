//! `upload` → a slot for one file of a room or a direct conversation: a file id and a
//! presigned PUT, valid 5 minutes, for exactly the declared size and type. The file goes
//! from the client straight to the file store; `send` and `dm` then attach it by id
//! ([`attach`]), and whoever reads the message gets a GET signed for it ([`signed`]).
//! Deleting the message deletes its files ([`delete_files`]).

use serde::Deserialize;
use serde_json::Value;

use super::context::Context;
use super::conversation::{ConversationFields, ConversationRef};
use super::fields;
use crate::config::Config;
use crate::error::{ClientError, ErrorCode};
use crate::files::{
    parse_content_type, parse_name, Attachment, FileId, Upload as UploadRecord, UploadSlot, MAX_FILES_PER_MESSAGE,
    UPLOAD_SLOT_TTL, UPLOAD_URL_VALIDITY,
};
use crate::history::{Conversation, HistoryEntry};
use crate::ports::FileError;
use crate::protocol::ServerFrame;

#[derive(Debug)]
pub struct Upload {
    pub conversation: ConversationRef,
    pub name: String,
    pub content_type: String,
    pub size: u64,
}

impl Upload {
    pub fn parse(frame: Value, config: &Config) -> Result<Self, ClientError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Fields {
            #[serde(flatten)]
            conversation: ConversationFields,
            name: String,
            content_type: String,
            size: u64,
        }
        let Fields {
            conversation,
            name,
            content_type,
            size,
        } = fields::read(frame)?;
        let max = config.limits.file_bytes;
        if size > max {
            return Err(ClientError::new(
                ErrorCode::TooLarge,
                format!("the file is {size} bytes; the limit is {max}"),
            ));
        }
        if size == 0 {
            return Err(ClientError::bad_request("size must be at least 1 byte"));
        }
        Ok(Self {
            conversation: ConversationRef::parse(conversation, config.limits.room_name_chars)?,
            name: parse_name(name)?,
            content_type: parse_content_type(content_type)?,
            size,
        })
    }

    pub async fn apply(self, ctx: &Context<'_>) -> Result<ServerFrame, ClientError> {
        // Membership as for `send`; a direct conversation is the caller's own.
        let conversation = self.conversation.resolve(ctx).await?;
        let file_id = FileId::generate();
        let put = ctx
            .ports
            .files
            .presign_put(&file_id, &self.content_type, self.size, ctx.now_ms, UPLOAD_URL_VALIDITY)
            .await
            .map_err(file_store_failed)?;
        let ttl = i64::try_from(UPLOAD_SLOT_TTL.as_secs()).unwrap_or(i64::MAX);
        ctx.ports
            .store
            .add_upload(&UploadRecord {
                file_id: file_id.clone(),
                uploader: ctx.caller.user.user_id.clone(),
                conversation,
                name: self.name,
                content_type: self.content_type,
                size: self.size,
                expires_at: ctx.now_ms.div_euclid(1000).saturating_add(ttl),
            })
            .await?;
        Ok(ServerFrame::Upload(UploadSlot {
            file_id,
            url: put.url,
            method: "PUT".to_owned(),
            headers: put.headers.into_iter().collect(),
            expires_at: put.expires_at_ms,
        }))
    }
}

/// The `files` of a `send` or `dm`: up to [`MAX_FILES_PER_MESSAGE`] distinct file ids.
pub(super) fn parse_files(files: Option<Vec<String>>) -> Result<Vec<FileId>, ClientError> {
    let files = files.unwrap_or_default();
    if files.len() > MAX_FILES_PER_MESSAGE {
        return Err(ClientError::new(
            ErrorCode::TooLarge,
            format!("a message carries at most {MAX_FILES_PER_MESSAGE} files"),
        ));
    }
    let ids = files
        .iter()
        .map(|id| FileId::parse(id))
        .collect::<Result<Vec<_>, _>>()?;
    let distinct: std::collections::BTreeSet<&FileId> = ids.iter().collect();
    if distinct.len() < ids.len() {
        return Err(ClientError::bad_request("files names a file twice"));
    }
    Ok(ids)
}

/// The files a message of `conversation` carries, once each checks out: granted to the
/// caller for that conversation (`forbidden` otherwise) and uploaded in full (`not_found`
/// while missing or of another size). Each comes with a GET signed for the live frame.
/// One GetItem and one HeadObject per file.
pub(super) async fn attach(
    ctx: &Context<'_>,
    conversation: &Conversation,
    ids: &[FileId],
) -> Result<Vec<Attachment>, ClientError> {
    let mut attachments = Vec::with_capacity(ids.len());
    for id in ids {
        let upload = ctx
            .ports
            .store
            .upload(id)
            .await?
            .ok_or_else(|| ClientError::not_found(format!("there is no upload `{id}`")))?;
        if upload.uploader != ctx.caller.user.user_id || &upload.conversation != conversation {
            return Err(ClientError::forbidden(format!(
                "file `{id}` was not uploaded by you for {conversation}"
            )));
        }
        match ctx.ports.files.uploaded_size(id).await.map_err(file_store_failed)? {
            Some(size) if size == upload.size => {}
            Some(size) => {
                return Err(ClientError::not_found(format!(
                    "file `{id}` is {size} bytes, not the {} declared: upload it again",
                    upload.size
                )))
            }
            None => {
                return Err(ClientError::not_found(format!(
                    "file `{id}` has not been uploaded (PUT it to the upload's url first)"
                )))
            }
        }
        attachments.push(upload.attachment());
    }
    signed(ctx, attachments).await
}

/// The files with a GET each, signed now for `Config::file_url_validity`.
pub(super) async fn signed(ctx: &Context<'_>, mut files: Vec<Attachment>) -> Result<Vec<Attachment>, ClientError> {
    for file in &mut files {
        let url = ctx
            .ports
            .files
            .presign_get(&file.id, &file.download(), ctx.now_ms, ctx.config.file_url_validity)
            .await
            .map_err(file_store_failed)?;
        file.url = Some(url);
    }
    Ok(files)
}

/// A history page's entries, the files of each message with a GET signed now.
pub(super) async fn entries(
    ctx: &Context<'_>,
    messages: Vec<crate::history::StoredMessage>,
) -> Result<Vec<HistoryEntry>, ClientError> {
    let mut entries = Vec::with_capacity(messages.len());
    for mut message in messages {
        if !message.deleted {
            message.files = signed(ctx, std::mem::take(&mut message.files)).await?;
        }
        entries.push(HistoryEntry::from(message));
    }
    Ok(entries)
}

/// Deletes a deleted message's files. The message is gone for its readers already (the
/// `deleted` record is in the log), so a failure is logged, not answered: the lifecycle
/// rule removes what is left with the history.
pub(super) async fn delete_files(ctx: &Context<'_>, files: &[Attachment]) {
    for file in files {
        if let Err(error) = ctx.ports.files.delete(&file.id).await {
            tracing::warn!(error = &error as &dyn std::error::Error, file = %file.id, "could not delete a deleted message's file");
        }
    }
}

fn file_store_failed(error: FileError) -> ClientError {
    tracing::error!(error = &error as &dyn std::error::Error, "file store failed");
    ClientError::unavailable("the file store")
}
