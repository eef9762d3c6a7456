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
    pub handshake: Arc<Handshake>,
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
    /// Connections inserted whose `$disconnect` has not finished yet: a connection leaves
    /// `live` as soon as its socket ends, before its `$disconnect` runs.
    ending: std::sync::atomic::AtomicUsize,
    /// Signalled whenever a connection leaves or its `$disconnect` finishes, for shutdown
    /// to wait on.
    left: tokio::sync::Notify,
}

impl Registry {
    fn live(&self) -> MutexGuard<'_, HashMap<String, Arc<Live>>> {
        self.live.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A connection opened; [`Registry::finished`] must follow once its `$disconnect` ran.
    pub fn insert(&self, live: Arc<Live>) {
        self.ending.fetch_add(1, Ordering::SeqCst);
        self.live().insert(live.handshake.connection_id.clone(), live);
    }

    /// The `$disconnect` of a connection that was inserted has finished.
    pub fn finished(&self) {
        self.ending.fetch_sub(1, Ordering::SeqCst);
        self.left.notify_waiters();
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

    /// Waits until no connection is left and every `$disconnect` has run, or `timeout`
    /// passed.
    pub async fn drained(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let done = || self.is_empty() && self.ending.load(Ordering::SeqCst) == 0;
        loop {
            let left = self.left.notified();
            if done() {
                return true;
            }
            if tokio::time::timeout_at(deadline, left).await.is_err() {
                return done();
            }
        }
    }
}
