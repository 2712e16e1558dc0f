//! AdaIN colour fix (reference §4.8, `adain_color_fix` in myutils/wavelet_color_fix.py): shift
//! each channel of the SR output to the mean and standard deviation of the (resized) LR image.
//!
//! The reference does this in torch f32: ToTensor (`u8 / 255`), per channel mean and *unbiased*
//! variance over H·W, `std = sqrt(var + 1e-5)`, `(sr − μ_sr) / σ_sr · σ_lr + μ_lr`, clamp to
//! [0, 1], then ToPILImage's `mul(255).byte()`, which truncates. The per-pixel arithmetic is done
//! here in f32 in the same order, so results agree bit for bit whenever the statistics do; the
//! statistics are summed in f64 and rounded to f32 (torch's f32 reductions agree with that to
//! about one ulp, which can flip a truncation at an exact integer boundary, i.e. ±1 on rare
//! pixels).

use super::pil_resize::resize_rgb;
use image::RgbImage;

const EPS: f32 = 1e-5;

/// Per-channel mean and standard deviation (`sqrt(unbiased var + 1e-5)`) of an RGB image, in
/// ToTensor units ([0, 1]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChannelStats {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl ChannelStats {
    /// Statistics of `img`. With fewer than two pixels the unbiased variance is undefined (torch
    /// gives NaN); it is taken as 0 here so the fix degrades to a mean shift.
    pub fn of(img: &RgbImage) -> Self {
        let n = (img.width() as usize) * (img.height() as usize);
        let mut sum = [0f64; 3];
        for px in img.pixels() {
            for (s, &v) in sum.iter_mut().zip(&px.0) {
                *s += f64::from(unit(v));
            }
        }
        let mean64 = sum.map(|s| if n > 0 { s / n as f64 } else { 0.0 });
        let mut sq = [0f64; 3];
        for px in img.pixels() {
            for ((s, &v), m) in sq.iter_mut().zip(&px.0).zip(mean64) {
                let d = f64::from(unit(v)) - m;
                *s += d * d;
            }
        }
        let var = sq.map(|s| if n > 1 { s / (n - 1) as f64 } else { 0.0 });
        Self {
            mean: mean64.map(|m| m as f32),
            std: var.map(|v| ((v as f32) + EPS).sqrt()),
        }
    }
}

/// ToTensor's conversion, in f32 like torch.
fn unit(v: u8) -> f32 {
    f32::from(v) / 255.0
}

/// Applies precomputed statistics: `sr` is renormalised from `from` to `to`.
pub fn apply_stats(sr: &RgbImage, from: &ChannelStats, to: &ChannelStats) -> RgbImage {
    let mut out = sr.clone();
    for px in out.pixels_mut() {
        for c in 0..3 {
            let x = unit(px.0[c]);
            let y = ((x - from.mean[c]) / from.std[c]) * to.std[c] + to.mean[c];
            // `clamp_(0, 1)` then `mul(255).byte()`: truncation toward zero.
            px.0[c] = (y.clamp(0.0, 1.0) * 255.0) as u8;
        }
    }
    out
}

/// AdaIN colour fix of `sr` against `reference` (already at the size the reference pipeline
/// uses, i.e. the LR image PIL-resized to the SR size). Sizes may differ: only statistics of
/// `reference` are used.
pub fn adain_color_fix(sr: &RgbImage, reference: &RgbImage) -> RgbImage {
    apply_stats(sr, &ChannelStats::of(sr), &ChannelStats::of(reference))
}

/// The reference pipeline's call: resize `lr` to the size of `sr` with Pillow bicubic, then
/// [`adain_color_fix`].
pub fn adain_color_fix_to_lr(sr: &RgbImage, lr: &RgbImage) -> RgbImage {
    let reference = if lr.dimensions() == sr.dimensions() {
        lr.clone()
    } else {
        resize_rgb(lr, sr.width(), sr.height())
    };
    adain_color_fix(sr, &reference)
}

#[cfg(test)]
#[path = "color_fix_tests.rs"]
mod tests;
