//! The notifier's requests against the SDK's own signing function, `aws-sigv4`'s `sign`
//! with the settings the SDK signs the management API with.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use bytes::Bytes;
use http_body_util::BodyExt;
use roomcast_core::ports::{Notifier, NotifyError};
use roomcast_core::ConnectionId;

use super::{ConnectionsNotifier, SERVICE};

/// 2015-08-30T12:36:00Z, the SigV4 test suite's moment.
fn moment() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_440_938_160)
}

fn notifier(credentials: Credentials, endpoint: &str) -> ConnectionsNotifier {
    ConnectionsNotifier::with_credentials(SharedCredentialsProvider::new(credentials), "eu-west-1", endpoint, 4)
        .expect("notifier")
}

/// The signed headers the SDK's signer adds to `request` stripped of them, at `time`.
fn sdk_signature(request: &http::Request<Bytes>, credentials: &Credentials, time: SystemTime) -> http::HeaderMap {
    let ours = ["authorization", "x-amz-date", "x-amz-security-token"];
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter(|(name, _)| !ours.contains(&name.as_str()))
        .map(|(name, value)| (name.as_str(), value.to_str().expect("ASCII")))
        .collect();
    let identity = credentials.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-1")
        .name(SERVICE)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.uri().to_string(),
        headers.into_iter(),
        SignableBody::Bytes(request.body()),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
    let mut signed = http::Request::new(());
    instructions.apply_to_request_http1x(&mut signed);
    signed.headers().clone()
}

async fn our_request(
    notifier: &ConnectionsNotifier,
    id: &str,
    frame: &'static str,
    time: SystemTime,
) -> http::Request<Bytes> {
    let request = notifier
        .request(&ConnectionId::new(id), Bytes::from_static(frame.as_bytes()), true, time)
        .await
        .expect("a request");
    let (parts, body) = request.into_parts();
    let body = body.collect().await.expect("a full body").to_bytes();
    http::Request::from_parts(parts, body)
}

#[tokio::test]
async fn posts_are_signed_as_the_sdk_signs_them() {
    let temporary = Credentials::new(
        "ASIAEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        Some("IQoJb3JpZ2luX2VjEXAMPLE//token+with/base64=".repeat(20)),
        None,
        "test",
    );
    let long_term = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
    // Credentials, stage URL, connection id, the Host header.
    let cases = [
        (
            &temporary,
            "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
            "L0SM9cOFvHcCIhw=",
            "abc123.execute-api.eu-west-1.amazonaws.com",
        ),
        (
            &long_term,
            "http://127.0.0.1:3001/local",
            "a b/c@d:e%f",
            "127.0.0.1:3001",
        ),
        (&long_term, "http://localhost:80/", "01JF0Z6X7Y", "localhost"),
        (
            &temporary,
            "https://example.com:8443/st%20age/",
            "ü~._-",
            "example.com:8443",
        ),
    ];
    for (credentials, endpoint, id, host) in cases {
        let notifier = notifier(credentials.clone(), endpoint);
        // A day later too: the cached key must follow the date.
        for time in [moment(), moment() + Duration::from_secs(86_400 + 7)] {
            let request = our_request(&notifier, id, r#"{"type":"message","text":"hé"}"#, time).await;
            let expected = sdk_signature(&request, credentials, time);
            for name in ["authorization", "x-amz-date", "x-amz-security-token"] {
                assert_eq!(
                    request.headers().get(name),
                    expected.get(name),
                    "{name} for {id:?} at {endpoint} ({time:?})"
                );
            }
            assert_eq!(request.headers()["host"], host);
        }
    }
}

#[tokio::test]
async fn the_path_is_the_sdk_s_for_any_id() {
    let notifier = notifier(Credentials::new("k", "s", None, None, "test"), "https://h.example/prod");
    let request = our_request(&notifier, "ab=/?#@ c", "{}", moment()).await;
    assert_eq!(request.uri().path(), "/prod/@connections/ab%3D%2F%3F%23%40%20c");
    assert_eq!(request.uri().query(), None);
}

#[tokio::test]
async fn dot_segments_and_empty_ids_are_refused_before_signing() {
    let notifier = notifier(Credentials::new("k", "s", None, None, "test"), "https://h.example/prod");
    for id in ["", ".", ".."] {
        let refused = notifier
            .request(&ConnectionId::new(id), Bytes::from_static(b"{}"), false, moment())
            .await;
        assert!(matches!(refused, Err(NotifyError::Failed(_))), "{id:?}");
    }
}

#[tokio::test]
async fn credentials_are_fetched_again_before_they_expire() {
    use aws_credential_types::provider::{future, ProvideCredentials};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Each fetch gives new keys that expire ten minutes after `moment()`.
    #[derive(Debug, Default)]
    struct Rotating(Arc<AtomicUsize>);
    impl ProvideCredentials for Rotating {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            future::ProvideCredentials::ready(Ok(Credentials::new(
                format!("ASIA{n}"),
                "secret",
                Some(format!("token{n}")),
                Some(moment() + Duration::from_secs(600)),
                "rotating",
            )))
        }
    }
    let fetches = Arc::new(AtomicUsize::new(0));
    let notifier = ConnectionsNotifier::with_credentials(
        SharedCredentialsProvider::new(Rotating(fetches.clone())),
        "eu-west-1",
        "https://h.example/prod",
        4,
    )
    .expect("notifier");
    let key_of = |request: &http::Request<Bytes>| request.headers()["x-amz-security-token"].clone();
    let first = our_request(&notifier, "a", "{}", moment()).await;
    let again = our_request(&notifier, "b", "{}", moment() + Duration::from_secs(60)).await;
    assert_eq!(key_of(&first), "token0");
    assert_eq!(key_of(&again), "token0", "fetched again while fresh");
    // Inside the last five minutes of their life: fetched again.
    let later = our_request(&notifier, "c", "{}", moment() + Duration::from_secs(360)).await;
    assert_eq!(key_of(&later), "token1");
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_post_without_an_answer_is_retryable_within_the_attempt_timeout() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}/prod", listener.local_addr().expect("addr"));
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let notifier = notifier(Credentials::new("k", "s", None, None, "test"), &endpoint);
    // The notifier's own attempt timeout (3 s) ends the post; the outer one only keeps a
    // broken notifier from hanging the test.
    let sent = tokio::time::timeout(Duration::from_secs(60), notifier.send(&ConnectionId::new("abc"), b"{}"))
        .await
        .expect("the post ends by itself");
    assert!(matches!(sent, Err(NotifyError::Retryable(_))), "{sent:?}");
    silent.abort();
}

#[test]
fn a_shared_frame_s_hash_is_its_own() {
    let hashes = super::PayloadHashes::default();
    // More frames than the cache holds, each asked for twice, in turns.
    let frames: Vec<Bytes> = (0..20).map(|n| Bytes::from(format!("frame {n}"))).collect();
    for _ in 0..2 {
        for frame in &frames {
            assert_eq!(&*hashes.of(frame), super::payload_hash(frame));
        }
    }
    // A frame with the same content at another address is hashed by content as well.
    let copy = Bytes::copy_from_slice(&frames[3]);
    assert_eq!(hashes.of(&copy), hashes.of(&frames[3]));
}
