//! GELU with the tanh approximation (`nn.GELU(approximate='tanh')`), fast on the CPU.
//!
//! candle's CPU kernel calls libm's `tanhf` once per value on one thread: 36 ns a value, which made
//! the transformer's MLP activation cost more than its matrix products. Here the same function is
//! written as `x·σ(2u)` (an identity: ½(1 + tanh u) = σ(2u)), with `u = √(2/π)·(x + 0.044715x³)`
//! and a branch-free `exp` the compiler vectorises, split over candle's threads. Other devices and
//! dtypes use candle's kernel.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Module, Result, Shape, Tensor};
use candle_nn::Linear;

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const CUBIC: f32 = 0.044715;
/// Below this many values one thread is faster than starting more.
const PARALLEL_MIN: usize = 1 << 16;

/// `gelu_tanh(x)`, differentiable.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return x.gelu();
    }
    x.contiguous()?.apply_op1(Gelu)
}

/// `gelu(lin(x))` with the layer's bias added inside the activation's pass rather than in a pass of
/// its own over the layer's output (the transformer's widest activations): the same values, since the
/// sum is the same f32 addition. Tensors that need gradients take the composed form.
pub fn gelu_after(lin: &Linear, x: &Tensor) -> Result<Tensor> {
    match split_bias(lin, x)? {
        Some((y, bias)) => Ok(Tensor::from_vec(
            map_biased(&y, &bias, gelu_value)?,
            y.shape(),
            y.device(),
        )?),
        None => gelu(&lin.forward(x)?),
    }
}

/// `x·Wᵀ` and the bias values of `lin` when the fused CPU path applies.
pub(crate) fn split_bias(lin: &Linear, x: &Tensor) -> Result<Option<(Tensor, Vec<f32>)>> {
    let Some(bias) = lin.bias() else {
        return Ok(None);
    };
    if !super::cpu::fast_path(&[x, lin.weight(), bias]) {
        return Ok(None);
    }
    let y = Linear::new(lin.weight().clone(), None).forward(x)?;
    Ok(Some((y, bias.to_vec1::<f32>()?)))
}

/// `f(y + bias)` over the rows of `y` (contiguous rows of `bias.len()` values).
pub(crate) fn map_biased<F: Fn(f32) -> f32 + Copy + Send + Sync>(
    y: &Tensor,
    bias: &[f32],
    f: F,
) -> Result<Vec<f32>> {
    let n = bias.len().max(1);
    super::cpu::with_f32(y, "map_biased", |ys| {
        if ys.len() % n != 0 {
            candle_core::bail!("map_biased: {} values in rows of {n}", ys.len());
        }
        let mut out = vec![0f32; ys.len()];
        super::cpu::for_each_row_block(&mut out, n, PARALLEL_MIN, |first, dst| {
            let src = &ys[first * n..][..dst.len()];
            super::simd::dispatch!({
                for (d, s) in dst.chunks_exact_mut(n).zip(src.chunks_exact(n)) {
                    for ((o, &v), &b) in d.iter_mut().zip(s).zip(bias) {
                        *o = f(v + b);
                    }
                }
            })
        });
        Ok(out)
    })
}

/// `e^x` for f32, within 2 ulp on [-87, 88] (Cephes' `expf` polynomial); saturates outside.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // 1.5·2²³: adding it rounds to an integer held in the low mantissa bits.
    const SHIFTER: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + SHIFTER;
    let n = t - SHIFTER;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let p = p * r * r + r + 1.0;
    let k = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    p * f32::from_bits(((k + 127) << 23) as u32)
}

#[inline(always)]
pub(crate) fn gelu_value(v: f32) -> f32 {
    let u = SQRT_2_OVER_PI * (v + CUBIC * v * v * v);
    v / (1.0 + exp(-2.0 * u))
}

/// d gelu / dx = s + x·s(1 − s)·2u′, with s = σ(2u).
#[inline(always)]
fn gelu_slope(v: f32) -> f32 {
    let u = SQRT_2_OVER_PI * (v + CUBIC * v * v * v);
    let du = SQRT_2_OVER_PI * (1.0 + 3.0 * CUBIC * v * v);
    let s = 1.0 / (1.0 + exp(-2.0 * u));
    s + v * s * (1.0 - s) * 2.0 * du
}

