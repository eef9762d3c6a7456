//! `sam build`: every function gets an x86-64 `bootstrap`, and the functions share one
//! dependency tree so that the build compiles each crate once.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Instant;

use super::{in_venv, report, root, run, text, tools_bin, FUNCTIONS};

/// The target `sam build` builds for (cargo-lambda's default on x86_64).
const LAMBDA_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Each crate the functions depend on, with the sets of features it is built with (a crate
/// can be built twice: for build scripts and proc macros, and for the function).
fn dependency_features(binary: &str) -> BTreeMap<String, BTreeSet<String>> {
    resolved_features(&root().join("functions").join(binary), &[], "normal,build")
}

/// `cargo tree` in `directory` with `selection` (packages), following `edges`: each crate
/// outside the workspace, with the sets of features it is resolved with.
fn resolved_features(
    directory: &std::path::Path,
    selection: &[&str],
    edges: &str,
) -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(directory)
        .args(["tree", "--locked", "--offline", "--prefix", "none"])
        .args(selection)
        .args(["--edges", edges])
        .args(["--target", LAMBDA_TARGET, "--format", "{p}|{f}"]);
    let output = run(command);
    assert!(
        output.status.success(),
        "cargo tree in {} failed:\n{}",
        directory.display(),
        text(&output.stderr)
    );
    let mut crates: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text(&output.stdout).lines() {
        let line = line.trim_end_matches(" (*)");
        let Some((package, features)) = line.split_once('|') else {
            continue;
        };
        // The workspace's own crates are each function's own business.
        if package.contains(" (/") {
            continue;
        }
        crates
            .entry(package.to_owned())
            .or_default()
            .insert(features.to_owned());
    }
    crates
}

/// `sam build` runs cargo once per function, in the function's directory, so each
/// function's features are resolved apart. A crate two functions share but build with
/// different features is compiled twice, and so is every crate above it: one function's
/// extra feature of a TLS crate or of `syn` made ws-authorizer's build compile the AWS SDK,
/// hyper and librdkafka again (61 units, minutes of CI). roomcast-aws's `lambda` feature
/// asks for the union; this keeps it so.
#[test]
fn the_functions_share_one_dependency_tree() {
    let trees: Vec<(&str, BTreeMap<String, BTreeSet<String>>)> = FUNCTIONS
        .iter()
        .map(|(_, binary)| (*binary, dependency_features(binary)))
        .collect();
    let mut split = Vec::new();
    for (i, (first, first_tree)) in trees.iter().enumerate() {
        for (second, second_tree) in &trees[i + 1..] {
            split.extend(split_crates((first, first_tree), (second, second_tree)));
        }
    }
    assert!(
        split.is_empty(),
        "crates built with other features for different functions (ask for the union in \
         functions/aws/Cargo.toml's `lambda` feature):\n{}",
        split.join("\n")
    );
}

/// The crates both builds have but resolve with other features, each with both sets: each
/// is compiled twice, and so is every crate above it.
fn split_crates(
    (first, first_tree): (&str, &BTreeMap<String, BTreeSet<String>>),
    (second, second_tree): (&str, &BTreeMap<String, BTreeSet<String>>),
) -> Vec<String> {
    first_tree
        .iter()
        .filter_map(|(package, features)| match second_tree.get(package) {
            Some(other) if other != features => Some(format!("{package}: {first} {features:?}, {second} {other:?}")),
            _ => None,
        })
        .collect()
}

/// The soak, the benchmarks and the test kit's gateway process build their binaries with
/// `cargo build --workspace --bin ...` after `cargo test --workspace` has built everything.
/// That build reuses the test build's crates only if it resolves every crate's features as
/// the test build does, i.e. if no dev-dependency adds a feature the workspace's
/// dependencies lack. When one did (tokio's `test-util`, jsonschema's regex and idna), the
/// first of them compiled the AWS SDK again: 1 m 23 s of a CI run's soak, 2 minutes of the
/// first test that started a gateway process.
#[test]
fn building_a_binary_after_the_tests_compiles_no_dependency_again() {
    let with_tests = resolved_features(root(), &["--workspace"], "normal,build,dev");
    let binaries = resolved_features(root(), &["--workspace"], "normal,build");
    let differ = split_crates(("tests", &with_tests), ("binaries", &binaries));
    assert!(
        differ.is_empty(),
        "a dev-dependency turns on features the binaries' build lacks, so `cargo build \
         --workspace` after `cargo test --workspace` compiles these and everything above \
         them again (make the dev-dependency a dependency of roomcast-tests, or drop the \
         feature):\n{}",
        differ.join("\n")
    );
}

/// The release profile's settings the environment overrides (`.ci/run` sets CI's lighter
/// one), or that the workspace's is used as it is: the bootstraps are then not the ones a
/// deploy ships, and whoever reads the build's time or lambda-bench's figures must know.
fn release_profile_overrides() -> String {
    let overrides: Vec<String> = std::env::vars()
        .filter(|(name, _)| name.starts_with("CARGO_PROFILE_RELEASE_"))
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    if overrides.is_empty() {
        "the workspace's, as deployed".to_owned()
    } else {
        overrides.join(" ")
    }
}

/// ELF, 64-bit, x86-64: what a Lambda on x86_64 runs.
fn is_x86_64_elf(bytes: &[u8]) -> bool {
    bytes.len() > 20 && bytes[..4] == *b"\x7fELF" && bytes[4] == 2 && u16::from_le_bytes([bytes[18], bytes[19]]) == 0x3e
}

#[test]
#[cfg_attr(
    skip_sam_build,
    ignore = "ROOMCAST_SKIP_SAM_BUILD=1: `sam build` is not checked (tests/build.rs)"
)]
fn sam_build_makes_a_bootstrap_for_every_function() {
    // Its own target directory: a sam build holds it for minutes, and must not hold (or
    // rebuild) the one the tests are built in.
    let target = root().join("target").join("sam");
    let build_dir = target.join("build");
    // Other tests run meanwhile, some with timeouts: `nice` leaves them the CPU first.
    let mut command = in_venv("nice");
    command
        .args(["-n", "10"])
        .arg(tools_bin().join("sam"))
        .args(["build", "--template-file", "template.yaml", "--build-dir"])
        .arg(&build_dir)
        .env("CARGO_TARGET_DIR", &target);
    let started = Instant::now();
    let output = run(command);
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "sam build failed after {elapsed:.0?}:\n{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    report(&format!(
        "deploy: sam build took {:.0?} (CARGO_TARGET_DIR={}; release profile: {})",
        elapsed,
        target.display(),
        release_profile_overrides()
    ));
    for (name, binary) in FUNCTIONS {
        let bootstrap = build_dir.join(name).join("bootstrap");
        let bytes = std::fs::read(&bootstrap)
            .unwrap_or_else(|error| panic!("sam build made no {}: {error}", bootstrap.display()));
        assert!(is_x86_64_elf(&bytes), "{} is not an x86-64 ELF", bootstrap.display());
        report(&format!(
            "deploy: {name} ({binary}) bootstrap: {} bytes ({:.1} MB)",
            bytes.len(),
            bytes.len() as f64 / 1_000_000.0
        ));
    }
}
