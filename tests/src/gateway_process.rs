//! The local gateway as a process of its own — the `roomcast-local` binary, as an operator
//! runs it — for tests that stop it the way Docker, systemd or a crash does (SIGTERM,
//! SIGKILL) and read what it writes to a pipe.
//!
//! The binary is built once per test process with `cargo build --workspace --bin
//! roomcast-local` (the tests crate cannot name another package's binary with
//! `CARGO_BIN_EXE_*`), or taken from `ROOMCAST_TEST_GATEWAY_BIN`. `--workspace`, not `-p
//! roomcast-local`: cargo then resolves every crate's features as `cargo test --workspace`
//! did, so the build reuses the test build's crates and only links the binary. With `-p`
//! it compiled the AWS SDK and everything above it again (2 minutes of the first test that
//! started a gateway process).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Names a `roomcast-local` binary to run instead of building one.
pub const BINARY_ENV: &str = "ROOMCAST_TEST_GATEWAY_BIN";

/// The gateway's `RUST_LOG` when set (`info` otherwise), to debug a test.
pub const LOG_ENV: &str = "ROOMCAST_TEST_GATEWAY_LOG";

/// Longest wait for a started gateway to listen: it first makes sure the table and the
/// topic exist, which a loaded moto can take a while to answer.
const STARTUP_WAIT: Duration = Duration::from_secs(90);

/// What the gateway logs once it listens (`main.rs`), followed by its WebSocket URL.
const LISTENING: &str = "roomcast local gateway on ws://";

/// The `roomcast-local` binary of this workspace, built for this test run's profile.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os(BINARY_ENV).filter(|path| !path.is_empty()) {
            return PathBuf::from(path);
        }
        build()
    })
}

/// `cargo build --workspace --bin roomcast-local`; the executable's path from
/// cargo's JSON messages.
fn build() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .join("Cargo.toml");
    let mut command = std::process::Command::new(cargo);
    command
        .args(["build", "--workspace", "--bin", "roomcast-local"])
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(&manifest)
        .stdin(Stdio::null());
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    let shown = format!("{command:?}");
    let started = std::time::Instant::now();
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {shown}: {error}"));
    assert!(
        output.status.success(),
        "{shown} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let executable = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact" && message["target"]["name"] == "roomcast-local")
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("{shown} named no roomcast-local executable"));
    tracing::info!(elapsed = ?started.elapsed(), executable = %executable.display(), "roomcast-local built");
    executable
}

/// A running `roomcast-local` process. Killed when dropped; what it wrote (stdout and
/// stderr, interleaved as read) is printed when the test fails.
pub struct GatewayProcess {
    child: Child,
    pid: u32,
    ws_url: String,
    output: Arc<Output>,
    readers: Vec<JoinHandle<()>>,
}

#[derive(Default)]
struct Output {
    bytes: Mutex<Vec<u8>>,
    changed: Notify,
}

impl Output {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes.lock().expect("output lock")).into_owned()
    }
}

impl GatewayProcess {
    /// Starts `roomcast-local args...` with `env` on top of this process's environment
    /// minus every `ROOMCAST_*` variable, `RUST_LOG` (`info` instead, which the start-up
    /// line needs, or [`LOG_ENV`]) and `NO_COLOR`, so the test alone decides the gateway's
    /// settings; stdout and stderr are pipes. Returns once it listens.
    pub async fn start(args: &[String], env: &[(&str, &str)]) -> GatewayProcess {
        let binary = tokio::task::spawn_blocking(binary)
            .await
            .expect("building roomcast-local");
        let mut command = Command::new(binary);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (name, _) in std::env::vars_os() {
            let is_setting = name.to_str().is_some_and(|name| name.starts_with("ROOMCAST_"));
            if is_setting || name == "RUST_LOG" || name == "NO_COLOR" {
                command.env_remove(&name);
            }
        }
        let log = std::env::var(LOG_ENV).ok().filter(|log| !log.is_empty());
        command.env("RUST_LOG", log.as_deref().unwrap_or("info"));
        command.envs(env.iter().copied());
        // Killed if the thread that spawned it (a runtime worker of the test) dies, so none
        // outlives an interrupted test run.
        crate::process::dies_with_its_thread(command.as_std_mut());
        let shown = format!("{command:?}");
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {shown}: {error}"));
        let pid = child.id().expect("a started child has a pid");
        let output = Arc::new(Output::default());
        let readers = vec![
            tokio::spawn(collect(child.stdout.take().expect("piped stdout"), output.clone())),
            tokio::spawn(collect(child.stderr.take().expect("piped stderr"), output.clone())),
        ];
        let mut gateway = GatewayProcess {
            child,
            pid,
            ws_url: String::new(),
            output,
            readers,
        };
        gateway.ws_url = gateway.listening().await;
        gateway
    }

