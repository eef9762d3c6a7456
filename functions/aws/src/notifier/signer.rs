//! SigV4 for `@connections` posts, with what does not change from one post to the next
//! computed once: the signing key (one a day per region and service: `aws-sigv4`'s own
//! derivation), the credential scope and the `Authorization` header's prefix. A post
//! then costs two SHA-256 passes (its body's, once per shared frame; its canonical request's) and one HMAC —
//! where the SDK's signer also derives the key again (four HMACs) and builds its
//! canonical request through a general header map for every request.
//!
//! The canonical request is the one `aws_sigv4::http_request::sign` makes for the same
//! request with the SDK's settings (double percent-encoding of the path, the host,
//! `x-amz-date` and `x-amz-security-token` headers signed, no `x-amz-content-sha256`);
//! the tests check it against that function. Credentials come from the SDK's provider
//! and are fetched again before they expire.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use http::HeaderValue;

/// The signing name of the API Gateway management API.
pub const SERVICE: &str = "execute-api";

/// Credentials are fetched again this long before they expire, as the SDK's identity
/// cache does (with a margin wide enough for a post's own timeout).
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// After a failed refresh (or for credentials already inside the margin), how long the
/// current credentials are used before the provider is asked again.
const RETRY_REFRESH_AFTER: Duration = Duration::from_secs(10);

/// What one post is signed with: the headers to add to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// `YYYYMMDD'T'HHMMSS'Z'`.
    pub date_time: HeaderValue,
    pub authorization: String,
    /// The credentials' session token, sent as `x-amz-security-token` (and signed).
    pub session_token: Option<HeaderValue>,
}

/// Everything that holds for one set of credentials on one UTC day.
struct DayKey {
    /// `YYYYMMDD`.
    date: [u8; 8],
    /// The day's signing key (`aws-sigv4`'s derivation), ready for HMAC.
    key: aws_lc_rs::hmac::Key,
    /// When the credentials must be fetched again (`None`: they never expire).
    refresh_at: Option<SystemTime>,
    /// Hard expiry: after it the old credentials are not used even if a refresh fails.
    expires_at: Option<SystemTime>,
    credentials: Credentials,
    /// Made into a header value once: a Lambda's token is about a kilobyte.
    session_token: Option<HeaderValue>,
    /// `{date}/{region}/{service}/aws4_request`.
    scope: String,
    /// `AWS4-HMAC-SHA256 Credential={key id}/{scope}, SignedHeaders={..}, Signature=`.
    authorization_prefix: String,
    /// The canonical request's headers after `x-amz-date`'s value, through the payload
    /// hash's line: the security token's line, the blank line, the signed headers.
    headers_tail: String,
}

