//! The cloud deployment, checked offline: `cfn-lint` on `template.yaml` and `infra/*.yaml`;
//! the CloudFormation that the SAM transform makes of `template.yaml` (every route with its
//! integration, permission and route response, the self-deploying stage, the `$connect`
//! authorizer in each `AuthMode`, the `Rules` that refuse a sign-in without keys or one
//! consumer group for both consumers, the table as in `infra/tables.json`, the event
//! source mappings of kafka-fanout and kafka-archive, the policies, the HTTP API and its
//! function in `deploy/http_api.rs`); and `sam build`, which must give every function a
//! `bootstrap`.
//!
//! Nothing is deployed, so CloudFormation's own part - choosing resources by `Conditions`,
//! `Fn::If`, `AWS::NoValue`, checking `Rules` - is done here by [`Stack`]
//! (`deploy/stack.rs`), a small evaluator of those intrinsics for given parameter values:
//! each parameter set is run through the SAM transform and then resolved as
//! CloudFormation would resolve it.
//!
//! The tools (cfn-lint, aws-sam-translator, aws-sam-cli, cargo-lambda, ziglang) live in a
//! venv that `scripts/install-deps` makes: `/opt/roomcast-ci/sam-venv`, or the directory
//! in `ROOMCAST_SAM_VENV`. `sam build` takes minutes from clean; it builds into
//! `target/sam` so that it never holds the lock of the target directory the tests are
//! built in. `ROOMCAST_SKIP_SAM_BUILD=1` marks that one test ignored (`tests/build.rs`), so
//! the run's summary counts it as not run.
//!
//! By area: `deploy/routes.rs` (the WebSocket API), `table.rs`, `functions.rs` (each
//! function's settings and wiring), `kafka.rs`, `iam.rs` (kafka-archive's role),
//! `sign_in.rs` (the authorizer), `http_api.rs`, `build.rs` (`sam build`), and the rest of
//! infra/; `template.rs` holds the transformed [`Template`] and the readers they share.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod abuse_bounds;
mod build;
mod chat_page;
mod files;
mod functions;
mod http_api;
mod iam;
mod infra;
mod kafka;
mod routes;
mod sign_in;
mod stack;
mod table;
mod template;

use stack::Stack;
use template::*;

const INSTALL_HINT: &str = "run ./scripts/install-deps: it installs cfn-lint, aws-sam-translator, aws-sam-cli, \
     cargo-lambda and ziglang from PyPI into /opt/roomcast-ci/sam-venv (or set ROOMCAST_SAM_VENV to a venv that has them)";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root")
}

/// The venv's `bin`, with every tool the checks run.
fn tools_bin() -> PathBuf {
    let venv = std::env::var_os("ROOMCAST_SAM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/roomcast-ci/sam-venv"));
    let bin = venv.join("bin");
    for tool in ["cfn-lint", "sam", "cargo-lambda", "python3"] {
        assert!(
            bin.join(tool).is_file(),
            "`{tool}` is missing from {}: {INSTALL_HINT}",
            bin.display()
        );
    }
    bin
}

/// A tool of the venv (see [`in_venv`]).
fn tool(name: &str) -> Command {
    in_venv(tools_bin().join(name))
}

/// `program`, run at the workspace root with the venv first on PATH (so that cargo-lambda's
/// `python3 -m ziglang` finds zig), without telemetry, with a region and no credentials.
fn in_venv(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![tools_bin()];
    paths.extend(std::env::split_paths(&path));
    let mut command = Command::new(program);
    command
        .current_dir(root())
        .env("PATH", std::env::join_paths(paths).expect("PATH"))
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_REGION", "us-east-1");
    command
}

fn run(mut command: Command) -> Output {
    let shown = format!("{command:?}");
    command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {shown}: {error}. {INSTALL_HINT}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Written straight to the process's stderr, past the test harness's capture: CI logs
/// show it even when the test passes.
fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn infra_templates() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(root().join("infra"))
        .expect("infra/")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml"))
        .collect();
    found.sort();
    found
}

#[test]
fn cfn_lint_is_clean_on_the_template_and_infra() {
    let mut command = tool("cfn-lint");
    command.arg("template.yaml");
    for template in infra_templates() {
        command.arg(template.strip_prefix(root()).expect("under the root"));
    }
    let output = run(command);
    assert!(
        output.status.success(),
        "cfn-lint found problems:\n{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}
