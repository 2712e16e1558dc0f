//! The refiner's AdaLN steps with a per-row modulation, in one pass each on the CPU.
//!
//! `SimpleMLPAdaLN` modulates every row (token) with its own shift, scale and gate, cut from one
//! `(N, k·C)` projection. Composed from tensor operations, a block takes seven passes over the
//! activations, three of them through strided column slices of the projection; the refiner runs
//! its blocks twice per token at each of its 10 steps. The fast forms compute the same values in
//! the same order (so the same bits); other devices, dtypes and tensors that need gradients use the
//! composed forms.

use candle_core::{D, Result, Tensor};

use super::cpu::{fast_path, for_each_row_block, with_f32s};
use super::layer_norm::{layer_norm, layer_norm_modulate, row_stats};

/// Values per task: the refiner's rows are short and many.
const ROW_BLOCK: usize = 16_384;

/// `(LN(h)·w + b)·(1 + m[:, C..2C]) + m[:, ..C]`, the LayerNorm affine when `affine` is given.
/// `h` is `(…, C)`, `m` has as many rows and `parts·C` columns (shift, scale, then the rest).
pub fn modulate(
    h: &Tensor,
    affine: Option<(&Tensor, &Tensor)>,
    m: &Tensor,
    parts: usize,
) -> Result<Tensor> {
    let c = h.dim(D::Minus1)?;
    check(h, m, parts, "modulate")?;
    let mut inputs = vec![h, m];
    inputs.extend(affine.iter().flat_map(|(w, b)| [*w, *b]));
    if !fast_path(&inputs) {
        let shift = m.narrow(D::Minus1, 0, c)?;
        let scale = (m.narrow(D::Minus1, c, c)? + 1.0)?;
        let base = match affine {
            Some((w, b)) => layer_norm_modulate(h, w, b)?,
            None => layer_norm(h)?,
        };
        return base.broadcast_mul(&scale)?.broadcast_add(&shift);
    }
    // `inputs` is h, m, then the affine weight and bias when given.
    let out = with_f32s(&inputs, "modulate", |v| {
        let (hs, ms) = (v[0], v[1]);
        let affine = v.get(2).zip(v.get(3));
        let mut out = vec![0f32; hs.len()];
        for_each_row_block(&mut out, c, ROW_BLOCK, |first, dst| {
            super::simd::dispatch!({
                for (k, (d, s)) in dst
                    .chunks_exact_mut(c)
                    .zip(hs[first * c..].chunks_exact(c))
                    .enumerate()
                {
                    let (sh, sc) = ms[(first + k) * parts * c..][..2 * c].split_at(c);
                    let (mean, rstd) = row_stats(s);
                    match &affine {
                        Some((w, b)) => {
                            for j in 0..c {
                                let n = (s[j] - mean) * rstd * w[j] + b[j];
                                d[j] = n * (sc[j] + 1.0) + sh[j];
                            }
                        }
                        None => {
                            for j in 0..c {
                                d[j] = (s[j] - mean) * rstd * (sc[j] + 1.0) + sh[j];
                            }
                        }
                    }
                }
            })
        });
        Ok(out)
    })?;
    Tensor::from_vec(out, h.shape(), h.device())
}

/// `h + x·m[:, 2C..3C]`: the residual with its per-row gate, `m` as in [`modulate`].
pub fn gated_residual(h: &Tensor, x: &Tensor, m: &Tensor, parts: usize) -> Result<Tensor> {
    let c = h.dim(D::Minus1)?;
    check(h, m, parts, "gated_residual")?;
    if parts < 3 || x.shape() != h.shape() {
        candle_core::bail!(
            "gated_residual: {:?} and {:?} with {parts} parts of {:?}",
            h.dims(),
            x.dims(),
            m.dims()
        );
    }
    if !fast_path(&[h, x, m]) {
        return h + x.broadcast_mul(&m.narrow(D::Minus1, 2 * c, c)?)?;
    }
    let out = with_f32s(&[h, x, m], "gated_residual", |v| {
        let (hs, xs, ms) = (v[0], v[1], v[2]);
        let mut out = vec![0f32; hs.len()];
        for_each_row_block(&mut out, c, ROW_BLOCK, |first, dst| {
            super::simd::dispatch!({
                for (k, d) in dst.chunks_exact_mut(c).enumerate() {
                    let r = first + k;
                    let (hr, xr) = (&hs[r * c..][..c], &xs[r * c..][..c]);
                    let g = &ms[(r * parts + 2) * c..][..c];
                    for j in 0..c {
                        d[j] = hr[j] + xr[j] * g[j];
                    }
                }
            })
        });
        Ok(out)
    })?;
    Tensor::from_vec(out, h.shape(), h.device())
}

