//! roomcast's local gateway: API Gateway's WebSocket API, its `@connections` management
//! API, the HTTP API and Lambda's Kafka event source mapping, emulated in one process around the very same
//! handler code the Lambda functions run — in front of real backends (a DynamoDB endpoint,
//! a Kafka broker) or the embedded in-memory ones — and the browser chat page at `/`.

pub mod backends;
pub mod events;
pub mod files;
pub mod functions;
pub mod host;
pub mod http_api;
pub mod kafka_source;
pub mod management;
pub mod page;
pub mod registry;
pub mod settings;
pub mod source;
pub mod trigger;
pub mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::routing::get;
use axum::Router;
use roomcast_aws::notifier::{ConnectionsNotifier, SdkConnectionsNotifier};
use roomcast_core::archive::ArchiveConfig;
use roomcast_core::fan_out::FanOutConfig;
use roomcast_core::Config;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::events::Api;
use crate::functions::Functions;
use crate::host::AllowedHosts;
use crate::registry::{Outbound, Registry};
use crate::settings::{Quotas, Settings};
use crate::trigger::KafkaFunction;

/// How long shutdown waits for the event source mappings to finish the batch in hand.
const TRIGGER_STOP_WAIT: Duration = Duration::from_secs(5);

/// What every request handler of the gateway shares.
pub struct Gateway {
    pub api: Api,
    pub quotas: Quotas,
    pub functions: Arc<Functions>,
    pub registry: Registry,
    /// How long every `@connections` request waits before its answer (`--connections-delay-ms`).
    pub connections_delay: Duration,
    /// The signature check of `@connections` requests (`--verify-signatures`).
    pub signatures: Option<management::Signatures>,
    /// The embedded file store, whose presigned URLs the gateway serves under `/files`
    /// (`None` with `--s3-endpoint`).
    pub files: Option<Arc<roomcast_core::memory::DirectoryFiles>>,
    /// The chat page's Content-Security-Policy: its own origin, and the S3 API's.
    pub page_policy: axum::http::HeaderValue,
}

/// A started gateway. Dropping it does not stop it; call [`Running::shutdown`].
pub struct Running {
    addr: SocketAddr,
    stage: String,
    gateway: Arc<Gateway>,
    /// What the start-up log says about the backends.
    pub backends: Vec<String>,
    stop_accepting: watch::Sender<bool>,
    stop_triggers: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    /// The event source mappings, one per Kafka-triggered function.
    triggers: Vec<(KafkaFunction, JoinHandle<()>)>,
}

/// The origin (`scheme://host[:port]`) of an S3 endpoint URL.
fn s3_origin(endpoint: Option<&str>) -> Option<String> {
    let endpoint = endpoint?;
    let (scheme, rest) = endpoint.split_once("://")?;
    let authority = rest.split('/').next()?;
    Some(format!("{scheme}://{authority}"))
}

/// The longest wait at start for the consumer groups to get their partitions.
const ASSIGNMENT_WAIT: Duration = Duration::from_secs(60);

