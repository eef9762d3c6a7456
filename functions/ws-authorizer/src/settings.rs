//! The authorizer's settings: the auth mode, where the keys come from, which claims to
//! check and read. Built from a lookup function (the process environment in Lambda, a
//! map or the gateway's own settings elsewhere); a bad variable is an error naming it.

use std::fmt;
use std::time::Duration;

/// The shortest HS256 secret accepted: the hash's output size (RFC 7518, section 3.2).
pub const MIN_SECRET_BYTES: usize = 32;

pub use roomcast_core::config::AuthMode;

/// `none`, `optional` or `required`, as `ROOMCAST_AUTH` spells it.
pub fn mode_name(mode: AuthMode) -> &'static str {
    match mode {
        AuthMode::None => "none",
        AuthMode::Optional => "optional",
        AuthMode::Required => "required",
    }
}

/// Secret bytes that never appear in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret([redacted; {} bytes])", self.0.len())
    }
}

/// Where the HS256 secret comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HmacKey {
    /// `ROOMCAST_JWT_SECRET`: the secret itself.
    Secret(Secret),
    /// `ROOMCAST_JWT_SECRET_ARN`: a Secrets Manager secret whose string is the secret. The
    /// caller reads it (once, at start) and replaces this with [`HmacKey::Secret`].
    SecretArn(String),
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub mode: AuthMode,
    /// HS256 tokens are accepted only when this is set.
    pub hmac: Option<HmacKey>,
    /// RS256 and ES256 tokens are accepted only when this is set, each against a key of
    /// the set whose `kid` the token names.
    pub jwks_url: Option<String>,
    /// `iss` must equal this when set; with a JWKS it must be set (a key set may sign the
    /// tokens of other tenants and applications too).
    pub issuer: Option<String>,
    /// When not empty, `aud` must contain one of these; or, for a token without `aud` (a
    /// Cognito access token), `client_id` must be one of these and `token_use` `access`.
    /// Not looked at when empty.
    pub audience: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_secs: u64,
    /// The claim holding the nickname; `preferred_username` is tried after it.
    pub nick_claim: String,
    /// The claim holding the roles: a JSON array of strings or a space/comma-separated string.
    pub roles_claim: String,
    pub max_nick_chars: usize,
    /// The whole JWKS request, connection to last byte.
    pub jwks_timeout: Duration,
    /// The JWKS is fetched again for an unknown `kid` at most once per this interval.
    pub jwks_min_refetch: Duration,
    /// The JWKS is fetched again once it is this old, so that a withdrawn key stops
    /// verifying tokens in a warm instance.
    pub jwks_refresh: Duration,
}

pub const DEFAULT_LEEWAY_SECS: u64 = 30;
pub const DEFAULT_NICK_CLAIM: &str = "nickname";
pub const DEFAULT_ROLES_CLAIM: &str = "roles";
pub const DEFAULT_MAX_NICK_CHARS: usize = 32;
pub const DEFAULT_JWKS_TIMEOUT: Duration = Duration::from_secs(3);
pub const DEFAULT_JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);
pub const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("environment variable {name} is invalid: {reason}")]
    InvalidSecret { name: &'static str, reason: String },
    #[error("set only one of {first} and {second}")]
    Conflict { first: &'static str, second: &'static str },
    #[error(
        "ROOMCAST_AUTH={} needs a key: set ROOMCAST_JWT_SECRET (HS256), \
         ROOMCAST_JWT_SECRET_ARN (HS256 from Secrets Manager) or ROOMCAST_JWKS_URL (RS256/ES256)",
        mode_name(*mode)
    )]
    NoKeySource { mode: AuthMode },
    #[error(
        "ROOMCAST_JWKS_URL needs ROOMCAST_JWT_ISSUER: a key set may sign the tokens of other \
         tenants and applications too (for Cognito: https://cognito-idp.<region>.amazonaws.com/<user pool id>)"
    )]
    JwksWithoutIssuer,
    #[error(
        "the HS256 secret is {len} bytes long; it must be at least {MIN_SECRET_BYTES} \
         (generate one with `openssl rand -base64 48`)"
    )]
    WeakSecret { len: usize },
    #[error("the secret {arn} has not been read from Secrets Manager yet")]
    UnresolvedSecretArn { arn: String },
    #[error("the JWKS URL {url:?} is invalid: {reason}")]
    BadJwksUrl { url: String, reason: String },
    #[cfg(feature = "jwks")]
    #[error("the JWKS HTTP client could not be built")]
    HttpClient(#[source] reqwest::Error),
}

