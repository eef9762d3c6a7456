//! The Lambda functions, invoked in-process: the same handler code the functions run in
//! AWS, given the events API Gateway and the Kafka event source mapping would send.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::kafka::KafkaEvent;
use roomcast_core::archive::{ArchiveConfig, ArchiveReport};
use roomcast_core::fan_out::{FanOutConfig, FanOutReport};
use roomcast_core::{Config, Notifier, Ports};

pub struct Functions {
    /// The backends the settings chose (see [`crate::backends`]); attachments live in the
    /// gateway's own directory store, or an S3 API.
    pub ports: Ports,
    pub config: Config,
    pub fan_out: FanOutConfig,
    /// kafka-archive's settings: the retention of history and the limits a kept message meets.
    pub archive: ArchiveConfig,
    /// kafka-fanout reaches connections through the gateway's own `@connections` API with
    /// its own notifier, exactly as it reaches API Gateway in AWS (or the official SDK
    /// client it used before: `--connections-client sdk`).
    pub notifier: Box<dyn Notifier>,
    /// ws-authorizer on `$connect`, when `ROOMCAST_AUTH` is `optional` or `required`; `None`
    /// otherwise, as in the SAM template, where it is then not attached.
    pub authorizer: Option<ws_authorizer::Authorizer>,
    /// ws-authorizer on the HTTP API's routes: always attached (an HTTP request has no
    /// identity without a token), with the configured keys or the dev signer's secret.
    pub http_authorizer: ws_authorizer::Authorizer,
    /// Signs `POST /api/dev/token` tokens when no key is configured.
    pub dev_signer: Option<crate::http_api::DevSigner>,
}

impl Functions {
    /// The `$connect` authorizer's answer, or `None` when no authorizer is attached.
    pub async fn authorize(
        &self,
        event: &ws_authorizer::Request,
    ) -> Option<Result<ws_authorizer::Response, ws_authorizer::Unauthorized>> {
        let authorizer = self.authorizer.as_ref()?;
        Some(ws_authorizer::handle(authorizer, event).await)
    }

    /// The HTTP API authorizer's answer for one request.
    pub async fn authorize_http(
        &self,
        event: &ws_authorizer::HttpRequest,
    ) -> Result<ws_authorizer::HttpResponse, ws_authorizer::Unauthorized> {
        ws_authorizer::handle_http(&self.http_authorizer, event).await
    }

    /// http-api on one request, as lambda_http hands it over.
    pub async fn http(&self, request: lambda_http::Request) -> lambda_http::Response<lambda_http::Body> {
        http_api::handle(&self.ports, &self.config, request).await
    }

    pub async fn connect(&self, event: &ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
        let ports = &self.ports;
        ws_connect::handle(&*ports.store, &*ports.publisher, &self.config, event).await
    }

    pub async fn message(&self, event: &ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
        ws_message::handle(&self.ports, &self.config, event).await
    }

    pub async fn disconnect(&self, event: &ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
        let ports = &self.ports;
        ws_disconnect::handle(&*ports.store, &*ports.publisher, &self.config, event).await
    }

    pub async fn fan_out(&self, event: &KafkaEvent) -> Result<FanOutReport, kafka_fanout::BatchFailed> {
        let ports = &self.ports;
        kafka_fanout::handle(&*ports.store, &*ports.publisher, &*self.notifier, &self.fan_out, event).await
    }

    pub async fn archive(&self, event: &KafkaEvent) -> Result<ArchiveReport, kafka_archive::BatchFailed> {
        kafka_archive::handle(&*self.ports.history, &self.archive, event).await
    }
}
