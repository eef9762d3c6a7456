//! A TCP proxy that puts faults between the code under test and a real backend (moto,
//! tansu): the backend goes down (connections cut, new ones refused) and comes back with
//! its data, or its answers are held back while its writes still land — the timeout whose
//! write happened anyway. It counts the connections it refused while down, so a test can
//! wait for the code under test to have tried (and failed) instead of sleeping.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

/// What the proxy does to the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Bytes pass both ways.
    None,
    /// Open connections are cut and new ones closed at once, as a stopped server's are.
    Down,
    /// Requests reach the backend; its answers are held until `until`, then pass (or are
    /// dropped with their connection if the client gave up meanwhile).
    HoldAnswers { until: Instant },
}

/// A proxy on `127.0.0.1:<free port>` in front of `upstream`.
pub struct FaultProxy {
    addr: SocketAddr,
    fault: Arc<watch::Sender<Fault>>,
    /// Connections refused while down, since the start.
    refused: watch::Receiver<usize>,
    accepting: tokio::task::JoinHandle<()>,
}

/// How long [`FaultProxy::wait_for_refusals`] waits.
const REFUSALS_WAIT: Duration = Duration::from_secs(60);

impl FaultProxy {
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        Self::on(listener, upstream)
    }

    /// A proxy on a listener the caller bound (to advertise its port before it starts).
    pub fn on(listener: TcpListener, upstream: SocketAddr) -> FaultProxy {
        let addr = listener.local_addr().expect("a bound listener");
        let (fault, _) = watch::channel(Fault::None);
        let fault = Arc::new(fault);
        let watching = fault.clone();
        let (refusing, refused) = watch::channel(0);
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let fault = watching.subscribe();
                if *fault.borrow() == Fault::Down {
                    drop(client);
                    refusing.send_modify(|count| *count += 1);
                    continue;
                }
                tokio::spawn(relay(client, upstream, fault));
            }
        });
        FaultProxy {
            addr,
            fault,
            refused,
            accepting,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, for an HTTP backend.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// How many connections the proxy refused while down, so far.
    pub fn refused(&self) -> usize {
        *self.refused.borrow()
    }

    /// Waits until the proxy has refused `count` connections in all (at most a minute).
    pub async fn wait_for_refusals(&self, count: usize) {
        let mut refused = self.refused.clone();
        let reached = tokio::time::timeout(REFUSALS_WAIT, refused.wait_for(|refused| *refused >= count)).await;
        assert!(
            matches!(reached, Ok(Ok(_))),
            "the proxy refused {} connections in {REFUSALS_WAIT:?}, not {count}",
            self.refused()
        );
    }

    /// Holds the backend's answers for `duration` from now.
    pub fn hold_answers_for(&self, duration: Duration) {
        self.set(Fault::HoldAnswers {
            until: Instant::now() + duration,
        });
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accepting.abort();
        // Cuts the connections still open.
        self.fault.send_replace(Fault::Down);
    }
}

/// Copies bytes between `client` and a new connection to `upstream` until either side
/// closes or the proxy goes down.
async fn relay(mut client: TcpStream, upstream: SocketAddr, mut fault: watch::Receiver<Fault>) {
    let connecting = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(upstream));
    let Ok(Ok(mut server)) = connecting.await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let mut up = [0u8; 16 * 1024];
    let mut down = [0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = client_read.read(&mut up) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => if server_write.write_all(&up[..n]).await.is_err() { return },
            },
            read = server_read.read(&mut down) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if !wait_to_answer(&mut fault).await {
                        return;
                    }
                    if client_write.write_all(&down[..n]).await.is_err() {
                        return;
                    }
                }
            },
            changed = fault.changed() => {
                if changed.is_err() || *fault.borrow() == Fault::Down {
                    return;
                }
            }
        }
    }
}

/// Waits while answers are held; `false` if the proxy went down meanwhile.
async fn wait_to_answer(fault: &mut watch::Receiver<Fault>) -> bool {
    loop {
        let current = *fault.borrow_and_update();
        match current {
            Fault::None => return true,
            Fault::Down => return false,
            Fault::HoldAnswers { until } => {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => return true,
                    changed = fault.changed() => if changed.is_err() { return false },
                }
            }
        }
    }
}
