//! Which `Host` the gateway answers, against DNS rebinding: a web page on a name its owner
//! controls (`evil.example`) can make that name resolve to 127.0.0.1 a moment after the
//! page loaded, and then read the gateway's answers as its own origin's: the HTTP API, a
//! dev token with any role, the WebSocket. The browser still sends the name it resolved in
//! `Host`, so every request whose `Host` is a name other than `localhost` and the ones
//! allowed with `--allowed-host` is refused with 403 before anything runs. A `Host` that
//! is an IP address is never a rebinding (there was no name to resolve), nor is a request
//! without one (no browser sends that).
//!
//! It also says whether the listen address reaches beyond this machine, which the gateway
//! warns about and which turns the dev-token endpoint off unless asked for.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The names a `Host` header may carry, besides IP addresses.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    names: Vec<String>,
}

impl AllowedHosts {
    /// `localhost` and `extra` (host names, without a port; compared without letter case).
    pub fn new(extra: &[String]) -> Self {
        let mut names = vec!["localhost".to_owned()];
        names.extend(
            extra
                .iter()
                .map(|name| normalized(name))
                .filter(|name| !name.is_empty()),
        );
        AllowedHosts { names }
    }

    /// Whether a request with this `Host` value (`name[:port]`, `[v6]:port`) is answered.
    pub fn allows(&self, host: &str) -> bool {
        // A browser's `Host` never has user information; `http` would parse it off.
        let Ok(authority) = host.trim().parse::<axum::http::uri::Authority>() else {
            return false;
        };
        if authority.as_str().contains('@') {
            return false;
        }
        let name = authority.host().trim_start_matches('[').trim_end_matches(']');
        if name.parse::<IpAddr>().is_ok() {
            return true;
        }
        let name = normalized(name);
        self.names.contains(&name)
    }
}

/// Lower case, without the root's trailing dot (`LocalHost.` is `localhost`).
fn normalized(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether clients beyond this machine can reach `listen` (anything but a loopback
/// address: `0.0.0.0`, `::` and a LAN address all can).
pub fn beyond_loopback(listen: SocketAddr) -> bool {
    !listen.ip().is_loopback()
}

/// The middleware: a request with a foreign `Host` gets 403 and reaches nothing.
pub async fn refuse_foreign(State(allowed): State<Arc<AllowedHosts>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|value| value.to_str().unwrap_or("\u{fffd}").to_owned())
        .or_else(|| request.uri().authority().map(|authority| authority.to_string()));
    match host {
        Some(host) if !allowed.allows(&host) => {
            let shown: String = host.chars().take(100).collect();
            tracing::warn!(host = %shown, path = request.uri().path(), "refused a request for a foreign Host (DNS rebinding?)");
            (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "application/json")],
                json!({
                    "message": format!(
                        "Forbidden: this gateway does not answer for the host {shown:?}; \
                         if that is its name, start it with --allowed-host <name>"
                    )
                })
                .to_string(),
            )
                .into_response()
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_localhost_and_allowed_names_only() {
        let allowed = AllowedHosts::new(&["Chat.Example.".to_owned()]);
        for host in [
            "127.0.0.1:3001",
            "127.0.0.1",
            "[::1]:3001",
            "192.168.1.20:3001",
            "localhost:3001",
            "LOCALHOST",
            "localhost.:3001",
            "chat.example:3001",
        ] {
            assert!(allowed.allows(host), "{host}");
        }
        for host in [
            "evil.example:3001",
            "localhost.evil.example",
            "127.0.0.1.nip.io:3001",
            "sub.localhost:3001",
            "",
            "a b",
            "user@localhost:3001",
        ] {
            assert!(!allowed.allows(host), "{host}");
        }
        assert!(beyond_loopback("0.0.0.0:3001".parse().unwrap()));
        assert!(beyond_loopback("[::]:3001".parse().unwrap()));
        assert!(!beyond_loopback("127.0.0.1:3001".parse().unwrap()));
        assert!(!beyond_loopback("[::1]:3001".parse().unwrap()));
    }
}