#[derive(Debug, thiserror::Error)]
#[error("no AWS credentials to sign the post with")]
pub struct NoCredentials(#[source] pub aws_credential_types::provider::error::CredentialsError);

/// Signs posts to one `@connections` host.
pub struct Signer {
    provider: SharedCredentialsProvider,
    region: String,
    /// `host:{host}\n`, the canonical request's first header line.
    host_line: String,
    current: RwLock<Option<Arc<DayKey>>>,
    /// One refresh at a time; the others wait for its result.
    refreshing: tokio::sync::Mutex<()>,
}

impl Signer {
    /// `host` is the `Host` header's value the posts carry (with the port when it is not
    /// the scheme's default).
    pub fn new(provider: SharedCredentialsProvider, region: &str, host: &str) -> Self {
        Self {
            provider,
            region: region.to_owned(),
            host_line: format!("host:{host}\n"),
            current: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// Signs `POST {canonical_path}` with a body whose [`payload_hash`] is `payload_hash`, at
    /// `now`. `canonical_path` is the
    /// request's path percent-encoded a second time (SigV4's double encoding).
    pub async fn sign(
        &self,
        canonical_path: &str,
        payload_hash: &str,
        now: SystemTime,
    ) -> Result<Signature, NoCredentials> {
        let stamp = Stamp::of(now);
        let day = self.day_key(&stamp, now).await?;
        Ok(day.sign(&self.host_line, canonical_path, payload_hash, &stamp))
    }

    async fn day_key(&self, stamp: &Stamp, now: SystemTime) -> Result<Arc<DayKey>, NoCredentials> {
        if let Some(day) = self.usable(stamp, now) {
            return Ok(day);
        }
        let _one_at_a_time = self.refreshing.lock().await;
        // Another post may have refreshed while this one waited.
        if let Some(day) = self.usable(stamp, now) {
            return Ok(day);
        }
        let previous = self.current.read().expect("signer lock").clone();
        let day = match previous {
            // A new day with the same, still fresh credentials: only the key changes.
            Some(previous) if previous.fresh(now) => DayKey::new(&previous.credentials, &self.region, stamp, now),
            _ => match self.provider.provide_credentials().await {
                Ok(credentials) => DayKey::new(&credentials, &self.region, stamp, now),
                // Credentials due for a refresh are still good until they expire: keep
                // signing with them, and ask again a little later rather than on every post.
                Err(error) => match previous.filter(|day| day.expires_at.is_none_or(|expiry| now < expiry)) {
                    Some(previous) => {
                        tracing::warn!(
                            error = &error as &dyn std::error::Error,
                            "cannot refresh the AWS credentials; signing with the current ones until they expire"
                        );
                        let mut day = DayKey::new(&previous.credentials, &self.region, stamp, now);
                        day.refresh_at = Some(now + RETRY_REFRESH_AFTER);
                        day
                    }
                    None => return Err(NoCredentials(error)),
                },
            },
        };
        let day = Arc::new(day);
        *self.current.write().expect("signer lock") = Some(day.clone());
        Ok(day)
    }

    /// The cached key when it is for `stamp`'s day and its credentials are not due for a
    /// refresh.
    fn usable(&self, stamp: &Stamp, now: SystemTime) -> Option<Arc<DayKey>> {
        let current = self.current.read().expect("signer lock");
        let day = current.as_ref()?;
        (day.fresh(now) && day.date == stamp.date()).then(|| day.clone())
    }
}

impl DayKey {
    fn new(credentials: &Credentials, region: &str, stamp: &Stamp, now: SystemTime) -> Self {
        let date = stamp.date();
        let date_str = std::str::from_utf8(&date).expect("ASCII digits");
        // `now` is `stamp`'s moment: the key is for its date.
        let derived = aws_sigv4::sign::v4::generate_signing_key(credentials.secret_access_key(), now, region, SERVICE);
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, derived.as_ref());
        let token = credentials.session_token();
        let signed_headers = if token.is_some() {
            "host;x-amz-date;x-amz-security-token"
        } else {
            "host;x-amz-date"
        };
        let scope = format!("{date_str}/{region}/{SERVICE}/aws4_request");
        let headers_tail = match token {
            Some(token) => format!("\nx-amz-security-token:{token}\n\n{signed_headers}\n"),
            None => format!("\n\n{signed_headers}\n"),
        };
        Self {
            date,
            key,
            session_token: token.and_then(|token| HeaderValue::from_str(token).ok()),
            // Credentials that expire sooner than the margin are used until then,
            // fetched again a little later each time.
            refresh_at: credentials.expiry().map(|expiry| {
                expiry
                    .checked_sub(REFRESH_BEFORE_EXPIRY)
                    .filter(|at| *at > now)
                    .unwrap_or_else(|| (now + RETRY_REFRESH_AFTER).min(expiry))
            }),
            expires_at: credentials.expiry(),
            authorization_prefix: format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature=",
                credentials.access_key_id()
            ),
            scope,
            headers_tail,
            credentials: credentials.clone(),
        }
    }

    fn fresh(&self, now: SystemTime) -> bool {
        self.refresh_at.is_none_or(|at| now < at)
    }

    fn sign(&self, host_line: &str, canonical_path: &str, payload_hash: &str, stamp: &Stamp) -> Signature {
        let date_time = stamp.date_time();
        let date_time = std::str::from_utf8(&date_time).expect("ASCII digits");

        let mut canonical = String::with_capacity(
            "POST\n\n\nx-amz-date:\n".len()
                + canonical_path.len()
                + host_line.len()
                + date_time.len()
                + self.headers_tail.len()
                + payload_hash.len(),
        );
        canonical.push_str("POST\n");
        canonical.push_str(canonical_path);
        // No query string.
        canonical.push_str("\n\n");
        canonical.push_str(host_line);
        canonical.push_str("x-amz-date:");
        canonical.push_str(date_time);
        canonical.push_str(&self.headers_tail);
        canonical.push_str(payload_hash);
        let mut canonical_hex = [0u8; 64];
        let canonical_hash = hex_of(sha256(canonical.as_bytes()).as_ref(), &mut canonical_hex);

        // The canonical request's buffer, reused.
        let mut string_to_sign = canonical;
        string_to_sign.clear();
        for part in ["AWS4-HMAC-SHA256\n", date_time, "\n", &self.scope, "\n", canonical_hash] {
            string_to_sign.push_str(part);
        }
        // The signature of `aws_sigv4::sign::v4::calculate_signature`, HMAC-SHA256 with the
        // day's key, from a key whose inner and outer pads were hashed once.
        let mut signature = [0u8; 64];
        let signature = hex_of(
            aws_lc_rs::hmac::sign(&self.key, string_to_sign.as_bytes()).as_ref(),
            &mut signature,
        );
        let mut authorization = String::with_capacity(self.authorization_prefix.len() + signature.len());
        authorization.push_str(&self.authorization_prefix);
        authorization.push_str(signature);
        Signature {
            date_time: HeaderValue::from_str(date_time).expect("ASCII digits"),
            authorization,
            session_token: self.session_token.clone(),
        }
    }
}

/// The lowercase hex SHA-256 of a body, as the canonical request's last line holds it.
pub fn payload_hash(payload: &[u8]) -> String {
    let mut hex = [0u8; 64];
    hex_of(sha256(payload).as_ref(), &mut hex).to_owned()
}

/// `digest` (32 bytes) in lowercase hex, written into `out`.
fn hex_of<'a>(digest: &[u8], out: &'a mut [u8; 64]) -> &'a str {
    hex::encode_to_slice(digest, out).expect("a SHA-256 digest is 32 bytes");
    std::str::from_utf8(out).expect("hex is ASCII")
}

