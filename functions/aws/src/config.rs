//! Configuration from the environment, read once per cold start. A missing or malformed
//! variable stops the function at start-up with a message naming it, rather than failing
//! the first request.

use std::time::Duration;

use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use roomcast_core::archive::ArchiveConfig;
use roomcast_core::config::AuthMode;
use roomcast_core::fan_out::FanOutConfig;
use roomcast_core::quota::Bucket;
use roomcast_core::{Config, Limits, RoomName};

use crate::credentials::EnvThenDefaultChain;
use crate::dynamo::DynamoStore;
use crate::kafka::{KafkaAuth, KafkaSecurity, KafkaSettings, SaslMechanism, DEFAULT_TOPIC};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {name} is not set: {meaning}")]
    Missing { name: &'static str, meaning: &'static str },
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// Where variables come from: the process environment, or a map in tests and in the
/// local gateway.
pub struct Env<F> {
    lookup: F,
}

impl Env<fn(&str) -> Option<String>> {
    pub fn from_process() -> Self {
        Env {
            lookup: |name| std::env::var(name).ok(),
        }
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn new(lookup: F) -> Self {
        Env { lookup }
    }

    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|value| !value.trim().is_empty())
    }

    fn required(&self, name: &'static str, meaning: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing { name, meaning })
    }

    fn number<T: std::str::FromStr + PartialOrd + From<u8>>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        let Some(value) = self.get(name) else {
            return Ok(default);
        };
        match value.trim().parse::<T>() {
            Ok(number) if number >= T::from(1) => Ok(number),
            Ok(_) => Err(ConfigError::Invalid {
                name,
                value,
                reason: "must be at least 1".into(),
            }),
            Err(error) => Err(ConfigError::Invalid {
                name,
                value,
                reason: error.to_string(),
            }),
        }
    }

    /// A rate (a decimal number); 0 turns the limit off.
    fn rate(&self, name: &'static str, default: f64) -> Result<f64, ConfigError> {
        let Some(value) = self.get(name) else {
            return Ok(default);
        };
        match value.trim().parse::<f64>() {
            Ok(rate) if rate.is_finite() && rate >= 0.0 => Ok(rate),
            Ok(_) => Err(ConfigError::Invalid {
                name,
                value,
                reason: "must be a number of at least 0 (0: no limit)".into(),
            }),
            Err(error) => Err(ConfigError::Invalid {
                name,
                value,
                reason: error.to_string(),
            }),
        }
    }

    /// A token bucket from `<rate name>` (tokens per `unit`, 0: no limit) and `<burst name>`.
    fn bucket(
        &self,
        rate_name: &'static str,
        burst_name: &'static str,
        unit: Duration,
        default: Option<Bucket>,
    ) -> Result<Option<Bucket>, ConfigError> {
        if self.get(rate_name).is_none() && self.get(burst_name).is_none() {
            return Ok(default);
        }
        let default_rate = default.map_or(0.0, |bucket| unit.as_secs_f64() / bucket.every.as_secs_f64());
        let rate = self.rate(rate_name, default_rate)?;
        let burst = self.number(burst_name, default.map_or(1, |bucket| bucket.burst))?;
        Ok(Bucket::per_second(rate / unit.as_secs_f64(), burst))
    }

    fn millis(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.number(name, default.as_millis() as u64)?))
    }

    /// The DynamoDB table (`ROOMCAST_TABLE`).
    pub fn table(&self) -> Result<String, ConfigError> {
        self.required("ROOMCAST_TABLE", "the name of roomcast's DynamoDB table")
    }

    /// An endpoint override for DynamoDB (LocalStack, DynamoDB Local, moto).
    pub fn dynamodb_endpoint(&self) -> Option<String> {
        self.get("ROOMCAST_DYNAMODB_ENDPOINT")
    }

    /// The DynamoDB store on the configured table and endpoint, with `sdk`'s region,
    /// credentials and timeouts.
    pub fn store(&self, sdk: &SdkConfig) -> Result<DynamoStore, ConfigError> {
        let client = dynamodb_client(sdk, self.dynamodb_endpoint().as_deref());
        Ok(DynamoStore::new(client, self.table()?))
    }

    /// The attachments' bucket (`ROOMCAST_FILES_BUCKET`), with an endpoint override
    /// (`ROOMCAST_S3_ENDPOINT`: moto, MinIO) addressed path-style.
    pub fn files(&self, sdk: &SdkConfig) -> Result<crate::files::S3Files, ConfigError> {
        let bucket = self.required("ROOMCAST_FILES_BUCKET", "the S3 bucket of attachments")?;
        let client = crate::files::s3_client(sdk, self.get("ROOMCAST_S3_ENDPOINT").as_deref());
        Ok(crate::files::S3Files::new(client, bucket))
    }

    /// The rules of the protocol: limits, the broadcast room, connection lifetime.
    pub fn domain(&self) -> Result<Config, ConfigError> {
        let defaults = Config::default();
        let limits = Limits {
            room_name_chars: self.number("ROOMCAST_MAX_ROOM_NAME_CHARS", defaults.limits.room_name_chars)?,
            nick_chars: self.number("ROOMCAST_MAX_NICK_CHARS", defaults.limits.nick_chars)?,
            text_bytes: self.number("ROOMCAST_MAX_TEXT_BYTES", defaults.limits.text_bytes)?,
            frame_bytes: self.number("ROOMCAST_MAX_FRAME_BYTES", defaults.limits.frame_bytes)?,
            client_msg_id_chars: defaults.limits.client_msg_id_chars,
            messages: self.bucket(
                "ROOMCAST_MESSAGES_PER_SECOND",
                "ROOMCAST_MESSAGE_BURST",
                Duration::from_secs(1),
                defaults.limits.messages,
            )?,
            reads: self.bucket(
                "ROOMCAST_READS_PER_SECOND",
                "ROOMCAST_READ_BURST",
                Duration::from_secs(1),
                defaults.limits.reads,
            )?,
            memberships: self.bucket(
                "ROOMCAST_MEMBERSHIPS_PER_SECOND",
                "ROOMCAST_MEMBERSHIP_BURST",
                Duration::from_secs(1),
                defaults.limits.memberships,
            )?,
            room_creations: self.bucket(
                "ROOMCAST_ROOMS_CREATED_PER_HOUR",
                "ROOMCAST_ROOM_CREATION_BURST",
                Duration::from_secs(3600),
                defaults.limits.room_creations,
            )?,
            anonymous_room_creations: self.bucket(
                "ROOMCAST_ANONYMOUS_ROOMS_CREATED_PER_HOUR",
                "ROOMCAST_ANONYMOUS_ROOM_CREATION_BURST",
                Duration::from_secs(3600),
                defaults.limits.anonymous_room_creations,
            )?,
            arrivals: self.bucket(
                "ROOMCAST_CONNECTIONS_PER_MINUTE",
                "ROOMCAST_CONNECTION_BURST",
                Duration::from_secs(60),
                defaults.limits.arrivals,
            )?,
            rooms_per_user: self.number("ROOMCAST_ROOMS_PER_USER", defaults.limits.rooms_per_user)?,
            max_rooms: self.number("ROOMCAST_MAX_ROOMS", defaults.limits.max_rooms)?,
            file_bytes: self.number("ROOMCAST_MAX_FILE_BYTES", defaults.limits.file_bytes)?,
        };
        let broadcast_room = self.broadcast_room(&limits)?;
        let ttl_secs = self.number("ROOMCAST_CONNECTION_TTL_SECS", defaults.connection_ttl.as_secs())?;
        Ok(Config {
            limits,
            broadcast_room: broadcast_room.to_string(),
            connection_ttl: Duration::from_secs(ttl_secs),
            nick_lease: Duration::from_secs(self.number("ROOMCAST_NICK_LEASE_SECS", defaults.nick_lease.as_secs())?),
            auth: self.auth()?,
            presence_max_audience: self.number("ROOMCAST_PRESENCE_MAX_AUDIENCE", defaults.presence_max_audience)?,
            who_max_users: defaults.who_max_users,
            log_epoch: self.log_epoch()?,
            file_url_validity: Duration::from_secs(
                self.number("ROOMCAST_FILE_URL_SECS", defaults.file_url_validity.as_secs())?,
            ),
        })
    }

    /// `ROOMCAST_LOG_EPOCH`: 0 to 255, 0 by default (see `Config::log_epoch`).
    fn log_epoch(&self) -> Result<u8, ConfigError> {
        let Some(value) = self.get("ROOMCAST_LOG_EPOCH") else {
            return Ok(0);
        };
        value.trim().parse::<u8>().map_err(|error| ConfigError::Invalid {
            name: "ROOMCAST_LOG_EPOCH",
            value,
            reason: format!("{error}: expected 0 to 255"),
        })
    }

    /// kafka-archive's settings: the retention of history (`ROOMCAST_HISTORY_DAYS`, 30 by
    /// default) and the limits a kept message must meet (as `domain`).
    pub fn archive(&self) -> Result<ArchiveConfig, ConfigError> {
        let defaults = ArchiveConfig::default();
        let days = self.number("ROOMCAST_HISTORY_DAYS", defaults.retention.as_secs() / 86_400)?;
        Ok(ArchiveConfig {
            retention: Duration::from_secs(days.saturating_mul(86_400)),
            concurrency: defaults.concurrency,
            limits: self.domain()?.limits,
        })
    }

    /// Whether users sign in (`ROOMCAST_AUTH`: `none`, the default, `optional` or `required`).
    pub fn auth(&self) -> Result<AuthMode, ConfigError> {
        let Some(value) = self.get("ROOMCAST_AUTH") else {
            return Ok(AuthMode::None);
        };
        AuthMode::parse(&value).ok_or(ConfigError::Invalid {
            name: "ROOMCAST_AUTH",
            value,
            reason: "expected none, optional or required".into(),
        })
    }

    fn broadcast_room(&self, limits: &Limits) -> Result<RoomName, ConfigError> {
        let name = self
            .get("ROOMCAST_BROADCAST_ROOM")
            .unwrap_or_else(|| Config::default().broadcast_room);
        RoomName::parse(&name, limits.room_name_chars).map_err(|error| ConfigError::Invalid {
            name: "ROOMCAST_BROADCAST_ROOM",
            value: name,
            reason: error.message,
        })
    }

    /// The Kafka producer: bootstrap servers, topic, and how long to wait for a delivery report.
    pub fn kafka(&self) -> Result<KafkaSettings, ConfigError> {
        self.kafka_signed_in(None)
    }

    /// [`Env::kafka`] with the SASL user name and password given, when they are, rather
    /// than read from `ROOMCAST_KAFKA_USERNAME` and `ROOMCAST_KAFKA_PASSWORD`: the ones of
    /// the secret [`Env::kafka_secret_arn`] names ([`crate::secrets::kafka_settings`]).
    pub fn kafka_signed_in(&self, credentials: Option<(String, String)>) -> Result<KafkaSettings, ConfigError> {
        Ok(KafkaSettings {
            bootstrap_servers: self.required(
                "ROOMCAST_KAFKA_BOOTSTRAP",
                "Kafka bootstrap servers, host:port[,host:port]",
            )?,
            topic: self.get("ROOMCAST_TOPIC").unwrap_or_else(|| DEFAULT_TOPIC.to_owned()),
            delivery_timeout: self.kafka_delivery_timeout()?,
            security: self.kafka_security_with(credentials)?,
        })
    }

    /// How long a publish (and a read back) may wait for the broker
    /// (`ROOMCAST_KAFKA_DELIVERY_TIMEOUT_MS`, 5 s by default): the Lambda functions' and
    /// the local gateway's producers alike.
    pub fn kafka_delivery_timeout(&self) -> Result<Duration, ConfigError> {
        self.millis("ROOMCAST_KAFKA_DELIVERY_TIMEOUT_MS", Duration::from_secs(5))
    }

    /// `ROOMCAST_KAFKA_SECRET_ARN`: a Secrets Manager secret `{"username", "password"}`
    /// holding the SASL sign-in, read at cold start instead of the two variables.
    pub fn kafka_secret_arn(&self) -> Option<String> {
        self.get("ROOMCAST_KAFKA_SECRET_ARN").map(|arn| arn.trim().to_owned())
    }

    /// How the producer signs in to Kafka. `ROOMCAST_KAFKA_AUTH`: `none` (the default),
    /// `msk-iam` (Amazon MSK IAM access control, for the region in `AWS_REGION`, which
    /// Lambda sets), or `scram-sha-512`, `scram-sha-256`, `plain` with
    /// `ROOMCAST_KAFKA_USERNAME` and `ROOMCAST_KAFKA_PASSWORD`. `ROOMCAST_KAFKA_TLS`
    /// (`true`/`false`) defaults to TLS with any sign-in and plaintext without one.
    pub fn kafka_security(&self) -> Result<KafkaSecurity, ConfigError> {
        self.kafka_security_with(None)
    }

    fn kafka_security_with(&self, credentials: Option<(String, String)>) -> Result<KafkaSecurity, ConfigError> {
        let name = self.get("ROOMCAST_KAFKA_AUTH").unwrap_or_else(|| "none".to_owned());
        let password = |mechanism| -> Result<KafkaAuth, ConfigError> {
            let (username, password) = match credentials.clone() {
                Some(given) => given,
                None => (
                    self.required("ROOMCAST_KAFKA_USERNAME", "the Kafka SASL user name")?,
                    self.required("ROOMCAST_KAFKA_PASSWORD", "the Kafka SASL password")?,
                ),
            };
            Ok(KafkaAuth::Password {
                mechanism,
                username,
                password,
            })
        };
        let auth = match name.trim().to_ascii_lowercase().as_str() {
            "none" => KafkaAuth::None,
            "msk-iam" => KafkaAuth::MskIam {
                region: self
                    .get("AWS_REGION")
                    .or_else(|| self.get("AWS_DEFAULT_REGION"))
                    .ok_or(ConfigError::Missing {
                        name: "AWS_REGION",
                        meaning: "the AWS region that MSK IAM tokens are signed for (Lambda sets it)",
                    })?,
            },
            "scram-sha-512" => password(SaslMechanism::ScramSha512)?,
            "scram-sha-256" => password(SaslMechanism::ScramSha256)?,
            "plain" => password(SaslMechanism::Plain)?,
            _ => {
                return Err(ConfigError::Invalid {
                    name: "ROOMCAST_KAFKA_AUTH",
                    value: name,
                    reason: "expected none, msk-iam, scram-sha-512, scram-sha-256 or plain".into(),
                })
            }
        };
        let tls = match self.get("ROOMCAST_KAFKA_TLS") {
            None => auth != KafkaAuth::None,
            Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "ROOMCAST_KAFKA_TLS",
                        value,
                        reason: "expected true or false".into(),
                    })
                }
            },
        };
        if matches!(auth, KafkaAuth::MskIam { .. }) && !tls {
            return Err(ConfigError::Invalid {
                name: "ROOMCAST_KAFKA_TLS",
                value: "false".into(),
                reason: "MSK IAM sign-in only works over TLS".into(),
            });
        }
        Ok(KafkaSecurity { auth, tls })
    }

    /// The `@connections` endpoint: `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`.
    pub fn connections_endpoint(&self) -> Result<String, ConfigError> {
        let value = self.required(
            "ROOMCAST_CONNECTIONS_ENDPOINT",
            "the API Gateway management endpoint, https://{api-id}.execute-api.{region}.amazonaws.com/{stage}",
        )?;
        if !(value.starts_with("https://") || value.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: "ROOMCAST_CONNECTIONS_ENDPOINT",
                value,
                reason: "must be an http(s) URL".into(),
            });
        }
        Ok(value.trim_end_matches('/').to_owned())
    }

    /// How the Kafka-triggered function fans out a batch.
    pub fn fan_out(&self) -> Result<FanOutConfig, ConfigError> {
        let defaults = FanOutConfig::default();
        Ok(FanOutConfig {
            concurrency: self.number("ROOMCAST_FANOUT_CONCURRENCY", defaults.concurrency)?,
            attempts: self.number("ROOMCAST_FANOUT_ATTEMPTS", defaults.attempts)?,
            backoff: self.millis("ROOMCAST_FANOUT_BACKOFF_MS", defaults.backoff)?,
            post_timeout: self.millis("ROOMCAST_FANOUT_POST_TIMEOUT_MS", defaults.post_timeout)?,
            lookup_attempts: defaults.lookup_attempts,
            domain: self.domain()?,
        })
    }
}

