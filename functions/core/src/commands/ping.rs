//! `ping` → `pong`: a liveness check that touches nothing.

use serde_json::Value;

use super::context::Context;
use crate::config::Config;
use crate::error::ClientError;
use crate::protocol::ServerFrame;

#[derive(Debug)]
pub struct Ping;

impl Ping {
    /// Any other field is ignored.
    pub fn parse(_: Value, _: &Config) -> Result<Self, ClientError> {
        Ok(Self)
    }

    /// The answer, which needs neither the caller nor the ports.
    pub fn answer(self) -> ServerFrame {
        ServerFrame::Pong
    }

    pub async fn apply(self, _: &Context<'_>) -> Result<ServerFrame, ClientError> {
        Ok(self.answer())
    }
}
