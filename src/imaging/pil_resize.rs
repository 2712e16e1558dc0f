//! Pillow-compatible BICUBIC resampling (`Image.resize(size, Image.BICUBIC)`).
//!
//! The VARSR reference preprocesses with PIL, so bit-exact parity needs Pillow's exact arithmetic
//! (libImaging/Resample.c): the a = −0.5 cubic, support widened by the scale factor when reducing,
//! f64 weights normalised per output pixel, then 22-bit fixed point for 8-bit images with a
//! rounding + clip to u8 between the horizontal and vertical passes. A pass is skipped when its
//! axis keeps its size, and the horizontal pass only computes the source rows the vertical pass
//! reads; both affect the result, so they are reproduced too.

use image::{GrayImage, RgbImage};

/// `32 - 8 - 2`: 8 bits of result, 2 bits of headroom for the negative lobes.
const PRECISION_BITS: u32 = 22;

const BICUBIC_SUPPORT: f64 = 2.0;

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Filter taps of one output sample: source index of the first tap and the weights.
struct Taps {
    start: usize,
    weights: Vec<f64>,
}

/// `precompute_coeffs` with the full box `[0, in_size)`.
fn precompute(in_size: usize, out_size: usize) -> Vec<Taps> {
    // Pillow passes the box as C floats; the sizes are exact in f32 below 2^24.
    let scale = in_size as f32 as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = BICUBIC_SUPPORT * filterscale;
    let inv_filterscale = 1.0 / filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            // C's `(int)` truncates toward zero; negative values clamp to 0 either way.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64).max(0) as usize;
            let count = xmax.saturating_sub(xmin);
            let mut weights: Vec<f64> = (0..count)
                .map(|x| bicubic(((x + xmin) as f64 - center + 0.5) * inv_filterscale))
                .collect();
            let ww: f64 = weights.iter().sum();
            if ww != 0.0 {
                for w in &mut weights {
                    *w /= ww;
                }
            }
            Taps {
                start: xmin,
                weights,
            }
        })
        .collect()
}

/// Integer taps for the 8-bit path (`normalize_coeffs_8bpc`).
struct FixedTaps {
    start: usize,
    weights: Vec<i32>,
}

fn to_fixed(taps: Vec<Taps>) -> Vec<FixedTaps> {
    let one = (1u32 << PRECISION_BITS) as f64;
    taps.into_iter()
        .map(|t| FixedTaps {
            start: t.start,
            weights: t
                .weights
                .iter()
                .map(|&w| {
                    if w < 0.0 {
                        (-0.5 + w * one) as i32
                    } else {
                        (0.5 + w * one) as i32
                    }
                })
                .collect(),
        })
        .collect()
}

fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// Resizes an interleaved 8-bit image of `channels` channels (Pillow modes L, RGB, RGBX, CMYK…).
///
/// `src` holds `width * height * channels` bytes, row-major. Pillow's RGBA/LA resize premultiplies
/// alpha first; this function does not (use it per plane, see [`crate::imaging::alpha`]).
/// Returns an empty buffer when the output or `channels` is empty; a zero-sized input gives black,
/// as Pillow's kernels do.
pub fn resize_u8(
    src: &[u8],
    channels: usize,
    width: u32,
    height: u32,
    new_width: u32,
    new_height: u32,
) -> Vec<u8> {
    let (w, h, nw, nh) = (
        width as usize,
        height as usize,
        new_width as usize,
        new_height as usize,
    );
    if channels == 0 || nw == 0 || nh == 0 || src.len() < w * h * channels {
        return vec![0; nw * nh * channels];
    }
    let need_horizontal = nw != w;
    let need_vertical = nh != h;

    let vert = to_fixed(precompute(h, nh));
    // Only the rows the vertical pass reads get resampled horizontally.
    let (row_first, row_last) = if need_vertical {
        let first = vert.first().map_or(0, |t| t.start);
        let last = vert.last().map_or(0, |t| t.start + t.weights.len());
        (first, last.max(first))
    } else {
        (0, h)
    };

    let mut cur: std::borrow::Cow<[u8]> = std::borrow::Cow::Borrowed(&src[..w * h * channels]);
    let mut cur_w = w;
    let mut row_offset = 0;
    if need_horizontal {
        let horiz = to_fixed(precompute(w, nw));
        let rows = row_last - row_first;
        let mut out = vec![0u8; nw * rows * channels];
        for (r, out_row) in out.chunks_exact_mut(nw * channels).enumerate() {
            let in_row = &src[(r + row_first) * w * channels..][..w * channels];
            for (taps, px) in horiz.iter().zip(out_row.chunks_exact_mut(channels)) {
                for (c, dst) in px.iter_mut().enumerate() {
                    let mut acc = HALF;
                    for (k, &wt) in taps.weights.iter().enumerate() {
                        acc += i32::from(in_row[(taps.start + k) * channels + c]) * wt;
                    }
                    *dst = clip8(acc);
                }
            }
        }
        cur = std::borrow::Cow::Owned(out);
        cur_w = nw;
        row_offset = row_first;
    }
    if !need_vertical {
        return cur.into_owned();
    }
    let stride = cur_w * channels;
    let mut out = vec![0u8; stride * nh];
    let mut acc = vec![0i32; stride];
    for (taps, out_row) in vert.iter().zip(out.chunks_exact_mut(stride)) {
        acc.fill(HALF);
        for (k, &wt) in taps.weights.iter().enumerate() {
            let row = &cur[(taps.start + k - row_offset) * stride..][..stride];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += i32::from(v) * wt;
            }
        }
        for (dst, &a) in out_row.iter_mut().zip(&acc) {
            *dst = clip8(a);
        }
    }
    out
}

