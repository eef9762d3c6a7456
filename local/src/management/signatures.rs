//! SigV4 verification of `@connections` requests, as API Gateway makes it: the request
//! is signed again with `aws-sigv4` — the SDK's own signer, with its settings — from what it
//! says it signed (its `SignedHeaders`, its `x-amz-date`), and the signatures must match.
//! The secret is the gateway's own credentials' (the ones its kafka-fanout signs with), so a
//! notifier that signs wrongly, or not at all, is refused as it would be in AWS.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use axum::http::{HeaderMap, Method, Uri};

/// The signing name of the management API.
const SERVICE: &str = roomcast_aws::notifier::SERVICE;

/// How far a request's `x-amz-date` may be from the gateway's clock (AWS: 15 minutes).
const SKEW: Duration = Duration::from_secs(15 * 60);

/// Why a request was refused: each is a 403 with AWS's error type.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("Missing Authentication Token")]
    Missing,
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    #[error("Signature expired: {0} is not within 15 minutes of the server's time")]
    Expired(String),
    #[error("The request signature we calculated does not match the signature you provided. {0}")]
    Mismatch(String),
}

impl Refusal {
    /// AWS's error type (`x-amzn-ErrorType`).
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::Missing => "MissingAuthenticationTokenException",
            Refusal::UnknownKey => "UnrecognizedClientException",
            Refusal::Expired(_) | Refusal::Mismatch(_) => "InvalidSignatureException",
        }
    }
}

/// Checks requests against one set of credentials in one region.
pub struct Signatures {
    credentials: Credentials,
    region: String,
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
struct Authorization<'a> {
    access_key_id: &'a str,
    /// `{date}/{region}/{service}/aws4_request`.
    scope: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

impl Signatures {
    /// With the credentials and region of `sdk` (the gateway's own).
    pub async fn new(sdk: &SdkConfig) -> anyhow::Result<Self> {
        let provider = sdk
            .credentials_provider()
            .ok_or_else(|| anyhow::anyhow!("no AWS credentials to verify @connections signatures with"))?;
        let credentials = provider.provide_credentials().await?;
        let region = sdk
            .region()
            .ok_or_else(|| anyhow::anyhow!("no AWS region to verify @connections signatures in"))?;
        Ok(Self::with_credentials(credentials, region.as_ref()))
    }

    pub fn with_credentials(credentials: Credentials, region: &str) -> Self {
        Self {
            credentials,
            region: region.to_owned(),
        }
    }

    pub fn verify(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal> {
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        let authorization = header("authorization")
            .and_then(Authorization::parse)
            .ok_or(Refusal::Missing)?;
        if authorization.access_key_id != self.credentials.access_key_id() {
            return Err(Refusal::UnknownKey);
        }
        let date_time = header("x-amz-date").ok_or_else(|| Refusal::Mismatch("No x-amz-date header.".into()))?;
        let time = parse_date_time(date_time)
            .ok_or_else(|| Refusal::Mismatch(format!("x-amz-date {date_time:?} is not YYYYMMDD'T'HHMMSS'Z'.")))?;
        let now = SystemTime::now();
        let skew = match now.duration_since(time) {
            Ok(behind) => behind,
            Err(ahead) => ahead.duration(),
        };
        if skew > SKEW {
            return Err(Refusal::Expired(date_time.to_owned()));
        }
        let expected_scope = format!("{}/{}/{SERVICE}/aws4_request", &date_time[..8], self.region);
        if authorization.scope != expected_scope {
            return Err(Refusal::Mismatch(format!(
                "The credential should be scoped to {expected_scope}, not {}.",
                authorization.scope
            )));
        }
        // The token, like the date, is added by the signer itself.
        let token = header("x-amz-security-token");
        if token != self.credentials.session_token() {
            return Err(Refusal::UnknownKey);
        }
        let signed: Vec<&str> = authorization.signed_headers.split(';').collect();
        let mut values = Vec::with_capacity(signed.len());
        for name in &signed {
            if matches!(*name, "x-amz-date" | "x-amz-security-token") {
                continue;
            }
            let value =
                header(name).ok_or_else(|| Refusal::Mismatch(format!("The signed header {name} is missing.")))?;
            values.push((*name, value));
        }
        let expected = self
            .signature(method, uri, values, body, time)
            .map_err(|error| Refusal::Mismatch(error.to_string()))?;
        // Compared in constant time, as a signature check should be.
        aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), authorization.signature.as_bytes())
            .map_err(|_| Refusal::Mismatch(String::new()))
    }

    /// The signature `aws-sigv4` makes for this request with these headers at `time`.
    fn signature(
        &self,
        method: &Method,
        uri: &Uri,
        headers: Vec<(&str, &str)>,
        body: &[u8],
        time: SystemTime,
    ) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        let identity = self.credentials.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SERVICE)
            .time(time)
            .settings(SigningSettings::default())
            .build()?
            .into();
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
        let request = SignableRequest::new(
            method.as_str(),
            Cow::Borrowed(path_and_query),
            headers.into_iter(),
            SignableBody::Bytes(body),
        )?;
        let (_instructions, signature) = sign(request, &params)?.into_parts();
        Ok(signature)
    }
}

impl<'a> Authorization<'a> {
    fn parse(value: &'a str) -> Option<Self> {
        let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (name, value) = part.trim().split_once('=')?;
            match name {
                "Credential" => credential = Some(value),
                "SignedHeaders" => signed_headers = Some(value),
                "Signature" => signature = Some(value),
                _ => return None,
            }
        }
        let (access_key_id, scope) = credential?.split_once('/')?;
        Some(Self {
            access_key_id,
            scope,
            signed_headers: signed_headers?,
            signature: signature?,
        })
    }
}

/// `YYYYMMDD'T'HHMMSS'Z'` as a time.
fn parse_date_time(value: &str) -> Option<SystemTime> {
    let bytes = value.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = value.get(range)?;
        digits
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let date = time::Date::from_calendar_date(
        i32::try_from(number(0..4)?).ok()?,
        time::Month::try_from(u8::try_from(number(4..6)?).ok()?).ok()?,
        u8::try_from(number(6..8)?).ok()?,
    )
    .ok()?;
    let time = time::Time::from_hms(
        u8::try_from(number(9..11)?).ok()?,
        u8::try_from(number(11..13)?).ok()?,
        u8::try_from(number(13..15)?).ok()?,
    )
    .ok()?;
    Some(SystemTime::from(date.with_time(time).assume_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_read_as_sigv4_writes_them() {
        let time = parse_date_time("20150830T123600Z").expect("a date");
        assert_eq!(
            time.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            1_440_938_160
        );
        for bad in [
            "20150830T123600",
            "2015083OT123600Z",
            "20151330T123600Z",
            "20150830T126000Z",
            "",
        ] {
            assert!(parse_date_time(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_header_that_is_not_sigv4_is_missing_authentication() {
        assert!(Authorization::parse("Bearer abc").is_none());
        assert!(
            Authorization::parse("AWS4-HMAC-SHA256 Credential=k/20150830/us-east-1/execute-api/aws4_request").is_none()
        );
        let parsed = Authorization::parse(
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
        )
        .expect("parsed");
        assert_eq!(parsed.access_key_id, "AKID");
        assert_eq!(parsed.scope, "20150830/us-east-1/execute-api/aws4_request");
        assert_eq!(parsed.signed_headers, "host;x-amz-date");
        assert_eq!(parsed.signature, "abc");
    }
}