/// SHA-256 by aws-lc (the SDK's TLS library, already linked): its assembly takes some 3 to
/// 4 times fewer instructions per block than the portable Rust implementation `aws-sigv4`
/// uses, and a post hashes its canonical request (with a Lambda's session token, some
/// 1,400 bytes) every time.
fn sha256(data: &[u8]) -> aws_lc_rs::digest::Digest {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
}

/// The payload hashes of the last few shared frames. Fan-out posts one frame to every
/// member of a room, so its hash is computed once rather than per member. A frame is
/// known by its address: the cache keeps a reference to each frame it holds, so the
/// memory cannot be reused by another frame while the entry lives.
pub struct PayloadHashes {
    entries: std::sync::Mutex<PayloadEntries>,
}

/// A few entries, replaced in turn: a batch's posts are spread over its records'
/// frames at any moment.
const PAYLOAD_HASHES: usize = 8;

#[derive(Default)]
struct PayloadEntries {
    frames: [Option<(bytes::Bytes, Arc<str>)>; PAYLOAD_HASHES],
    next: usize,
}

impl Default for PayloadHashes {
    fn default() -> Self {
        Self {
            entries: std::sync::Mutex::new(PayloadEntries::default()),
        }
    }
}

impl PayloadHashes {
    pub fn of(&self, frame: &bytes::Bytes) -> Arc<str> {
        let same = |held: &bytes::Bytes| held.as_ptr() == frame.as_ptr() && held.len() == frame.len();
        {
            let entries = self.entries.lock().expect("payload hashes lock");
            if let Some((_, hash)) = entries.frames.iter().flatten().find(|(held, _)| same(held)) {
                return hash.clone();
            }
        }
        let hash: Arc<str> = Arc::from(payload_hash(frame));
        let mut entries = self.entries.lock().expect("payload hashes lock");
        let slot = entries.next;
        entries.frames[slot] = Some((frame.clone(), hash.clone()));
        entries.next = (slot + 1) % PAYLOAD_HASHES;
        hash
    }
}

/// A moment in UTC to the second, as SigV4 writes it.
struct Stamp {
    year: i32,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

impl Stamp {
    fn of(time: SystemTime) -> Self {
        let utc = time::OffsetDateTime::from(time);
        Self {
            year: utc.year(),
            month: u8::from(utc.month()),
            day: utc.day(),
            hour: utc.hour(),
            minute: utc.minute(),
            second: utc.second(),
        }
    }

    /// `YYYYMMDD`.
    fn date(&self) -> [u8; 8] {
        let mut out = [b'0'; 8];
        digits(&mut out[0..4], self.year.clamp(0, 9999) as u32);
        digits(&mut out[4..6], u32::from(self.month));
        digits(&mut out[6..8], u32::from(self.day));
        out
    }

    /// `YYYYMMDD'T'HHMMSS'Z'`.
    fn date_time(&self) -> [u8; 16] {
        let mut out = [b'0'; 16];
        out[0..8].copy_from_slice(&self.date());
        out[8] = b'T';
        digits(&mut out[9..11], u32::from(self.hour));
        digits(&mut out[11..13], u32::from(self.minute));
        digits(&mut out[13..15], u32::from(self.second));
        out[15] = b'Z';
        out
    }
}

/// Writes `value` in decimal into `out`, zero-padded to its length.
fn digits(out: &mut [u8], mut value: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}
