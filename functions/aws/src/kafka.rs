//! The Kafka [`Publisher`]: appends envelopes to the roomcast topic with librdkafka and
//! answers only once the broker has acknowledged them, plus topic creation for set-up.
//!
//! The producer connects in plaintext by default; [`KafkaSecurity`] adds TLS and SASL:
//! SCRAM or PLAIN with a password, or Amazon MSK's IAM access control (SASL/OAUTHBEARER
//! with a SigV4-signed token, made by [`msk_iam_token`] whenever librdkafka asks).

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext, OAuthToken};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use roomcast_core::envelope::Envelope;
use roomcast_core::ports::{PublishError, Publisher};

/// The topic every envelope goes to unless configured otherwise.
pub const DEFAULT_TOPIC: &str = "roomcast-events";

/// Partitions of the default topic, as in the seed cluster.
pub const DEFAULT_PARTITIONS: i32 = 3;

/// librdkafka looks for expired messages about once a second, so its own timeout can
/// report up to a second late. The tokio bound sits just past that: it only has to catch
/// a delivery report that never comes, and librdkafka's own error says more when it wins.
const DELIVERY_MARGIN: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    pub topic: String,
    /// How long `publish` may take before the sender is told the log is unavailable.
    pub delivery_timeout: Duration,
}

/// How the producer reaches the brokers: TLS or not, and which SASL sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KafkaSecurity {
    pub auth: KafkaAuth,
    /// TLS to the brokers (`ssl` / `sasl_ssl`), verified against the host's CA bundle.
    pub tls: bool,
}

/// The SASL sign-in (`ROOMCAST_KAFKA_AUTH`).
#[derive(Clone, PartialEq, Eq, Default)]
pub enum KafkaAuth {
    /// No SASL.
    #[default]
    None,
    /// Amazon MSK IAM access control: SASL/OAUTHBEARER with a token signed (SigV4) with the
    /// credentials of the default AWS chain, for `region`.
    MskIam { region: String },
    /// SASL/SCRAM or SASL/PLAIN with a user name and password.
    Password {
        mechanism: SaslMechanism,
        username: String,
        password: String,
    },
}

impl std::fmt::Debug for KafkaAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KafkaAuth::None => f.write_str("None"),
            KafkaAuth::MskIam { region } => f.debug_struct("MskIam").field("region", region).finish(),
            KafkaAuth::Password {
                mechanism, username, ..
            } => f
                .debug_struct("Password")
                .field("mechanism", mechanism)
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    ScramSha256,
    ScramSha512,
    Plain,
}

impl SaslMechanism {
    /// librdkafka's name for it (`sasl.mechanism`).
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::Plain => "PLAIN",
        }
    }
}