/// Opens the backends (creating table and topic when missing), binds the listener, starts
/// the two Kafka triggers (kafka-fanout and kafka-archive, each on its own consumer group)
/// and, once both have their partitions, serves WebSocket clients, the HTTP API and
/// `@connections`. `settings.auth` decides sign-in, for
/// the authorizer and the domain (`config.auth`) alike; the archive keeps messages for
/// `settings.history_days` within `config.limits`. Every request must name the gateway in
/// its `Host` ([`host`]); on an address beyond loopback the gateway warns, and signs dev
/// tokens only with `settings.dev_tokens_beyond_loopback`.
pub async fn start(settings: Settings, mut config: Config, fan_out: FanOutConfig) -> anyhow::Result<Running> {
    let authorizer = authorizer(&settings.auth)?;
    let exposed = host::beyond_loopback(settings.listen);
    let (http_authorizer, dev_signer) =
        http_authorizer(&settings.auth, !exposed || settings.dev_tokens_beyond_loopback)?;
    config.auth = settings.auth.mode;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    if exposed {
        warn_exposed(addr, dev_signer.is_some());
    }
    let sdk = backends::sdk_config().await;
    // Where clients reach the file store: a gateway listening on every address is reached
    // on loopback from this machine.
    let files_host = match addr.ip().is_unspecified() {
        true => SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port()),
        false => addr,
    };
    let opened = backends::open(&settings, &sdk, &format!("http://{files_host}")).await?;
    let sources = [
        (KafkaFunction::FanOut, opened.fan_out_source),
        (KafkaFunction::Archive, opened.archive_source),
    ];
    let mut description = vec![
        format!("store: {}", opened.store_description),
        format!("files: {}", opened.files_description),
    ];
    description.extend(
        sources
            .iter()
            .map(|(function, source)| format!("events → {}: {}", function.name(), source.describe())),
    );
    let archive = ArchiveConfig {
        retention: settings.history_retention(),
        limits: config.limits.clone(),
        ..ArchiveConfig::default()
    };

    let endpoint = format!("http://{addr}/{}", settings.stage);
    let notifier: Box<dyn roomcast_core::Notifier> = match settings.connections_client {
        settings::ConnectionsClient::Signed => {
            Box::new(ConnectionsNotifier::new(&sdk, &endpoint, fan_out.concurrency)?)
        }
        settings::ConnectionsClient::Sdk => Box::new(SdkConnectionsNotifier::new(&sdk, &endpoint)),
    };
    let signatures = match settings.verify_signatures {
        true => Some(management::Signatures::new(&sdk).await?),
        false => None,
    };
    let functions = Arc::new(Functions {
        ports: opened.ports,
        config,
        fan_out,
        archive,
        notifier,
        authorizer,
        http_authorizer,
        dev_signer,
    });
    let gateway = Arc::new(Gateway {
        api: Api {
            api_id: "local".to_owned(),
            stage: settings.stage.clone(),
            domain_name: addr.to_string(),
        },
        quotas: settings.quotas(),
        functions: functions.clone(),
        registry: Registry::default(),
        connections_delay: Duration::from_millis(settings.connections_delay_ms),
        signatures,
        files: opened.directory,
        page_policy: page::content_security_policy(s3_origin(settings.s3_endpoint.as_deref()).as_deref()),
    });
    let app = Router::new()
        .route("/", get(websocket::upgrade))
        .route("/{stage}", get(websocket::upgrade))
        .merge(management::routes())
        .merge(http_api::routes())
        .merge(files::routes())
        .with_state(gateway.clone())
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(AllowedHosts::new(&settings.allowed_hosts)),
            host::refuse_foreign,
        ));

    let (stop_triggers, triggers_stopped) = watch::channel(false);
    let batching = trigger::Batching {
        batch_size: settings.batch_size.max(1),
        window: Duration::from_millis(settings.batch_window_ms),
        bootstrap_servers: settings
            .kafka_bootstrap
            .clone()
            .unwrap_or_else(|| "embedded".to_owned()),
    };
    let mut assigned = Vec::new();
    let triggers = sources
        .into_iter()
        .map(|(function, source)| {
            let (ready, is_ready) = watch::channel(false);
            assigned.push((function, is_ready));
            let mapping = trigger::run(
                function,
                source,
                functions.clone(),
                batching.clone(),
                triggers_stopped.clone(),
                ready,
            );
            (function, tokio::spawn(mapping))
        })
        .collect();
    // Clients are served once both mappings have their partitions: a message sent before
    // would wait, unseen, for the consumer groups to settle (on tansu about 6 s after a
    // start), and the first message after `cargo run` would be late.
    for (function, mut is_ready) in assigned {
        let waited = tokio::time::timeout(ASSIGNMENT_WAIT, is_ready.wait_for(|ready| *ready)).await;
        if !matches!(waited, Ok(Ok(_))) {
            tracing::warn!(
                function = function.name(),
                waited = ?ASSIGNMENT_WAIT,
                "its consumer group has no partitions yet; serving anyway (messages wait for it)"
            );
        }
    }

    let (stop_accepting, mut accepting) = watch::channel(false);
    let server = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = accepting.wait_for(|stop| *stop).await;
            })
            .await
    });

    Ok(Running {
        addr,
        stage: settings.stage,
        gateway,
        backends: description,
        stop_accepting,
        stop_triggers,
        server,
        triggers,
    })
}

/// The `$connect` authorizer for `auth`, when sign-in is on.
fn authorizer(auth: &ws_authorizer::Settings) -> anyhow::Result<Option<ws_authorizer::Authorizer>> {
    if !auth.mode.is_on() {
        return Ok(None);
    }
    if auth.secret_arn().is_some() {
        anyhow::bail!(
            "ROOMCAST_JWT_SECRET_ARN is read from Secrets Manager in AWS only; \
             give the local gateway the secret itself in ROOMCAST_JWT_SECRET"
        );
    }
    let authorizer = ws_authorizer::Authorizer::new(auth.clone()).context("sign-in settings")?;
    Ok(Some(authorizer))
}

