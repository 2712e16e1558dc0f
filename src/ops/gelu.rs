//! GELU with the tanh approximation (`nn.GELU(approximate='tanh')`), fast on the CPU.
//!
//! candle's CPU kernel calls libm's `tanhf` once per value on one thread: 36 ns a value, which made
//! the transformer's MLP activation cost more than its matrix products. Here the same function is
//! written as `x·σ(2u)` (an identity: ½(1 + tanh u) = σ(2u)), with `u = √(2/π)·(x + 0.044715x³)`
//! and a branch-free `exp` the compiler vectorises, split over candle's threads. Other devices and
//! dtypes use candle's kernel.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use candle_nn::Linear;

use super::pointwise::{MapOp, after_linear, exp};

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const CUBIC: f32 = 0.044715;

/// `gelu(lin(x))` with the layer's bias added inside the activation's pass (the transformer's widest
/// activations; see [`after_linear`]).
pub fn gelu_after(lin: &Linear, x: &Tensor) -> Result<Tensor> {
    after_linear(lin, x, gelu_value, gelu)
}

/// `gelu_tanh(x)`, differentiable.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return x.gelu();
    }
    x.contiguous()?.apply_op1(Gelu)
}

#[inline(always)]
fn gelu_value(v: f32) -> f32 {
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

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu-tanh-fast"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        MapOp(self.name(), gelu_value).cpu_fwd(s, l)
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let slope = arg
            .contiguous()?
            .apply_op1_no_bwd(&MapOp("gelu-tanh-slope", gelu_slope))?;
        Ok(Some(grad_res.mul(&slope)?))
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
