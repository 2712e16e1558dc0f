//! Upscaling a whole photo of any size, as the published `test_tile.py` does, with memory-aware
//! batching, tiled decoding for large outputs, progress in model terms and re-runs from a scale.
//!
//! 1. The LR image is PIL-bicubic resized to the target size rounded up per side (for an integer
//!    scale `s`: `max(ceil(W/f)·f·s, tile_px)`, the reference's formula; for a target width or
//!    height: `max(ceil(T/f)·f, tile_px)`).
//! 2. The latent grid (`H'/f × W'/f`) is covered by tiles of the model's latent side; batches of
//!    tiles run through [`Engine::generate`] (scales + refiner; on a CPU several batches side by
//!    side, one per core: [`UpscalePlan::lanes`]) and their final latents are blended, in tile
//!    order, with the Gaussian weights of [`super::tiling`].
//! 3. The blended latent is decoded: whole when it is one tile (the published behaviour), else in
//!    overlapping windows of one tile cross-faded in pixel space, because the decoder's attention
//!    and full-resolution activations grow with the area (on a CPU, a window per lane at once).
//! 4. The 8-bit result is PIL-resized to the exact target and colour-fixed (AdaIN) against the LR
//!    resized to the target; alpha is resized apart and put back.

use candle_core::{Device, Tensor};
use image::{DynamicImage, GrayImage, RgbImage, RgbaImage};

use super::engine::Engine;
use super::events::{Observer, Progress, ScaleEvent};
use super::noise::Noise;
use super::params::SamplingParams;
use super::progress::{Eta, WorkPlan};
use super::tiling::{TileGeometry, TileGrid};
use super::{Error, Result};
use crate::imaging;

mod batches;
mod decode;
mod lanes;
mod memory;
mod tile_noise;

pub use memory::{
    CPU_MAX_BATCH, available_memory, balanced_batch, cpu_max_batch, fit_batch, lane_batches,
    tile_memory, window_memory,
};
pub use tile_noise::{BatchNoise, TileNoise};

/// The output size asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetSize {
    /// Each side times this factor (the model is trained for 4; 2 and 3 resize first, as the
    /// reference does with `rscale`).
    Scale(u32),
    /// This width, the height following the aspect ratio.
    Width(u32),
    /// This height, the width following the aspect ratio.
    Height(u32),
}

impl Default for TargetSize {
    fn default() -> Self {
        TargetSize::Scale(4)
    }
}

/// Token ids of an earlier run of the same image and size, to keep its coarse scales.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LockedTokens {
    /// Scales `0..from_scale` are reused; `from_scale..` are sampled anew.
    pub from_scale: usize,
    /// `per_tile[tile][scale]`: a row-major `pn²` grid of ids (as in [`UpscaleOutput::tokens`]).
    pub per_tile: Vec<Vec<Vec<u32>>>,
}

/// An earlier run of the same image and size whose tiles are kept except those under `region`,
/// which are generated anew (with this run's seed, guidance and sampling) and blended with the kept
/// ones by the usual tile weights: "re-sample a region".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeptTiles {
    /// Every tile's final latent, as in [`UpscaleOutput::latents`].
    pub latents: Vec<Vec<f32>>,
    /// Every tile's token ids, as in [`UpscaleOutput::tokens`].
    pub tokens: Vec<Vec<Vec<u32>>>,
    /// `(x, y, w, h)` in output pixels: the tiles it touches ([`UpscalePlan::tiles_touching`]) are
    /// generated again.
    pub region: (u32, u32, u32, u32),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpscaleOptions {
    pub params: SamplingParams,
    pub size: TargetSize,
    /// Tiles per generation batch; `None` chooses from the memory available.
    pub tile_batch: Option<usize>,
    /// Memory to plan batches against, in bytes; `None` asks the device.
    pub memory_budget: Option<u64>,
    /// Batches run at once on a CPU (see [`UpscalePlan::lanes`]); `None`: [`crate::ops::cpu::auto_lanes`].
    pub lanes: Option<usize>,
    /// Re-run from a scale, keeping the coarser scales of an earlier result.
    pub locked: Option<LockedTokens>,
    /// Generate only some tiles, keeping the others of an earlier result.
    pub kept: Option<KeptTiles>,
}