fn check(h: &Tensor, m: &Tensor, parts: usize, op: &str) -> Result<()> {
    let c = h.dim(D::Minus1)?;
    let rows = h.elem_count() / c.max(1);
    if c == 0 || parts < 2 || m.dim(D::Minus1)? != parts * c || m.elem_count() != rows * parts * c {
        candle_core::bail!(
            "{op}: modulation {:?} does not fit {:?} in {parts} parts",
            m.dims(),
            h.dims()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::layer_norm::LN_EPS;
    use candle_core::{Device, Var};

    /// Against the definition in f64, with and without the affine part, widths with and without
    /// vector tails, and more rows than one thread's share.
    #[test]
    fn matches_the_definition() -> Result<()> {
        let dev = Device::Cpu;
        for (rows, c, parts, affine) in [(3000, 128, 3, true), (7, 37, 2, false), (5, 64, 3, false)]
        {
            let h = (Tensor::randn(0f32, 2f32, (rows, c), &dev)? + 3.0)?;
            let m = Tensor::randn(0f32, 0.5, (rows, parts * c), &dev)?;
            let w = Tensor::randn(1f32, 0.2, c, &dev)?;
            let b = Tensor::randn(0f32, 0.2, c, &dev)?;
            let aff = affine.then_some((&w, &b));
            let got = modulate(&h, aff, &m, parts)?.to_vec2::<f32>()?;
            let (hv, mv) = (h.to_vec2::<f32>()?, m.to_vec2::<f32>()?);
            let (wv, bv) = (w.to_vec1::<f32>()?, b.to_vec1::<f32>()?);
            for r in 0..rows {
                let row = &hv[r];
                let mean = row.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
                let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / c as f64;
                for j in 0..c {
                    let mut n = (row[j] as f64 - mean) / (var + LN_EPS).sqrt();
                    if affine {
                        n = n * wv[j] as f64 + bv[j] as f64;
                    }
                    let want = n * (1.0 + mv[r][c + j] as f64) + mv[r][j] as f64;
                    let g = got[r][j] as f64;
                    assert!(
                        (g - want).abs() < 2e-5 * (1.0 + want.abs()),
                        "{r},{j}: {g} vs {want}"
                    );
                }
            }
            if parts == 3 {
                let x = Tensor::randn(0f32, 1f32, (rows, c), &dev)?;
                let got = gated_residual(&h, &x, &m, parts)?.to_vec2::<f32>()?;
                let xv = x.to_vec2::<f32>()?;
                for r in 0..rows {
                    for j in 0..c {
                        let want = hv[r][j] as f64 + xv[r][j] as f64 * mv[r][2 * c + j] as f64;
                        assert!((got[r][j] as f64 - want).abs() < 1e-5 * (1.0 + want.abs()));
                    }
                }
            }
        }
        Ok(())
    }

    /// The one-pass forms give the bits of what the refiner composed before them (the fused
    /// LayerNorm kernel, then candle's broadcast operations on the projection's column slices).
    #[test]
    fn one_pass_forms_give_the_composed_bits() -> Result<()> {
        let dev = Device::Cpu;
        let (rows, c) = (300, 128);
        let h = Tensor::randn(0f32, 2f32, (rows, c), &dev)?;
        let m = Tensor::randn(0f32, 0.5, (rows, 3 * c), &dev)?;
        let w = Tensor::randn(1f32, 0.2, c, &dev)?;
        let b = Tensor::randn(0f32, 0.2, c, &dev)?;
        let x = Tensor::randn(0f32, 1f32, (rows, c), &dev)?;
        let part = |k: usize| m.narrow(D::Minus1, k * c, c);
        let bits = super::super::cpu::bits;
        let scale = (part(1)? + 1.0)?;
        let affine = layer_norm_modulate(&h, &w, &b)?
            .broadcast_mul(&scale)?
            .broadcast_add(&part(0)?)?;
        assert!(bits(&modulate(&h, Some((&w, &b)), &m, 3)?)? == bits(&affine)?);
        let plain = layer_norm_modulate(&h, &scale, &part(0)?)?;
        assert!(bits(&modulate(&h, None, &m, 3)?)? == bits(&plain)?);
        let gated = (&h + x.broadcast_mul(&part(2)?)?)?;
        assert!(bits(&gated_residual(&h, &x, &m, 3)?)? == bits(&gated)?);
        Ok(())
    }

    /// Tensors that track gradients take the composed, differentiable forms.
    #[test]
    fn gradients_flow_through_the_composed_forms() -> Result<()> {
        let dev = Device::Cpu;
        let (rows, c) = (4, 8);
        let h = Var::from_tensor(&Tensor::randn(0f32, 1f32, (rows, c), &dev)?)?;
        let m = Var::from_tensor(&Tensor::randn(0f32, 0.5, (rows, 3 * c), &dev)?)?;
        let x = modulate(h.as_tensor(), None, m.as_tensor(), 3)?;
        let y = gated_residual(h.as_tensor(), &x, m.as_tensor(), 3)?;
        let grads = y.sum_all()?.backward()?;
        for v in [&h, &m] {
            let g = grads.get(v.as_tensor()).expect("a gradient");
            assert!(g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
        }
        Ok(())
    }
}
