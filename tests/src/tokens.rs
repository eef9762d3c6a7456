//! JSON Web Tokens for the tests: the sign-in settings of a gateway with an HS256 secret,
//! tokens it accepts, and tokens crafted to be refused (another key, `alg: none`, claims
//! out of date). Signing is jsonwebtoken's and ws-authorizer's; nothing here is
//! cryptography of its own.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use roomcast_core::config::AuthMode;
use serde_json::Value;
use ws_authorizer::{HmacKey, NewToken, Secret};

/// The HS256 secret of every signed-in gateway of the tests (`ROOMCAST_JWT_SECRET`).
pub const SECRET: &str = "roomcast-tests-signing-secret-of-at-least-32-bytes";

/// Sign-in settings as `ROOMCAST_AUTH=mode` with `ROOMCAST_JWT_SECRET` would give.
pub fn hs256_auth(mode: AuthMode) -> ws_authorizer::Settings {
    let mut auth = ws_authorizer::Settings::new(mode);
    auth.hmac = Some(HmacKey::Secret(Secret::new(SECRET.as_bytes())));
    auth
}

/// Sign-in `optional` with the secret: tokens name users, anonymous clients still connect.
pub fn signed_in_auth() -> ws_authorizer::Settings {
    hs256_auth(AuthMode::Optional)
}

/// A token a gateway with sign-in `auth` accepts, for `user` named `nick` with `roles`.
pub fn token_for(auth: &ws_authorizer::Settings, user: &str, nick: &str, roles: &[&str]) -> String {
    ws_authorizer::sign_hs256(
        SECRET.as_bytes(),
        &NewToken::new(user)
            .nick(nick)
            .roles(roles.iter().copied())
            .matching(auth),
    )
    .expect("signing works")
}

/// A token the gateways of [`hs256_auth`] accept.
pub fn signed_token(user: &str, nick: &str, roles: &[&str]) -> String {
    token_for(&signed_in_auth(), user, nick, roles)
}

/// A token with `claims` and header `alg` (and `kid`), signed with `key`.
pub fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("signing works")
}

/// An HS256 token with `claims`, signed with `secret`.
pub fn hs256(secret: impl AsRef<[u8]>, claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        None,
        claims,
        &EncodingKey::from_secret(secret.as_ref()),
    )
}

/// An unsigned token (`alg: none`) with `claims`.
pub fn alg_none(claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// Now, in seconds since the epoch, for `exp` and `nbf`.
pub fn now_secs() -> u64 {
    jsonwebtoken::get_current_timestamp()
}