/// Pillow `img.resize((w, h), Image.BICUBIC)` for an RGB image, bit-exact.
pub fn resize_rgb(src: &RgbImage, new_width: u32, new_height: u32) -> RgbImage {
    let data = resize_u8(
        src.as_raw(),
        3,
        src.width(),
        src.height(),
        new_width,
        new_height,
    );
    // Length is nw*nh*3 by construction, so this cannot fail; fall back to black if it ever did.
    RgbImage::from_raw(new_width, new_height, data)
        .unwrap_or_else(|| RgbImage::new(new_width, new_height))
}

/// Pillow `img.resize((w, h), Image.BICUBIC)` for a mode "L" image, bit-exact.
pub fn resize_gray(src: &GrayImage, new_width: u32, new_height: u32) -> GrayImage {
    let data = resize_u8(
        src.as_raw(),
        1,
        src.width(),
        src.height(),
        new_width,
        new_height,
    );
    GrayImage::from_raw(new_width, new_height, data)
        .unwrap_or_else(|| GrayImage::new(new_width, new_height))
}

/// Pillow BICUBIC on a single float plane (mode "F", `_ImagingResample*_32bpc`): same taps,
/// f64 accumulation, no rounding or clipping; the intermediate is stored as f32 like Pillow's.
pub fn resize_f32(
    src: &[f32],
    width: u32,
    height: u32,
    new_width: u32,
    new_height: u32,
) -> Vec<f32> {
    let (w, h, nw, nh) = (
        width as usize,
        height as usize,
        new_width as usize,
        new_height as usize,
    );
    if nw == 0 || nh == 0 || src.len() < w * h {
        return vec![0.0; nw * nh];
    }
    let need_horizontal = nw != w;
    let need_vertical = nh != h;
    let vert = precompute(h, nh);
    let (row_first, row_last) = if need_vertical {
        let first = vert.first().map_or(0, |t| t.start);
        let last = vert.last().map_or(0, |t| t.start + t.weights.len());
        (first, last.max(first))
    } else {
        (0, h)
    };
    let mut cur: std::borrow::Cow<[f32]> = std::borrow::Cow::Borrowed(&src[..w * h]);
    let mut cur_w = w;
    let mut row_offset = 0;
    if need_horizontal {
        let horiz = precompute(w, nw);
        let rows = row_last - row_first;
        let mut out = vec![0f32; nw * rows];
        for (r, out_row) in out.chunks_exact_mut(nw).enumerate() {
            let in_row = &src[(r + row_first) * w..][..w];
            for (taps, dst) in horiz.iter().zip(out_row.iter_mut()) {
                let mut acc = 0f64;
                for (k, &wt) in taps.weights.iter().enumerate() {
                    acc += f64::from(in_row[taps.start + k]) * wt;
                }
                *dst = acc as f32;
            }
        }
        cur = std::borrow::Cow::Owned(out);
        cur_w = nw;
        row_offset = row_first;
    }
    if !need_vertical {
        return cur.into_owned();
    }
    let mut out = vec![0f32; cur_w * nh];
    let mut acc = vec![0f64; cur_w];
    for (taps, out_row) in vert.iter().zip(out.chunks_exact_mut(cur_w)) {
        acc.fill(0.0);
        for (k, &wt) in taps.weights.iter().enumerate() {
            let row = &cur[(taps.start + k - row_offset) * cur_w..][..cur_w];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += f64::from(v) * wt;
            }
        }
        for (dst, &a) in out_row.iter_mut().zip(&acc) {
            *dst = a as f32;
        }
    }
    out
}

#[cfg(test)]
#[path = "pil_resize_tests.rs"]
mod tests;
