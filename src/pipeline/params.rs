use serde::{Deserialize, Serialize};

/// The sampling settings of one run. Defaults are those of the published `test_varsr.py`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// Classifier-free guidance strength; ramps as `cfg·si/(K−1)` over the scales.
    pub cfg: f32,
    /// Keep the `top_k` largest logits (1 = argmax, 0 = no limit).
    pub top_k: usize,
    /// Nucleus threshold (1.0 = off).
    pub top_p: f32,
    /// Seeds the sampler and the refiner noise.
    pub seed: u64,
}

impl SamplingParams {
    pub const DEFAULT_CFG: f32 = 6.0;
    /// `test_tile.py` uses a stronger guidance for tiled output.
    pub const DEFAULT_TILED_CFG: f32 = 7.0;
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            cfg: Self::DEFAULT_CFG,
            top_k: 1,
            top_p: 0.75,
            seed: 42,
        }
    }
}
