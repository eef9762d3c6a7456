//! The `@connections` [`Notifier`] kafka-fanout posts with: `POST
//! {stage}/@connections/{id}`, SigV4-signed by [`Signer`] (the key derived once a day) and
//! sent on one pooled keep-alive HTTP/1.1 client sized to fan-out's concurrency, the
//! frame's body shared by every post of it. The answers are sorted as the management API
//! means them: 410 gone, 429 / 5xx / no answer / timeout worth retrying, anything else
//! hopeless for this frame.
//!
//! Why not the SDK's client ([`SdkConnectionsNotifier`], kept for comparison): its
//! orchestrator spent some 230,000 instructions on each post — signing with a key derived
//! again every time, a user-agent interceptor, endpoint resolution, interceptors — which in
//! AWS is kafka-fanout's CPU, and so the time a large room waits. The request it sent is
//! the same: path, signed headers and signature (the tests check this one against the
//! SDK's signing function, and the local gateway can verify signatures).

mod sdk;
mod signer;
#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http::label::{fmt_string, EncodingStrategy};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, HOST};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body as _;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use roomcast_core::ports::{Notifier, NotifyError};
use roomcast_core::ConnectionId;

pub use sdk::SdkConnectionsNotifier;
pub use signer::{payload_hash, PayloadHashes, Signer, SERVICE};

/// The SDK configuration's timeouts when it has none: a connection within 2 s, an answer
/// within 3 s (fan-out's own post timeout, 5 s, bounds the whole post with its retries).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

/// Idle keep-alive connections are closed after this long (API Gateway closes them itself
/// after some minutes; a Lambda frozen between invocations then reconnects).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");

