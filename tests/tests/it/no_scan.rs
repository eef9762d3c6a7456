//! DynamoDB Scans read the whole table: on a request or fan-out path they cost and slow
//! down with every connection ever made. This fails if code outside tests issues one.

use std::path::{Path, PathBuf};

/// The ways the Rust SDK can issue a Scan: the Scan operation itself, and PartiQL
/// statements, which DynamoDB runs as a Scan whenever their WHERE clause does not name a
/// partition key (nothing here needs PartiQL).
const SCAN_CALLS: &[&str] = &[
    ".scan()",
    "ScanInput",
    "ScanOutput",
    "scan_paginator",
    "operation::scan",
    "execute_statement()",
    "ExecuteStatementInput",
    "operation::execute_statement",
    "operation::batch_execute_statement",
];

fn scan_calls(source: &str) -> Vec<(usize, String)> {
    source
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .filter(|(_, line)| SCAN_CALLS.iter().any(|call| line.contains(call)))
        .map(|(number, line)| (number + 1, line.trim().to_owned()))
        .collect()
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            // Tests may scan to inspect a table; `target` is build output.
            if name != "tests" && name != "target" {
                rust_files(&path, found);
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn the_checker_recognises_a_scan() {
    assert_eq!(
        scan_calls("let page = client.scan().table_name(t).send().await?;").len(),
        1
    );
    assert_eq!(scan_calls("let items = client.query().send().await?;").len(), 0);
    assert_eq!(
        scan_calls("client.execute_statement().statement(\"SELECT * FROM t\")").len(),
        1
    );
    assert_eq!(
        scan_calls("client.batch_execute_statement().set_statements(s)").len(),
        1
    );
    assert_eq!(scan_calls("// never call .scan() here").len(), 0);
}

#[test]
fn no_code_outside_tests_issues_a_dynamodb_scan() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let mut files = Vec::new();
    for dir in ["functions", "local"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(
        files.len() > 10,
        "expected the functions' sources under {}",
        root.display()
    );
    let offenders: Vec<String> = files
        .iter()
        .flat_map(|file| {
            let source = std::fs::read_to_string(file).expect("readable source");
            scan_calls(&source)
                .into_iter()
                .map(move |(line, text)| format!("{}:{line}: {text}", file.display()))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "DynamoDB Scan outside tests:\n{}",
        offenders.join("\n")
    );
}
