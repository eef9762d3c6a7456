//! The contract of the `Files` port, with real HTTP PUTs and GETs of its presigned URLs:
//! on the embedded directory store (served by a local gateway) and on moto's S3. moto
//! checks no signature, so the signature, expiry and size checks are the embedded store's
//! alone (`the_embedded_store_refuses_*`).

use std::sync::Arc;
use std::time::Duration;

use roomcast_core::clock::now_ms;
use roomcast_core::files::{Download, FileId};
use roomcast_core::Files;
use roomcast_tests::each_backend;
use roomcast_tests::files::{get, not_there, put};
use roomcast_tests::gateways::{gateway, Mode};

each_backend!(
    embedded => Store::embedded().await,
    s3 => Store::s3().await;
    [
        a_put_file_is_there_with_its_size_and_served_as_signed,
        only_raster_images_are_served_inline,
        a_deleted_file_is_gone,
    ]
);

each_backend!(
    embedded_only => Store::embedded().await;
    [
        the_embedded_store_refuses_tampered_and_expired_urls,
        the_embedded_store_refuses_a_body_longer_than_declared_or_of_another_type,
    ]
);

/// A file store and what keeps its URLs served.
pub(crate) struct Store {
    files: Arc<dyn Files>,
    _gateway: Option<roomcast_local::Running>,
}

impl Store {
    async fn embedded() -> Self {
        let gateway = gateway(Mode::Embedded).await;
        Self {
            files: gateway.files(),
            _gateway: Some(gateway),
        }
    }

    async fn s3() -> Self {
        Self {
            files: Arc::new(roomcast_tests::moto::fresh_files().await),
            _gateway: None,
        }
    }

    /// A file of `content_type` PUT through a fresh presigned URL; its id.
    async fn uploaded(&self, content_type: &str, body: &[u8]) -> FileId {
        let file = FileId::generate();
        let slot = self
            .files
            .presign_put(
                &file,
                content_type,
                body.len() as u64,
                now_ms(),
                Duration::from_secs(300),
            )
            .await
            .expect("a PUT signed");
        assert_eq!(put(&slot.url, &slot.headers, body.to_vec()).await, 200, "{}", slot.url);
        file
    }

    async fn get_url(&self, file: &FileId, name: &str, content_type: &str) -> String {
        self.files
            .presign_get(
                file,
                &Download::of(name, content_type),
                now_ms(),
                Duration::from_secs(60),
            )
            .await
            .expect("a GET signed")
    }
}

/// Bytes no two tests share, of every value.
fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + len) as u8).collect()
}

async fn a_put_file_is_there_with_its_size_and_served_as_signed(store: Store) {
    let missing = FileId::generate();
    assert_eq!(
        store.files.uploaded_size(&missing).await.unwrap(),
        None,
        "nothing uploaded yet"
    );
    let bytes = body(300_000);
    let file = store.uploaded("application/pdf", &bytes).await;
    assert_eq!(store.files.uploaded_size(&file).await.unwrap(), Some(300_000));
    let (status, disposition, served) = get(&store.get_url(&file, "report 2026.pdf", "application/pdf").await).await;
    assert_eq!(status, 200);
    assert_eq!(served, bytes, "the same bytes come back");
    assert_eq!(
        disposition.as_deref(),
        Some("attachment; filename=\"report 2026.pdf\"; filename*=UTF-8''report%202026.pdf")
    );
}

async fn only_raster_images_are_served_inline(store: Store) {
    let png = store.uploaded("image/png", b"\x89PNG not really").await;
    let (status, disposition, _) = get(&store.get_url(&png, "cat.png", "image/png").await).await;
    assert_eq!(status, 200);
    assert!(disposition.unwrap().starts_with("inline;"));
    for (name, kind) in [("page.html", "text/html"), ("logo.svg", "image/svg+xml")] {
        let file = store.uploaded(kind, b"<svg onload=alert(1)>").await;
        let (status, disposition, _) = get(&store.get_url(&file, name, kind).await).await;
        assert_eq!(status, 200);
        assert!(
            disposition.unwrap().starts_with("attachment;"),
            "{kind} is never inline"
        );
    }
}

async fn a_deleted_file_is_gone(store: Store) {
    let file = store.uploaded("text/plain", b"short-lived").await;
    let url = store.get_url(&file, "a.txt", "text/plain").await;
    store.files.delete(&file).await.expect("deleted");
    store.files.delete(&file).await.expect("deleting again is no error");
    assert_eq!(store.files.uploaded_size(&file).await.unwrap(), None);
    let status = get(&url).await.0;
    assert!(not_there(status), "its URL finds nothing: {status}");
}

async fn the_embedded_store_refuses_tampered_and_expired_urls(store: Store) {
    let file = store.uploaded("text/plain", b"secret").await;
    let url = store.get_url(&file, "a.txt", "text/plain").await;
    assert_eq!(get(&url).await.0, 200);
    // Another file under the same signature, another disposition, a changed signature.
    let other = url.replace(file.as_str(), FileId::generate().as_str());
    let inline = url.replace("attachment", "inline");
    let forged = match url.rfind(|c: char| c.is_ascii_hexdigit()) {
        Some(last) => {
            let flipped = if &url[last..=last] == "0" { "1" } else { "0" };
            format!("{}{flipped}{}", &url[..last], &url[last + 1..])
        }
        None => unreachable!("a signed URL ends with its signature"),
    };
    let unsigned = url.split('?').next().unwrap().to_owned();
    for bad in [other, inline, forged, unsigned] {
        assert_eq!(get(&bad).await.0, 403, "{bad}");
    }
    // Signed ten minutes ago for five: expired.
    let expired = store
        .files
        .presign_get(
            &file,
            &Download::of("a.txt", "text/plain"),
            now_ms() - 600_000,
            Duration::from_secs(300),
        )
        .await
        .unwrap();
    let (status, _, body) = get(&expired).await;
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("expired"));
}

async fn the_embedded_store_refuses_a_body_longer_than_declared_or_of_another_type(store: Store) {
    let file = FileId::generate();
    let slot = store
        .files
        .presign_put(&file, "image/png", 1_000, now_ms(), Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(
        put(&slot.url, &slot.headers, body(1_001)).await,
        413,
        "longer than declared"
    );
    assert_eq!(put(&slot.url, &slot.headers, body(2_000_000)).await, 413, "far longer");
    let as_html = [("Content-Type".to_owned(), "text/html".to_owned())];
    assert_eq!(
        put(&slot.url, &as_html, body(1_000)).await,
        403,
        "another type than signed"
    );
    assert_eq!(
        store.files.uploaded_size(&file).await.unwrap(),
        None,
        "none became the file"
    );
    assert_eq!(
        put(&slot.url, &slot.headers, body(1_000)).await,
        200,
        "the declared body goes in"
    );
    assert_eq!(store.files.uploaded_size(&file).await.unwrap(), Some(1_000));
}
