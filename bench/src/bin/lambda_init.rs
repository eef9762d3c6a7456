//! `lambda-init`: each Lambda bootstrap's size and its cold-start time, from the exec to its
//! first `GET /2018-06-01/runtime/invocation/next`, against a stand-in Lambda runtime API on
//! loopback, beside the same figures for a minimal lambda_runtime function built the same
//! way (the machine's ceiling).
//!
//! Each bootstrap gets the environment Lambda gives a `provided.al2023` function (and no
//! other: no `HOME`, so no `~/.aws` files): the runtime API's address, the region, dummy
//! credentials, the function's name, memory and log names, and the variables
//! `template.yaml` sets for that function (Kafka at a closed local port, since the
//! producers connect lazily). Runs go round the functions in turn, so a change of the
//! machine's load touches all of them alike. Prints p50 and max per function, and the load
//! average before and after.
//!
//! `cargo run -p roomcast-bench --bin lambda-init -- --bootstraps target/sam/build
//!   --hello target/sam/lambda/lambda-hello/bootstrap [--runs 20] [--json out.json]`
//! (`scripts/lambda-bench` builds both and runs this.)

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use serde::Serialize;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

#[derive(Parser, Debug)]
#[command(
    name = "lambda-init",
    about = "Each Lambda bootstrap's size and its time from exec to the first runtime /next, \
             beside a minimal lambda_runtime bootstrap's"
)]
struct Options {
    /// The directory `sam build` wrote: one `<LogicalId>/bootstrap` per function.
    #[arg(long)]
    bootstraps: PathBuf,

    /// The ceiling: the `lambda-hello` bootstrap, built as the functions are.
    #[arg(long)]
    hello: PathBuf,

    /// Cold starts per function.
    #[arg(long, default_value_t = 20)]
    runs: usize,

    /// How long one bootstrap may take to ask for its first event.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,

    /// Only these functions (binary names, e.g. ws-connect); all of them by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,

    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,

    /// The file the template's `SSL_CERT_FILE` names on this host: provided.al2023's
    /// `/etc/pki/tls/certs/ca-bundle.crt` where it exists, else this system's bundle
    /// (Debian's by default), so that each bootstrap reads one bundle as it does in Lambda.
    #[arg(long, default_value = "/etc/ssl/certs/ca-certificates.crt")]
    host_cert_file: PathBuf,

    /// Give no `SSL_CERT_FILE` (as template.yaml did before it set one): the SDK then reads
    /// the bundle openssl-probe finds and every certificate directory's files.
    #[arg(long)]
    without_cert_file: bool,

    /// Start each bootstrap under this command (words split at spaces), e.g. `valgrind
    /// --tool=callgrind` (scripts/bench-init), and stop it with SIGTERM rather than SIGKILL
    /// at its first `/next`, so that the wrapper can write its report.
    #[arg(long, allow_hyphen_values = true)]
    wrapper: Option<String>,

    /// An extra variable for every bootstrap, NAME=VALUE (repeatable): for experiments,
    /// e.g. SSL_CERT_FILE to see what reading the root certificates costs.
    #[arg(long = "env", value_parser = parse_variable)]
    extra: Vec<(String, String)>,
}

fn parse_variable(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("expected NAME=VALUE: {text}"))
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |at| text.split_at(at));
    let number: u64 = number.parse().map_err(|_| format!("not a duration: {text}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "s" => Ok(Duration::from_secs(number)),
        _ => Err(format!("not a duration (use ms or s): {text}")),
    }
}

/// One function of `template.yaml`: its logical id, its binary, its memory size and the
/// variables the template sets for it (resolved for a stack with `AuthMode` required, a
/// JWKS URL, self-managed Kafka without a secret and the parameters' defaults).
struct Function {
    logical_id: &'static str,
    binary: &'static str,
    memory_mb: u32,
    variables: &'static [(&'static str, &'static str)],
}

/// The root certificates' bundle that template.yaml's Globals give every function.
const LAMBDA_CERT_FILE: &str = "/etc/pki/tls/certs/ca-bundle.crt";

/// Where each function's Kafka producer is told the brokers are: `{kafka}` is replaced by
/// a local port nothing listens on. The producers connect in the background, after init.
const KAFKA: &str = "{kafka}";

/// What template.yaml gives the two functions that run commands (ws-message, http-api).
const COMMAND_VARIABLES: &[(&str, &str)] = &[
    ("ROOMCAST_TABLE", "roomcast-Table-BENCH"),
    ("ROOMCAST_KAFKA_BOOTSTRAP", KAFKA),
    ("ROOMCAST_TOPIC", "roomcast-events"),
    ("ROOMCAST_BROADCAST_ROOM", "admin"),
    ("ROOMCAST_LOG_EPOCH", "0"),
    ("ROOMCAST_NICK_LEASE_SECS", "300"),
    ("ROOMCAST_KAFKA_AUTH", "none"),
    ("ROOMCAST_FILES_BUCKET", "roomcast-filesbucket-bench"),
];

