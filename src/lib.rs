//! VARSR Studio: visual autoregressive super-resolution (VARSR, ICML 2025) in Rust.
//!
//! Data flows one way: `app` → `worker` → `pipeline` → `model` (+ `weights`).
//! The model knows nothing of threads, the pipeline nothing of windows.

pub mod alloc;
pub mod app;
pub mod cli;
pub mod imaging;
pub mod model;
pub mod ops;
pub mod pipeline;
pub mod train;
pub mod weights;
pub mod worker;

/// What a process mostly runs, which decides how candle's element-wise operations are threaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Upscaling: tile lanes, with candle's element-wise operations on the calling thread (see
    /// [`ops::cpu::pin_thread_count`]).
    Inference,
    /// Training: one batch at a time, so candle's element-wise operations keep their own pool
    /// (a tokenizer step on two cores: 36.5–36.9 s for 16 steps against 39.6–42.7 s inline).
    Training,
}

/// Process-wide settings for a program that runs the model: the heap tuning of [`alloc::tune_heap`]
/// and a fixed thread count ([`ops::cpu::pin_thread_count`]).
///
/// # Safety
/// Changes the environment: call it first thing in `main`, before any other thread exists.
pub unsafe fn init_process(workload: Workload) {
    alloc::tune_heap();
    // SAFETY: forwarded to the caller.
    unsafe { ops::cpu::pin_thread_count(workload == Workload::Inference) };
}