impl Settings {
    /// Settings for `mode` with no key source and every other value at its default.
    pub fn new(mode: AuthMode) -> Self {
        Settings {
            mode,
            hmac: None,
            jwks_url: None,
            issuer: None,
            audience: Vec::new(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
            nick_claim: DEFAULT_NICK_CLAIM.into(),
            roles_claim: DEFAULT_ROLES_CLAIM.into(),
            max_nick_chars: DEFAULT_MAX_NICK_CHARS,
            jwks_timeout: DEFAULT_JWKS_TIMEOUT,
            jwks_min_refetch: DEFAULT_JWKS_MIN_REFETCH,
            jwks_refresh: DEFAULT_JWKS_REFRESH,
        }
    }

    /// Reads `ROOMCAST_AUTH`, `ROOMCAST_JWT_SECRET`, `ROOMCAST_JWT_SECRET_ARN`,
    /// `ROOMCAST_JWKS_URL`, `ROOMCAST_JWT_ISSUER`, `ROOMCAST_JWT_AUDIENCE` (comma-separated),
    /// `ROOMCAST_JWT_LEEWAY_SECS`, `ROOMCAST_JWT_NICK_CLAIM`, `ROOMCAST_JWT_ROLES_CLAIM`,
    /// `ROOMCAST_MAX_NICK_CHARS`, `ROOMCAST_JWKS_TIMEOUT_MS`, `ROOMCAST_JWKS_MIN_REFETCH_SECS`
    /// and `ROOMCAST_JWKS_REFRESH_SECS` through `lookup`. Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let mut settings = Settings::new(AuthMode::None);

        if let Some(value) = get("ROOMCAST_AUTH") {
            settings.mode = AuthMode::parse(&value).ok_or_else(|| SettingsError::Invalid {
                name: "ROOMCAST_AUTH",
                value,
                reason: "expected none, optional or required".into(),
            })?;
        }

        let secret = lookup("ROOMCAST_JWT_SECRET").filter(|value| !value.is_empty());
        let arn = get("ROOMCAST_JWT_SECRET_ARN");
        settings.hmac = match (secret, arn) {
            (Some(_), Some(_)) => {
                return Err(SettingsError::Conflict {
                    first: "ROOMCAST_JWT_SECRET",
                    second: "ROOMCAST_JWT_SECRET_ARN",
                })
            }
            (Some(secret), None) => {
                if secret.len() < MIN_SECRET_BYTES {
                    return Err(SettingsError::InvalidSecret {
                        name: "ROOMCAST_JWT_SECRET",
                        reason: SettingsError::WeakSecret { len: secret.len() }.to_string(),
                    });
                }
                Some(HmacKey::Secret(Secret::new(secret)))
            }
            (None, Some(arn)) => {
                let arn = arn.trim().to_owned();
                if !arn.starts_with("arn:") {
                    return Err(SettingsError::Invalid {
                        name: "ROOMCAST_JWT_SECRET_ARN",
                        value: arn,
                        reason: "expected an ARN (arn:aws:secretsmanager:...)".into(),
                    });
                }
                Some(HmacKey::SecretArn(arn))
            }
            (None, None) => None,
        };

        if let Some(url) = get("ROOMCAST_JWKS_URL") {
            let url = url.trim().to_owned();
            check_jwks_url(&url).map_err(|error| SettingsError::Invalid {
                name: "ROOMCAST_JWKS_URL",
                value: url.clone(),
                reason: error.to_string(),
            })?;
            settings.jwks_url = Some(url);
        }

        settings.issuer = get("ROOMCAST_JWT_ISSUER").map(|value| value.trim().to_owned());
        if let Some(value) = get("ROOMCAST_JWT_AUDIENCE") {
            settings.audience = value
                .split(',')
                .map(str::trim)
                .filter(|audience| !audience.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(value) = get("ROOMCAST_JWT_NICK_CLAIM") {
            settings.nick_claim = value.trim().to_owned();
        }
        if let Some(value) = get("ROOMCAST_JWT_ROLES_CLAIM") {
            settings.roles_claim = value.trim().to_owned();
        }

        settings.leeway_secs = number(&get, "ROOMCAST_JWT_LEEWAY_SECS", DEFAULT_LEEWAY_SECS, 0)?;
        settings.max_nick_chars = number(&get, "ROOMCAST_MAX_NICK_CHARS", DEFAULT_MAX_NICK_CHARS as u64, 1)? as usize;
        settings.jwks_timeout = Duration::from_millis(number(
            &get,
            "ROOMCAST_JWKS_TIMEOUT_MS",
            DEFAULT_JWKS_TIMEOUT.as_millis() as u64,
            1,
        )?);
        settings.jwks_min_refetch = Duration::from_secs(number(
            &get,
            "ROOMCAST_JWKS_MIN_REFETCH_SECS",
            DEFAULT_JWKS_MIN_REFETCH.as_secs(),
            0,
        )?);
        settings.jwks_refresh = Duration::from_secs(number(
            &get,
            "ROOMCAST_JWKS_REFRESH_SECS",
            DEFAULT_JWKS_REFRESH.as_secs(),
            1,
        )?);

        settings.check_keys()?;
        Ok(settings)
    }

    /// The Secrets Manager ARN still to be read, if the secret comes from one.
    pub fn secret_arn(&self) -> Option<&str> {
        match &self.hmac {
            Some(HmacKey::SecretArn(arn)) => Some(arn),
            _ => None,
        }
    }

    /// The HS256 secret, when one is configured (and read).
    pub fn secret(&self) -> Option<&Secret> {
        match &self.hmac {
            Some(HmacKey::Secret(secret)) => Some(secret),
            _ => None,
        }
    }

    /// With `optional` or `required`, some key source must be configured; a JWKS needs an
    /// issuer.
    pub(crate) fn check_keys(&self) -> Result<(), SettingsError> {
        if self.mode.is_on() && self.hmac.is_none() && self.jwks_url.is_none() {
            return Err(SettingsError::NoKeySource { mode: self.mode });
        }
        if self.jwks_url.is_some() && self.issuer.is_none() {
            return Err(SettingsError::JwksWithoutIssuer);
        }
        Ok(())
    }
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    min: u64,
) -> Result<u64, SettingsError> {
    let Some(value) = get(name) else {
        return Ok(default);
    };
    match value.trim().parse::<u64>() {
        Ok(number) if number >= min => Ok(number),
        Ok(_) => Err(SettingsError::Invalid {
            name,
            value,
            reason: format!("must be at least {min}"),
        }),
        Err(error) => Err(SettingsError::Invalid {
            name,
            value,
            reason: error.to_string(),
        }),
    }
}

/// A JWKS URL must be https, except on the loopback interface (tests, local issuers).
#[cfg(feature = "jwks")]
pub(crate) fn check_jwks_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|error| error.to_string())?;
    let Some(host) = parsed.host_str() else {
        return Err("no host".into());
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback =
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        "http" => Err("must be https (plain http only on localhost)".into()),
        other => Err(format!("unsupported scheme {other}")),
    }
}

/// Built without the `jwks` feature: there is nothing to fetch a JWKS with.
#[cfg(not(feature = "jwks"))]
pub(crate) fn check_jwks_url(_url: &str) -> Result<std::convert::Infallible, String> {
    Err("this build of ws-authorizer has no JWKS support (the `jwks` feature)".into())
}
