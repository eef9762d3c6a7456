//! Attachments in tests: a scratch directory store (the embedded file store, with a key of
//! its own) and the plain HTTP client that PUTs and GETs presigned URLs as a browser or
//! curl would.

use std::time::Duration;

use roomcast_core::memory::DirectoryFiles;

/// A directory store in a new directory under the system's temporary directory, its URLs
/// under `base_url` (a gateway's `/files`; nothing serves them otherwise).
pub fn scratch_directory(base_url: &str) -> DirectoryFiles {
    let dir = std::env::temp_dir().join(crate::unique_name("roomcast-files"));
    let key: [u8; 32] = std::array::from_fn(|_| fastrand::u8(..));
    DirectoryFiles::new(dir, base_url, key).expect("a scratch directory")
}

/// The HTTP client of presigned URLs: no redirects, a timeout on every request.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// PUTs `body` to a presigned URL with `headers` (an upload slot's), answering its status.
pub async fn put(url: &str, headers: &[(String, String)], body: Vec<u8>) -> u16 {
    let mut request = client().put(url).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request
        .send()
        .await
        .expect("PUT reached the file store")
        .status()
        .as_u16()
}

/// GETs a presigned URL: its status, its `Content-Disposition` and its body.
pub async fn get(url: &str) -> (u16, Option<String>, Vec<u8>) {
    let response = client().get(url).send().await.expect("GET reached the file store");
    let status = response.status().as_u16();
    let disposition = response
        .headers()
        .get("content-disposition")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    (status, disposition, response.bytes().await.expect("a body").to_vec())
}
