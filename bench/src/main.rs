//! `roomcast-load`: the load generator. Real WebSocket clients in rooms against the local
//! gateway or a deployed stack; prints the report, writes it as JSON if asked, and exits 1
//! when a message was lost or duplicated (or a send went unanswered, or a connection
//! failed), so that it serves as a soak; 2 when it could not run.

mod client;
mod ledger;
mod memory;
mod options;
mod progress;
mod report;
mod run;

use std::process::ExitCode;

use clap::Parser;

use crate::options::Options;

fn main() -> ExitCode {
    let options = Options::parse();
    // wss:// connections use rustls on aws-lc-rs.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("roomcast-load: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let report = match runtime.block_on(run::run(options.clone())) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("roomcast-load: {error:#}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.summary());
    if let Some(path) = &options.json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(anyhow::Error::from)
            .and_then(|json| std::fs::write(path, json + "\n").map_err(anyhow::Error::from));
        match written {
            Ok(()) => println!("report    {}", path.display()),
            Err(error) => {
                eprintln!("roomcast-load: cannot write {}: {error}", path.display());
                return ExitCode::from(2);
            }
        }
    }
    // The clients' tasks are done; do not wait for anything else still scheduled.
    runtime.shutdown_background();
    if report.passed || options.report_only {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
