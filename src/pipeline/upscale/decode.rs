//! Decoding the blended latent: one whole decode for a single tile (the published behaviour),
//! else overlapping windows of one tile cross-faded in pixel space.

use candle_core::{DType, Device, Tensor};
use image::RgbImage;

use super::memory::{fit_batch, window_memory};
use super::{JobObserver, UpscalePlan};
use crate::pipeline::engine::Engine;
use crate::pipeline::tiling::PixelBlender;
use crate::pipeline::{Error, Observer, Result};

/// Decodes the blended latent (CHW, `grid.height × grid.width`) to interleaved 8-bit RGB of the
/// padded size. `base` (the bicubic upscale, padded size) is added to what a residual model decodes.
pub(super) fn decode(
    engine: &Engine,
    latent: &[f32],
    plan: &UpscalePlan,
    base: Option<&RgbImage>,
    job: &mut JobObserver,
) -> Result<Vec<u8>> {
    let (h, w) = (plan.grid.height, plan.grid.width);
    let c = latent.len() / (h * w);
    let dtype = engine.var.dtype();
    let (ph, pw) = (h * plan.f, w * plan.f);
    if h * w <= plan.decode.tile * plan.decode.tile {
        // One tile: one decode of the whole latent, exactly as published.
        let z = Tensor::from_vec(latent.to_vec(), (1, c, h, w), &engine.device)?.to_dtype(dtype)?;
        let img = engine
            .decode(&z)?
            .to_dtype(DType::F32)?
            .to_device(&Device::Cpu)?;
        let mut planar = img.flatten_all()?.to_vec1::<f32>()?;
        if let Some(b) = base {
            add_base(&mut planar, b, 0, 0, ph, pw);
        }
        let plane = ph * pw;
        let mut out = vec![0u8; 3 * plane];
        for (i, px) in out.chunks_exact_mut(3).enumerate() {
            for ch in 0..3 {
                px[ch] = (planar[ch * plane + i] * 255.0).round().clamp(0.0, 255.0) as u8;
            }
        }
        return Ok(out);
    }
    let mut blender = PixelBlender::new(ph, pw, plan.decode.scaled(plan.f))?;
    let (rows, cols) = blender.windows();
    let windows: Vec<(usize, usize)> = (0..rows)
        .flat_map(|r| (0..cols).map(move |col| (r, col)))
        .collect();
    // All windows have the tile's size, so any of them batch together. Decoding is compute-bound
    // at full resolution: on a CPU batching windows only costs memory, so there each lane decodes
    // a window of its own (one after another with one lane), as many at once as lanes and memory
    // allow.
    let per_window = window_memory(&engine.vae.config, plan.decode.tile);
    let (group, lanes) = match engine.device {
        Device::Cpu => {
            let n = fit_batch(per_window, plan.memory_budget, plan.lanes.max(1));
            (n, n > 1)
        }
        _ => (fit_batch(per_window, plan.memory_budget, cols), false),
    };
    let total = windows.len() as f64;
    for chunk in windows.chunks(group) {
        if job.cancelled() {
            return Err(Error::Cancelled);
        }
        let decoded = if lanes {
            use rayon::prelude::*;
            let each = chunk
                .par_iter()
                .map(|w| {
                    decode_windows(
                        engine,
                        latent,
                        plan,
                        &blender,
                        base,
                        std::slice::from_ref(w),
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            each.into_iter().flatten().collect()
        } else {
            decode_windows(engine, latent, plan, &blender, base, chunk)?
        };
        for (&(r, col), rgb) in chunk.iter().zip(decoded) {
            blender.add(r, col, &rgb)?;
        }
        let now = job.now();
        job.eta.decode_done(chunk.len() as f64 / total * 0.99, now);
        job.report();
    }
    blender.finish()
}

/// Decodes windows `(row, col)` of the blended latent in one batch: planar RGB per window in
/// [0, 1] units, `base` added.
fn decode_windows(
    engine: &Engine,
    latent: &[f32],
    plan: &UpscalePlan,
    blender: &PixelBlender,
    base: Option<&RgbImage>,
    windows: &[(usize, usize)],
) -> Result<Vec<Vec<f32>>> {
    let (h, w) = (plan.grid.height, plan.grid.width);
    let c = latent.len() / (h * w);
    let (mut wh, mut ww) = (0, 0);
    let mut cut = Vec::new();
    for &(r, col) in windows {
        let (y, x, hh, wwp) = blender.window(r, col);
        (wh, ww) = (hh / plan.f, wwp / plan.f);
        cut.extend(crop_latent(latent, c, h, w, y / plan.f, x / plan.f, wh, ww));
    }
    let z = Tensor::from_vec(cut, (windows.len(), c, wh, ww), &engine.device)?
        .to_dtype(engine.var.dtype())?;
    let img = engine
        .decode(&z)?
        .to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?;
    let mut out = Vec::with_capacity(windows.len());
    for (i, &(r, col)) in windows.iter().enumerate() {
        let mut rgb = img.get(i)?.flatten_all()?.to_vec1::<f32>()?;
        if let Some(b) = base {
            let (y, x, hh, wwp) = blender.window(r, col);
            add_base(&mut rgb, b, y, x, hh, wwp);
        }
        out.push(rgb);
    }
    Ok(out)
}

/// Adds the `h × w` window at (y, x) of `base` (in [0, 1] units) to planar RGB `rgb`. The windows'
/// cross-fade weights sum to one, so adding the base per window adds it once to the blend.
fn add_base(rgb: &mut [f32], base: &RgbImage, y: usize, x: usize, h: usize, w: usize) {
    let plane = h * w;
    for dy in 0..h {
        for dx in 0..w {
            let p = base.get_pixel((x + dx) as u32, (y + dy) as u32).0;
            for (c, v) in p.iter().enumerate() {
                rgb[c * plane + dy * w + dx] += *v as f32 / 255.0;
            }
        }
    }
}

/// Window `(y, x, h, w)` of a CHW latent.
#[allow(clippy::too_many_arguments)]
fn crop_latent(
    latent: &[f32],
    c: usize,
    h: usize,
    w: usize,
    y: usize,
    x: usize,
    wh: usize,
    ww: usize,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(c * wh * ww);
    for ch in 0..c {
        for yy in y..y + wh {
            let row = (ch * h + yy) * w;
            out.extend_from_slice(&latent[row + x..row + x + ww]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latent_windows_are_cut_channel_by_channel() {
        let latent: Vec<f32> = (0..2 * 3 * 4).map(|v| v as f32).collect();
        assert_eq!(
            crop_latent(&latent, 2, 3, 4, 1, 2, 2, 2),
            vec![6., 7., 10., 11., 18., 19., 22., 23.]
        );
    }

    #[test]
    fn base_windows_are_added_channel_by_channel() {
        let base = RgbImage::from_fn(3, 2, |x, y| image::Rgb([(10 * x + y) as u8, 51, 255]));
        let mut rgb = vec![-0.5f32; 3 * 2]; // a 2×1 window at (y 1, x 1)
        add_base(&mut rgb, &base, 1, 1, 1, 2);
        let r = |v: u8| v as f32 / 255.0 - 0.5;
        assert_eq!(rgb, vec![r(11), r(21), r(51), r(51), r(255), r(255)]);
    }
}
