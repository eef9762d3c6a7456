//! Background servers for tests: started once per test process, killed when it exits.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("no free port on 127.0.0.1")
}

/// Has the kernel kill the child `command` starts when the thread that started it dies
/// (`PR_SET_PDEATHSIG`), so that no server outlives the test process that needed it.
pub fn dies_with_its_thread(command: &mut Command) {
    #[cfg(target_os = "linux")]
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            // SAFETY: prctl is async-signal-safe and touches only the child.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

/// Starts `program` in the background for the rest of the test process and waits until
/// `port` on 127.0.0.1 accepts connections.
///
/// The child is spawned from a thread that never ends and asks the kernel to kill it when
/// that thread dies (`PR_SET_PDEATHSIG`), so no server outlives the test process, even
/// when the tests panic or are interrupted.
pub fn spawn_server(program: &str, args: &[String], port: u16, install_hint: &str) -> u32 {
    let (sender, receiver) = mpsc::channel();
    let program_name = program.to_owned();
    let owned_args = args.to_vec();
    std::thread::Builder::new()
        .name(format!("keeper-{program}"))
        .spawn(move || {
            let mut command = Command::new(&program_name);
            command
                .args(&owned_args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            dies_with_its_thread(&mut command);
            let child: std::io::Result<Child> = command.spawn();
            let _ = sender.send(child.as_ref().map(Child::id).map_err(|e| e.to_string()));
            if let Ok(mut child) = child {
                let _ = child.wait();
            }
            loop {
                std::thread::park();
            }
        })
        .expect("cannot start a keeper thread");
    let pid = match receiver.recv().expect("keeper thread died") {
        Ok(pid) => pid,
        Err(error) => panic!("cannot start `{program}`: {error}. {install_hint}"),
    };
    wait_for_port(port, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("`{program}` did not listen on 127.0.0.1:{port} within 60 s. {install_hint}"));
    pid
}

fn wait_for_port(port: u16, timeout: Duration) -> Option<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok() {
            return Some(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}