/// The template's variables, with the values a deployed stack would give them. Globals:
/// `ROOMCAST_AUTH`, `RUST_LOG` and `SSL_CERT_FILE` for every function.
const FUNCTIONS: &[Function] = &[
    Function {
        logical_id: "ConnectFunction",
        binary: "ws-connect",
        memory_mb: 256,
        variables: &[
            ("ROOMCAST_TABLE", "roomcast-Table-BENCH"),
            ("ROOMCAST_BROADCAST_ROOM", "admin"),
            ("ROOMCAST_KAFKA_BOOTSTRAP", KAFKA),
            ("ROOMCAST_TOPIC", "roomcast-events"),
            ("ROOMCAST_KAFKA_AUTH", "none"),
        ],
    },
    Function {
        logical_id: "DisconnectFunction",
        binary: "ws-disconnect",
        memory_mb: 256,
        variables: &[
            ("ROOMCAST_TABLE", "roomcast-Table-BENCH"),
            ("ROOMCAST_KAFKA_BOOTSTRAP", KAFKA),
            ("ROOMCAST_TOPIC", "roomcast-events"),
            ("ROOMCAST_KAFKA_AUTH", "none"),
        ],
    },
    Function {
        logical_id: "MessageFunction",
        binary: "ws-message",
        memory_mb: 256,
        variables: COMMAND_VARIABLES,
    },
    Function {
        logical_id: "HttpApiFunction",
        binary: "http-api",
        memory_mb: 256,
        variables: COMMAND_VARIABLES,
    },
    Function {
        logical_id: "FanoutFunction",
        binary: "kafka-fanout",
        memory_mb: 512,
        variables: &[
            ("ROOMCAST_TABLE", "roomcast-Table-BENCH"),
            (
                "ROOMCAST_CONNECTIONS_ENDPOINT",
                "https://bench0api.execute-api.us-east-1.amazonaws.com/prod",
            ),
            ("ROOMCAST_BROADCAST_ROOM", "admin"),
            ("ROOMCAST_KAFKA_BOOTSTRAP", KAFKA),
            ("ROOMCAST_TOPIC", "roomcast-events"),
            ("ROOMCAST_KAFKA_AUTH", "none"),
            ("ROOMCAST_FANOUT_CONCURRENCY", "200"),
        ],
    },
    Function {
        logical_id: "ArchiveFunction",
        binary: "kafka-archive",
        memory_mb: 256,
        variables: &[
            ("ROOMCAST_TABLE", "roomcast-Table-BENCH"),
            ("ROOMCAST_HISTORY_DAYS", "30"),
        ],
    },
    Function {
        logical_id: "AuthorizerFunction",
        binary: "ws-authorizer",
        memory_mb: 256,
        variables: &[
            (
                "ROOMCAST_JWKS_URL",
                "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_BENCH/.well-known/jwks.json",
            ),
            // A JWKS needs its issuer: without one the authorizer refuses to start.
            (
                "ROOMCAST_JWT_ISSUER",
                "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_BENCH",
            ),
        ],
    },
];

/// What Lambda sets for every `provided.al2023` function (besides the template's).
fn lambda_environment(name: &str, memory_mb: u32, runtime_api: SocketAddr) -> Vec<(String, String)> {
    let pairs = [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "ASIABENCHBENCHBENCH0".into()),
        (
            "AWS_SECRET_ACCESS_KEY",
            "bench/bench/bench/bench/bench/bench/bench0".into(),
        ),
        ("AWS_SESSION_TOKEN", "bench-session-token".into()),
        ("AWS_LAMBDA_FUNCTION_NAME", format!("roomcast-{name}")),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/roomcast-{name}")),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/01/01/[$LATEST]0123456789abcdef".into(),
        ),
        ("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR".into()),
        ("AWS_XRAY_DAEMON_ADDRESS", "169.254.79.129:2000".into()),
        ("LAMBDA_TASK_ROOT", "/var/task".into()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".into()),
        ("_HANDLER", "bootstrap".into()),
        ("LANG", "en_US.UTF-8".into()),
        ("TZ", ":UTC".into()),
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin".into()),
        (
            "LD_LIBRARY_PATH",
            "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib".into(),
        ),
    ];
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// A bootstrap under test and its cold starts.
struct Subject {
    name: String,
    path: PathBuf,
    environment: Vec<(String, String)>,
    memory_mb: u32,
    bytes: u64,
    starts: Vec<Duration>,
}

