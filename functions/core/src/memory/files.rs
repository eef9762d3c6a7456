//! The embedded file store: the [`Files`] port on a directory, whose presigned URLs point
//! at the local gateway, which serves them (local/src/files.rs) after [`DirectoryFiles::check`]
//! has passed them. As S3 does, a URL is good only until its expiry and only as signed: the
//! signature (HMAC-SHA256 under a key the gateway makes at start) covers the method, the
//! file, the expiry and, for a PUT, the size and type, for a GET how it is served.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::files::{Download, FileId, PresignedPut};
use crate::ports::{FileError, Files};

type HmacSha256 = Hmac<Sha256>;

/// The query parameters of a signed URL.
pub mod param {
    pub const EXPIRES: &str = "X-Expires";
    pub const SIZE: &str = "X-Size";
    pub const TYPE: &str = "X-Type";
    pub const DISPOSITION: &str = "X-Disposition";
    pub const SIGNATURE: &str = "X-Signature";
}

pub struct DirectoryFiles {
    dir: PathBuf,
    /// Where the gateway serves the files: `http://127.0.0.1:3001/files`.
    base_url: String,
    key: [u8; 32],
}

/// What a URL that checked out allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Write exactly `size` bytes of `content_type`.
    Put { size: u64, content_type: String },
    /// Read, served as `download` says.
    Get { download: Download },
}

/// Why a URL is refused: the gateway answers 403 with the reason, as S3 does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub &'static str);

impl DirectoryFiles {
    /// A store in `dir` (created when missing), its URLs under `base_url`, signed with
    /// `key` (random, made by the caller at start: URLs die with the process).
    pub fn new(dir: impl Into<PathBuf>, base_url: impl Into<String>, key: [u8; 32]) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            key,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the file's bytes are once uploaded.
    pub fn path_of(&self, file: &FileId) -> PathBuf {
        self.dir.join(file.as_str())
    }

    /// Where an upload is written before it is complete (then renamed into place), so that
    /// a body cut short or too long never becomes the file.
    pub fn partial_path_of(&self, file: &FileId) -> PathBuf {
        self.dir.join(format!("{}.{}.part", file.as_str(), ulid::Ulid::new()))
    }

    fn signature(&self, fields: &[&str]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes a key of any size");
        for field in fields {
            // Each field with its length, so that no two lists of fields sign alike.
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
        }
        mac
    }

    fn signed_fields<'a>(method: &'a str, file: &'a str, expires: &'a str, a: &'a str, b: &'a str) -> [&'a str; 5] {
        [method, file, expires, a, b]
    }

    fn url(&self, file: &FileId, params: &[(&str, &str)], mac: HmacSha256) -> String {
        let signature = hex(&mac.finalize().into_bytes());
        let mut url = format!("{}/{}?", self.base_url, file.as_str());
        for (name, value) in params.iter().chain([&(param::SIGNATURE, signature.as_str())]) {
            if !url.ends_with('?') {
                url.push('&');
            }
            url.push_str(name);
            url.push('=');
            url.push_str(&encode_component(value));
        }
        url
    }

    /// Checks a request for `file` by `method` with the URL's (decoded) `query` at `now_ms`:
    /// what it may do, or why not.
    pub fn check(&self, method: &str, file: &str, query: &[(String, String)], now_ms: i64) -> Result<Grant, Refused> {
        let get = |name: &str| {
            query
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let (Some(expires), Some(signature)) = (get(param::EXPIRES), get(param::SIGNATURE)) else {
            return Err(Refused("the URL is not signed"));
        };
        let signature = unhex(signature).ok_or(Refused("the signature does not match"))?;
        let (a, b) = match method {
            "PUT" => (get(param::SIZE).unwrap_or(""), get(param::TYPE).unwrap_or("")),
            "GET" | "HEAD" => (get(param::TYPE).unwrap_or(""), get(param::DISPOSITION).unwrap_or("")),
            _ => return Err(Refused("only PUT and GET are signed")),
        };
        let signed_method = if method == "PUT" { "PUT" } else { "GET" };
        self.signature(&Self::signed_fields(signed_method, file, expires, a, b))
            .verify_slice(&signature)
            .map_err(|_| Refused("the signature does not match"))?;
        let expires: i64 = expires.parse().map_err(|_| Refused("the expiry is not a number"))?;
        if now_ms >= expires.saturating_mul(1000) {
            return Err(Refused("the URL has expired"));
        }
        Ok(match signed_method {
            "PUT" => Grant::Put {
                size: a.parse().map_err(|_| Refused("the size is not a number"))?,
                content_type: b.to_owned(),
            },
            _ => Grant::Get {
                download: Download {
                    content_type: a.to_owned(),
                    disposition: b.to_owned(),
                },
            },
        })
    }
}

