//! schemathesis (installed by `scripts/install-deps`) generates requests from the document
//! and checks every answer against it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use roomcast_core::http::OPENAPI_PATH;

use crate::openapi::api::Api;
use crate::openapi::document::Document;
use crate::openapi::{dev_settings, http_client, start};

/// Longest a schemathesis run may take before the test gives up on it (it takes well under
/// a minute here).
const SCHEMATHESIS_WAIT: Duration = Duration::from_secs(600);

const SCHEMATHESIS_HINT: &str = "schemathesis is installed by scripts/install-deps into \
     /opt/roomcast-ci/schemathesis-venv (pip install schemathesis==4.32.5; or set \
     ROOMCAST_SCHEMATHESIS_VENV to a venv that has it)";

/// schemathesis' `st`: in `ROOMCAST_SCHEMATHESIS_VENV`, in the venv scripts/install-deps
/// makes, or on PATH.
fn schemathesis_program() -> PathBuf {
    let venvs = std::env::var_os("ROOMCAST_SCHEMATHESIS_VENV")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/opt/roomcast-ci/schemathesis-venv")]);
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    venvs
        .map(|venv| venv.join("bin"))
        .chain(on_path)
        .map(|dir| dir.join("st"))
        .find(|program| program.is_file())
        .unwrap_or_else(|| panic!("`st` not found. {SCHEMATHESIS_HINT}"))
}

/// The checks of the run, in schemathesis.toml form: every check (the default), but for
/// these, each with why.
const SCHEMATHESIS_CONFIG: &str = r#"
# API Gateway answers a method that no route takes with 404 {"message":"Not Found"}, as
# for any unknown route; it never answers 405 with an Allow header.
[checks.unsupported_method]
enabled = false

# A refusal of schema-violating data: the defaults, and 413 `too_large`, which is how the
# API refuses a text or a body over its limit.
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "409", "413"]

# `after` and `before` together are refused (400, "give `before` or `after`, not both"),
# and OpenAPI 3.0 cannot say that two query parameters exclude each other: schemathesis
# takes such a request for valid data.
[[operations]]
include-operation-id = "roomHistory"
checks.positive_data_acceptance.enabled = false

[[operations]]
include-operation-id = "directHistory"
checks.positive_data_acceptance.enabled = false
"#;

/// How many test cases schemathesis generates per operation and phase: about 1,800 requests
/// in about 30 s on 2 cores.
const SCHEMATHESIS_EXAMPLES: &str = "100";
/// A fixed seed, so that a run is the same every time.
const SCHEMATHESIS_SEED: &str = "20261123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_answer_the_document_does_not_declare() {
    let st = schemathesis_program();
    let gateway = start(dev_settings()).await;
    let base = gateway.http_url();
    let doc = Document::load();
    let seen = Mutex::new(BTreeSet::new());
    let api = Api {
        http: http_client(),
        origin: base.clone(),
        doc: &doc,
        seen: &seen,
    };
    // A service's token: publish succeeds, and every other route works for it as for anyone.
    let token = api.dev_token("schemathesis", &["service"]).await;

    let dir = std::env::temp_dir().join(roomcast_tests::unique_name("roomcast-schemathesis"));
    std::fs::create_dir_all(&dir).expect("a directory for the run");
    let config = dir.join("schemathesis.toml");
    std::fs::write(&config, SCHEMATHESIS_CONFIG).expect("the run's configuration");
    let mut command = tokio::process::Command::new(&st);
    command
        .current_dir(&dir)
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{base}{OPENAPI_PATH}"), "--url", &base])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--max-examples", SCHEMATHESIS_EXAMPLES, "--seed", SCHEMATHESIS_SEED])
        .args(["--workers", "1", "--generation-database", "none", "--no-color"])
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    let run = tokio::time::timeout(SCHEMATHESIS_WAIT, command.output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis still running after {SCHEMATHESIS_WAIT:?}"))
        .unwrap_or_else(|error| panic!("cannot run {}: {error}. {SCHEMATHESIS_HINT}", st.display()));
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    println!("{output}");
    gateway.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        run.status.success(),
        "schemathesis found answers the document does not declare ({}); its output:\n{output}",
        run.status
    );
}
