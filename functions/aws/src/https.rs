//! The HTTP client of every AWS SDK client the functions make (DynamoDB, S3, Secrets
//! Manager, `@connections`), and the root certificates it shares with kafka-fanout's
//! notifier: Mozilla's, compiled in by `webpki-roots`. No certificate file is read.
//!
//! Why a client of our own: the SDK's default HTTPS client loads the host's roots
//! (rustls-native-certs: the `SSL_CERT_FILE` bundle, or every file of the certificate
//! directories) and parses them when its first client is made — some 9 M of a producer's
//! 11.9 M start-up instructions, before its first event. aws-smithy-http-client takes extra
//! roots only as PEM, which it parses again, and its connector builder takes no TLS
//! configuration or connector of ours; so this is its stack (hyper 1, hyper-util's pooled
//! client, rustls on aws-lc-rs through hyper-rustls) behind the SDK's `HttpClient` trait,
//! with its connect and read timeouts and its sorting of failures (timeout, I/O, user,
//! other), which the SDK's retries act on. The orchestrator keeps the rest: attempt and
//! operation timeouts, retries, signing.

use std::collections::HashMap;
use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connection::{CaptureSmithyConnection, ConnectionMetadata};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::{
    capture_connection, CaptureConnection, HttpConnector as TcpConnector, HttpInfo,
};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// Mozilla's root certificates as `webpki-roots` compiles them in, ready as trust anchors:
/// nothing to read or parse at a cold start. AWS's endpoints (DynamoDB, S3, Secrets
/// Manager, execute-api) chain to Amazon's roots, which the set holds. What this gives up,
/// the host's own trust store (a corporate CA, a TLS-inspecting proxy), a Lambda does not
/// have; the roots are as current as the crate at each build, and every deploy builds.
pub fn compiled_in_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots
}

/// rustls on aws-lc-rs (the SDK's own TLS) trusting `roots`, with rustls's safe defaults.
pub fn tls_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The SDK clients' HTTP client, for `ConfigLoader::http_client`: https with the
/// compiled-in roots, and plain http for local endpoints (moto, LocalStack, the local
/// `@connections`). Made once per cold start; every client made from the `SdkConfig`
/// shares it and its connection pools.
pub fn sdk_http_client() -> SharedHttpClient {
    SharedHttpClient::new(SdkHttpClient::new())
}

/// A connector's connect and read timeouts.
type Timeouts = (Option<Duration>, Option<Duration>);

/// One pooled connector per pair of timeouts the SDK asks for (its clients all ask for the
/// same), as the SDK's own client keeps them.
#[derive(Debug)]
struct SdkHttpClient {
    tls: rustls::ClientConfig,
    connectors: Mutex<HashMap<Timeouts, SharedHttpConnector>>,
}

impl SdkHttpClient {
    fn new() -> Self {
        Self {
            tls: tls_config(compiled_in_roots()).expect("aws-lc-rs supports rustls's default protocol versions"),
            connectors: Mutex::new(HashMap::new()),
        }
    }

    fn connector(&self, settings: &HttpConnectorSettings) -> SharedHttpConnector {
        let key: Timeouts = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        connectors
            .entry(key)
            .or_insert_with(|| SharedHttpConnector::new(Connector::new(self.tls.clone(), settings)))
            .clone()
    }
}

impl HttpClient for SdkHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        self.connector(settings)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        // What the SDK's own client reports in the user agent: this is its stack.
        Some(ConnectorMetadata::new("hyper", Some("1.x".into())))
    }
}

/// hyper-util's pooled client over hyper-rustls, with the SDK's connect timeout on each new
/// connection and its read timeout on each answer's head.
#[derive(Debug)]
struct Connector {
    client: Client<HttpsConnector<TcpConnector>, SdkBody>,
    read_timeout: Option<Duration>,
}

impl Connector {
    fn new(tls: rustls::ClientConfig, settings: &HttpConnectorSettings) -> Self {
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(settings.connect_timeout());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        // As the SDK's client: idle connections kept 90 s (hyper's default), timed by tokio.
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build(https);
        Self {
            client,
            read_timeout: settings.read_timeout(),
        }
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let mut request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(error) => return HttpConnectorFuture::ready(Err(ConnectorError::user(error.into()))),
        };
        // The orchestrator asks for the connection to poison it after a failure that leaves
        // it unfit for another request (a timeout, a truncated answer).
        let captured = capture_connection(&mut request);
        if let Some(capture) = request.extensions().get::<CaptureSmithyConnection>() {
            capture.set_connection_retriever(move || connection_metadata(&captured));
        }
        let answer = self.client.request(request);
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let answer = match read_timeout {
                Some(limit) => tokio::time::timeout(limit, answer)
                    .await
                    .map_err(|elapsed| ConnectorError::timeout(elapsed.into()))?,
                None => answer.await,
            };
            let response = answer.map_err(classify)?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|error| ConnectorError::other(error.into(), None))
        })
    }
}