#[derive(Serialize)]
struct Figures {
    name: String,
    bytes: u64,
    runs: usize,
    init_p50_ms: f64,
    init_max_ms: f64,
    init_min_ms: f64,
}

#[derive(Serialize)]
struct Report {
    load_before: String,
    load_after: String,
    functions: Vec<Figures>,
    ceiling: Figures,
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

impl Subject {
    fn figures(&self) -> Figures {
        let mut sorted = self.starts.clone();
        sorted.sort();
        let p50 = sorted
            .get(sorted.len().saturating_sub(1) / 2)
            .copied()
            .unwrap_or_default();
        Figures {
            name: self.name.clone(),
            bytes: self.bytes,
            runs: sorted.len(),
            init_p50_ms: millis(p50),
            init_max_ms: sorted.last().copied().map_or(0.0, millis),
            init_min_ms: sorted.first().copied().map_or(0.0, millis),
        }
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// A local port with nothing listening on it: Kafka for the producers.
fn closed_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Starts `subject` once and answers how long it took to ask the runtime API for its first
/// event. The request is never answered: the process is killed once it has asked.
async fn cold_start(
    listener: &TcpListener,
    subject: &Subject,
    timeout: Duration,
    wrapper: Option<&str>,
) -> anyhow::Result<Duration> {
    let directory = subject.path.parent().unwrap_or(Path::new("."));
    let mut words = wrapper.unwrap_or_default().split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(words).arg(&subject.path);
            command
        }
        None => Command::new(&subject.path),
    };
    command
        .env_clear()
        .envs(subject.environment.iter().map(|(name, value)| (name, value)))
        .current_dir(directory)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {}", subject.path.display()))?;
    let result = first_request(listener, &mut child, started, timeout).await;
    if wrapper.is_some() {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stderr(Stdio::null())
            .status();
    } else {
        let _ = child.kill();
    }
    let status = child.wait();
    match result {
        Ok(Some((elapsed, line))) if line.starts_with("GET /2018-06-01/runtime/invocation/next ") => Ok(elapsed),
        Ok(Some((_, line))) => bail!("{}: its first request was `{line}`, not /next", subject.name),
        Ok(None) => {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                use std::io::Read;
                let _ = pipe.read_to_string(&mut stderr);
            }
            bail!(
                "{}: exited ({:?}) before asking for an event:\n{}",
                subject.name,
                status.ok(),
                stderr.trim()
            )
        }
        Err(error) => Err(error.context(format!("{}: no /next within {timeout:?}", subject.name))),
    }
}

