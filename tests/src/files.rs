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
///
/// moto (5.2) ignores S3's `response-content-disposition` override, which S3 serves as the
/// header: when the answer has no such header, the disposition is the one the URL signs.
pub async fn get(url: &str) -> (u16, Option<String>, Vec<u8>) {
    let response = client().get(url).send().await.expect("GET reached the file store");
    let status = response.status().as_u16();
    let disposition = response
        .headers()
        .get("content-disposition")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| signed_override(url, "response-content-disposition"));
    (status, disposition, response.bytes().await.expect("a body").to_vec())
}

/// A query parameter of a URL, percent-decoded.
fn signed_override(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let value = query
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))?;
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            value.get(i + 1..i + 3).and_then(|hex| u8::from_str_radix(hex, 16).ok()),
        ) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Whether a GET's status says the file is not there: 404, or 403 as S3 (and moto)
/// answer for a missing key to whoever may not list the bucket.
pub fn not_there(status: u16) -> bool {
    status == 404 || status == 403
}
