//! What a run reports while it works. The observer is called on the generating thread; the
//! worker forwards to a channel, the CLI to a progress bar, tests record.

/// One scale of one tile (or of the whole image when untiled) is finished.
#[derive(Clone, Debug)]
pub struct ScaleEvent {
    /// Tile index within the whole job (0 when untiled) and the number of tiles.
    pub tile: usize,
    pub num_tiles: usize,
    /// Scale index 0..num_scales.
    pub scale: usize,
    pub num_scales: usize,
    /// Patch count of this scale (the tokens form a `pn × pn` grid per image).
    pub pn: usize,
    /// Chosen token ids, one row-major `pn²` vector per batch item.
    pub tokens: Vec<Vec<u32>>,
    /// Preview of the latent accumulated so far, one per batch item (empty when previews are off).
    pub previews: Vec<PreviewImage>,
}

/// An 8-bit RGB image, row-major, tightly packed.
#[derive(Clone, Debug, PartialEq)]
pub struct PreviewImage {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

/// Coarse progress, in model terms.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// Encoding the LR input of a batch of tiles.
    Encoding { tile: usize, num_tiles: usize },
    /// A refiner step finished (`step` counts up to `steps`).
    Refiner {
        tile: usize,
        num_tiles: usize,
        step: usize,
        steps: usize,
    },
    /// Decoding the final latent to pixels.
    Decoding,
    /// Fraction of the whole job's work done (weighted by tokens per scale), 0..=1.
    Fraction(f32),
}

/// Receives events and is asked, between scales and refiner steps, whether to stop.
pub trait Observer {
    fn scale_done(&mut self, _event: &ScaleEvent) {}
    fn progress(&mut self, _progress: &Progress) {}
    /// Whether the run should stop at the next scale or refiner-step boundary.
    fn cancelled(&self) -> bool {
        false
    }
    /// Whether `ScaleEvent::previews` should be filled (they cost time).
    fn wants_previews(&self) -> bool {
        false
    }
    /// Intermediate tensors by name (`guided_logits_s{k}`, `f_hat_after_s{k}`, `refiner_cond`,
    /// `refiner_out`), for checking a run against the published code. Ignored unless overridden.
    fn tap(&mut self, _name: &str, _value: &candle_core::Tensor) {}
    /// Whether [`Observer::tap`] wants values (building them costs copies).
    fn wants_taps(&self) -> bool {
        false
    }
}

/// An observer that ignores everything (headless runs without progress).
pub struct Silent;
impl Observer for Silent {}