/// An image to upscale: 8-bit RGB, optional alpha, and metadata passed through untouched.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpscaleInput {
    pub rgb: RgbImage,
    pub alpha: Option<GrayImage>,
    pub icc: Option<Vec<u8>>,
    pub exif: Option<Vec<u8>>,
}

impl UpscaleInput {
    pub fn from_rgb(rgb: RgbImage) -> Self {
        Self {
            rgb,
            ..Self::default()
        }
    }

    /// Splits off the alpha channel; a fully opaque one is dropped.
    pub fn from_rgba(rgba: &RgbaImage) -> Self {
        let (w, h) = rgba.dimensions();
        let mut rgb = Vec::with_capacity((w * h * 3) as usize);
        let mut alpha = Vec::with_capacity((w * h) as usize);
        for p in rgba.pixels() {
            rgb.extend_from_slice(&p.0[..3]);
            alpha.push(p.0[3]);
        }
        let opaque = alpha.iter().all(|&a| a == 255);
        Self {
            rgb: RgbImage::from_raw(w, h, rgb).unwrap_or_else(|| RgbImage::new(w, h)),
            alpha: if opaque {
                None
            } else {
                GrayImage::from_raw(w, h, alpha)
            },
            ..Self::default()
        }
    }

    /// A loaded file: upright RGB, alpha and metadata as `imaging::load` gives them.
    pub fn from_loaded(image: crate::imaging::LoadedImage) -> Self {
        Self {
            rgb: image.rgb,
            alpha: image.alpha,
            icc: image.icc,
            exif: image.exif,
        }
    }

    /// Any decoded image: 8-bit RGB, with alpha when the image has an alpha channel.
    pub fn from_dynamic(image: &DynamicImage) -> Self {
        if image.color().has_alpha() {
            Self::from_rgba(&image.to_rgba8())
        } else {
            Self::from_rgb(image.to_rgb8())
        }
    }
}

/// The sizes a job works with, known before any model work.
#[derive(Clone, Debug, PartialEq)]
pub struct UpscalePlan {
    /// Input size.
    pub input: (u32, u32),
    /// Output size (width, height).
    pub target: (u32, u32),
    /// Size the LR is resized to before generation (width, height): multiples of `f`, at least a tile.
    pub padded: (u32, u32),
    /// Pixels per latent cell.
    pub f: usize,
    /// The tiles over the latent grid (`padded / f`).
    pub grid: TileGrid,
    /// Tiles per generation batch.
    pub batch: usize,
    /// Batches generated at once, each on its own CPU thread; 1 on a GPU. Lanes share the memory
    /// a single batch would have had (each gets `batch` tiles).
    pub lanes: usize,
    /// Decode windows in latent cells (one window = one whole decode when the grid is one tile).
    pub decode: TileGeometry,
    /// Memory the batches were planned against (bytes), when known.
    pub memory_budget: Option<u64>,
}

impl UpscalePlan {
    pub fn tile_px(&self) -> usize {
        self.grid.geometry.tile * self.f
    }

    /// Pixel rectangle `(x, y, w, h)` of each tile in the output image (scaled from the padded
    /// canvas to the target, so that previews can be placed).
    pub fn tile_rects(&self) -> Vec<(u32, u32, u32, u32)> {
        let sx = self.target.0 as f64 / self.padded.0 as f64;
        let sy = self.target.1 as f64 / self.padded.1 as f64;
        let t = self.tile_px() as f64;
        self.grid
            .tiles()
            .map(|tile| {
                let x0 = ((tile.x * self.f) as f64 * sx).round() as u32;
                let y0 = ((tile.y * self.f) as f64 * sy).round() as u32;
                let x1 = (((tile.x * self.f) as f64 + t) * sx).round() as u32;
                let y1 = (((tile.y * self.f) as f64 + t) * sy).round() as u32;
                (x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0))
            })
            .collect()
    }

    /// The tiles whose output rectangle overlaps the rectangle `(x, y, w, h)` of output pixels.
    pub fn tiles_touching(&self, rect: (u32, u32, u32, u32)) -> Vec<usize> {
        let (x, y, w, h) = rect;
        let overlaps = |a0: u32, al: u32, b0: u32, bl: u32| a0 < b0 + bl && b0 < a0 + al;
        self.tile_rects()
            .into_iter()
            .enumerate()
            .filter(|(_, (tx, ty, tw, th))| overlaps(x, w, *tx, *tw) && overlaps(y, h, *ty, *th))
            .map(|(i, _)| i)
            .collect()
    }
}

