//! The typed messages between the window and the inference thread. Everything here is plain data
//! (RGBA buffers, numbers, strings): the UI never sees a tensor.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::pipeline::SamplingParams;
pub use crate::pipeline::engine::ModelSpec;

/// Identifies one request of the UI; every event about it carries the same id.
pub type JobId = u64;

/// An 8-bit RGBA image shared without copying between the threads.
pub type Picture = Arc<image::RgbaImage>;

/// Which device the model runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceChoice {
    /// The first CUDA device when this build has CUDA and a driver, otherwise the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

impl DeviceChoice {
    pub const ALL: [DeviceChoice; 3] = [DeviceChoice::Auto, DeviceChoice::Cpu, DeviceChoice::Cuda];

    pub fn label(self) -> &'static str {
        match self {
            DeviceChoice::Auto => "Auto",
            DeviceChoice::Cpu => "CPU",
            DeviceChoice::Cuda => "CUDA",
        }
    }
}

/// The settings of one upscale, chosen in the window.
#[derive(Clone, Debug, PartialEq)]
pub struct JobOptions {
    pub params: SamplingParams,
    /// Output size relative to the input: 2, 3 or 4.
    pub scale: u32,
    /// Send a preview of every scale (costs a little time per scale).
    pub previews: bool,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            params: SamplingParams::default(),
            scale: 4,
            previews: true,
        }
    }
}

/// The input photo as the window loaded it (orientation applied, alpha kept).
#[derive(Clone, Debug)]
pub struct InputImage {
    pub picture: Picture,
    /// Where it came from, for output names and metadata (None for pasted images).
    pub path: Option<PathBuf>,
    /// Colour profile and EXIF of the source, written back into exports.
    pub icc: Option<Arc<Vec<u8>>>,
    pub exif: Option<Arc<Vec<u8>>>,
}

impl InputImage {
    /// A picture without a file behind it (pasted).
    pub fn from_picture(picture: Picture) -> Self {
        Self {
            picture,
            path: None,
            icc: None,
            exif: None,
        }
    }
}

/// What a finished run leaves for later runs of the same image and size: the token ids it chose
/// (`per_tile[tile][scale]`, a row-major `pn²` grid) and each tile's final latent. Opaque to the
/// window, which only hands it back for "re-run from scale k" and "re-sample a region".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tokens {
    pub per_tile: Vec<Vec<Vec<u32>>>,
    pub latents: Vec<Vec<f32>>,
}

impl Tokens {
    pub fn num_scales(&self) -> usize {
        self.per_tile.first().map_or(0, Vec::len)
    }
}

/// Set by the window, read by the worker between scales: cancel one job (and its variations).
#[derive(Clone, Debug, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// What the window asks of the worker.
#[derive(Debug)]
pub enum Request {
    /// Load (or replace) the model; answered by `ModelLoaded` or `ModelFailed`.
    LoadModel {
        spec: ModelSpec,
        device: DeviceChoice,
    },
    /// Upscale one image.
    Upscale {
        job: JobId,
        image: InputImage,
        options: JobOptions,
        cancel: CancelFlag,
    },
    /// Upscale again keeping the tokens of the scales before `from_scale` (taken from an earlier
    /// result of the same image and scale factor) and sampling the finer ones anew.
    Rerun {
        job: JobId,
        image: InputImage,
        options: JobOptions,
        from_scale: usize,
        tokens: Arc<Tokens>,
        cancel: CancelFlag,
    },
    /// Generate again only the tiles under `region` (output pixels `(x, y, w, h)`) with these
    /// options' seed and guidance, keeping the other tiles of the earlier result `kept`, whose
    /// image `base` the live previews start from.
    Resample {
        job: JobId,
        image: InputImage,
        options: JobOptions,
        region: (u32, u32, u32, u32),
        kept: Arc<Tokens>,
        base: Picture,
        cancel: CancelFlag,
    },
    /// `n` samples of the same image with seeds `seed, seed+1, …`; each arrives as a `Finished`
    /// with its own `variant` index.
    Variations {
        job: JobId,
        image: InputImage,
        options: JobOptions,
        n: usize,
        /// Coarse scales to keep from `tokens` (0 = none): "re-roll detail, structure locked".
        from_scale: usize,
        tokens: Option<Arc<Tokens>>,
        cancel: CancelFlag,
    },
    /// Finish the current job's bookkeeping and end the thread.
    Shutdown,
}

/// What the loaded model is and can do, for the banner.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    /// One line for people (from the engine).
    pub description: String,
    /// Side of one generated tile in output pixels.
    pub tile_px: usize,
    pub num_scales: usize,
    /// The guidance the model was tuned for.
    pub default_cfg: f32,
    /// The device actually used (after any fallback).
    pub device: String,
    /// The weights are a test fixture or untrained: output is noise, not a photo.
    pub untrained: bool,
}

/// Which stage a job is in, for the progress line.
#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    Preparing,
    Encoding,
    Scale { scale: usize, num_scales: usize },
    Refining { step: usize, steps: usize },
    Decoding,
}

/// What the worker reports back.
#[derive(Clone, Debug)]
pub enum Event {
    ModelLoaded(ModelInfo),
    ModelFailed {
        message: String,
    },
    /// A job was taken from the queue and started.
    Started {
        job: JobId,
        variant: usize,
        seed: u64,
    },
    /// One scale of one tile is done; `preview` is the whole output as known so far at this
    /// scale (finished tiles at this scale, the others blank), reduced to at most
    /// [`super::PREVIEW_MAX_SIDE`].
    ScaleDone {
        job: JobId,
        variant: usize,
        tile: usize,
        num_tiles: usize,
        scale: usize,
        num_scales: usize,
        preview: Option<Picture>,
    },
    Progress {
        job: JobId,
        variant: usize,
        /// The first tile in work and how many are generated with it.
        tile: usize,
        batch: usize,
        num_tiles: usize,
        stage: Stage,
        /// Share of the job's work done, weighted by tokens per scale (0..=1).
        fraction: f32,
        eta: Option<Duration>,
    },
    Finished {
        job: JobId,
        variant: usize,
        seed: u64,
        image: Picture,
        tokens: Arc<Tokens>,
        elapsed: Duration,
    },
    /// Stopped on request; `partial` is the most refined preview that was finished, if any.
    Cancelled {
        job: JobId,
        variant: usize,
        partial: Option<Picture>,
    },
    /// The job failed; `message` is in plain words, `detail` is for the log.
    Failed {
        job: JobId,
        message: String,
        detail: String,
    },
    /// A line for the log panel.
    Log(String),
}
