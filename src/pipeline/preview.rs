//! Cheap previews of the latent after each scale: a linear map from the latent channels to RGB, fitted
//! once per model by decoding a small latent, instead of running the decoder at every scale.

use candle_core::{DType, Device, Tensor};

use super::Result;
use super::engine::Engine;
use super::events::PreviewImage;
use super::noise::{Noise, SeededNoise};
use crate::ops::resample::area;

/// Side of the latent decoded to fit the map.
const FIT_SIDE: usize = 8;

/// `(Cvae + 1, 3)` weights (last row is the bias) of the least-squares fit of decoded colour (in [0, 1],
/// averaged over each latent cell) on the latent.
pub fn fit_rgb_map(engine: &Engine) -> Result<Tensor> {
    let vae = &engine.vae;
    let cv = vae.config.cvae;
    let dev = engine.device.clone();
    let side = FIT_SIDE.min(engine.latent_side().max(1));
    let vocab = vae.config.vocab_size;
    let picks: Vec<u32> = SeededNoise::new(0x5eed)
        .uniform(side * side)
        .into_iter()
        .map(|u| ((u * vocab as f32) as u32).min(vocab as u32 - 1))
        .collect();
    let idx = Tensor::from_vec(picks, (1, side * side), &dev)?;
    let latent = vae.quantize.lookup_map(&idx, side)?;
    let img = engine.decode(&latent)?;
    let rgb = area(&img, side, side)?; // (1, 3, s, s)
    let xs = latent
        .reshape((cv, side * side))?
        .t()?
        .to_dtype(DType::F64)?
        .to_vec2::<f64>()?;
    let ys = rgb
        .reshape((3, side * side))?
        .t()?
        .to_dtype(DType::F64)?
        .to_vec2::<f64>()?;
    let w = least_squares(&xs, &ys, 1e-3);
    let flat: Vec<f32> = w.iter().flatten().map(|&v| v as f32).collect();
    Ok(Tensor::from_vec(flat, (cv + 1, 3), &dev)?)
}

/// Ridge regression with a bias column: returns `(d + 1) × k`.
pub fn least_squares(xs: &[Vec<f64>], ys: &[Vec<f64>], ridge: f64) -> Vec<Vec<f64>> {
    let d = xs.first().map_or(0, |r| r.len()) + 1;
    let k = ys.first().map_or(0, |r| r.len());
    let mut a = vec![vec![0.0; d + k]; d];
    for (x, y) in xs.iter().zip(ys) {
        let xb: Vec<f64> = x.iter().copied().chain([1.0]).collect();
        for i in 0..d {
            for j in 0..d {
                a[i][j] += xb[i] * xb[j];
            }
            for j in 0..k {
                a[i][d + j] += xb[i] * y[j];
            }
        }
    }
    for (i, row) in a.iter_mut().enumerate().take(d - 1) {
        row[i] += ridge;
    }
    // Gauss–Jordan with partial pivoting on the augmented system.
    for col in 0..d {
        let piv = (col..d)
            .max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))
            .unwrap_or(col);
        a.swap(col, piv);
        let p = a[col][col];
        if p.abs() < 1e-300 {
            continue;
        }
        for v in a[col].iter_mut() {
            *v /= p;
        }
        for r in 0..d {
            if r != col {
                let f = a[r][col];
                if f != 0.0 {
                    let pivot_row = a[col].clone();
                    for (v, pv) in a[r].iter_mut().zip(pivot_row) {
                        *v -= f * pv;
                    }
                }
            }
        }
    }
    a.into_iter().map(|row| row[d..].to_vec()).collect()
}

/// One preview per batch item of `f_hat` `(B, Cvae, h, w)`; `base` `(B, 3, h, w)` in [0, 1] is added
/// to the mapped colours (a residual model's bicubic base).
pub fn latent_previews(
    engine: &Engine,
    f_hat: &Tensor,
    base: Option<&Tensor>,
) -> Result<Vec<PreviewImage>> {
    let map = engine.preview_map()?;
    let (b, cv, h, w) = f_hat.dims4()?;
    let flat = f_hat
        .to_dtype(DType::F32)?
        .reshape((b, cv, h * w))?
        .transpose(1, 2)?;
    let ones = Tensor::ones((b, h * w, 1), DType::F32, f_hat.device())?;
    let mut rgb = Tensor::cat(&[&flat, &ones], 2)?.broadcast_matmul(&map.to_dtype(DType::F32)?)?;
    if let Some(b) = base {
        let b = b
            .to_dtype(DType::F32)?
            .reshape((b.dim(0)?, 3, h * w))?
            .transpose(1, 2)?;
        rgb = (rgb + b)?;
    }
    let rgb = (rgb.clamp(0f32, 1f32)? * 255.0)?
        .round()?
        .to_device(&Device::Cpu)?;
    let data = rgb.to_vec3::<f32>()?;
    Ok(data
        .into_iter()
        .map(|img| PreviewImage {
            width: w,
            height: h,
            rgb: img.into_iter().flatten().map(|v| v as u8).collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_squares_recovers_an_exact_affine_map() {
        let mut noise = SeededNoise::new(3);
        let xs: Vec<Vec<f64>> = (0..50)
            .map(|_| noise.normal(4).into_iter().map(f64::from).collect())
            .collect();
        let truth = [
            [0.5, -1.0],
            [2.0, 0.0],
            [0.0, 0.25],
            [-0.75, 1.5],
            [0.1, -0.2],
        ]; // last row = bias
        let ys: Vec<Vec<f64>> = xs
            .iter()
            .map(|x| {
                (0..2)
                    .map(|j| truth[4][j] + (0..4).map(|i| x[i] * truth[i][j]).sum::<f64>())
                    .collect()
            })
            .collect();
        let w = least_squares(&xs, &ys, 0.0);
        for i in 0..5 {
            for j in 0..2 {
                assert!(
                    (w[i][j] - truth[i][j]).abs() < 1e-9,
                    "w[{i}][{j}] = {}",
                    w[i][j]
                );
            }
        }
    }
}