fn connection_metadata(captured: &CaptureConnection) -> Option<ConnectionMetadata> {
    let connected = captured.connection_metadata();
    let connected = connected.as_ref()?;
    let mut extras = http::Extensions::new();
    connected.get_extras(&mut extras);
    let info = extras.get::<HttpInfo>();
    let to_poison = captured.clone();
    let mut metadata = ConnectionMetadata::builder()
        .proxied(connected.is_proxied())
        .poison_fn(move || {
            if let Some(connection) = to_poison.connection_metadata().as_ref() {
                connection.poison();
            }
        });
    metadata
        .set_local_addr(info.map(HttpInfo::local_addr))
        .set_remote_addr(info.map(HttpInfo::remote_addr));
    Some(metadata.build())
}

/// A failed request sorted as the SDK's own client sorts it: the retry strategy retries
/// timeouts, I/O failures (a refused or dropped connection) and truncated answers, and
/// nothing else.
fn classify(error: hyper_util::client::legacy::Error) -> ConnectorError {
    let timed_out = chain(&error).any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    });
    if timed_out {
        return ConnectorError::timeout(error.into());
    }
    if error.is_connect() {
        return ConnectorError::io(error.into());
    }
    let hyper_error = chain(&error).find_map(|cause| cause.downcast_ref::<hyper::Error>());
    let sort: fn(BoxError) -> ConnectorError = match hyper_error {
        Some(hyper) if hyper.is_timeout() => ConnectorError::timeout,
        Some(hyper) if hyper.is_user() => ConnectorError::user,
        Some(hyper) if hyper.is_closed() || hyper.is_canceled() => ConnectorError::io,
        Some(hyper) if hyper.is_incomplete_message() => {
            |error| ConnectorError::other(error, Some(ErrorKind::TransientError))
        }
        _ if chain(&error).any(|cause| cause.is::<std::io::Error>()) => ConnectorError::io,
        _ => |error| ConnectorError::other(error, None),
    };
    sort(error.into())
}

/// `error` and its causes; after an `io::Error`, the error it carries (whose `source()`
/// would skip it).
fn chain<'a>(error: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |&error| match error.downcast_ref::<std::io::Error>() {
        Some(io) => io.get_ref().map(|inner| inner as &(dyn Error + 'static)),
        None => error.source(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::http::Request;

    #[test]
    fn the_compiled_in_roots_hold_those_aws_endpoints_chain_to() {
        // Every client's roots, the SDK's and the notifier's: AWS's endpoints (execute-api
        // among them) have certificates from Amazon's CAs, under Amazon Root CA 1 (and,
        // cross-signed, Starfield's root).
        let roots = compiled_in_roots();
        let subjects: Vec<&[u8]> = roots.roots.iter().map(|root| root.subject.as_ref()).collect();
        for name in [
            &b"Amazon Root CA 1"[..],
            b"Starfield Services Root Certificate Authority - G2",
        ] {
            assert!(
                subjects
                    .iter()
                    .any(|subject| subject.windows(name.len()).any(|w| w == name)),
                "{}",
                String::from_utf8_lossy(name)
            );
        }
    }

    fn get(url: &str) -> HttpRequest {
        Request::try_from(http::Request::get(url).body(SdkBody::empty()).expect("request")).expect("request")
    }

    fn settings(read_timeout: Duration) -> HttpConnectorSettings {
        HttpConnectorSettings::builder()
            .connect_timeout(Duration::from_secs(2))
            .read_timeout(read_timeout)
            .build()
    }

    #[tokio::test]
    async fn an_endpoint_that_does_not_answer_is_a_timeout_the_sdk_retries() {
        // Accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let connector = SdkHttpClient::new().connector(&settings(Duration::from_millis(200)));
        let answer = tokio::time::timeout(Duration::from_secs(60), connector.call(get(&url)))
            .await
            .expect("the read timeout ends the request");
        let error = answer.expect_err("no answer");
        assert!(error.is_timeout(), "{error:?}");
        silent.abort();
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_io_failure_the_sdk_retries() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        drop(listener);
        let connector = SdkHttpClient::new().connector(&settings(Duration::from_secs(5)));
        let error = connector.call(get(&url)).await.expect_err("nothing listens");
        assert!(error.is_io(), "{error:?}");
    }
}