    /// Waits for the start-up line and returns the URL it names.
    async fn listening(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + STARTUP_WAIT;
        loop {
            let changed = self.output.changed.notified();
            if let Some(url) = listening_url(&self.output.text()) {
                return url;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "roomcast-local exited ({status}) before listening; it wrote:\n{}",
                    self.output.text()
                );
            }
            // Woken by new output; the timeout also catches an exit that wrote nothing.
            let wait = Duration::from_millis(200).min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            let _ = tokio::time::timeout(wait, changed).await;
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "roomcast-local did not listen within {STARTUP_WAIT:?}; it wrote:\n{}",
                    self.output.text()
                );
            }
        }
    }

    /// `ws://127.0.0.1:port`, where WebSocket clients connect.
    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends SIGTERM, as `docker stop`, systemd and Kubernetes do to stop it.
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Sends SIGINT, as Ctrl-C in its terminal does.
    pub fn interrupt(&self) {
        self.signal(libc::SIGINT);
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.pid).expect("a pid fits pid_t");
        // SAFETY: kill has no memory-safety preconditions. The child is not reaped before
        // `wait` runs (which needs `&mut self`), so the pid is still this child's.
        if unsafe { libc::kill(pid, signal) } != 0 {
            panic!(
                "cannot send signal {signal} to roomcast-local ({pid}): {}",
                std::io::Error::last_os_error()
            );
        }
    }

    /// SIGKILL: the process ends on the spot, as in a crash or an OOM kill, with no
    /// chance to close connections or leave its consumer groups. Returns once it is gone.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL to roomcast-local");
        self.finish_output().await;
    }

    /// Waits up to `timeout` for the process to exit by itself; fails the test past it.
    pub async fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let status = match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.expect("waiting for roomcast-local"),
            Err(_) => panic!(
                "roomcast-local did not exit within {timeout:?}; it wrote:\n{}",
                self.output.text()
            ),
        };
        self.finish_output().await;
        status
    }

    /// Reads the pipes to their end (the process has exited; a grandchild holding them is
    /// not waited for past a few seconds).
    async fn finish_output(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
    }

    /// Everything it wrote so far, stdout and stderr, as raw bytes.
    pub fn output(&self) -> Vec<u8> {
        self.output.bytes.lock().expect("output lock").clone()
    }

    /// [`GatewayProcess::output`] as text (invalid UTF-8 replaced).
    pub fn output_text(&self) -> String {
        self.output.text()
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        // `kill_on_drop` ends the process; its log helps most when the test failed.
        if std::thread::panicking() {
            eprintln!(
                "--- roomcast-local (pid {}) wrote:\n{}--- end of roomcast-local output",
                self.pid,
                self.output.text()
            );
        }
    }
}

/// Appends what `pipe` yields to `output` until it ends.
async fn collect(mut pipe: impl tokio::io::AsyncRead + Unpin, output: Arc<Output>) {
    let mut buffer = [0u8; 8192];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                output
                    .bytes
                    .lock()
                    .expect("output lock")
                    .extend_from_slice(&buffer[..read]);
                output.changed.notify_waiters();
            }
        }
    }
    output.changed.notify_waiters();
}

/// The WebSocket URL of the start-up line, once that line is complete.
fn listening_url(output: &str) -> Option<String> {
    let start = output.find(LISTENING)? + LISTENING.len() - "ws://".len();
    let rest = &output[start..];
    let end = rest.find(['\n', '\x1b', ' '])?;
    Some(rest[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_comes_from_the_complete_start_up_line() {
        let line = "2026-01-01T00:00:00Z  INFO roomcast local gateway on ws://127.0.0.1:40123\n";
        assert_eq!(listening_url(line).as_deref(), Some("ws://127.0.0.1:40123"));
        assert_eq!(
            listening_url(&line[..line.len() - 3]),
            None,
            "a partial line is not read"
        );
        assert_eq!(listening_url("INFO starting\n"), None);
    }
}
