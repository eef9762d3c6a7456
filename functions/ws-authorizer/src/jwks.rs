//! The issuer's public keys (a JWKS document, as Cognito and any OIDC issuer publish them),
//! cached by `kid`. A token naming an unknown `kid` makes it fetch the set again, but at
//! most once per `jwks_min_refetch`, so that random `kid`s cannot make it hammer the issuer.
//! The set is also fetched again once it is `jwks_refresh` old, so that a key the issuer
//! withdrew stops verifying tokens in a warm instance too. A Lambda instance is frozen
//! between invocations, so that timer runs on the lookups, not in the background: the first
//! lookup after the set expired fetches it. Should that fetch fail, the keys of the last
//! good set go on verifying (an issuer that is briefly down does not sign everyone out),
//! and the next lookup after `jwks_min_refetch` tries again.
//!
//! Redirects are followed only to https (or, as the URL itself, plain http on loopback):
//! a JWKS that came over plain http could be anyone's.
//!
//! The fetch needs the `jwks` feature (reqwest); without it no [`Jwks`] can be made, and
//! a JWKS URL is refused when the authorizer is built.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::settings::SettingsError;

/// A JWKS bigger than this is refused (Cognito's is about 1 KB).
const MAX_JWKS_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("the JWKS request timed out")]
    Timeout,
    #[cfg(feature = "jwks")]
    #[error("the JWKS request failed")]
    Request(#[source] reqwest::Error),
    #[error("the JWKS URL answered HTTP {0}")]
    Status(u16),
    #[error("the JWKS is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("the JWKS URL did not answer a JWKS document")]
    NotJwks(#[source] serde_json::Error),
    #[error("the last JWKS fetch failed less than {0:?} ago; not trying again yet")]
    RecentlyFailed(Duration),
    #[error("the JWKS URL redirected to {0}, which is not https")]
    InsecureRedirect(String),
}

#[cfg(feature = "jwks")]
impl From<reqwest::Error> for JwksError {
    fn from(error: reqwest::Error) -> Self {
        // The redirect policy's own error, however deep reqwest wrapped it.
        let mut source = std::error::Error::source(&error);
        let mut refused_redirect = None;
        while let Some(cause) = source {
            if let Some(refused) = cause.downcast_ref::<InsecureRedirect>() {
                refused_redirect = Some(JwksError::InsecureRedirect(refused.0.clone()));
                break;
            }
            source = cause.source();
        }
        if let Some(refused) = refused_redirect {
            refused
        } else if error.is_timeout() {
            JwksError::Timeout
        } else {
            JwksError::Request(error)
        }
    }
}

/// Why the redirect policy stopped: the target it refused.
#[cfg(feature = "jwks")]
#[derive(Debug, thiserror::Error)]
#[error("redirect to {0}, which is not https")]
struct InsecureRedirect(String);

/// At most 3 redirects, each to a URL the settings would take as a JWKS URL.
#[cfg(feature = "jwks")]
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= 3 {
            attempt.error("too many redirects")
        } else if crate::settings::check_jwks_url(attempt.url().as_str()).is_err() {
            let target = attempt.url().as_str().chars().take(200).collect();
            attempt.error(InsecureRedirect(target))
        } else {
            attempt.follow()
        }
    })
}

/// What a lookup found for a token's `kid`.
pub(crate) enum Lookup {
    Found(Arc<DecodingKey>),
    /// The set has no such key (after a refetch, or a refetch was not allowed yet).
    Unknown,
    /// The key exists but is not usable with the token's algorithm.
    Mismatch,
}

/// Which algorithm a key of the set may verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyType {
    Rsa,
    EcP256,
}

struct CachedKey {
    key: Arc<DecodingKey>,
    key_type: KeyType,
    /// The JWK's own `alg`, when it names one.
    alg: Option<KeyAlgorithm>,
}

impl CachedKey {
    fn accepts(&self, alg: Algorithm) -> bool {
        let (key_type, key_alg) = match alg {
            Algorithm::RS256 => (KeyType::Rsa, KeyAlgorithm::RS256),
            Algorithm::ES256 => (KeyType::EcP256, KeyAlgorithm::ES256),
            _ => return false,
        };
        self.key_type == key_type && self.alg.is_none_or(|own| own == key_alg)
    }
}

/// The keys of the last good fetch, and when it was.
struct KeySet {
    keys: HashMap<String, CachedKey>,
    fetched: Option<Instant>,
}

impl KeySet {
    fn is_fresh(&self, refresh: Duration) -> bool {
        self.fetched.is_some_and(|at| at.elapsed() < refresh)
    }

    fn lookup(&self, kid: &str, alg: Algorithm) -> Option<Lookup> {
        self.keys.get(kid).map(|cached| {
            if cached.accepts(alg) {
                Lookup::Found(cached.key.clone())
            } else {
                Lookup::Mismatch
            }
        })
    }
}

/// When the set was last fetched, and whether that worked.
#[derive(Clone, Copy)]
struct LastFetch {
    at: Instant,
    ok: bool,
}

pub(crate) struct Jwks {
    http: Http,
    timeout: Duration,
    min_refetch: Duration,
    /// The set is fetched again once it is this old.
    refresh: Duration,
    keys: RwLock<Arc<KeySet>>,
    /// Held while fetching, so that concurrent lookups of a new `kid` cause one fetch.
    fetch: tokio::sync::Mutex<Option<LastFetch>>,
}