/// The shared AWS configuration (region, credentials) with timeouts on every call: an
/// SDK call without one can hang a Lambda until its own timeout. For the Lambda functions:
/// credentials from the environment Lambda sets, the rest of the default chain only if it
/// has none ([`EnvThenDefaultChain`]: no STS client, and no parse of the root certificates
/// for it, at cold start).
pub async fn aws_sdk_config() -> SdkConfig {
    let region = crate::credentials::default_region().await;
    sdk_config_loader()
        .credentials_provider(EnvThenDefaultChain::new(region))
        .load()
        .await
}

/// The loader behind [`aws_sdk_config`], for callers that set region or credentials
/// themselves (the local gateway). Its HTTP client ([`crate::https::sdk_http_client`]),
/// made here once per cold start and shared by every client made from the configuration,
/// trusts compiled-in roots and reads no certificate file.
pub fn sdk_config_loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(crate::https::sdk_http_client())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(8))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3))
}

/// A DynamoDB client, pointed at `endpoint` when one is configured.
pub fn dynamodb_client(sdk: &SdkConfig, endpoint: Option<&str>) -> aws_sdk_dynamodb::Client {
    let mut config = aws_sdk_dynamodb::config::Builder::from(sdk);
    if let Some(endpoint) = endpoint {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_dynamodb::Client::from_conf(config.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Env::new(move |name: &str| map.get(name).cloned())
    }

    #[test]
    fn missing_and_malformed_variables_are_named() {
        let empty = env(&[]);
        let message = empty.table().unwrap_err().to_string();
        assert!(message.contains("ROOMCAST_TABLE"), "{message}");
        let bad = env(&[("ROOMCAST_MAX_TEXT_BYTES", "lots")]);
        let message = bad.domain().unwrap_err().to_string();
        assert!(
            message.contains("ROOMCAST_MAX_TEXT_BYTES") && message.contains("lots"),
            "{message}"
        );
        let zero = env(&[("ROOMCAST_FANOUT_CONCURRENCY", "0")]);
        assert!(zero.fan_out().is_err());
        let endpoint = env(&[("ROOMCAST_CONNECTIONS_ENDPOINT", "abc.execute-api")]);
        assert!(endpoint.connections_endpoint().is_err());
    }

    #[test]
    fn defaults_follow_the_documentation() {
        let settings = env(&[
            ("ROOMCAST_KAFKA_BOOTSTRAP", "k:9092"),
            ("ROOMCAST_MAX_TEXT_BYTES", "100"),
        ]);
        let domain = settings.domain().unwrap();
        assert_eq!(domain.limits.text_bytes, 100);
        assert_eq!(domain.broadcast_room, "admin");
        assert_eq!(domain.auth, AuthMode::None);
        assert_eq!(domain.presence_max_audience, 100);
        let required = env(&[("ROOMCAST_AUTH", "Required")]).domain().unwrap();
        assert_eq!(required.auth, AuthMode::Required);
        let message = env(&[("ROOMCAST_AUTH", "maybe")]).domain().unwrap_err().to_string();
        assert!(message.contains("ROOMCAST_AUTH"), "{message}");
        assert_eq!(settings.kafka().unwrap().topic, "roomcast-events");
        assert_eq!(settings.fan_out().unwrap().concurrency, 200);
        assert_eq!(settings.kafka_security().unwrap(), KafkaSecurity::default());
    }

    #[test]
    fn every_bucket_is_read_from_its_variables() {
        let domain = env(&[
            ("ROOMCAST_READS_PER_SECOND", "2"),
            ("ROOMCAST_READ_BURST", "5"),
            ("ROOMCAST_MEMBERSHIPS_PER_SECOND", "0"),
            ("ROOMCAST_ANONYMOUS_ROOMS_CREATED_PER_HOUR", "60"),
            ("ROOMCAST_CONNECTIONS_PER_MINUTE", "30"),
            ("ROOMCAST_CONNECTION_BURST", "3"),
        ])
        .domain()
        .unwrap();
        assert_eq!(domain.limits.reads, Bucket::per_second(2.0, 5));
        assert_eq!(domain.limits.memberships, None, "0: no limit");
        assert_eq!(
            domain.limits.anonymous_room_creations,
            Bucket::per_second(60.0 / 3600.0, 20),
            "the burst's default stays"
        );
        assert_eq!(domain.limits.arrivals, Bucket::per_second(0.5, 3));
        let defaults = env(&[]).domain().unwrap().limits;
        assert_eq!(defaults, Limits::default());
    }

    #[test]
    fn kafka_security_follows_the_documentation() {
        let msk = env(&[("ROOMCAST_KAFKA_AUTH", "msk-iam"), ("AWS_REGION", "eu-west-1")])
            .kafka_security()
            .unwrap();
        assert_eq!(
            msk,
            KafkaSecurity {
                auth: KafkaAuth::MskIam {
                    region: "eu-west-1".into()
                },
                tls: true
            }
        );
        let scram = env(&[
            ("ROOMCAST_KAFKA_AUTH", "SCRAM-SHA-512"),
            ("ROOMCAST_KAFKA_USERNAME", "roomcast"),
            ("ROOMCAST_KAFKA_PASSWORD", "secret"),
            ("ROOMCAST_KAFKA_TLS", "false"),
        ])
        .kafka_security()
        .unwrap();
        assert!(!scram.tls);
        assert!(matches!(
            scram.auth,
            KafkaAuth::Password {
                mechanism: SaslMechanism::ScramSha512,
                ..
            }
        ));
        assert!(
            !format!("{scram:?}").contains("secret"),
            "the password must not reach the logs"
        );
        let tls_only = env(&[("ROOMCAST_KAFKA_TLS", "true")]).kafka_security().unwrap();
        assert_eq!((tls_only.auth, tls_only.tls), (KafkaAuth::None, true));

        for (pairs, named) in [
            (&[("ROOMCAST_KAFKA_AUTH", "kerberos")][..], "ROOMCAST_KAFKA_AUTH"),
            (&[("ROOMCAST_KAFKA_AUTH", "msk-iam")][..], "AWS_REGION"),
            (&[("ROOMCAST_KAFKA_AUTH", "plain")][..], "ROOMCAST_KAFKA_USERNAME"),
            (
                &[
                    ("ROOMCAST_KAFKA_AUTH", "msk-iam"),
                    ("AWS_REGION", "eu-west-1"),
                    ("ROOMCAST_KAFKA_TLS", "false"),
                ][..],
                "ROOMCAST_KAFKA_TLS",
            ),
            (&[("ROOMCAST_KAFKA_TLS", "maybe")][..], "ROOMCAST_KAFKA_TLS"),
        ] {
            let message = env(pairs).kafka_security().unwrap_err().to_string();
            assert!(message.contains(named), "{pairs:?}: {message}");
        }
    }
}
