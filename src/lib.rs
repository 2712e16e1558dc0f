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
