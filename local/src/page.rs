//! The browser chat page (`web/`), served at `/` for a plain GET: a WebSocket upgrade on
//! the same path still goes to `$connect`. The files are compiled into the binary, so that
//! `cargo run` serves them from any directory.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// A file of `web/`: served at `/{name}` as `media_type`, its content compiled in.
macro_rules! web_file {
    ($name:literal, $media_type:expr) => {
        (
            concat!("/", $name),
            $media_type,
            include_str!(concat!("../../web/", $name)),
        )
    };
}

/// Every file of the page: its path, its media type, its content. This is the one list of
/// the page's files: the tests check that the page loads exactly these, that the stack's
/// `ChatPageUpload` copies exactly these, and that docs/chat-page.md names each.
pub const FILES: &[(&str, &str, &str)] = &[
    ("/", HTML, include_str!("../../web/index.html")),
    web_file!("index.html", HTML),
    web_file!("style.css", CSS),
    web_file!("app.js", JAVASCRIPT),
    web_file!("state.js", JAVASCRIPT),
    web_file!("session.js", JAVASCRIPT),
    web_file!("alerts.js", JAVASCRIPT),
    web_file!("view.js", JAVASCRIPT),
    web_file!("composer.js", JAVASCRIPT),
    web_file!("rooms.js", JAVASCRIPT),
    web_file!("connection.js", JAVASCRIPT),
    web_file!("transport.js", JAVASCRIPT),
    web_file!("conversations.js", JAVASCRIPT),
    web_file!("history.js", JAVASCRIPT),
    web_file!("files.js", JAVASCRIPT),
];

/// The page's scripts and styles are its own files, and it connects to this gateway alone
/// (its WebSocket, HTTP API and file store are on the page's own origin): a link naming
/// another server cannot make the browser send it anything, a saved token least of all.
/// `blob:` images: the sender's own attached images, shown from the files it chose.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'none'";

/// [`CONTENT_SECURITY_POLICY`], letting the page also upload to and show images from
/// `files_origin`: the S3 API the gateway signs file URLs for (`--s3-endpoint`), the one
/// other origin the page may reach.
pub fn content_security_policy(files_origin: Option<&str>) -> HeaderValue {
    let policy = match files_origin {
        None => CONTENT_SECURITY_POLICY.to_owned(),
        Some(origin) => CONTENT_SECURITY_POLICY
            .replace(
                "img-src 'self' data: blob:;",
                &format!("img-src 'self' data: blob: {origin};"),
            )
            .replace("connect-src 'self';", &format!("connect-src 'self' {origin};")),
    };
    HeaderValue::from_str(&policy).unwrap_or_else(|_| HeaderValue::from_static(CONTENT_SECURITY_POLICY))
}

/// The page's file at `path`, if there is one, under `policy`.
pub fn serve(path: &str, policy: &HeaderValue) -> Option<Response> {
    let (_, media_type, content) = FILES.iter().find(|(file, _, _)| *file == path)?;
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(media_type)),
        // Revalidated on every load, so that a new build is picked up at once.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::CONTENT_SECURITY_POLICY, policy.clone()),
    ];
    Some((StatusCode::OK, headers, *content).into_response())
}