/// The result of an upscale.
#[derive(Clone, Debug)]
pub struct UpscaleOutput {
    pub rgb: RgbImage,
    pub alpha: Option<GrayImage>,
    pub icc: Option<Vec<u8>>,
    pub exif: Option<Vec<u8>>,
    /// `tokens[tile][scale]`: the ids chosen (or reused) per tile, for "re-run from scale k".
    pub tokens: Vec<Vec<Vec<u32>>>,
    /// Each tile's final latent (CHW, `cvae × tile × tile`), for re-sampling a region.
    pub latents: Vec<Vec<f32>>,
    pub plan: UpscalePlan,
}

impl UpscaleOutput {
    /// RGB, or RGBA when the input had alpha.
    pub fn to_dynamic(&self) -> DynamicImage {
        match &self.alpha {
            None => DynamicImage::ImageRgb8(self.rgb.clone()),
            Some(a) => DynamicImage::ImageRgba8(merge_alpha(&self.rgb, a)),
        }
    }

    /// Always RGBA (opaque when the input had no alpha).
    pub fn to_rgba(&self) -> RgbaImage {
        match &self.alpha {
            Some(a) => merge_alpha(&self.rgb, a),
            None => DynamicImage::ImageRgb8(self.rgb.clone()).to_rgba8(),
        }
    }
}

fn merge_alpha(rgb: &RgbImage, alpha: &GrayImage) -> RgbaImage {
    let (w, h) = rgb.dimensions();
    let mut out = RgbaImage::new(w, h);
    for ((o, p), a) in out.pixels_mut().zip(rgb.pixels()).zip(alpha.pixels()) {
        o.0 = [p.0[0], p.0[1], p.0[2], a.0[0]];
    }
    out
}

/// Output size for an input size and a [`TargetSize`].
pub fn target_size(input: (u32, u32), size: TargetSize) -> Result<(u32, u32)> {
    let (w, h) = input;
    if w == 0 || h == 0 {
        return Err(Error::Invalid("the image is empty".into()));
    }
    let follow = |num: u32, other: u32, den: u32| {
        ((num as f64 * other as f64 / den as f64).round() as u32).max(1)
    };
    let t = match size {
        TargetSize::Scale(s) if (1..=8).contains(&s) => (w * s, h * s),
        TargetSize::Scale(s) => return Err(Error::Invalid(format!("scale {s} is not supported"))),
        TargetSize::Width(tw) if tw > 0 => (tw, follow(tw, h, w)),
        TargetSize::Height(th) if th > 0 => (follow(th, w, h), th),
        _ => return Err(Error::Invalid("the target size must be positive".into())),
    };
    // 2³¹ pixels is far beyond what a desktop machine can hold as f32 sums.
    if t.0 as u64 * t.1 as u64 > 1 << 31 {
        return Err(Error::Invalid(format!(
            "an output of {}×{} is too large",
            t.0, t.1
        )));
    }
    Ok(t)
}

/// Size the LR is resized to before generation: `max(ceil(W/f)·f·s, tile_px)` per side for an
/// integer scale (test_tile.py), `max(ceil(T/f)·f, tile_px)` for an explicit target.
pub fn padded_size(
    input: (u32, u32),
    size: TargetSize,
    f: usize,
    tile_px: usize,
) -> Result<(u32, u32)> {
    let target = target_size(input, size)?;
    let f = f as u64;
    let round = |v: u64, mul: u64| v.div_ceil(f) * f * mul;
    let (w, h) = match size {
        TargetSize::Scale(s) => (
            round(input.0 as u64, s as u64),
            round(input.1 as u64, s as u64),
        ),
        _ => (round(target.0 as u64, 1), round(target.1 as u64, 1)),
    };
    let t = tile_px as u64;
    Ok((w.max(t) as u32, h.max(t) as u32))
}

