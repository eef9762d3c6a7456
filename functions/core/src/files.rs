//! Attachments (docs/protocol.md, "Files"): a file goes from the client straight to the
//! file store (S3, or the local gateway's directory) with a presigned PUT; only its
//! metadata goes through the log. This module holds the values the [`Files`] and
//! [`Uploads`] ports deal in, and the rules of names, types and how a file is served.
//!
//! [`Files`]: crate::ports::Files
//! [`Uploads`]: crate::ports::Uploads

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ClientError;
use crate::history::Conversation;
use crate::model::UserId;

/// Where every object lives in the store: the SAM template's IAM and lifecycle rule name
/// this prefix, so the functions can reach nothing else in the bucket.
pub const FILES_PREFIX: &str = "files/";

/// How long a presigned PUT is valid: long enough to send 25 MiB on a slow line.
pub const UPLOAD_URL_VALIDITY: Duration = Duration::from_secs(5 * 60);

/// How long an upload slot is remembered when no message names it: a file uploaded but
/// never sent is forgotten after this (its object goes with the lifecycle rule).
pub const UPLOAD_SLOT_TTL: Duration = Duration::from_secs(24 * 3600);

/// Most files one message carries.
pub const MAX_FILES_PER_MESSAGE: usize = 10;

/// Longest file name, in characters.
pub const MAX_NAME_CHARS: usize = 255;

/// Longest content type, in bytes (RFC 6838 bounds each half to 127).
const MAX_CONTENT_TYPE_BYTES: usize = 255;

/// The images a browser may show inline: their formats cannot run script.
pub const INLINE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

/// A file's id: a ULID made by the server when the upload is granted. It names the object
/// (`files/<id>`) and the upload's record, so it cannot hold anything but its 26 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FileId(String);

impl FileId {
    pub fn generate() -> Self {
        Self(ulid::Ulid::new().to_string())
    }

    /// A file id a client sent: a ULID, or `bad_request`.
    pub fn parse(value: &str) -> Result<Self, ClientError> {
        ulid::Ulid::from_string(value)
            .map(|id| Self(id.to_string()))
            .map_err(|_| ClientError::bad_request(format!("`{}` is not a file id", truncate(value))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The object's key in the store: `files/<id>`.
    pub fn key(&self) -> String {
        format!("{FILES_PREFIX}{}", self.0)
    }
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A granted upload, as the store keeps it between `upload` and the `send` or `dm` that
/// attaches it: who may attach it, where, and what it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub file_id: FileId,
    pub uploader: UserId,
    pub conversation: Conversation,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// Seconds since the epoch: the record is forgotten after this.
    pub expires_at: i64,
}

impl Upload {
    /// What a message carries of it (without a url, which each reader gets signed afresh).
    pub fn attachment(&self) -> Attachment {
        Attachment {
            id: self.file_id.clone(),
            name: self.name.clone(),
            content_type: self.content_type.clone(),
            size: self.size,
            url: None,
        }
    }
}

/// A file of a message, as `message`, `dm` and history frames carry it. The record in the
/// log and the kept message hold no `url`; one is signed for whoever reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub id: FileId,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Attachment {
    /// How the file is served when downloaded.
    pub fn download(&self) -> Download {
        Download::of(&self.name, &self.content_type)
    }
}

/// How a GET serves a file: the `Content-Type` and `Content-Disposition` the URL asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub content_type: String,
    pub disposition: String,
}

impl Download {
    /// Inline only for the images of [`INLINE_TYPES`]; anything else (HTML and SVG above
    /// all, which would run script in the store's origin) is an attachment, and served as
    /// `application/octet-stream` so that no browser renders it even when told to open it.
    pub fn of(name: &str, content_type: &str) -> Self {
        let inline = is_inline(content_type);
        let kind = if inline { "inline" } else { "attachment" };
        Self {
            content_type: if inline {
                content_type.to_ascii_lowercase()
            } else {
                "application/octet-stream".to_owned()
            },
            disposition: format!(
                "{kind}; filename=\"{}\"; filename*=UTF-8''{}",
                ascii_fallback(name),
                percent_encode(name)
            ),
        }
    }

