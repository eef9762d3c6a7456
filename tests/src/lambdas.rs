//! Drives the Lambda handlers the way API Gateway does: one event per `$connect`, frame
//! and `$disconnect`, built from the fixtures, answered with the proxy response.

use crate::backends::Backends;
use crate::events;
use aws_lambda_events::encodings::Body;
use roomcast_core::archive::{ArchiveConfig, ArchiveReport};
use roomcast_core::Config;
use serde_json::Value;

pub struct Lambdas {
    pub backends: Backends,
    pub config: Config,
}

impl Lambdas {
    pub fn new(backends: Backends) -> Self {
        Self {
            backends,
            config: Config::default(),
        }
    }

    /// `$connect` with `?name=`: the handshake's HTTP status.
    pub async fn connect_status(&self, connection_id: &str, name: Option<&str>) -> i64 {
        self.connect_event(events::connect(connection_id, name)).await
    }

    /// `$connect` as API Gateway sends it: the handshake's HTTP status.
    pub async fn connect_event(&self, event: aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest) -> i64 {
        let backends = &self.backends;
        ws_connect::handle(&*backends.store, &*backends.publisher, &self.config, &event)
            .await
            .status_code
    }

    /// A new connection of a user the authorizer vouched for; returns its id.
    pub async fn sign_in(&self, user_id: &str, nick: &str, roles: &[&str]) -> String {
        let id = events::connection_id();
        let event = events::connect_signed_in(&id, user_id, Some(nick), roles);
        assert_eq!(self.connect_event(event).await, 200, "connect {user_id} as {nick}");
        id
    }

    /// A new connection that must be accepted; returns its id.
    pub async fn connect(&self, name: &str) -> String {
        let id = events::connection_id();
        assert_eq!(self.connect_status(&id, Some(name)).await, 200, "connect {name}");
        id
    }

    /// One text frame; the frame API Gateway would send back.
    pub async fn frame(&self, connection_id: &str, body: &str) -> Value {
        self.answer(events::message(connection_id, body)).await
    }

    pub async fn answer(&self, event: aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest) -> Value {
        let response = ws_message::handle(&self.backends, &self.config, &event).await;
        assert_eq!(response.status_code, 200);
        match response.body {
            Some(Body::Text(text)) => serde_json::from_str(&text).expect("reply is JSON"),
            other => panic!("reply is not a text body: {other:?}"),
        }
    }

    /// A frame that must succeed with reply type `expected`.
    pub async fn ok(&self, connection_id: &str, body: &str, expected: &str) -> Value {
        let reply = self.frame(connection_id, body).await;
        assert_eq!(reply["type"], expected, "{body} → {reply}");
        reply
    }

    /// kafka-archive, given every record published so far as one batch (the ones it had
    /// already are a redelivery, which must change nothing).
    pub async fn archive(&self) -> ArchiveReport {
        let records = self.backends.published().await;
        kafka_archive::handle(
            &*self.backends.history,
            &ArchiveConfig::default(),
            &events::kafka_batch(&records),
        )
        .await
        .expect("archived")
    }

    pub async fn disconnect(&self, connection_id: &str) -> i64 {
        let event = events::disconnect(connection_id);
        let backends = &self.backends;
        ws_disconnect::handle(&*backends.store, &*backends.publisher, &self.config, &event)
            .await
            .status_code
    }

    /// Creates a room as `connection_id` and joins it.
    pub async fn room(&self, connection_id: &str, room: &str) {
        let created = self
            .frame(connection_id, &format!(r#"{{"action":"createRoom","room":"{room}"}}"#))
            .await;
        assert!(
            created["type"] == "roomCreated" || created["code"] == "conflict",
            "{created}"
        );
        self.ok(
            connection_id,
            &format!(r#"{{"action":"join","room":"{room}"}}"#),
            "joined",
        )
        .await;
    }
}