/// Works out sizes, tiles and batches without running anything.
pub fn plan(engine: &Engine, input: (u32, u32), opts: &UpscaleOptions) -> Result<UpscalePlan> {
    let f = engine.vae.downsample();
    let tile = engine.latent_side();
    if tile == 0 || f == 0 {
        return Err(Error::Invalid("the model has no scales".into()));
    }
    let target = target_size(input, opts.size)?;
    let padded = padded_size(input, opts.size, f, tile * f)?;
    let grid = TileGrid::new(
        padded.1 as usize / f,
        padded.0 as usize / f,
        engine.tile_geometry(),
    )?;
    let budget = opts
        .memory_budget
        .or_else(|| available_memory(&engine.device));
    let wanted_lanes = match engine.device {
        Device::Cpu => opts.lanes.unwrap_or_else(crate::ops::cpu::auto_lanes),
        _ => 1,
    };
    let (batch, lanes) = match opts.tile_batch {
        Some(b) => {
            let b = b.clamp(1, grid.len());
            (b, wanted_lanes.clamp(1, grid.len().div_ceil(b)))
        }
        None => {
            let bytes = engine.var.dtype().size_in_bytes();
            let max = match engine.device {
                Device::Cpu => grid.len().min(cpu_max_batch(&engine.var.config)),
                _ => grid.len(),
            };
            let fit = fit_batch(tile_memory(&engine.var.config, bytes), budget, max);
            lane_batches(grid.len(), fit, wanted_lanes)
        }
    };
    Ok(UpscalePlan {
        input,
        target,
        padded,
        f,
        grid,
        batch,
        lanes,
        decode: engine.tile_geometry(),
        memory_budget: budget,
    })
}

/// Forwards the engine's events with job-wide progress added.
struct JobObserver<'a> {
    inner: &'a mut dyn Observer,
    eta: Eta,
    clock: std::time::Instant,
    batch_len: usize,
}

impl JobObserver<'_> {
    fn now(&self) -> f64 {
        self.clock.elapsed().as_secs_f64()
    }

    fn report(&mut self) {
        self.inner
            .progress(&Progress::Fraction(self.eta.fraction() as f32));
    }
}

impl Observer for JobObserver<'_> {
    fn scale_done(&mut self, event: &ScaleEvent) {
        let now = self.now();
        self.eta
            .scale_done(event.scale, event.tokens.len().max(1), now);
        self.inner.scale_done(event);
        self.report();
    }

    fn progress(&mut self, progress: &Progress) {
        match *progress {
            // The engine's own fraction covers one batch; the job's replaces it.
            Progress::Fraction(_) => return,
            Progress::Refiner { steps, .. } => {
                let now = self.now();
                self.eta.refiner_steps_done(1, steps, self.batch_len, now);
            }
            _ => {}
        }
        self.inner.progress(progress);
        if matches!(progress, Progress::Refiner { .. }) {
            self.report();
        }
    }

    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }

    fn wants_previews(&self) -> bool {
        self.inner.wants_previews()
    }

    fn tap(&mut self, name: &str, value: &Tensor) {
        self.inner.tap(name, value);
    }

    fn wants_taps(&self) -> bool {
        self.inner.wants_taps()
    }
}