/// `f` over `xs`, in chunks on candle's thread count when there is enough work.
pub(crate) fn map<F: Fn(f32) -> f32 + Copy + Send + Sync>(xs: &[f32], f: F) -> Vec<f32> {
    let mut out = vec![0f32; xs.len()];
    let threads = super::cpu::num_threads();
    let chunk = PARALLEL_MIN.max(xs.len().div_ceil(threads));
    super::cpu::for_each_chunk(&mut out, chunk, |i, dst| {
        let src = &xs[i * chunk..][..dst.len()];
        super::simd::dispatch!({
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = f(s);
            }
        })
    });
    out
}

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu-tanh-fast"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let xs = super::cpu::contiguous_f32(s, l, self.name())?;
        Ok((CpuStorage::F32(map(xs, gelu_value)), l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let slope = arg.contiguous()?.apply_op1_no_bwd(&GeluSlope)?;
        Ok(Some(grad_res.mul(&slope)?))
    }
}

struct GeluSlope;

impl CustomOp1 for GeluSlope {
    fn name(&self) -> &'static str {
        "gelu-tanh-slope"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let xs = super::cpu::contiguous_f32(s, l, self.name())?;
        Ok((CpuStorage::F32(map(xs, gelu_slope)), l.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn grid() -> Vec<f32> {
        let mut v: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 0.0025).collect();
        v.extend([
            -1e4, -200.0, -90.0, -45.0, -0.0, 1e-30, 45.0, 90.0, 200.0, 1e4,
        ]);
        v
    }

    #[test]
    fn exp_matches_libm() {
        for i in -870..880 {
            let x = i as f32 * 0.1 + 0.0123;
            let (got, want) = (exp(x), (x as f64).exp());
            let rel = ((got as f64 - want) / want).abs();
            assert!(rel < 3e-7, "exp({x}) = {got}, libm {want}");
        }
    }

    /// Against the textbook formula in f64 (and so against candle's and torch's f32 kernels, which
    /// round that formula).
    #[test]
    fn values_match_the_tanh_formula() -> Result<()> {
        let xs = grid();
        let got = gelu(&Tensor::new(xs.as_slice(), &Device::Cpu)?)?.to_vec1::<f32>()?;
        for (&x, &g) in xs.iter().zip(&got) {
            let x64 = x as f64;
            let u = (2.0 / std::f64::consts::PI).sqrt() * (x64 + 0.044715 * x64.powi(3));
            let want = 0.5 * x64 * (1.0 + u.tanh());
            assert!(
                (g as f64 - want).abs() <= 2e-7 * (1.0 + want.abs()),
                "gelu({x}) = {g}, want {want}"
            );
        }
        // Large tensors take the threaded path.
        let big: Vec<f32> = (0..200_003)
            .map(|i| (i % 2000) as f32 * 0.004 - 4.0)
            .collect();
        let t = Tensor::new(big.as_slice(), &Device::Cpu)?;
        let d = (gelu(&t)? - t.gelu()?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(
            d < 1e-6,
            "threaded path differs from candle's kernel by {d}"
        );
        Ok(())
    }

    #[test]
    fn gradient_matches_candles_gelu() -> Result<()> {
        let xs: Vec<f32> = (-300..=300).map(|i| i as f32 * 0.02).collect();
        let x = Var::new(xs.as_slice(), &Device::Cpu)?;
        let probe = Tensor::new(
            xs.iter().map(|v| (v * 7.0).sin()).collect::<Vec<f32>>(),
            &Device::Cpu,
        )?;
        let ours = (gelu(x.as_tensor())? * &probe)?.sum_all()?.backward()?;
        let theirs = (x.as_tensor().gelu()? * &probe)?.sum_all()?.backward()?;
        let (a, b) = (
            ours.get(x.as_tensor()).expect("grad"),
            theirs.get(x.as_tensor()).expect("grad"),
        );
        let d = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-5, "gradients differ by {d}");
        Ok(())
    }
}
