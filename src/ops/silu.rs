//! SiLU, `x·σ(x)`, fast on the CPU: candle's kernel calls libm's `expf` once per value. The refiner
//! applies it to every token twice per block and step, the LR encoder after each convolution.
//! Tensors that need gradients, other devices and dtypes use candle's kernel.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::cpu::fast_path;
use super::gelu::{exp, map};

/// `silu(x) = x / (1 + e^−x)`.
pub fn silu(x: &Tensor) -> Result<Tensor> {
    if !fast_path(&[x]) {
        return x.silu();
    }
    x.contiguous()?.apply_op1_no_bwd(&Silu)
}

struct Silu;

impl CustomOp1 for Silu {
    fn name(&self) -> &'static str {
        "silu-fast"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let xs = super::cpu::contiguous_f32(s, l, self.name())?;
        Ok((
            CpuStorage::F32(map(xs, |v| v / (1.0 + exp(-v)))),
            l.shape().clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Against the f64 definition over the range where the exponential neither saturates nor
    /// vanishes, and at its saturated ends.
    #[test]
    fn matches_the_definition() -> Result<()> {
        let xs: Vec<f32> = (-3000..=3000)
            .map(|i| i as f32 * 0.03)
            .chain([-200.0, -90.0, 90.0, 200.0])
            .collect();
        let t = Tensor::new(xs.as_slice(), &Device::Cpu)?;
        for (&x, &g) in xs.iter().zip(&silu(&t)?.to_vec1::<f32>()?) {
            let want = x as f64 / (1.0 + (-(x as f64)).exp());
            assert!(
                (g as f64 - want).abs() <= 2e-7 * (1.0 + want.abs()),
                "{x}: {g} vs {want}"
            );
        }
        Ok(())
    }
}