/// Upscales `input` (see the module docs for the steps).
///
/// `noise` seeds the job: each tile then draws from its own stream derived from it (see
/// [`TileNoise`]), so the result depends on the seed but not on the tile batch, and a tile's
/// latent comes out the same whether it runs alone or in a batch. On cancellation the finished
/// tiles have already been reported through `observer` and [`Error::Cancelled`] is returned.
pub fn upscale(
    engine: &Engine,
    input: &UpscaleInput,
    opts: &UpscaleOptions,
    observer: &mut dyn Observer,
    noise: &mut dyn Noise,
) -> Result<UpscaleOutput> {
    let (w, h) = input.rgb.dimensions();
    let plan = plan(engine, (w, h), opts)?;
    if let Some(a) = &input.alpha
        && a.dimensions() != (w, h)
    {
        return Err(Error::Invalid(
            "the alpha channel does not match the image size".into(),
        ));
    }
    let patch_nums = engine.patch_nums().to_vec();
    let grid = &plan.grid;
    check_locked(opts.locked.as_ref(), grid.len(), &patch_nums)?;
    let latent_len = engine.var.config.cvae * grid.geometry.tile * grid.geometry.tile;
    check_kept(opts.kept.as_ref(), grid.len(), latent_len, plan.target)?;
    let redo = opts.kept.as_ref().map(|k| plan.tiles_touching(k.region));
    let generated = redo.as_ref().map_or(grid.len(), Vec::len);

    let mut job = JobObserver {
        inner: observer,
        eta: Eta::new(WorkPlan::new(&patch_nums, generated), 0.0),
        clock: std::time::Instant::now(),
        batch_len: 1,
    };

    let lr = imaging::resize_rgb(&input.rgb, plan.padded.0, plan.padded.1);
    let tile_noise = TileNoise::new(noise);
    let tile_job = batches::TileJob {
        engine,
        lr: &lr,
        plan: &plan,
        opts,
        patch_nums: &patch_nums,
        noise: &tile_noise,
    };
    let (latent, tokens, latents) = batches::generate_tiles(&tile_job, redo, &mut job)?;

    job.inner.progress(&Progress::Decoding);
    let base = engine.is_residual().then_some(&lr);
    let pixels = decode::decode(engine, &latent, &plan, base, &mut job)?;
    let decoded = RgbImage::from_raw(plan.padded.0, plan.padded.1, pixels)
        .ok_or_else(|| Error::Invalid("decoded image has the wrong size".into()))?;

    let (tw, th) = plan.target;
    let sr = imaging::resize_rgb(&decoded, tw, th);
    let reference = imaging::resize_rgb(&input.rgb, tw, th);
    let rgb = imaging::adain_color_fix(&sr, &reference);
    let alpha = input
        .alpha
        .as_ref()
        .map(|a| imaging::upscale_alpha(a, tw, th));
    job.eta.decode_done(1.0, job.now());
    job.report();

    Ok(UpscaleOutput {
        rgb,
        alpha,
        icc: input.icc.clone(),
        exif: input.exif.clone(),
        tokens,
        latents,
        plan,
    })
}

fn check_kept(
    kept: Option<&KeptTiles>,
    tiles: usize,
    latent_len: usize,
    target: (u32, u32),
) -> Result<()> {
    let Some(k) = kept else { return Ok(()) };
    let same = "same image and size needed";
    if k.latents.len() != tiles || k.tokens.len() != tiles {
        return Err(Error::Invalid(format!(
            "the kept result has {} tiles, this image has {tiles}: {same}",
            k.latents.len()
        )));
    }
    if let Some(t) = k.latents.iter().position(|l| l.len() != latent_len) {
        return Err(Error::Invalid(format!(
            "the kept latent of tile {t} has {} values, this model makes {latent_len}: {same}",
            k.latents[t].len()
        )));
    }
    let (x, y, w, h) = k.region;
    if x as u64 + w as u64 > target.0 as u64 || y as u64 + h as u64 > target.1 as u64 {
        return Err(Error::Invalid(format!(
            "the region {w}×{h} at ({x}, {y}) is not inside the {}×{} output",
            target.0, target.1
        )));
    }
    Ok(())
}

