//! `ping` → `pong`: a liveness check that touches nothing.

use crate::protocol::ServerFrame;

#[derive(Debug)]
pub struct Ping;

impl Ping {
    pub fn apply(self) -> ServerFrame {
        ServerFrame::Pong
    }
}
