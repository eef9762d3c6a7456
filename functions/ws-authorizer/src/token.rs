//! Signing HS256 tokens for development and tests (the local gateway's `token` command,
//! its dev-token endpoint): the claims the authorizer reads, signed with `jsonwebtoken`.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};

use crate::settings::{Settings, DEFAULT_NICK_CLAIM, DEFAULT_ROLES_CLAIM};

/// The claims of a token to sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewToken {
    /// `sub`.
    pub user_id: String,
    pub nick: Option<String>,
    pub roles: Vec<String>,
    /// `exp` is now plus this.
    pub ttl: Duration,
    /// `iss`, when set.
    pub issuer: Option<String>,
    /// `aud`, when set.
    pub audience: Option<String>,
    /// The claim names the nickname and the roles go under.
    pub nick_claim: String,
    pub roles_claim: String,
}

pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

impl NewToken {
    /// A token for `user_id` valid for an hour, with no nickname, roles, issuer or audience.
    pub fn new(user_id: impl Into<String>) -> Self {
        NewToken {
            user_id: user_id.into(),
            nick: None,
            roles: Vec::new(),
            ttl: DEFAULT_TTL,
            issuer: None,
            audience: None,
            nick_claim: DEFAULT_NICK_CLAIM.into(),
            roles_claim: DEFAULT_ROLES_CLAIM.into(),
        }
    }

    /// The issuer, first audience and claim names that an authorizer with `settings`
    /// checks and reads.
    pub fn matching(mut self, settings: &Settings) -> Self {
        self.issuer = settings.issuer.clone();
        self.audience = settings.audience.first().cloned();
        self.nick_claim = settings.nick_claim.clone();
        self.roles_claim = settings.roles_claim.clone();
        self
    }

    pub fn nick(mut self, nick: impl Into<String>) -> Self {
        self.nick = Some(nick.into());
        self
    }

    pub fn roles(mut self, roles: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The claims as JSON: `sub`, `iat`, `exp`, and `iss`, `aud`, the nickname and the
    /// roles (an array) when there are any.
    pub fn claims(&self, now_secs: u64) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("sub".into(), self.user_id.clone().into());
        claims.insert("iat".into(), now_secs.into());
        claims.insert("exp".into(), now_secs.saturating_add(self.ttl.as_secs()).into());
        if let Some(issuer) = &self.issuer {
            claims.insert("iss".into(), issuer.clone().into());
        }
        if let Some(audience) = &self.audience {
            claims.insert("aud".into(), audience.clone().into());
        }
        if let Some(nick) = &self.nick {
            claims.insert(self.nick_claim.clone(), nick.clone().into());
        }
        if !self.roles.is_empty() {
            claims.insert(self.roles_claim.clone(), self.roles.clone().into());
        }
        claims
    }
}

/// Signs `token` with the HS256 `secret`.
pub fn sign_hs256(secret: &[u8], token: &NewToken) -> Result<String, jsonwebtoken::errors::Error> {
    let claims = token.claims(jsonwebtoken::get_current_timestamp());
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("JWT".into());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret))
}