/// The time to the first request's head and its request line, or `None` if the process
/// exited first.
async fn first_request(
    listener: &TcpListener,
    child: &mut Child,
    started: Instant,
    timeout: Duration,
) -> anyhow::Result<Option<(Duration, String)>> {
    let deadline = started + timeout;
    let (mut stream, _) = loop {
        // Short waits, to notice a process that died at start-up.
        match tokio::time::timeout(Duration::from_millis(20), listener.accept()).await {
            Ok(accepted) => break accepted?,
            Err(_) if child.try_wait()?.is_some() => return Ok(None),
            Err(_) if Instant::now() > deadline => bail!("timed out"),
            Err(_) => continue,
        }
    };
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(2).any(|pair| pair == b"\r\n") {
        let read = tokio::time::timeout_at(deadline.into(), stream.read(&mut buffer))
            .await
            .context("timed out reading the request")??;
        if read == 0 {
            bail!("the connection closed before a request line");
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let elapsed = started.elapsed();
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default().to_owned();
    Ok(Some((elapsed, line)))
}

fn subject(
    name: &str,
    path: PathBuf,
    memory_mb: u32,
    extra: &[(&str, &str)],
    address: SocketAddr,
    kafka: &str,
    cert_file: &Path,
) -> anyhow::Result<Subject> {
    let bytes = std::fs::metadata(&path)
        .with_context(|| format!("no bootstrap for {name} at {}", path.display()))?
        .len();
    let mut environment = lambda_environment(name, memory_mb, address);
    environment.push(("ROOMCAST_AUTH".into(), "required".into()));
    environment.push(("RUST_LOG".into(), "info".into()));
    environment.push(("SSL_CERT_FILE".into(), cert_file.display().to_string()));
    for (variable, value) in extra {
        environment.push(((*variable).to_owned(), value.replace(KAFKA, kafka)));
    }
    Ok(Subject {
        name: name.to_owned(),
        path,
        environment,
        memory_mb,
        bytes,
        starts: Vec::new(),
    })
}

fn row(figures: &Figures, memory_mb: u32) -> String {
    format!(
        "{:<15} {:>7.1} MB {:>9.1} ms {:>9.1} ms {:>9.1} ms {:>6} MB",
        figures.name,
        figures.bytes as f64 / 1_000_000.0,
        figures.init_p50_ms,
        figures.init_max_ms,
        figures.init_min_ms,
        memory_mb
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let address = listener.local_addr()?;
    let kafka = format!("127.0.0.1:{}", closed_port()?);
    let cert_file = if Path::new(LAMBDA_CERT_FILE).exists() {
        PathBuf::from(LAMBDA_CERT_FILE)
    } else {
        options.host_cert_file.clone()
    };

    let mut subjects = Vec::new();
    for function in FUNCTIONS {
        if !options.only.is_empty() && !options.only.iter().any(|name| name == function.binary) {
            continue;
        }
        let path = options.bootstraps.join(function.logical_id).join("bootstrap");
        subjects.push(subject(
            function.binary,
            path,
            function.memory_mb,
            function.variables,
            address,
            &kafka,
            &cert_file,
        )?);
    }
    subjects.push(subject(
        "lambda-hello",
        options.hello.clone(),
        128,
        &[],
        address,
        &kafka,
        &cert_file,
    )?);
    for subject in &mut subjects {
        if options.without_cert_file {
            subject.environment.retain(|(name, _)| name != "SSL_CERT_FILE");
        }
        subject.environment.extend(options.extra.iter().cloned());
    }

    let load_before = load_average();
    for _ in 0..options.runs {
        for subject in &mut subjects {
            let elapsed = cold_start(&listener, subject, options.timeout, options.wrapper.as_deref()).await?;
            subject.starts.push(elapsed);
        }
    }
    let load_after = load_average();

    println!(
        "Lambda bootstraps: size, and exec to the first GET /runtime/invocation/next ({} cold starts each; MB = 10^6 bytes)",
        options.runs
    );
    println!(
        "{:<15} {:>10} {:>12} {:>12} {:>12} {:>9}",
        "function", "bootstrap", "init p50", "init max", "init min", "memory"
    );
    let ceiling = subjects.pop().expect("the ceiling").figures();
    let mut functions = Vec::new();
    for subject in &subjects {
        let figures = subject.figures();
        println!("{}", row(&figures, subject.memory_mb));
        functions.push(figures);
    }
    println!("{}   <- the ceiling: lambda_runtime alone", row(&ceiling, 128));
    println!("targets: no bootstrap over 8 MB, init under 8 ms");
    println!("load average: {load_before} before, {load_after} after");

    if let Some(path) = &options.json {
        let report = Report {
            load_before,
            load_after,
            functions,
            ceiling,
        };
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("report: {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The variables of `logical_id`'s `Environment` in template.yaml, read as text: the
    /// lines `          NAME: ...` of its block, which ends at the next resource.
    fn template_variables(template: &str, logical_id: &str) -> Vec<String> {
        let header = format!("  {logical_id}:");
        let mut lines = template.lines().skip_while(|line| *line != header).skip(1);
        assert!(
            template.lines().any(|line| line == header),
            "{logical_id} is not in template.yaml"
        );
        let mut names = Vec::new();
        for line in lines.by_ref() {
            let resource = line.starts_with("  ") && !line.starts_with("   ") && !line.trim().starts_with('#');
            if resource {
                break;
            }
            if let Some(name) = line.strip_prefix("          ").and_then(|rest| rest.split(':').next()) {
                if name.starts_with("ROOMCAST_") {
                    names.push(name.to_owned());
                }
            }
        }
        names
    }

    /// The benchmark gives each function what the template gives it, less the variables
    /// that a stack without a Kafka secret or JWT options leaves out (AWS::NoValue).
    #[test]
    fn each_function_gets_the_template_s_variables() {
        let template = include_str!("../../../template.yaml");
        let left_out = [
            "ROOMCAST_KAFKA_SECRET_ARN",
            "ROOMCAST_JWT_SECRET_ARN",
            "ROOMCAST_JWT_AUDIENCE",
            "ROOMCAST_JWT_NICK_CLAIM",
            "ROOMCAST_JWT_ROLES_CLAIM",
        ];
        for function in FUNCTIONS {
            let mut expected: Vec<String> = template_variables(template, function.logical_id)
                .into_iter()
                .filter(|name| !left_out.contains(&name.as_str()))
                .collect();
            let mut given: Vec<String> = function.variables.iter().map(|(name, _)| (*name).to_owned()).collect();
            expected.sort();
            given.sort();
            assert_eq!(given, expected, "{}", function.logical_id);
        }
    }
}
