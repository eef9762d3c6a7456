//! Token verification: picks the key by the token's algorithm and the configured key
//! sources (never a key of another kind), checks signature, `exp`, `nbf`, `iss` and `aud`
//! with `jsonwebtoken`, and reads the user (`sub`, nickname, roles) from the claims.

use std::collections::HashSet;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use roomcast_core::Nick;
use serde_json::{Map, Value};

use crate::jwks::{Jwks, JwksError, Lookup};
use crate::settings::{AuthMode, HmacKey, Settings, SettingsError, MIN_SECRET_BYTES};

/// Tokens longer than this are refused before any parsing (Cognito's are about 1 KB).
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// A `sub` longer than this is refused: it becomes a key in DynamoDB and a field in logs.
const MAX_SUBJECT_CHARS: usize = 256;
/// The claim tried for a nickname after the configured one.
const FALLBACK_NICK_CLAIM: &str = "preferred_username";

/// Why a connection was refused. Never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum Reason {
    #[error("no token given (?token= or Authorization: Bearer)")]
    MissingToken,
    #[error("the event has no methodArn")]
    MissingMethodArn,
    #[error("the token is longer than {MAX_TOKEN_BYTES} bytes")]
    TooLong,
    #[error("the token is not a well-formed JWT")]
    Malformed(#[source] jsonwebtoken::errors::Error),
    #[error("algorithm {0:?} is not accepted with the configured keys")]
    AlgorithmNotAccepted(Algorithm),
    #[error("the token names no key (`kid`), which a JWKS needs")]
    MissingKid,
    #[error("the JWKS has no key {0:?}")]
    UnknownKid(String),
    #[error("key {kid:?} of the JWKS is not a {alg:?} key")]
    KeyMismatch { kid: String, alg: Algorithm },
    #[error(transparent)]
    JwksUnavailable(#[from] JwksError),
    #[error("{what}")]
    Rejected {
        what: &'static str,
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    #[error("the token has no usable `sub` claim")]
    BadSubject,
}

impl Reason {
    /// The refusal is the token's fault (logged at info), not the service's (warn).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Reason::JwksUnavailable(_) | Reason::MissingMethodArn)
    }

    fn rejected(source: jsonwebtoken::errors::Error) -> Self {
        let what = match source.kind() {
            ErrorKind::InvalidSignature => "bad signature",
            ErrorKind::ExpiredSignature => "the token has expired",
            ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
            ErrorKind::InvalidIssuer => "wrong issuer",
            ErrorKind::InvalidAudience => "wrong audience",
            ErrorKind::MissingRequiredClaim(_) => "a required claim (exp, iss or aud) is missing",
            ErrorKind::InvalidClaimFormat(_) => "a claim has the wrong type",
            ErrorKind::InvalidAlgorithm => "algorithm not accepted",
            ErrorKind::InvalidKeyFormat | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidEcdsaKey => {
                "the key does not fit the token"
            }
            ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => "the token is not a well-formed JWT",
            _ => "the token was refused",
        };
        Reason::Rejected { what, source }
    }
}

/// The refusal API Gateway turns into HTTP 401: its message is exactly `Unauthorized`.
#[derive(Debug, thiserror::Error)]
#[error("Unauthorized")]
pub struct Unauthorized {
    #[source]
    reason: Reason,
}

impl Unauthorized {
    pub fn reason(&self) -> &Reason {
        &self.reason
    }
}

impl From<Reason> for Unauthorized {
    fn from(reason: Reason) -> Self {
        Unauthorized { reason }
    }
}

impl From<JwksError> for Unauthorized {
    fn from(error: JwksError) -> Self {
        Reason::from(error).into()
    }
}

/// The user a valid token stands for: the one identity type, which ws-connect and http-api
/// read back from the authorizer context ([`Identity::to_context`]).
pub use roomcast_core::session::Identity;

/// The authorizer context keys ws-connect reads from `requestContext.authorizer`.
pub use roomcast_core::session::{CONTEXT_NICK, CONTEXT_ROLES, CONTEXT_USER_ID};

/// Verifies tokens with the keys of its settings. Built once per cold start; cheap to
/// share by reference across concurrent requests.
pub struct Authorizer {
    settings: Settings,
    hmac: Option<DecodingKey>,
    jwks: Option<Jwks>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("mode", &self.settings.mode)
            .field("hmac", &self.hmac.is_some())
            .field("jwks_url", &self.settings.jwks_url)
            .finish()
    }
}

impl Authorizer {
    /// Fails when tokens are on but no key source is configured, when the secret is too
    /// short, or when a Secrets Manager ARN has not been replaced by its secret yet.
    pub fn new(settings: Settings) -> Result<Self, SettingsError> {
        settings.check_keys()?;
        let hmac = match &settings.hmac {
            None => None,
            Some(HmacKey::SecretArn(arn)) => return Err(SettingsError::UnresolvedSecretArn { arn: arn.clone() }),
            Some(HmacKey::Secret(secret)) => {
                if secret.expose().len() < MIN_SECRET_BYTES {
                    return Err(SettingsError::WeakSecret {
                        len: secret.expose().len(),
                    });
                }
                Some(DecodingKey::from_secret(secret.expose()))
            }
        };
        let jwks = settings
            .jwks_url
            .as_deref()
            .map(|url| {
                Jwks::new(
                    url,
                    settings.jwks_timeout,
                    settings.jwks_min_refetch,
                    settings.jwks_refresh,
                )
            })
            .transpose()?;
        Ok(Authorizer { settings, hmac, jwks })
    }