impl KafkaSecurity {
    /// Sets `security.protocol` and the SASL settings on a librdkafka configuration.
    fn apply(&self, config: &mut ClientConfig) {
        let protocol = match (&self.auth, self.tls) {
            (KafkaAuth::None, false) => "plaintext",
            (KafkaAuth::None, true) => "ssl",
            (_, false) => "sasl_plaintext",
            (_, true) => "sasl_ssl",
        };
        config.set("security.protocol", protocol);
        if self.tls {
            // OpenSSL is linked in statically and knows no CA directory of the host it
            // runs on: librdkafka probes the usual bundle paths (Amazon Linux 2023's
            // /etc/pki/tls/certs/ca-bundle.crt, Debian's /etc/ssl/certs/...).
            config.set("ssl.ca.location", "probe");
        }
        match &self.auth {
            KafkaAuth::None => {}
            KafkaAuth::MskIam { .. } => {
                // The token comes from `KafkaContext::generate_oauth_token`.
                config.set("sasl.mechanism", "OAUTHBEARER");
            }
            KafkaAuth::Password {
                mechanism,
                username,
                password,
            } => {
                config
                    .set("sasl.mechanism", mechanism.as_str())
                    .set("sasl.username", username)
                    .set("sasl.password", password);
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("cannot create the Kafka client")]
    Client(#[source] RdKafkaError),
    #[error("invalid Kafka security settings")]
    Config(#[source] crate::config::ConfigError),
    #[error("cannot create topic `{topic}`")]
    CreateTopic {
        topic: String,
        #[source]
        source: RdKafkaError,
    },
    #[error("the broker refused to create topic `{topic}`")]
    TopicRefused {
        topic: String,
        #[source]
        source: RDKafkaErrorCode,
    },
    #[error("creating topic `{topic}` took longer than {timeout:?}")]
    CreateTopicTimeout { topic: String, timeout: Duration },
}

/// Publishes envelopes to one topic. Build it once per cold start: it holds the broker
/// connections and librdkafka's threads.
pub struct KafkaPublisher {
    /// Replaced when it fails fatally (an idempotent producer fenced or out of sequence
    /// stays failed for good): the next `publish` uses a new one.
    producer: RwLock<Arc<FutureProducer<KafkaContext>>>,
    /// What the producer was made from, to make another.
    config: ClientConfig,
    security: KafkaSecurity,
    topic: String,
    delivery_timeout: Duration,
}

impl std::fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaPublisher")
            .field("topic", &self.topic)
            .field("delivery_timeout", &self.delivery_timeout)
            .finish_non_exhaustive()
    }
}

impl KafkaPublisher {
    /// Creates the producer, with the TLS and SASL settings of the process environment
    /// (`ROOMCAST_KAFKA_AUTH` and friends, see [`crate::config::Env::kafka_security`]):
    /// plaintext when none are set. It connects lazily, so this succeeds even while the
    /// brokers are unreachable; the first `publish` then times out.
    pub fn new(settings: &KafkaSettings) -> Result<Self, KafkaError> {
        let security = crate::config::Env::from_process()
            .kafka_security()
            .map_err(KafkaError::Config)?;
        Self::with_security(settings, &security)
    }

    /// Creates the producer with the given TLS and SASL settings.
    pub fn with_security(settings: &KafkaSettings, security: &KafkaSecurity) -> Result<Self, KafkaError> {
        // librdkafka reads 0 as "forever", which would leave only the tokio bound below.
        let delivery_ms = settings.delivery_timeout.as_millis().clamp(10, i32::MAX as u128);
        // A request that outlives the delivery timeout is wasted; librdkafka caps it at 900 s.
        let request_ms = delivery_ms.min(900_000);
        // A broker behind a dropping firewall (an MSK cluster in a VPC the function cannot
        // reach) would otherwise hold each connection attempt for the default 30 s.
        let connect_ms = delivery_ms.clamp(1_000, 10_000);
        let mut config = ClientConfig::new();
        security.apply(&mut config);
        config
            .set("bootstrap.servers", &settings.bootstrap_servers)
            .set("client.id", "roomcast")
            // No duplicates or reordering within a partition when librdkafka retries after
            // a lost acknowledgement: one room's messages stay in order, each once.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", delivery_ms.to_string())
            .set("request.timeout.ms", request_ms.to_string())
            .set("socket.connection.setup.timeout.ms", connect_ms.to_string())
            .set("socket.timeout.ms", request_ms.clamp(10, 300_000).to_string())
            // A Lambda awaits each record's delivery report before it answers, so there is
            // never a second record of its own to batch with: waiting for one (librdkafka's
            // default is 5 ms) would only add latency to every message. 1 ms still lets
            // concurrent publishers in one process (the local gateway) share a request.
            .set("linger.ms", "1")
            // The Java client's partitioner: another service producing with a Java client
            // puts the same room on the same partition, so the room's order holds across
            // producers. librdkafka's default (CRC32) would pick a different partition.
            .set("partitioner", "murmur2_random");
        let producer = config
            .create_with_context(KafkaContext::new(security))
            .map_err(KafkaError::Client)?;
        Ok(Self {
            producer: RwLock::new(Arc::new(producer)),
            config,
            security: security.clone(),
            topic: settings.topic.clone(),
            delivery_timeout: settings.delivery_timeout,
        })
    }

    fn producer(&self) -> Arc<FutureProducer<KafkaContext>> {
        self.producer.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces `failed` with a new producer if it is broken for good: failed fatally, or
    /// refused with `refusal`, an error of the idempotent producer's identity that no retry
    /// of its own recovers from (seen after a broker outage: every later record was
    /// refused `ProducerFenced`). Of many publishes that saw it fail, one replaces it.
    fn replace_if_broken(&self, failed: &Arc<FutureProducer<KafkaContext>>, refusal: Option<RDKafkaErrorCode>) {
        let broken_identity = matches!(
            refusal,
            Some(
                RDKafkaErrorCode::ProducerFenced
                    | RDKafkaErrorCode::InvalidProducerEpoch
                    | RDKafkaErrorCode::InvalidProducerIdMapping
                    | RDKafkaErrorCode::UnknownProducerId
                    | RDKafkaErrorCode::OutOfOrderSequenceNumber
                    | RDKafkaErrorCode::Fatal
            )
        );
        let reason = match failed.client().fatal_error() {
            Some((code, reason)) => format!("{code:?}: {reason}"),
            None if broken_identity => format!("{refusal:?}"),
            None => return,
        };
        let mut current = self.producer.write().unwrap_or_else(PoisonError::into_inner);
        if !Arc::ptr_eq(&current, failed) {
            return;
        }
        match self.config.create_with_context(KafkaContext::new(&self.security)) {
            Ok(fresh) => {
                tracing::warn!(%reason, "the Kafka producer is broken for good; a new one takes its place");
                *current = Arc::new(fresh);
            }
            Err(error) => tracing::error!(
                error = &error as &dyn std::error::Error,
                "the Kafka producer is broken for good and a new one could not be made"
            ),
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }
}

/// The producer's librdkafka context: it answers librdkafka's requests for an
/// OAUTHBEARER token (every ~12 minutes, at 80% of a token's life) when signing in to MSK
/// with IAM; log lines go to `tracing` as with the default context.
pub struct KafkaContext {
    msk_iam: Option<MskIamTokens>,
}

impl KafkaContext {
    fn new(security: &KafkaSecurity) -> Self {
        let msk_iam = match &security.auth {
            KafkaAuth::MskIam { region } => Some(MskIamTokens::new(region.clone())),
            _ => None,
        };
        KafkaContext { msk_iam }
    }
}

impl ClientContext for KafkaContext {
    // librdkafka only asks for a token when `sasl.mechanism` is OAUTHBEARER.
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let Some(tokens) = &self.msk_iam else {
            return Err("OAUTHBEARER tokens are only made for ROOMCAST_KAFKA_AUTH=msk-iam".into());
        };
        tokens.token().map_err(|error| {
            tracing::error!(error = %error, "cannot make an MSK IAM token");
            error.to_string().into()
        })
    }
}

/// What signs an MSK IAM token lives this long; librdkafka asks for a new one before.
const MSK_IAM_TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// Sent with every token, as the AWS signers do, so MSK's logs can tell clients apart.
const MSK_IAM_USER_AGENT: &str = concat!("roomcast/", env!("CARGO_PKG_VERSION"));

/// Makes MSK IAM tokens with the default AWS credential chain (in Lambda: the function
/// role's credentials from the environment).
struct MskIamTokens {
    region: String,
    /// The credential chain may do I/O (IMDS, SSO, a profile's process); it runs on a
    /// runtime of its own, driven from a short-lived thread, because librdkafka calls for
    /// tokens from its own threads and sometimes from inside the caller's (flush, drop).
    runtime: Option<tokio::runtime::Runtime>,
    chain: tokio::sync::OnceCell<aws_config::default_provider::credentials::DefaultCredentialsChain>,
}

impl MskIamTokens {
    fn new(region: String) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("msk-iam-credentials")
            .build()
            .ok();
        MskIamTokens {
            region,
            runtime,
            chain: tokio::sync::OnceCell::new(),
        }
    }

    fn token(&self) -> Result<OAuthToken, Box<dyn std::error::Error + Send + Sync>> {
        use aws_credential_types::provider::ProvideCredentials;
        let runtime = self.runtime.as_ref().ok_or("no runtime for the AWS credential chain")?;
        let credentials = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    runtime.block_on(async {
                        let chain = self
                            .chain
                            .get_or_init(|| async {
                                aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                                    .region(aws_config::Region::new(self.region.clone()))
                                    .build()
                                    .await
                            })
                            .await;
                        chain.provide_credentials().await
                    })
                })
                .join()
        })
        .map_err(|_| "the AWS credential chain panicked")??;
        let now = SystemTime::now();
        let token = msk_iam_token(&self.region, &credentials, now)?;
        let expires = now + MSK_IAM_TOKEN_LIFETIME;
        Ok(OAuthToken {
            token,
            // MSK takes the principal from the signature; librdkafka wants a name anyway.
            principal_name: "roomcast".to_owned(),
            lifetime_ms: expires.duration_since(UNIX_EPOCH)?.as_millis() as i64,
        })
    }
}