/// Where and with what the set is fetched.
#[cfg(feature = "jwks")]
struct Http {
    url: reqwest::Url,
    client: reqwest::Client,
}

/// Without the `jwks` feature there is no way to fetch, and so no [`Jwks`].
#[cfg(not(feature = "jwks"))]
enum Http {}

impl Jwks {
    #[cfg(feature = "jwks")]
    pub(crate) fn new(
        url: &str,
        timeout: Duration,
        min_refetch: Duration,
        refresh: Duration,
    ) -> Result<Self, SettingsError> {
        let url = crate::settings::check_jwks_url(url).map_err(|reason| SettingsError::BadJwksUrl {
            url: url.to_owned(),
            reason,
        })?;
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .redirect(redirect_policy())
            .user_agent(concat!("roomcast-ws-authorizer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(SettingsError::HttpClient)?;
        Ok(Jwks {
            http: Http { url, client },
            timeout,
            min_refetch,
            refresh,
            keys: RwLock::new(Arc::new(KeySet {
                keys: HashMap::new(),
                fetched: None,
            })),
            fetch: tokio::sync::Mutex::new(None),
        })
    }

    /// Refuses every URL, as the settings do: this build cannot fetch.
    #[cfg(not(feature = "jwks"))]
    pub(crate) fn new(
        url: &str,
        _timeout: Duration,
        _min_refetch: Duration,
        _refresh: Duration,
    ) -> Result<Self, SettingsError> {
        let reason = match crate::settings::check_jwks_url(url) {
            Err(reason) => reason,
            Ok(never) => match never {},
        };
        Err(SettingsError::BadJwksUrl {
            url: url.to_owned(),
            reason,
        })
    }

    fn current(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The key named `kid` for a token signed with `alg`, fetching the set when it is
    /// older than `refresh` or the key is not in it, and the last fetch is old enough.
    pub(crate) async fn key(&self, kid: &str, alg: Algorithm) -> Result<Lookup, JwksError> {
        let set = self.current();
        if set.is_fresh(self.refresh) {
            if let Some(found) = set.lookup(kid, alg) {
                return Ok(found);
            }
        }
        // Bounded: whoever holds the lock is fetching, with `timeout`.
        let mut last = self.fetch.lock().await;
        // Another lookup may have fetched while this one waited.
        let set = self.current();
        let fresh = set.is_fresh(self.refresh);
        if fresh {
            if let Some(found) = set.lookup(kid, alg) {
                return Ok(found);
            }
        }
        if let Some(previous) = *last {
            if previous.at.elapsed() < self.min_refetch {
                return match set.lookup(kid, alg) {
                    // Expired, but the refetch failed (or has just been made): the last
                    // good set stands until the next try.
                    Some(found) => Ok(found),
                    None if previous.ok => Ok(Lookup::Unknown),
                    None => Err(JwksError::RecentlyFailed(self.min_refetch)),
                };
            }
        }
        let fetched = self.fetch_keys().await;
        *last = Some(LastFetch {
            at: Instant::now(),
            ok: fetched.is_ok(),
        });
        match fetched {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "JWKS fetched");
                let set = Arc::new(KeySet {
                    keys,
                    fetched: Some(Instant::now()),
                });
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = set.clone();
                Ok(set.lookup(kid, alg).unwrap_or(Lookup::Unknown))
            }
            Err(error) => match set.lookup(kid, alg) {
                Some(found) => {
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        "the JWKS could not be fetched again; its last keys stand until the next try"
                    );
                    Ok(found)
                }
                None => Err(error),
            },
        }
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, CachedKey>, JwksError> {
        // reqwest's own timeout covers the whole exchange; this one guards it all the same.
        let body = tokio::time::timeout(self.timeout, self.fetch_body())
            .await
            .map_err(|_| JwksError::Timeout)??;
        parse_jwks(&body)
    }

    #[cfg(not(feature = "jwks"))]
    async fn fetch_body(&self) -> Result<Vec<u8>, JwksError> {
        match self.http {}
    }

    #[cfg(feature = "jwks")]
    async fn fetch_body(&self) -> Result<Vec<u8>, JwksError> {
        let mut response = self
            .http
            .client
            .get(self.http.url.clone())
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(JwksError::Status(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_JWKS_BYTES as u64)
        {
            return Err(JwksError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(JwksError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// The usable signing keys of a JWKS document by `kid`. Keys that are malformed, for
/// encryption, without a `kid`, or of a type other than RSA or P-256 are skipped, so one
/// odd key does not take the others down with it.
fn parse_jwks(body: &[u8]) -> Result<HashMap<String, CachedKey>, JwksError> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(body).map_err(JwksError::NotJwks)?;
    let mut keys = HashMap::new();
    for value in document.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            tracing::debug!("skipping a JWK that does not parse");
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(ref use_) if *use_ != PublicKeyUse::Signature) {
            continue;
        }
        let key_type = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => KeyType::Rsa,
            AlgorithmParameters::EllipticCurve(params) if params.curve == EllipticCurve::P256 => KeyType::EcP256,
            _ => continue,
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            tracing::debug!(kid, "skipping a JWK whose key does not decode");
            continue;
        };
        keys.insert(
            kid,
            CachedKey {
                key: Arc::new(key),
                key_type,
                alg: jwk.common.key_algorithm,
            },
        );
    }
    Ok(keys)
}
