//! What the fuzz targets share.

use std::sync::OnceLock;

/// One current-thread runtime for every run of a target, with tokio's clock paused: it
/// jumps ahead whenever every task waits on a timer, so the backoffs and the archive wait
/// of the code under test cost no real time.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime")
    })
}

/// Whether `frame` is what fan-out posts: a JSON object with a string `type`.
pub fn is_server_frame(frame: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(frame).is_ok_and(|frame| frame["type"].is_string())
}
