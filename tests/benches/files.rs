//! Upload and download throughput through the local gateway's embedded file store: real
//! HTTP PUTs and GETs of presigned URLs (signature checked, body streamed to a file and
//! renamed into place; read back whole), one at a time and several at once. Prints MB/s;
//! judges nothing. In AWS the bytes go to S3, never through a function: this measures the
//! local stand-in, the one a developer's page and the tests use.
//!
//! `cargo bench -p roomcast-tests --bench files [-- --files N --mib M --concurrency C]`
//! (default 16 files of 8 MiB, 4 at once); `--short`: 4 files of 1 MiB.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::stream::{self, StreamExt};
use roomcast_core::clock::now_ms;
use roomcast_core::files::{Download, FileId};
use roomcast_core::Files;
use roomcast_local::settings::Settings;
use roomcast_tests::files::{get, put};

#[derive(Parser)]
struct Options {
    /// Files per run.
    #[arg(long, default_value_t = 16)]
    files: usize,
    /// Size of each file, in MiB.
    #[arg(long, default_value_t = 8)]
    mib: usize,
    /// Transfers at once in the concurrent runs.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// A quick run: 4 files of 1 MiB.
    #[arg(long)]
    short: bool,
    /// Cargo's own flag for benches.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Runs `count` transfers with up to `at_once` in flight; the seconds it took.
async fn timed<F, Fut>(count: usize, at_once: usize, transfer: F) -> f64
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    stream::iter(0..count)
        .map(transfer)
        .buffer_unordered(at_once)
        .collect::<Vec<()>>()
        .await;
    start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let mut options = Options::parse();
    if options.short {
        (options.files, options.mib) = (4, 1);
    }
    let settings = Settings::parse_from(["roomcast-local", "--listen", "127.0.0.1:0"]);
    let gateway = roomcast_tests::gateways::start(settings).await;
    let files: Arc<dyn Files> = gateway.files();
    let size = options.mib * 1024 * 1024;
    let body: Arc<Vec<u8>> = Arc::new((0..size).map(|i| (i % 251) as u8).collect());
    let megabytes = (options.files * size) as f64 / 1_000_000.0;
    println!(
        "files through the local gateway's embedded store: {} files of {} MiB ({megabytes:.1} MB a run)",
        options.files, options.mib
    );
    for at_once in [1, options.concurrency.max(1)] {
        let ids: Vec<FileId> = (0..options.files).map(|_| FileId::generate()).collect();
        let upload = |i: usize| {
            let (files, body, file) = (files.clone(), body.clone(), ids[i].clone());
            async move {
                let slot = files
                    .presign_put(
                        &file,
                        "application/octet-stream",
                        body.len() as u64,
                        now_ms(),
                        Duration::from_secs(300),
                    )
                    .await
                    .expect("a PUT signed");
                assert_eq!(put(&slot.url, &slot.headers, body.to_vec()).await, 200);
            }
        };
        let up = timed(options.files, at_once, upload).await;
        let download = |i: usize| {
            let (files, file, size) = (files.clone(), ids[i].clone(), body.len());
            async move {
                let url = files
                    .presign_get(
                        &file,
                        &Download::of("a.bin", "application/octet-stream"),
                        now_ms(),
                        Duration::from_secs(60),
                    )
                    .await
                    .expect("a GET signed");
                let (status, _, served) = get(&url).await;
                assert_eq!((status, served.len()), (200, size));
            }
        };
        let down = timed(options.files, at_once, download).await;
        println!(
            "{at_once} at once: upload {:>7.1} MB/s ({up:.2} s), download {:>7.1} MB/s ({down:.2} s)",
            megabytes / up,
            megabytes / down
        );
        for file in &ids {
            files.delete(file).await.expect("deleted");
        }
    }
    gateway.shutdown().await;
}
