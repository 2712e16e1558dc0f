//! The generation pipeline: scales, guidance, sampling, refiner, decoding, colour fix, tiling,
//! previews and progress. Separate from the networks (`model`) and from threads/windows (`worker`, `app`).

pub mod device;
pub mod engine;
pub mod engine_load;
pub mod error;
pub mod events;
pub mod fixture;
pub mod generate;
pub mod noise;
pub mod params;
pub mod preview;
pub mod progress;
pub mod refiner;
pub mod sampling;
pub mod tiling;
pub mod upscale;

pub use engine::Engine;
pub use error::{Error, Result};
pub use events::{Observer, Progress, ScaleEvent};
pub use noise::{Noise, SeededNoise};
pub use params::SamplingParams;