/// Seconds since the epoch at which a URL made at `now_ms`, valid for `valid_for`, expires.
fn expiry(now_ms: i64, valid_for: Duration) -> i64 {
    now_ms.div_euclid(1000) + i64::try_from(valid_for.as_secs()).unwrap_or(i64::MAX / 2)
}

#[async_trait]
impl Files for DirectoryFiles {
    async fn presign_put(
        &self,
        file: &FileId,
        content_type: &str,
        size: u64,
        now_ms: i64,
        valid_for: Duration,
    ) -> Result<PresignedPut, FileError> {
        let expires = expiry(now_ms, valid_for).to_string();
        let size_text = size.to_string();
        let mac = self.signature(&Self::signed_fields(
            "PUT",
            file.as_str(),
            &expires,
            &size_text,
            content_type,
        ));
        let url = self.url(
            file,
            &[
                (param::EXPIRES, &expires),
                (param::SIZE, &size_text),
                (param::TYPE, content_type),
            ],
            mac,
        );
        Ok(PresignedPut {
            url,
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            expires_at_ms: expiry(now_ms, valid_for).saturating_mul(1000),
        })
    }

    async fn presign_get(
        &self,
        file: &FileId,
        download: &Download,
        now_ms: i64,
        valid_for: Duration,
    ) -> Result<String, FileError> {
        let expires = expiry(now_ms, valid_for).to_string();
        let mac = self.signature(&Self::signed_fields(
            "GET",
            file.as_str(),
            &expires,
            &download.content_type,
            &download.disposition,
        ));
        Ok(self.url(
            file,
            &[
                (param::EXPIRES, &expires),
                (param::TYPE, &download.content_type),
                (param::DISPOSITION, &download.disposition),
            ],
            mac,
        ))
    }

    async fn uploaded_size(&self, file: &FileId) -> Result<Option<u64>, FileError> {
        match tokio::fs::metadata(self.path_of(file)).await {
            Ok(metadata) => Ok(Some(metadata.len())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(FileError::unavailable(error)),
        }
    }

    async fn delete(&self, file: &FileId) -> Result<(), FileError> {
        match tokio::fs::remove_file(self.path_of(file)).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(FileError::unavailable(error)),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Percent-encodes everything but RFC 3986's unreserved characters (so `+` stays a plus
/// when a form decoder reads it back).
fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query of a URL, decoded as a server's query parser would.
    fn query(url: &str) -> Vec<(String, String)> {
        let decode = |text: &str| {
            let bytes = text.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' {
                    out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        };
        let (_, query) = url.split_once('?').unwrap();
        query
            .split('&')
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap();
                (decode(name), decode(value))
            })
            .collect()
    }

    #[tokio::test]
    async fn urls_check_out_only_as_signed_and_until_they_expire() {
        let dir = std::env::temp_dir().join(format!("roomcast-files-{}", ulid::Ulid::new()));
        let files = DirectoryFiles::new(&dir, "http://x/files", [7; 32]).unwrap();
        let file = FileId::generate();
        let put = files
            .presign_put(&file, "image/svg+xml", 10, 1_000_000, Duration::from_secs(300))
            .await
            .unwrap();
        let mut q = query(&put.url);
        assert_eq!(
            files.check("PUT", file.as_str(), &q, 1_000_000),
            Ok(Grant::Put {
                size: 10,
                content_type: "image/svg+xml".into()
            })
        );
        assert_eq!(
            files.check("PUT", file.as_str(), &q, 1_300_000),
            Err(Refused("the URL has expired"))
        );
        assert!(
            files.check("GET", file.as_str(), &q, 1_000_000).is_err(),
            "a PUT's URL is no GET's"
        );
        assert!(files.check("PUT", FileId::generate().as_str(), &q, 1_000_000).is_err());
        q[1].1 = "11".into();
        assert_eq!(
            files.check("PUT", file.as_str(), &q, 1_000_000),
            Err(Refused("the signature does not match"))
        );

        let download = Download::of("a b+c.html", "text/html");
        let get = files
            .presign_get(&file, &download, 1_000_000, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            files.check("GET", file.as_str(), &query(&get), 1_059_999),
            Ok(Grant::Get { download })
        );
        let other_key = DirectoryFiles::new(&dir, "http://x/files", [8; 32]).unwrap();
        assert!(other_key.check("GET", file.as_str(), &query(&get), 1_000_000).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