/// The HTTP API's authorizer: with the configured keys, or, when there are none, with the
/// secret of a dev signer made up now, which `POST /api/dev/token` then signs with when
/// `offer_dev_tokens` (otherwise no token verifies: there is no one to sign them).
fn http_authorizer(
    auth: &ws_authorizer::Settings,
    offer_dev_tokens: bool,
) -> anyhow::Result<(ws_authorizer::Authorizer, Option<http_api::DevSigner>)> {
    if auth.hmac.is_some() || auth.jwks_url.is_some() {
        let authorizer = authorizer(auth)?.map_or_else(|| ws_authorizer::Authorizer::new(auth.clone()), Ok);
        return Ok((authorizer.context("sign-in settings")?, None));
    }
    let signer = http_api::DevSigner::new(auth)?;
    let authorizer = ws_authorizer::Authorizer::new(signer.settings().clone()).context("dev sign-in settings")?;
    Ok((authorizer, offer_dev_tokens.then_some(signer)))
}

/// The warning of a gateway that other machines can reach: it is a development tool, with
/// no TLS, anonymous access by default and, when asked for, tokens with any role for all.
fn warn_exposed(addr: SocketAddr, dev_tokens: bool) {
    tracing::warn!(
        "WARNING: the gateway listens on {addr}, beyond loopback: other machines can reach it. \
         It is a development tool: plain HTTP and WebSocket (tokens travel unencrypted), \
         anyone may connect when sign-in is off (ROOMCAST_AUTH=none, the default)."
    );
    if dev_tokens {
        tracing::warn!(
            "WARNING: --dev-tokens-beyond-loopback: POST /api/dev/token signs a token with any \
             nickname and any role (admin included) for anyone who reaches {addr}."
        );
    } else {
        tracing::warn!(
            "dev tokens are off on {addr} (POST /api/dev/token answers 404); \
             --dev-tokens-beyond-loopback turns them on for everyone who reaches it."
        );
    }
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where WebSocket clients connect: `ws://127.0.0.1:3001`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Where the HTTP API is: `http://127.0.0.1:3001` (its routes start with `/api`).
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether `POST /api/dev/token` signs tokens (no key is configured).
    pub fn offers_dev_tokens(&self) -> bool {
        self.gateway.functions.dev_signer.is_some()
    }

    /// The `@connections` endpoint for the AWS SDK, as in AWS: the stage URL.
    pub fn connections_endpoint(&self) -> String {
        format!("http://{}/{}", self.addr, self.stage)
    }

    /// The store the functions use, to look at state from tests.
    pub fn store(&self) -> Arc<dyn roomcast_core::Store> {
        self.gateway.functions.ports.store.clone()
    }

    /// The file store the functions use (the embedded directory, whose URLs this gateway
    /// serves, or the S3 API's bucket), to sign URLs from tests.
    pub fn files(&self) -> Arc<dyn roomcast_core::Files> {
        self.gateway.functions.ports.files.clone()
    }

    /// The sign-in mode the gateway runs with.
    pub fn auth_mode(&self) -> roomcast_core::config::AuthMode {
        self.gateway.functions.config.auth
    }

    pub fn live_connections(&self) -> usize {
        self.gateway.registry.len()
    }

    /// Stops accepting, closes every connection (1001, as API Gateway does when it goes
    /// away) so each runs `$disconnect`, then stops both event source mappings, each after
    /// the batch in hand (waiting a bounded time for them).
    pub async fn shutdown(self) {
        let _ = self.stop_accepting.send(true);
        let open = self.gateway.registry.all();
        for live in &open {
            let _ = live.outbox.send(Outbound::Close(1001, "Going away".to_owned())).await;
        }
        if !self.gateway.registry.drained(Duration::from_secs(10)).await {
            tracing::warn!(left = self.gateway.registry.len(), "connections still open after 10 s");
        }
        let _ = self.stop_triggers.send(true);
        let deadline = tokio::time::Instant::now() + TRIGGER_STOP_WAIT;
        for (function, mut mapping) in self.triggers {
            match tokio::time::timeout_at(deadline, &mut mapping).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(function = function.name(), %error, "the event source mapping failed"),
                Err(_elapsed) => {
                    tracing::warn!(
                        function = function.name(),
                        "the event source mapping did not stop within {TRIGGER_STOP_WAIT:?}; abandoning its batch"
                    );
                    mapping.abort();
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
        tracing::info!(closed = open.len(), "gateway stopped");
    }
}