/// The most of an error answer read for its message.
const ERROR_BODY_LIMIT: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConnectionsError {
    #[error("the @connections endpoint {endpoint:?} is not an http(s) URL: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("the AWS configuration has no {0} to sign @connections posts with")]
    Missing(&'static str),
    #[error("cannot set up TLS for @connections")]
    Tls(#[source] rustls::Error),
}

type Connector = HttpsConnector<HttpConnector>;

pub struct ConnectionsNotifier {
    client: Client<Connector, Full<Bytes>>,
    /// `{scheme}://{authority}{stage path}/@connections/`, what each post's id follows.
    url_prefix: String,
    /// The path part of `url_prefix` percent-encoded again (SigV4's canonical URI).
    canonical_prefix: String,
    host: HeaderValue,
    signer: Signer,
    /// Shared frames' payload hashes, computed once per frame.
    payload_hashes: PayloadHashes,
    attempt_timeout: Duration,
}

impl ConnectionsNotifier {
    /// `endpoint` is the stage URL, `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`
    /// in AWS or the local gateway's address; region, credentials and timeouts come from
    /// `sdk`. `concurrency` is fan-out's posts in flight: the pool keeps that many
    /// connections alive between batches.
    pub fn new(sdk: &SdkConfig, endpoint: &str, concurrency: usize) -> Result<Self, ConnectionsError> {
        let credentials = sdk
            .credentials_provider()
            .ok_or(ConnectionsError::Missing("credentials"))?;
        let region = sdk.region().ok_or(ConnectionsError::Missing("region"))?;
        let timeouts = sdk.timeout_config();
        let connect_timeout = timeouts.and_then(|t| t.connect_timeout()).unwrap_or(CONNECT_TIMEOUT);
        let attempt_timeout = timeouts
            .and_then(|t| t.operation_attempt_timeout())
            .unwrap_or(ATTEMPT_TIMEOUT);
        Self::build(
            credentials,
            region.as_ref(),
            endpoint,
            concurrency,
            connect_timeout,
            attempt_timeout,
        )
    }

    /// With the credentials and region given apart from an SDK configuration.
    pub fn with_credentials(
        credentials: SharedCredentialsProvider,
        region: &str,
        endpoint: &str,
        concurrency: usize,
    ) -> Result<Self, ConnectionsError> {
        Self::build(
            credentials,
            region,
            endpoint,
            concurrency,
            CONNECT_TIMEOUT,
            ATTEMPT_TIMEOUT,
        )
    }

    fn build(
        credentials: SharedCredentialsProvider,
        region: &str,
        endpoint: &str,
        concurrency: usize,
        connect_timeout: Duration,
        attempt_timeout: Duration,
    ) -> Result<Self, ConnectionsError> {
        let invalid = |reason: &str| ConnectionsError::Endpoint {
            endpoint: endpoint.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = endpoint.parse().map_err(|_| invalid("not a URL"))?;
        let scheme = uri.scheme_str().ok_or_else(|| invalid("no scheme"))?;
        if scheme != "http" && scheme != "https" {
            return Err(invalid("the scheme must be http or https"));
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        if uri.query().is_some() {
            return Err(invalid("a stage URL has no query"));
        }
        let stage_path = uri.path().trim_end_matches('/');
        let url_prefix = format!("{scheme}://{authority}{stage_path}/@connections/");
        let host = host_header(scheme, authority);
        let signer = Signer::new(credentials, region, host.to_str().expect("an authority is ASCII"));
        let https = scheme == "https";
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        let tls = tls_config(https)?;
        let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
        let connector = if https {
            builder.https_only()
        } else {
            builder.https_or_http()
        }
        .enable_http1()
        .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(concurrency.max(1))
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        Ok(Self {
            client,
            canonical_prefix: fmt_string(format!("{stage_path}/@connections/"), EncodingStrategy::Greedy),
            url_prefix,
            host,
            signer,
            payload_hashes: PayloadHashes::default(),
            attempt_timeout,
        })
    }

    /// The signed request for one post at `now`, as it goes on the wire. `shared`: the
    /// frame goes to many connections, and its payload hash is worth keeping.
    pub async fn request(
        &self,
        connection: &ConnectionId,
        frame: Bytes,
        shared: bool,
        now: SystemTime,
    ) -> Result<Request<Full<Bytes>>, NotifyError> {
        // The label as the SDK writes it: everything but unreserved characters escaped,
        // so no id can reach another path or form a dot segment but "." and "..".
        let id = fmt_string(connection.as_str(), EncodingStrategy::Default);
        if id.is_empty() || id == "." || id == ".." {
            return Err(NotifyError::Failed(
                format!("{connection:?} is not a connection id").into(),
            ));
        }
        let mut canonical_path = String::with_capacity(self.canonical_prefix.len() + id.len() * 2);
        canonical_path.push_str(&self.canonical_prefix);
        // Encoded once more (SigV4's double encoding): `id` holds only characters that stay
        // as they are and `%XX` escapes, so only the `%`s change.
        let mut pieces = id.split('%');
        canonical_path.push_str(pieces.next().unwrap_or_default());
        for piece in pieces {
            canonical_path.push_str("%25");
            canonical_path.push_str(piece);
        }
        let payload_hash: std::sync::Arc<str> = match shared {
            true => self.payload_hashes.of(&frame),
            false => payload_hash(&frame).into(),
        };
        let signature = self
            .signer
            .sign(&canonical_path, &payload_hash, now)
            .await
            .map_err(|error| NotifyError::Retryable(Box::new(error)))?;

        let mut url = String::with_capacity(self.url_prefix.len() + id.len());
        url.push_str(&self.url_prefix);
        url.push_str(&id);
        let mut request = Request::post(url)
            .header(HOST, self.host.clone())
            .header(X_AMZ_DATE, signature.date_time)
            .header(AUTHORIZATION, signature.authorization);
        if let Some(token) = signature.session_token {
            request = request.header(X_AMZ_SECURITY_TOKEN, token);
        }
        request
            .body(Full::new(frame))
            .map_err(|error| NotifyError::Failed(Box::new(error)))
    }

    async fn post(&self, connection: &ConnectionId, frame: Bytes, shared: bool) -> Result<(), NotifyError> {
        let request = self.request(connection, frame, shared, SystemTime::now()).await?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|error| NotifyError::Retryable(Box::new(error)))?;
            let status = response.status();
            let kind = response
                .headers()
                .get("x-amzn-ErrorType")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            // An answer with an empty body (a post's success) is complete as it is: the
            // connection is back in the pool once it is dropped.
            if status.is_success() && response.body().is_end_stream() {
                return Ok(());
            }
            // Read to its end, so the connection goes back to the pool.
            let body = Limited::new(response.into_body(), ERROR_BODY_LIMIT)
                .collect()
                .await
                .map(|collected| collected.to_bytes());
            if status.is_success() {
                return Ok(());
            }
            Err(classify(PostError::new(status, kind, body.ok())))
        };
        match tokio::time::timeout(self.attempt_timeout, exchange).await {
            Ok(result) => result,
            // No answer: the post may not have arrived, so it is worth another try.
            Err(elapsed) => Err(NotifyError::Retryable(Box::new(elapsed))),
        }
    }
}

#[async_trait]
impl Notifier for ConnectionsNotifier {
    async fn send(&self, connection: &ConnectionId, frame: &[u8]) -> Result<(), NotifyError> {
        self.post(connection, Bytes::copy_from_slice(frame), false).await
    }

    async fn send_shared(&self, connection: &ConnectionId, frame: &Bytes) -> Result<(), NotifyError> {
        self.post(connection, frame.clone(), true).await
    }
}

/// An answer other than 2xx, with AWS's error type (`x-amzn-ErrorType`) and the body's
/// `message` when it gave them.
#[derive(Debug)]
pub struct PostError {
    pub status: StatusCode,
    pub kind: Option<String>,
    pub message: String,
}

impl PostError {
    fn new(status: StatusCode, kind: Option<String>, body: Option<Bytes>) -> Self {
        let message = body
            .and_then(|body| serde_json::from_slice::<serde_json::Value>(&body).ok())
            .and_then(|value| value.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_default();
        Self { status, kind, message }
    }
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "@connections answered {}", self.status)?;
        if let Some(kind) = &self.kind {
            write!(f, " {kind}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for PostError {}

fn classify(error: PostError) -> NotifyError {
    match error.status.as_u16() {
        410 => NotifyError::Gone,
        429 | 500..=599 => NotifyError::Retryable(Box::new(error)),
        _ => NotifyError::Failed(Box::new(error)),
    }
}

/// `Host` as the request carries it and signs it: the port only when not the scheme's.
fn host_header(scheme: &str, authority: &http::uri::Authority) -> HeaderValue {
    let default_port = match scheme {
        "https" => 443,
        _ => 80,
    };
    let host = match authority.port_u16() {
        Some(port) if port != default_port => format!("{}:{port}", authority.host()),
        _ => authority.host().to_owned(),
    };
    HeaderValue::try_from(host).expect("an authority is a valid header value")
}

/// rustls on aws-lc-rs trusting the roots every client shares, compiled in
/// ([`crate::https::compiled_in_roots`]), for an https endpoint; none for plain http.
fn tls_config(https: bool) -> Result<rustls::ClientConfig, ConnectionsError> {
    let roots = if https {
        crate::https::compiled_in_roots()
    } else {
        rustls::RootCertStore::empty()
    };
    crate::https::tls_config(roots).map_err(ConnectionsError::Tls)
}
