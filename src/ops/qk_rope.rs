//! The attention's input preparation in one pass on the CPU: split the fused `qkv` projection into
//! heads, L2-normalise q and k, scale q by its per-head multiplier, and rotate both by the 2-D RoPE.
//!
//! Composed from tensor operations this is a permute, two normalisations of five passes each, a
//! broadcast multiply and two RoPE applications that gather pairs through a strided copy: at the
//! built-in model's sizes these small passes cost more than the attention's matrix products. The
//! arithmetic and its order are the composed form's (`x / max(‖x‖, 1e-12)`, then `· scale`, then
//! `x·cos + swap(x)·sin`); the caller keeps the composed form for other devices, dtypes and
//! training.

use candle_core::{DType, Result, Tensor};

use super::cpu::{fast_path, for_each_chunk, with_f32s};

/// True when [`split_heads`] can run on these tensors.
pub fn applies(qkv: &Tensor) -> bool {
    fast_path(&[qkv])
}

/// `qkv` `(B, L, 3·H·D)` → `(q, k, v)`, each `(B, H, L, D)` contiguous, with q and k normalised and
/// rotated (`cos`, `sin`: `(L, D)`, pairs interleaved, `sin` carrying the rotation's signs) and q
/// multiplied by `q_scale[h]` (`(1, H, 1, 1)`).
pub fn split_heads(
    qkv: &Tensor,
    heads: usize,
    q_scale: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (b, l, c3) = qkv.dims3()?;
    let d = c3 / (3 * heads).max(1);
    if d == 0 || d % 2 == 1 || 3 * heads * d != c3 || cos.dims() != [l, d] || sin.dims() != [l, d] {
        candle_core::bail!(
            "split_heads: qkv {:?} with {heads} heads does not fit RoPE tables {:?}",
            qkv.dims(),
            cos.dims()
        );
    }
    let scale = q_scale.flatten_all()?.to_vec1::<f32>()?;
    if scale.len() != heads {
        candle_core::bail!(
            "split_heads: {} q multipliers for {heads} heads",
            scale.len()
        );
    }
    let (cos, sin) = (cos.to_dtype(DType::F32)?, sin.to_dtype(DType::F32)?);
    let plane = l * d;
    let part = |which: usize, rotate: bool| -> Result<Tensor> {
        let mut out = vec![0f32; b * heads * plane];
        with_f32s(&[qkv, &cos, &sin], "split_heads", |v| {
            let (xs, cs, sn) = (v[0], v[1], v[2]);
            for_each_chunk(&mut out, plane, |bh, dst| {
                let (bi, h) = (bh / heads, bh % heads);
                let s = if which == 0 { scale[h] } else { 1.0 };
                super::simd::dispatch!(for (t, o) in dst.chunks_exact_mut(d).enumerate() {
                    let at = (bi * l + t) * c3 + (which * heads + h) * d;
                    let x = &xs[at..at + d];
                    if !rotate {
                        o.copy_from_slice(x);
                        continue;
                    }
                    let norm = x.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                    let (c, sn) = (&cs[t * d..(t + 1) * d], &sn[t * d..(t + 1) * d]);
                    for j in (0..d).step_by(2) {
                        let (y0, y1) = (x[j] / norm * s, x[j + 1] / norm * s);
                        o[j] = y0 * c[j] + y1 * sn[j];
                        o[j + 1] = y1 * c[j + 1] + y0 * sn[j + 1];
                    }
                })
            });
            Ok(())
        })?;
        Tensor::from_vec(out, (b, heads, l, d), qkv.device())
    };
    Ok((part(0, true)?, part(1, true)?, part(2, false)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Against the definition in f64: `F.normalize`, the per-head multiplier, then the rotation of
    /// each (even, odd) pair by the table's angle.
    #[test]
    fn matches_the_definition() -> Result<()> {
        let dev = Device::Cpu;
        let (b, l, heads, d) = (2, 7, 3, 8);
        let qkv = Tensor::randn(0f32, 1f32, (b, l, 3 * heads * d), &dev)?;
        let angles: Vec<f32> = (0..l * d / 2).map(|i| i as f32 * 0.37).collect();
        let cos: Vec<f32> = angles.iter().flat_map(|a| [a.cos(), a.cos()]).collect();
        let sin: Vec<f32> = angles.iter().flat_map(|a| [-a.sin(), a.sin()]).collect();
        let q_scale = Tensor::new(&[2.0f32, 0.5, 7.0], &dev)?.reshape((1, heads, 1, 1))?;
        let (q, k, v) = split_heads(
            &qkv,
            heads,
            &q_scale,
            &Tensor::from_vec(cos, (l, d), &dev)?,
            &Tensor::from_vec(sin, (l, d), &dev)?,
        )?;
        let xs = qkv.to_vec3::<f32>()?;
        let scales = [2.0f64, 0.5, 7.0];
        for (which, got) in [(0, q), (1, k), (2, v)] {
            assert_eq!(got.dims(), [b, heads, l, d]);
            let got = got.flatten_all()?.to_vec1::<f32>()?;
            for bi in 0..b {
                for h in 0..heads {
                    for t in 0..l {
                        let x: Vec<f64> = (0..d)
                            .map(|i| xs[bi][t][(which * heads + h) * d + i] as f64)
                            .collect();
                        let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
                        let s = if which == 0 { scales[h] } else { 1.0 };
                        let y: Vec<f64> = x.iter().map(|v| v / norm * s).collect();
                        for j in 0..d / 2 {
                            let a = angles[t * d / 2 + j] as f64;
                            let want = if which == 2 {
                                [x[2 * j], x[2 * j + 1]]
                            } else {
                                [
                                    y[2 * j] * a.cos() - y[2 * j + 1] * a.sin(),
                                    y[2 * j + 1] * a.cos() + y[2 * j] * a.sin(),
                                ]
                            };
                            for (e, w) in want.into_iter().enumerate() {
                                let g = got[((bi * heads + h) * l + t) * d + 2 * j + e] as f64;
                                assert!(
                                    (g - w).abs() < 1e-5 * (1.0 + w.abs()),
                                    "part {which} b{bi} h{h} t{t} {}: {g} vs {w}",
                                    2 * j + e
                                );
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
