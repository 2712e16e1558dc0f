//! PSNR and SSIM on the luma channel, with the usual super-resolution convention (basicsr
//! `calculate_psnr` / `calculate_ssim` with `test_y_channel=True`, MATLAB-compatible `rgb2ycbcr`):
//!
//! * `Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255` on 8-bit R, G, B (range [16, 235]), kept
//!   unrounded, in f64 (basicsr rounds Y to f32, which moves PSNR by ~1e-7 dB);
//! * `crop_border` pixels removed from every side first (use the scale factor);
//! * PSNR with peak 255 (`+∞` for identical images);
//! * SSIM with an 11-tap Gaussian window (σ = 1.5), population covariances,
//!   `C1 = (0.01·255)²`, `C2 = (0.03·255)²`, averaged over the positions where the window fits
//!   inside the (cropped) image, as basicsr does and as scikit-image's
//!   `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
//!   data_range=255)` does after its border crop.

use super::error::{ImagingError, Result};
use image::RgbImage;

const WINDOW_RADIUS: usize = 5;
const SIGMA: f64 = 1.5;

/// A single-channel f64 plane, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Plane {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f64>,
}

/// Luma (BT.601, studio range) of one 8-bit RGB pixel, unrounded.
pub fn luma(p: &image::Rgb<u8>) -> f64 {
    let [r, g, b] = p.0.map(f64::from);
    16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
}

/// Luma (BT.601, studio range) of an 8-bit RGB image, unrounded.
pub fn rgb_to_y(img: &RgbImage) -> Plane {
    Plane {
        width: img.width() as usize,
        height: img.height() as usize,
        data: img.pixels().map(luma).collect(),
    }
}

impl Plane {
    /// Removes `border` pixels from every side (nothing if `border` is 0).
    pub fn crop_border(&self, border: usize) -> Result<Plane> {
        if 2 * border >= self.width || 2 * border >= self.height {
            return Err(ImagingError::InvalidArgument(format!(
                "border {border} leaves nothing of a {}×{} image",
                self.width, self.height
            )));
        }
        let (w, h) = (self.width - 2 * border, self.height - 2 * border);
        let data = (border..border + h)
            .flat_map(|y| self.data[y * self.width + border..][..w].iter().copied())
            .collect();
        Ok(Plane {
            width: w,
            height: h,
            data,
        })
    }
}

fn y_pair(a: &RgbImage, b: &RgbImage, crop_border: u32) -> Result<(Plane, Plane)> {
    if a.dimensions() != b.dimensions() {
        return Err(ImagingError::SizeMismatch {
            what: "compared image",
            got: b.dimensions(),
            expected: a.dimensions(),
        });
    }
    let c = crop_border as usize;
    Ok((rgb_to_y(a).crop_border(c)?, rgb_to_y(b).crop_border(c)?))
}

/// PSNR (dB) between the Y channels of `reference` and `test` after cropping `crop_border`.
pub fn psnr_y(reference: &RgbImage, test: &RgbImage, crop_border: u32) -> Result<f64> {
    let (a, b) = y_pair(reference, test, crop_border)?;
    Ok(psnr(&a.data, &b.data, 255.0))
}

/// SSIM between the Y channels of `reference` and `test` after cropping `crop_border`. The
/// cropped image must be at least 11×11.
pub fn ssim_y(reference: &RgbImage, test: &RgbImage, crop_border: u32) -> Result<f64> {
    let (a, b) = y_pair(reference, test, crop_border)?;
    ssim(&a, &b, 255.0)
}

/// `10 log10(peak² / MSE)`; `+∞` when the inputs are equal, NaN when empty.
pub fn psnr(a: &[f64], b: &[f64], peak: f64) -> f64 {
    let n = a.len().min(b.len());
    let mse = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / n as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (peak * peak / mse).log10()
    }
}

fn gaussian_window() -> [f64; 2 * WINDOW_RADIUS + 1] {
    let mut k = [0f64; 2 * WINDOW_RADIUS + 1];
    for (i, v) in k.iter_mut().enumerate() {
        let x = i as f64 - WINDOW_RADIUS as f64;
        *v = (-0.5 * x * x / (SIGMA * SIGMA)).exp();
    }
    let s: f64 = k.iter().sum();
    k.map(|v| v / s)
}

/// Separable Gaussian filter, "valid" positions only: output is (w−10)×(h−10).
fn filter_valid(data: &[f64], w: usize, h: usize, k: &[f64]) -> Vec<f64> {
    let n = k.len();
    let (ow, oh) = (w + 1 - n, h + 1 - n);
    let mut rows = vec![0f64; ow * h];
    for y in 0..h {
        let row = &data[y * w..][..w];
        for x in 0..ow {
            rows[y * ow + x] = k.iter().zip(&row[x..x + n]).map(|(a, b)| a * b).sum();
        }
    }
    let mut out = vec![0f64; ow * oh];
    for y in 0..oh {
        for (i, &kv) in k.iter().enumerate() {
            let src = &rows[(y + i) * ow..][..ow];
            for (o, s) in out[y * ow..][..ow].iter_mut().zip(src) {
                *o += kv * s;
            }
        }
    }
    out
}

/// Mean SSIM of two planes with data range `range`.
pub fn ssim(a: &Plane, b: &Plane, range: f64) -> Result<f64> {
    let n = 2 * WINDOW_RADIUS + 1;
    if (a.width, a.height) != (b.width, b.height) {
        return Err(ImagingError::SizeMismatch {
            what: "compared plane",
            got: (b.width as u32, b.height as u32),
            expected: (a.width as u32, a.height as u32),
        });
    }
    if a.width < n || a.height < n {
        return Err(ImagingError::InvalidArgument(format!(
            "SSIM needs at least {n}×{n} pixels, got {}×{}",
            a.width, a.height
        )));
    }
    let (w, h) = (a.width, a.height);
    let k = gaussian_window();
    let prod = |f: &dyn Fn(f64, f64) -> f64| -> Vec<f64> {
        a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect()
    };
    let mu_a = filter_valid(&a.data, w, h, &k);
    let mu_b = filter_valid(&b.data, w, h, &k);
    let aa = filter_valid(&prod(&|x, _| x * x), w, h, &k);
    let bb = filter_valid(&prod(&|_, y| y * y), w, h, &k);
    let ab = filter_valid(&prod(&|x, y| x * y), w, h, &k);
    let c1 = (0.01 * range).powi(2);
    let c2 = (0.03 * range).powi(2);
    let mut sum = 0f64;
    for i in 0..mu_a.len() {
        let (ma, mb) = (mu_a[i], mu_b[i]);
        let va = aa[i] - ma * ma;
        let vb = bb[i] - mb * mb;
        let cov = ab[i] - ma * mb;
        sum +=
            ((2.0 * ma * mb + c1) * (2.0 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
    }
    Ok(sum / mu_a.len() as f64)
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