impl Drop for MskIamTokens {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime's task.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// An Amazon MSK IAM authentication token, as AWS's signer libraries make it: the URL
/// `https://kafka.{region}.amazonaws.com/?Action=kafka-cluster%3AConnect` presigned with
/// SigV4 (service `kafka-cluster`, valid 900 s, session token included in the signature),
/// then `User-Agent` appended, the whole base64url-encoded without padding.
pub fn msk_iam_token(
    region: &str,
    credentials: &aws_credential_types::Credentials,
    now: SystemTime,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings};
    use base64::Engine as _;

    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(MSK_IAM_TOKEN_LIFETIME);
    let identity = credentials.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("kafka-cluster")
        .time(now)
        .settings(settings)
        .build()?
        .into();
    let url = format!("https://kafka.{region}.amazonaws.com/?Action=kafka-cluster%3AConnect");
    let signable = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[]))?;
    let (instructions, _signature) = sign(signable, &params)?.into_parts();
    let mut request = http::Request::get(&url).body(())?;
    instructions.apply_to_request_http1x(&mut request);
    let signed = format!("{}&User-Agent={MSK_IAM_USER_AGENT}", request.uri());
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signed))
}

#[async_trait]
impl Publisher for KafkaPublisher {
    async fn publish(&self, envelope: &Envelope) -> Result<(), PublishError> {
        let key = envelope.target.record_key();
        let value = envelope.to_json();
        let record = FutureRecord::to(&self.topic).key(&key).payload(&value);
        // If the report never comes, the record stays queued in librdkafka and may still be
        // delivered after the sender was told it may (`PublishError::Timeout`); receivers
        // de-duplicate by envelope id.
        let producer = self.producer();
        let delivery = tokio::time::timeout(
            self.delivery_timeout + DELIVERY_MARGIN,
            producer.send(record, Timeout::After(self.delivery_timeout)),
        )
        .await;
        match &delivery {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => self.replace_if_broken(&producer, error.rdkafka_error_code()),
            Err(_) => self.replace_if_broken(&producer, None),
        }
        match delivery {
            Ok(Ok(delivery)) => {
                tracing::debug!(
                    topic = %self.topic, key = %key, id = %envelope.id,
                    partition = delivery.partition, offset = delivery.offset,
                    "envelope published"
                );
                Ok(())
            }
            // Logged where the failure is answered (once, with its cause), not here too.
            Ok(Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut), _))) | Err(_) => {
                Err(PublishError::Timeout)
            }
            Ok(Err((error, _))) => Err(PublishError::Refused(Box::new(error))),
        }
    }
}