fn check_locked(locked: Option<&LockedTokens>, tiles: usize, patch_nums: &[usize]) -> Result<()> {
    let Some(l) = locked else { return Ok(()) };
    if l.from_scale > patch_nums.len() {
        return Err(Error::Invalid(format!(
            "cannot re-run from scale {}: the model has {} scales",
            l.from_scale,
            patch_nums.len()
        )));
    }
    if l.from_scale == 0 {
        return Ok(());
    }
    if l.per_tile.len() != tiles {
        return Err(Error::Invalid(format!(
            "the kept tokens are for {} tiles, this image has {tiles}: same image and size needed",
            l.per_tile.len()
        )));
    }
    for (t, scales) in l.per_tile.iter().enumerate() {
        for (k, &pn) in patch_nums.iter().enumerate().take(l.from_scale) {
            if scales.get(k).map(Vec::len) != Some(pn * pn) {
                return Err(Error::Invalid(format!(
                    "the kept tokens of tile {t} lack scale {k} ({pn}×{pn} ids)"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_padding_follows_test_tile() {
        // test_tile.py: W' = max(ceil(W/16)·16·4, 512).
        let pad = |w, h| padded_size((w, h), TargetSize::Scale(4), 16, 512).unwrap();
        assert_eq!(pad(40, 30), (512, 512));
        assert_eq!(pad(200, 130), (832, 576));
        assert_eq!(pad(1024, 768), (4096, 3072));
        assert_eq!(pad(129, 128), (576, 512));
        // rscale 2 and 3: the same 16-pixel rounding, times the scale.
        assert_eq!(
            padded_size((300, 170), TargetSize::Scale(2), 16, 512).unwrap(),
            (608, 512)
        );
        assert_eq!(
            padded_size((300, 170), TargetSize::Scale(3), 16, 512).unwrap(),
            (912, 528)
        );
        // An explicit width: the target rounded up to f, at least a tile.
        assert_eq!(
            padded_size((300, 170), TargetSize::Width(1000), 16, 512).unwrap(),
            (1008, 576)
        );
    }

    #[test]
    fn target_sizes_keep_the_aspect_ratio() {
        assert_eq!(
            target_size((40, 30), TargetSize::Scale(4)).unwrap(),
            (160, 120)
        );
        assert_eq!(
            target_size((40, 30), TargetSize::Scale(3)).unwrap(),
            (120, 90)
        );
        assert_eq!(
            target_size((300, 170), TargetSize::Width(1000)).unwrap(),
            (1000, 567)
        );
        assert_eq!(
            target_size((300, 170), TargetSize::Height(340)).unwrap(),
            (600, 340)
        );
        assert_eq!(
            target_size((1000, 1), TargetSize::Width(10)).unwrap(),
            (10, 1)
        );
        assert!(target_size((0, 5), TargetSize::Scale(4)).is_err());
        assert!(target_size((5, 5), TargetSize::Scale(0)).is_err());
        assert!(target_size((5, 5), TargetSize::Width(0)).is_err());
        assert!(target_size((100_000, 100_000), TargetSize::Scale(4)).is_err());
    }

    #[test]
    fn rgba_input_splits_and_merges_alpha() {
        let mut img = RgbaImage::new(3, 2);
        img.put_pixel(1, 0, image::Rgba([10, 20, 30, 40]));
        let input = UpscaleInput::from_rgba(&img);
        assert_eq!(input.rgb.get_pixel(1, 0).0, [10, 20, 30]);
        assert_eq!(input.alpha.as_ref().unwrap().get_pixel(1, 0).0, [40]);
        assert_eq!(merge_alpha(&input.rgb, input.alpha.as_ref().unwrap()), img);
        let opaque = RgbaImage::from_pixel(2, 2, image::Rgba([1, 2, 3, 255]));
        assert!(UpscaleInput::from_rgba(&opaque).alpha.is_none());
    }

    #[test]
    fn locked_tokens_are_checked_against_the_grid() {
        let pn = [1usize, 2];
        let good = LockedTokens {
            from_scale: 2,
            per_tile: vec![vec![vec![0], vec![1, 2, 3, 4]]; 2],
        };
        assert!(check_locked(Some(&good), 2, &pn).is_ok());
        assert!(check_locked(Some(&good), 3, &pn).is_err());
        let short = LockedTokens {
            from_scale: 2,
            per_tile: vec![vec![vec![0], vec![1, 2]]; 2],
        };
        assert!(check_locked(Some(&short), 2, &pn).is_err());
        let too_far = LockedTokens {
            from_scale: 3,
            ..good.clone()
        };
        assert!(check_locked(Some(&too_far), 2, &pn).is_err());
    }
}