    pub fn mode(&self) -> AuthMode {
        self.settings.mode
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Verifies `token` and reads its user. Never panics on a bad token.
    pub async fn verify_token(&self, token: &str) -> Result<Identity, Unauthorized> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Reason::TooLong.into());
        }
        let header = jsonwebtoken::decode_header(token).map_err(Reason::Malformed)?;
        let alg = header.alg;
        let jwks_key;
        let key: &DecodingKey = match alg {
            // HS256 only with a configured secret: a JWKS public key is never an HMAC secret.
            Algorithm::HS256 => self.hmac.as_ref().ok_or(Reason::AlgorithmNotAccepted(alg))?,
            // RS256 and ES256 only against a JWKS key of the matching type.
            Algorithm::RS256 | Algorithm::ES256 => {
                let jwks = self.jwks.as_ref().ok_or(Reason::AlgorithmNotAccepted(alg))?;
                let kid = header.kid.as_deref().ok_or(Reason::MissingKid)?;
                jwks_key = match jwks.key(kid, alg).await? {
                    Lookup::Found(key) => key,
                    Lookup::Unknown => return Err(Reason::UnknownKid(shorten(kid)).into()),
                    Lookup::Mismatch => return Err(Reason::KeyMismatch { kid: shorten(kid), alg }.into()),
                };
                Arc::as_ref(&jwks_key)
            }
            _ => return Err(Reason::AlgorithmNotAccepted(alg).into()),
        };
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, key, &self.validation(alg)).map_err(Reason::rejected)?;
        self.check_client(&data.claims)?;
        self.identity(&data.claims)
    }

    /// With an audience configured, a token without `aud` (`jsonwebtoken` checked it when
    /// present) must be a Cognito access token of one of those clients: Cognito puts the
    /// client in `aud` of ID tokens but in `client_id` of access tokens.
    fn check_client(&self, claims: &Map<String, Value>) -> Result<(), Reason> {
        if self.settings.audience.is_empty() || claims.contains_key("aud") {
            return Ok(());
        }
        let refuse = |what, kind| Reason::Rejected {
            what,
            source: jsonwebtoken::errors::Error::from(kind),
        };
        let Some(client) = claims.get("client_id") else {
            return Err(refuse(
                "a required claim (aud, or client_id of an access token) is missing",
                ErrorKind::MissingRequiredClaim("aud".into()),
            ));
        };
        if !client
            .as_str()
            .is_some_and(|client| self.settings.audience.iter().any(|allowed| allowed == client))
        {
            return Err(refuse("wrong audience (client_id)", ErrorKind::InvalidAudience));
        }
        if claims.get("token_use").and_then(Value::as_str) != Some("access") {
            return Err(refuse(
                "a token with client_id and no aud must have token_use `access`",
                ErrorKind::InvalidAudience,
            ));
        }
        Ok(())
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.leeway = self.settings.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required: HashSet<String> = HashSet::from(["exp".to_owned()]);
        if let Some(issuer) = &self.settings.issuer {
            validation.set_issuer(&[issuer]);
            required.insert("iss".into());
        }
        if self.settings.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            // Checked here when present; a token without it is looked at by `check_client`.
            validation.set_audience(&self.settings.audience);
        }
        validation.required_spec_claims = required;
        validation
    }

    fn identity(&self, claims: &Map<String, Value>) -> Result<Identity, Unauthorized> {
        let user_id = match claims.get("sub") {
            Some(Value::String(sub))
                if !sub.trim().is_empty()
                    && sub.chars().count() <= MAX_SUBJECT_CHARS
                    && !sub.chars().any(char::is_control) =>
            {
                roomcast_core::UserId::new(sub.clone())
            }
            _ => return Err(Reason::BadSubject.into()),
        };
        let nick = [self.settings.nick_claim.as_str(), FALLBACK_NICK_CLAIM]
            .into_iter()
            .filter_map(|name| claims.get(name)?.as_str())
            .find_map(|value| Nick::parse(value, self.settings.max_nick_chars).ok())
            .map(|nick| nick.as_str().to_owned());
        let roles = roles(claims.get(&self.settings.roles_claim));
        Ok(Identity { user_id, nick, roles })
    }
}

/// Roles from a JSON array of strings or a space/comma-separated string. Roles containing
/// `,` (they could not be told apart once joined) and duplicates are dropped.
fn roles(claim: Option<&Value>) -> Vec<String> {
    let candidates: Vec<&str> = match claim {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(text)) => text.split(|c: char| c == ',' || c.is_whitespace()).collect(),
        _ => Vec::new(),
    };
    let mut roles: Vec<String> = Vec::new();
    for role in candidates {
        let role = role.trim();
        if role.is_empty()
            || role.contains(',')
            || role.chars().any(char::is_control)
            || roles.iter().any(|known| known == role)
        {
            continue;
        }
        roles.push(role.to_owned());
    }
    roles
}

/// A `kid` for a log line: it comes from the token, so it is cut short.
fn shorten(kid: &str) -> String {
    kid.chars().take(64).collect()
}
