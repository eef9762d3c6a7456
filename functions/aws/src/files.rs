//! The [`Files`] port on S3: presigned PUTs and GETs from the official SDK's presigning
//! (SigV4 query signatures: signing is local, no request), one HeadObject to check an
//! upload and one DeleteObject to delete. Every object is under [`FILES_PREFIX`], which is
//! all the functions' IAM policy allows them. A PUT's URL signs `Content-Type` and
//! `Content-Length`, so S3 refuses any other type or size.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::Client;
use roomcast_core::files::{Download, FileId, PresignedPut, FILES_PREFIX};
use roomcast_core::ports::{FileError, Files};

/// The bucket and its client.
#[derive(Debug, Clone)]
pub struct S3Files {
    client: Client,
    bucket: String,
}

/// An S3 client with `sdk`'s region, credentials and timeouts; pointed at `endpoint` with
/// path-style addressing when one is given (moto, MinIO, LocalStack), as such endpoints
/// have no bucket subdomains.
pub fn s3_client(sdk: &SdkConfig, endpoint: Option<&str>) -> Client {
    let mut config = aws_sdk_s3::config::Builder::from(sdk);
    if let Some(endpoint) = endpoint {
        config = config.endpoint_url(endpoint).force_path_style(true);
    }
    Client::from_conf(config.build())
}

impl S3Files {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket when missing (local mode and tests; SAM creates it in AWS).
    pub async fn ensure_bucket(&self) -> Result<(), FileError> {
        if self.client.head_bucket().bucket(&self.bucket).send().await.is_ok() {
            return Ok(());
        }
        match self.client.create_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(error) => match error.into_service_error() {
                aws_sdk_s3::operation::create_bucket::CreateBucketError::BucketAlreadyOwnedByYou(_) => Ok(()),
                other => Err(FileError::unavailable(other)),
            },
        }
    }

    /// Lets pages of `origins` PUT and GET the bucket's objects from the browser (CORS),
    /// as the template's bucket lets the chat page's origins: the local gateway's page on
    /// a local S3 API (`--s3-endpoint`).
    pub async fn allow_origins(&self, origins: &[String]) -> Result<(), FileError> {
        use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
        let rule = CorsRule::builder()
            .set_allowed_origins(Some(origins.to_vec()))
            .allowed_methods("PUT")
            .allowed_methods("GET")
            .allowed_headers("*")
            .max_age_seconds(3600)
            .build()
            .map_err(FileError::unavailable)?;
        let cors = CorsConfiguration::builder()
            .cors_rules(rule)
            .build()
            .map_err(FileError::unavailable)?;
        self.client
            .put_bucket_cors()
            .bucket(&self.bucket)
            .cors_configuration(cors)
            .send()
            .await
            .map_err(|error| FileError::unavailable(error.into_service_error()))?;
        Ok(())
    }
}

/// The SDK's presigning settings: from `now_ms` for `valid_for` (S3 allows up to 7 days).
fn presigning(now_ms: i64, valid_for: Duration) -> Result<PresigningConfig, FileError> {
    let start = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(now_ms).unwrap_or(0));
    PresigningConfig::builder()
        .start_time(start)
        .expires_in(valid_for.min(Duration::from_secs(7 * 24 * 3600)))
        .build()
        .map_err(FileError::unavailable)
}

#[async_trait]
impl Files for S3Files {
    async fn presign_put(
        &self,
        file: &FileId,
        content_type: &str,
        size: u64,
        now_ms: i64,
        valid_for: Duration,
    ) -> Result<PresignedPut, FileError> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(file.key())
            .content_type(content_type)
            .content_length(i64::try_from(size).unwrap_or(i64::MAX))
            .presigned(presigning(now_ms, valid_for)?)
            .await
            .map_err(FileError::unavailable)?;
        let mut headers: Vec<(String, String)> = request
            .headers()
            .map(|(name, value)| (canonical(name), value.to_owned()))
            .collect();
        if !headers.iter().any(|(name, _)| name == "Content-Type") {
            headers.push(("Content-Type".to_owned(), content_type.to_owned()));
        }
        Ok(PresignedPut {
            url: request.uri().to_owned(),
            headers,
            expires_at_ms: now_ms.saturating_add(i64::try_from(valid_for.as_millis()).unwrap_or(i64::MAX / 2)),
        })
    }

    async fn presign_get(
        &self,
        file: &FileId,
        download: &Download,
        now_ms: i64,
        valid_for: Duration,
    ) -> Result<String, FileError> {
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(file.key())
            .response_content_type(&download.content_type)
            .response_content_disposition(&download.disposition)
            .presigned(presigning(now_ms, valid_for)?)
            .await
            .map_err(FileError::unavailable)?;
        Ok(request.uri().to_owned())
    }

    async fn uploaded_size(&self, file: &FileId) -> Result<Option<u64>, FileError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(file.key())
            .send()
            .await
        {
            Ok(head) => Ok(Some(
                head.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
            )),
            Err(error) => match error.into_service_error() {
                error if error.is_not_found() => Ok(None),
                error => Err(FileError::unavailable(error)),
            },
        }
    }

    async fn delete(&self, file: &FileId) -> Result<(), FileError> {
        debug_assert!(file.key().starts_with(FILES_PREFIX));
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(file.key())
            .send()
            .await
            .map_err(FileError::unavailable)?;
        Ok(())
    }
}

/// `content-type` → `Content-Type`: as a client writes headers (HTTP does not mind).
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}
