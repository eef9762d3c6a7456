//! Amazon MSK's IAM access control: SASL/OAUTHBEARER with a SigV4-presigned token, made
//! by [`msk_iam_token`] whenever librdkafka asks the producer's [`KafkaContext`] for one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::client::{ClientContext, OAuthToken};

use super::{KafkaAuth, KafkaSecurity};

/// The producer's librdkafka context: it answers librdkafka's requests for an
/// OAUTHBEARER token (every ~12 minutes, at 80% of a token's life) when signing in to MSK
/// with IAM; log lines go to `tracing` as with the default context.
pub struct KafkaContext {
    msk_iam: Option<MskIamTokens>,
}

impl KafkaContext {
    pub(super) fn new(security: &KafkaSecurity) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
