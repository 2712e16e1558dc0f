//! GroupNorm, optionally followed by SiLU, in one pass on the CPU.
//!
//! candle_nn's `GroupNorm` is composed of eight tensor operations, each a full pass over the
//! activations with a fresh allocation; at the decoder's 160×512×512 that is 170 MB a pass, and with
//! the SiLU that follows every norm but the attention's, the norms cost as much as the (Winograd)
//! convolutions. Here: statistics per group in f64 (two passes: mean, then squared deviations, as
//! torch's reference does), then one pass that normalises, applies the affine and the SiLU, split
//! over candle's threads by group. Other devices and dtypes, and tensors that need gradients, use the
//! composed form.

use candle_core::{Module, Result, Tensor};

use super::cpu::{fast_path, for_each_chunk, sum8, with_f32};
use super::silu::silu_value;

/// `GroupNorm(groups, C, eps)` with learned `weight` and `bias` `(C,)`, then SiLU if `silu`.
pub fn group_norm(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    groups: usize,
    eps: f64,
    silu: bool,
) -> Result<Tensor> {
    let fast = fast_path(&[x, weight, bias]);
    let (n, c) = (x.dim(0)?, x.dim(1)?);
    if !c.is_multiple_of(groups) {
        candle_core::bail!("group_norm: {c} channels do not split into {groups} groups");
    }
    if !fast {
        let y = composed(x, weight, bias, groups, eps)?;
        return if silu { y.silu() } else { Ok(y) };
    }
    let per_channel = x.elem_count() / (n * c).max(1);
    let (w, b) = (weight.to_vec1::<f32>()?, bias.to_vec1::<f32>()?);
    let cg = c / groups;
    let len = cg * per_channel;
    let out = with_f32(x, "group_norm", |xs| {
        let mut out = vec![0f32; xs.len()];
        if len > 0 {
            for_each_chunk(&mut out, len, |i, dst| {
                super::simd::dispatch!({
                    let src = &xs[i * len..(i + 1) * len];
                    let mean = sum8(src, f64::from) / len as f64;
                    let var = sum8(src, |v| (f64::from(v) - mean).powi(2)) / len as f64;
                    let rstd = 1.0 / (var + eps).sqrt();
                    let first = (i % groups) * cg;
                    for (ch, (d, s)) in dst
                        .chunks_exact_mut(per_channel)
                        .zip(src.chunks_exact(per_channel))
                        .enumerate()
                    {
                        let scale = (rstd * w[first + ch] as f64) as f32;
                        let shift =
                            (b[first + ch] as f64 - mean * rstd * w[first + ch] as f64) as f32;
                        if silu {
                            for (o, &v) in d.iter_mut().zip(s) {
                                *o = silu_value(v * scale + shift);
                            }
                        } else {
                            for (o, &v) in d.iter_mut().zip(s) {
                                *o = v * scale + shift;
                            }
                        }
                    }
                })
            });
        }
        Ok(out)
    })?;
    Tensor::from_vec(out, x.shape(), x.device())
}

/// candle_nn's `GroupNorm` (statistics in f32, differentiable).
fn composed(x: &Tensor, weight: &Tensor, bias: &Tensor, groups: usize, eps: f64) -> Result<Tensor> {
    let c = x.dim(1)?;
    candle_nn::GroupNorm::new(weight.clone(), bias.clone(), c, groups, eps)?.forward(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Against torch's definition computed in f64 here, for both paths (the composed one is what
    /// other devices and training use).
    #[test]
    fn matches_the_definition() -> Result<()> {
        let dev = Device::Cpu;
        for (n, c, h, w, groups) in [(2, 8, 5, 7, 4), (1, 64, 33, 31, 32), (1, 6, 1, 1, 3)] {
            // An offset mean: the two-pass variance must not lose it.
            let x = (Tensor::randn(0f32, 2f32, (n, c, h, w), &dev)? + 3.0)?;
            let wt = Tensor::randn(1f32, 0.5f32, c, &dev)?;
            let bs = Tensor::randn(0f32, 0.5f32, c, &dev)?;
            let xs = x.flatten_all()?.to_vec1::<f32>()?;
            let (wv, bv) = (wt.to_vec1::<f32>()?, bs.to_vec1::<f32>()?);
            let len = c / groups * h * w;
            let mut want = vec![0f64; xs.len()];
            // What f32 cannot do better: `x − mean` carries an error of about one ulp of |x| +
            // |mean|, which normalising divides by σ (large when a group of few values is nearly
            // flat, e.g. 2 values 0.1 apart).
            let mut f32_limit = vec![0f64; xs.len()];
            for (gi, grp) in xs.chunks(len).enumerate() {
                let mean = grp.iter().map(|&v| v as f64).sum::<f64>() / len as f64;
                let var = grp.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / len as f64;
                let sd = (var + 1e-6).sqrt();
                for (k, &v) in grp.iter().enumerate() {
                    let ch = (gi % groups) * (c / groups) + k / (h * w);
                    want[gi * len + k] = (v as f64 - mean) / sd * wv[ch] as f64 + bv[ch] as f64;
                    f32_limit[gi * len + k] = 4.0
                        * f32::EPSILON as f64
                        * (v.abs() as f64 + mean.abs())
                        * (wv[ch] as f64).abs()
                        / sd;
                }
            }
            for silu in [false, true] {
                let fast = group_norm(&x, &wt, &bs, groups, 1e-6, silu)?;
                let slow = composed(&x, &wt, &bs, groups, 1e-6)?;
                let slow = if silu { slow.silu()? } else { slow };
                for (label, got) in [("fused", fast), ("composed", slow)] {
                    let got = got.flatten_all()?.to_vec1::<f32>()?;
                    for ((&g, &y), &limit) in got.iter().zip(&want).zip(&f32_limit) {
                        let y = if silu { y / (1.0 + (-y).exp()) } else { y };
                        assert!(
                            (g as f64 - y).abs() < 1e-5 * (1.0 + y.abs()) + limit,
                            "{label} (silu {silu}) {n}×{c}×{h}×{w}/{groups}: {g} vs {y}"
                        );
                    }
                }
            }
        }
        Ok(())
    }
}
