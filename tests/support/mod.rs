//! Helpers shared by the worker test binaries.

use std::path::PathBuf;
use std::time::Duration;

use varsr::worker::{Event, Worker};

/// The tiny random-weight model of the parity fixture (release tile geometry, depth 2).
pub fn fixture_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity/parity-d2")
}

/// All events up to and including the first that `last` accepts.
pub fn collect(worker: &Worker, mut last: impl FnMut(&Event) -> bool) -> Vec<Event> {
    let mut out = Vec::new();
    loop {
        let e = worker
            .recv_timeout(Duration::from_secs(300))
            .expect("the worker answers");
        let done = last(&e);
        out.push(e);
        if done {
            return out;
        }
    }
}
