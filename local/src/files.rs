//! The embedded file store's URLs, served: `PUT /files/{id}` and `GET /files/{id}` take
//! the presigned URLs [`DirectoryFiles`] signs, as S3 takes its own. A URL whose signature
//! does not match, or that has expired, is answered 403; a PUT must carry the signed
//! `Content-Type` (403 otherwise) and exactly the signed size: a body longer than declared
//! is refused with 413 and never becomes the file (it is written aside and renamed into
//! place only when complete). A GET serves the file as its URL says (inline only for the
//! raster images the domain allows), with `nosniff` and a sandboxing CSP besides.
//! With `--s3-endpoint` these routes answer 404: the files are the S3 API's.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::Router;
use futures::StreamExt as _;
use roomcast_core::files::FileId;
use roomcast_core::memory::files::{Grant, Refused};
use roomcast_core::memory::DirectoryFiles;
use tokio::io::AsyncWriteExt as _;

use crate::Gateway;

/// Where the gateway serves the embedded file store.
pub const FILES_PATH: &str = "/files";

/// A body whose next bytes take longer than this is given up on.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A body longer than declared is read on (not kept) up to this much more before the 413
/// goes out, so that a client still writing sees the answer rather than a reset.
const DRAIN_BYTES: u64 = 4 * 1024 * 1024;

pub fn routes() -> Router<Arc<Gateway>> {
    Router::new().route(
        &format!("{FILES_PATH}/{{id}}"),
        put(upload).get(download).head(download),
    )
}

/// A refusal as text, with S3's statuses.
fn refused(status: StatusCode, reason: &str) -> Response {
    (status, format!("{reason}\n")).into_response()
}

fn forbidden(Refused(reason): Refused) -> Response {
    refused(StatusCode::FORBIDDEN, reason)
}

/// The store and the file a request names, or its 404.
#[allow(clippy::result_large_err)]
fn target(gateway: &Gateway, id: &str) -> Result<(Arc<DirectoryFiles>, FileId), Response> {
    let not_found = || refused(StatusCode::NOT_FOUND, "no such file");
    let directory = gateway.files.clone().ok_or_else(not_found)?;
    let file = FileId::parse(id).map_err(|_| not_found())?;
    Ok((directory, file))
}

async fn upload(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (directory, file) = match target(&gateway, &id) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (size, content_type) = match directory.check("PUT", file.as_str(), &query, roomcast_core::clock::now_ms()) {
        Ok(Grant::Put { size, content_type }) => (size, content_type),
        Ok(Grant::Get { .. }) => return refused(StatusCode::FORBIDDEN, "this URL is not for a PUT"),
        Err(refusal) => return forbidden(refusal),
    };
    let sent_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
    if sent_type != Some(content_type.as_str()) {
        return refused(
            StatusCode::FORBIDDEN,
            "the Content-Type is not the one signed: send the upload's headers as they are",
        );
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match declared {
        Some(length) if length > size => {
            return refused(StatusCode::PAYLOAD_TOO_LARGE, "the body is longer than the size signed")
        }
        Some(length) if length < size => {
            return refused(StatusCode::BAD_REQUEST, "the body is shorter than the size signed")
        }
        _ => {}
    }
    let partial = directory.partial_path_of(&file);
    let written = write(&partial, body, size).await;
    let answer = match written {
        Ok(length) if length == size => match tokio::fs::rename(&partial, directory.path_of(&file)).await {
            Ok(()) => return StatusCode::OK.into_response(),
            Err(error) => {
                tracing::error!(%error, "could not keep an upload");
                refused(StatusCode::INTERNAL_SERVER_ERROR, "could not keep the file")
            }
        },
        Ok(length) if length > size => {
            refused(StatusCode::PAYLOAD_TOO_LARGE, "the body is longer than the size signed")
        }
        Ok(_) => refused(StatusCode::BAD_REQUEST, "the body is shorter than the size signed"),
        Err(response) => response,
    };
    let _ = tokio::fs::remove_file(&partial).await;
    answer
}

/// Writes the body to `path`, up to `size` bytes; returns how many bytes came (more than
/// `size` when the body was too long: the rest is read, within bounds, and dropped).
async fn write(path: &std::path::Path, body: Body, size: u64) -> Result<u64, Response> {
    let failed = |error: std::io::Error| {
        tracing::error!(%error, "could not write an upload");
        refused(StatusCode::INTERNAL_SERVER_ERROR, "could not keep the file")
    };
    let mut out = tokio::fs::File::create(path).await.map_err(failed)?;
    let mut stream = body.into_data_stream();
    let mut length: u64 = 0;
    loop {
        let chunk = match tokio::time::timeout(BODY_IDLE_TIMEOUT, stream.next()).await {
            Err(_elapsed) => return Err(refused(StatusCode::REQUEST_TIMEOUT, "the body stalled")),
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(refused(StatusCode::BAD_REQUEST, "the body was cut off")),
            Ok(Some(Ok(chunk))) => chunk,
        };
        let room = size.saturating_sub(length);
        let keep = chunk.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        out.write_all(&chunk[..keep]).await.map_err(failed)?;
        length += chunk.len() as u64;
        if length > size.saturating_add(DRAIN_BYTES) {
            break;
        }
    }
    out.flush().await.map_err(failed)?;
    Ok(length)
}

async fn download(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let (directory, file) = match target(&gateway, &id) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let download = match directory.check("GET", file.as_str(), &query, roomcast_core::clock::now_ms()) {
        Ok(Grant::Get { download }) => download,
        Ok(Grant::Put { .. }) => return refused(StatusCode::FORBIDDEN, "this URL is not for a GET"),
        Err(refusal) => return forbidden(refusal),
    };
    let bytes = match tokio::fs::read(directory.path_of(&file)).await {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return refused(StatusCode::NOT_FOUND, "no such file")
        }
        Err(error) => {
            tracing::error!(%error, "could not read a file");
            return refused(StatusCode::INTERNAL_SERVER_ERROR, "could not read the file");
        }
    };
    let header_value = |value: &str| HeaderValue::from_str(value).ok();
    let (Some(content_type), Some(disposition)) = (
        header_value(&download.content_type),
        header_value(&download.disposition),
    ) else {
        return refused(StatusCode::FORBIDDEN, "the URL asks for headers that cannot be sent");
    };
    let mut response = Body::from(bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    response
}
