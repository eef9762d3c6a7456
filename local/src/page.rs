//! The browser chat page (`web/`), served at `/` for a plain GET: a WebSocket upgrade on
//! the same path still goes to `$connect`. The files are compiled into the binary, so that
//! `cargo run` serves them from any directory.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// Every file of the page: its path, its media type, its content.
pub const FILES: &[(&str, &str, &str)] = &[
    ("/", HTML, include_str!("../../web/index.html")),
    ("/index.html", HTML, include_str!("../../web/index.html")),
    ("/style.css", CSS, include_str!("../../web/style.css")),
    ("/app.js", JAVASCRIPT, include_str!("../../web/app.js")),
    ("/transport.js", JAVASCRIPT, include_str!("../../web/transport.js")),
    (
        "/conversations.js",
        JAVASCRIPT,
        include_str!("../../web/conversations.js"),
    ),
    ("/history.js", JAVASCRIPT, include_str!("../../web/history.js")),
    ("/files.js", JAVASCRIPT, include_str!("../../web/files.js")),
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
