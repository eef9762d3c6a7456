//! The live connections: what the `@connections` API and shutdown reach them through.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use crate::events::Handshake;

/// What the gateway sends down one connection.
#[derive(Debug)]
pub enum Outbound {
    Text(String),
    Binary(Vec<u8>),
    /// Close the connection with this code and reason.
    Close(u16, String),
}

/// Frames a slow client may have waiting before posts to it are throttled (429).
pub const OUTBOX_FRAMES: usize = 1024;

pub struct Live {
    pub handshake: Handshake,
    pub outbox: mpsc::Sender<Outbound>,
    pub last_active_ms: Arc<AtomicI64>,
}

impl Live {
    pub fn last_active_ms(&self) -> i64 {
        self.last_active_ms.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
pub struct Registry {
    live: Mutex<HashMap<String, Arc<Live>>>,
    /// Signalled whenever a connection leaves, for shutdown to wait on.
    left: tokio::sync::Notify,
}

impl Registry {
    fn live(&self) -> MutexGuard<'_, HashMap<String, Arc<Live>>> {
        self.live.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn insert(&self, live: Arc<Live>) {
        self.live().insert(live.handshake.connection_id.clone(), live);
    }

    pub fn remove(&self, connection_id: &str) {
        self.live().remove(connection_id);
        self.left.notify_waiters();
    }

    pub fn get(&self, connection_id: &str) -> Option<Arc<Live>> {
        self.live().get(connection_id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Live>> {
        self.live().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.live().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until no connection is left, or `timeout` passed.
    pub async fn drained(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = self.left.notified();
            if self.is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, left).await.is_err() {
                return self.is_empty();
            }
        }
    }
}