    pub fn is_inline(&self) -> bool {
        self.disposition.starts_with("inline")
    }
}

/// Whether a file of this type is shown inline.
pub fn is_inline(content_type: &str) -> bool {
    INLINE_TYPES.iter().any(|t| t.eq_ignore_ascii_case(content_type))
}

/// The answer to `upload`: where and how to PUT the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadSlot {
    pub file_id: FileId,
    pub url: String,
    pub method: String,
    /// The headers the PUT must carry, exactly.
    pub headers: std::collections::BTreeMap<String, String>,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
}

/// A presigned PUT: the client sends the file's bytes to `url` with exactly `headers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedPut {
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// Milliseconds since the epoch.
    pub expires_at_ms: i64,
}

/// A file name: 1 to 255 characters, no `/` or `\`, no control characters (it ends up in
/// a `Content-Disposition` header).
pub fn parse_name(name: String) -> Result<String, ClientError> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.trim().is_empty() {
        return Err(ClientError::bad_request(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(|c| c == '/' || c == '\\' || c.is_control()) {
        return Err(ClientError::bad_request(
            "name must not hold `/`, `\\` or control characters",
        ));
    }
    Ok(name)
}

/// A content type: `type/subtype` of RFC 6838's characters, no parameters; kept in lower
/// case, as types are case-insensitive.
pub fn parse_content_type(content_type: String) -> Result<String, ClientError> {
    let token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    match content_type.split_once('/') {
        Some((kind, sub)) if content_type.len() <= MAX_CONTENT_TYPE_BYTES && token(kind) && token(sub) => {
            Ok(content_type.to_ascii_lowercase())
        }
        _ => Err(ClientError::bad_request(
            "contentType must be a media type such as `image/png` (type/subtype, no parameters)",
        )),
    }
}

/// The name as a quoted-string of printable ASCII: anything else becomes `_`.
fn ascii_fallback(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '%' => c,
            _ => '_',
        })
        .collect()
}

/// RFC 5987's `attr-char`s kept, every other byte of the UTF-8 name percent-encoded.
fn percent_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn truncate(value: &str) -> String {
    value.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_raster_images_are_inline() {
        for inline in ["image/png", "IMAGE/JPEG", "image/gif", "image/webp"] {
            assert!(Download::of("a", inline).is_inline(), "{inline}");
        }
        for attachment in ["text/html", "image/svg+xml", "application/pdf", "text/plain"] {
            let download = Download::of("a", attachment);
            assert!(download.disposition.starts_with("attachment;"), "{attachment}");
            assert_eq!(download.content_type, "application/octet-stream");
        }
    }

    #[test]
    fn names_are_safe_in_a_header() {
        let download = Download::of("ünï \"côde\".html", "text/html");
        assert_eq!(
            download.disposition,
            "attachment; filename=\"_n_ _c_de_.html\"; filename*=UTF-8''%C3%BCn%C3%AF%20%22c%C3%B4de%22.html"
        );
        assert!(parse_name("a/b".into()).is_err());
        assert!(parse_name("a\r\nSet-Cookie: x".into()).is_err());
        assert!(parse_name("".into()).is_err());
        assert!(parse_name("x".repeat(256)).is_err());
        assert_eq!(parse_name("é".repeat(255)).unwrap().chars().count(), 255);
    }

    #[test]
    fn content_types_are_type_slash_subtype() {
        assert_eq!(parse_content_type("Image/PNG".into()).unwrap(), "image/png");
        assert!(parse_content_type("image/svg+xml".into()).is_ok());
        for bad in ["png", "image/", "/png", "text/html; charset=utf-8", "a/b\r\n"] {
            assert!(parse_content_type(bad.into()).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_ids_are_ulids_and_keys_sit_under_the_prefix() {
        let id = FileId::generate();
        assert_eq!(FileId::parse(id.as_str()).unwrap(), id);
        assert_eq!(id.key(), format!("files/{id}"));
        assert!(FileId::parse("../../etc/passwd").is_err());
    }
}
