//! LayerNorm without affine parameters followed by AdaLN's modulation, `LN(x)·scale + shift`, in one
//! pass on the CPU.
//!
//! The transformer and the refiner run it twice per block on every token; composed from tensor
//! operations it takes nine passes over the activations, several with broadcasting. Statistics are
//! the reference's (mean, then the mean of squared deviations, in f32); other devices and dtypes,
//! and tensors that need gradients, use the composed form.

use candle_core::{D, DType, Result, Tensor};

use super::cpu::{fast_path, for_each_row_block, sum8, with_f32};

pub const LN_EPS: f64 = 1e-6;

/// `layer_norm(x)` over the last dimension without affine parameters (`ln_wo_grad`), eps 1e-6.
pub fn layer_norm(x: &Tensor) -> Result<Tensor> {
    let x32 = x.to_dtype(DType::F32)?;
    let mean = x32.mean_keepdim(D::Minus1)?;
    let centered = x32.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    centered
        .broadcast_div(&(var + LN_EPS)?.sqrt()?)?
        .to_dtype(x.dtype())
}

/// `layer_norm(x)·scale + shift`. `x` is `(…, C)`; `scale` and `shift` are `(C,)` (one for all rows,
/// LayerNorm's affine parameters), `(B, 1, C)` for an `x` of `(B, L, C)` (one per sequence) or have
/// `x`'s shape (one per row).
pub fn layer_norm_modulate(x: &Tensor, scale: &Tensor, shift: &Tensor) -> Result<Tensor> {
    let fast = fast_path(&[x, scale, shift]);
    if !fast {
        return layer_norm(x)?.broadcast_mul(scale)?.broadcast_add(shift);
    }
    let c = x.dim(D::Minus1)?;
    let rows = x.elem_count() / c.max(1);
    let mod_rows = scale.elem_count() / c.max(1);
    if c == 0
        || mod_rows == 0
        || !rows.is_multiple_of(mod_rows)
        || shift.elem_count() != scale.elem_count()
    {
        candle_core::bail!(
            "layer_norm_modulate: modulation {:?} does not fit {:?}",
            scale.dims(),
            x.dims()
        );
    }
    let per_mod = rows / mod_rows;
    let (scale, shift) = (
        scale.flatten_all()?.to_vec1::<f32>()?,
        shift.flatten_all()?.to_vec1::<f32>()?,
    );
    let out = with_f32(x, "layer_norm_modulate", |xs| {
        let mut out = vec![0f32; xs.len()];
        for_each_row_block(&mut out, c, 65_536, |first, dst| {
            super::simd::dispatch!({
                for (k, (d, s)) in dst
                    .chunks_exact_mut(c)
                    .zip(xs[first * c..].chunks_exact(c))
                    .enumerate()
                {
                    let m = (first + k) / per_mod;
                    let (sc, sh) = (&scale[m * c..(m + 1) * c], &shift[m * c..(m + 1) * c]);
                    let (mean, rstd) = row_stats(s);
                    for (((o, &v), &a), &b) in d.iter_mut().zip(s).zip(sc).zip(sh) {
                        *o = (v - mean) * rstd * a + b;
                    }
                }
            })
        });
        Ok(out)
    })?;
    Tensor::from_vec(out, x.shape(), x.device())
}

/// Mean and `1/√(var + eps)` of one row, in f32 as the reference computes them.
#[inline(always)]
pub(crate) fn row_stats(s: &[f32]) -> (f32, f32) {
    let c = s.len() as f32;
    let mean = sum8(s, |v| v) / c;
    let var = sum8(s, |v| (v - mean) * (v - mean)) / c;
    (mean, 1.0 / (var + LN_EPS as f32).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Against the definition in f64, for both modulation layouts and a row length with a tail.
    #[test]
    fn matches_the_definition() -> Result<()> {
        let dev = Device::Cpu;
        for (b, l, c, per_row) in [(2, 300, 64, false), (1, 5, 37, true), (3, 70, 1536, false)] {
            let x = (Tensor::randn(0f32, 3f32, (b, l, c), &dev)? + 5.0)?;
            let mshape = if per_row { (b, l, c) } else { (b, 1, c) };
            let scale = Tensor::randn(1f32, 0.3, mshape, &dev)?;
            let shift = Tensor::randn(0f32, 0.3, mshape, &dev)?;
            let got = layer_norm_modulate(&x, &scale, &shift)?;
            let composed = layer_norm(&x)?
                .broadcast_mul(&scale)?
                .broadcast_add(&shift)?;
            let xs = x.flatten_all()?.to_vec1::<f32>()?;
            let (sv, hv) = (
                scale.flatten_all()?.to_vec1::<f32>()?,
                shift.flatten_all()?.to_vec1::<f32>()?,
            );
            let per_mod = if per_row { 1 } else { l };
            let mut want = Vec::with_capacity(xs.len());
            for (r, row) in xs.chunks(c).enumerate() {
                let mean = row.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
                let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / c as f64;
                let m = r / per_mod;
                for (j, &v) in row.iter().enumerate() {
                    let n = (v as f64 - mean) / (var + LN_EPS).sqrt();
                    want.push(n * sv[m * c + j] as f64 + hv[m * c + j] as f64);
                }
            }
            for (label, t) in [("fused", got), ("composed", composed)] {
                for (&g, &w) in t.flatten_all()?.to_vec1::<f32>()?.iter().zip(&want) {
                    assert!(
                        (g as f64 - w).abs() < 2e-5 * (1.0 + w.abs()),
                        "{label} {b}×{l}×{c}: {g} vs {w}"
                    );
                }
            }
        }
        Ok(())
    }
}