/// Creates the topic if it does not exist. An existing topic is left as it is, whatever its
/// partition count, because repartitioning would move rooms between partitions.
pub async fn ensure_topic(
    bootstrap_servers: &str,
    topic: &str,
    partitions: i32,
    replication: i32,
    timeout: Duration,
) -> Result<(), KafkaError> {
    let timeout_ms = timeout.as_millis().clamp(1, i32::MAX as u128);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("client.id", "roomcast-admin")
        .set(
            "socket.connection.setup.timeout.ms",
            timeout_ms.clamp(1_000, 10_000).to_string(),
        )
        .create()
        .map_err(KafkaError::Client)?;
    let options = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    // The admin request has its own timeout, but it only starts once a broker is
    // connected: the outer bound covers brokers that never answer at all.
    let results = tokio::time::timeout(timeout + DELIVERY_MARGIN, admin.create_topics([&new_topic], &options))
        .await
        .map_err(|_| KafkaError::CreateTopicTimeout {
            topic: topic.to_owned(),
            timeout,
        })?
        .map_err(|source| KafkaError::CreateTopic {
            topic: topic.to_owned(),
            source,
        })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(KafkaError::TopicRefused {
                    topic: name,
                    source: code,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use roomcast_core::envelope::Target;
    use roomcast_core::protocol::ServerFrame;

    use super::*;

    fn settings(delivery_timeout: Duration) -> KafkaSettings {
        // Port 9 (discard) on the loopback: nothing listens, so nothing is ever delivered.
        KafkaSettings {
            bootstrap_servers: "127.0.0.1:9".to_owned(),
            topic: DEFAULT_TOPIC.to_owned(),
            delivery_timeout,
        }
    }

    #[test]
    fn long_delivery_timeouts_make_a_valid_producer() {
        for delivery_timeout in [Duration::from_secs(5), Duration::from_secs(86_400)] {
            if let Err(error) = KafkaPublisher::new(&settings(delivery_timeout)) {
                panic!("delivery timeout {delivery_timeout:?}: {error:?}");
            }
        }
    }

    /// librdkafka reads a message timeout of 0 as "forever": tiny timeouts must still end
    /// in a plain `Timeout`, not a hang or a configuration error.
    #[tokio::test]
    async fn tiny_delivery_timeouts_still_time_out() {
        let envelope = Envelope::new("m1", Target::All, None, &ServerFrame::Pong);
        for delivery_timeout in [Duration::ZERO, Duration::from_millis(1)] {
            let publisher = KafkaPublisher::new(&settings(delivery_timeout)).expect("valid config");
            let outcome = tokio::time::timeout(Duration::from_secs(10), publisher.publish(&envelope))
                .await
                .unwrap_or_else(|_| panic!("delivery timeout {delivery_timeout:?}: publish hung"));
            assert!(
                matches!(outcome, Err(PublishError::Timeout)),
                "delivery timeout {delivery_timeout:?}: {outcome:?}"
            );
        }
    }

    /// botocore's SigV4QueryAuth (what AWS's Python MSK signer uses) signed the same URL
    /// with these credentials at 2024-01-02T03:04:05Z; the signature must be the same.
    #[test]
    fn msk_iam_tokens_are_signed_as_the_aws_signers_sign_them() {
        use base64::Engine as _;
        let credentials = aws_credential_types::Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("FwoGZXIvYXdzEXAMPLE+token/with=chars".to_owned()),
            None,
            "test",
        );
        let at = UNIX_EPOCH + Duration::from_secs(1_704_164_645);
        let token = msk_iam_token("eu-west-1", &credentials, at).expect("a token");
        assert!(
            !token.contains('=') && !token.contains('+') && !token.contains('/'),
            "base64url without padding"
        );
        let url = String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&token)
                .expect("base64url"),
        )
        .expect("UTF-8");
        let (base, query) = url.split_once('?').expect("a query");
        assert_eq!(base, "https://kafka.eu-west-1.amazonaws.com/");
        let mut params: Vec<(&str, &str)> = query.split('&').filter_map(|pair| pair.split_once('=')).collect();
        params.sort();
        let reference = "Action=kafka-cluster%3AConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256\
            &X-Amz-Credential=AKIDEXAMPLE%2F20240102%2Feu-west-1%2Fkafka-cluster%2Faws4_request\
            &X-Amz-Date=20240102T030405Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host\
            &X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLE%2Btoken%2Fwith%3Dchars\
            &X-Amz-Signature=ea8798cdf06bc087317e077c8a99f53c18ba2c7f9f7c74185f64be663660cdd6";
        let mut expected: Vec<(&str, &str)> = reference
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .chain([("User-Agent", MSK_IAM_USER_AGENT)])
            .collect();
        expected.sort();
        assert_eq!(params, expected);
    }

    /// Each security setting makes a producer: librdkafka was built with TLS, SCRAM and
    /// OAUTHBEARER, and takes the settings as given.
    #[test]
    fn every_security_setting_makes_a_valid_producer() {
        let password = |mechanism| KafkaAuth::Password {
            mechanism,
            username: "roomcast".into(),
            password: "secret".into(),
        };
        let cases = [
            KafkaSecurity::default(),
            KafkaSecurity {
                auth: KafkaAuth::None,
                tls: true,
            },
            KafkaSecurity {
                auth: password(SaslMechanism::ScramSha512),
                tls: true,
            },
            KafkaSecurity {
                auth: password(SaslMechanism::ScramSha256),
                tls: false,
            },
            KafkaSecurity {
                auth: password(SaslMechanism::Plain),
                tls: true,
            },
            KafkaSecurity {
                auth: KafkaAuth::MskIam {
                    region: "eu-west-1".into(),
                },
                tls: true,
            },
        ];
        for security in cases {
            if let Err(error) = KafkaPublisher::with_security(&settings(Duration::from_secs(5)), &security) {
                panic!("{security:?}: {error:?}");
            }
        }
    }
}
