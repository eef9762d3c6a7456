//! How the producer reaches the brokers: plaintext by default; TLS, and SASL with SCRAM
//! or PLAIN and a password, or Amazon MSK's IAM access control (SASL/OAUTHBEARER with a
//! token from [`super::msk_iam`]).

use rdkafka::config::ClientConfig;

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
    pub(super) fn apply(&self, config: &mut ClientConfig) {
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
