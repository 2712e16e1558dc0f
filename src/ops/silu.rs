//! SiLU, `x·σ(x)`, fast on the CPU: candle's kernel calls libm's `expf` once per value. The refiner
//! applies it to every token twice per block and step, the LR encoder after each convolution.
//! Tensors that need gradients, other devices and dtypes use candle's kernel.

use candle_core::{Result, Tensor};
use candle_nn::Linear;

use super::cpu::fast_path;
use super::pointwise::{MapOp, after_linear, exp};

/// `silu(x) = x / (1 + e^−x)`.
pub fn silu(x: &Tensor) -> Result<Tensor> {
    if !fast_path(&[x]) {
        return x.silu();
    }
    x.contiguous()?
        .apply_op1_no_bwd(&MapOp("silu-fast", silu_value))
}

/// `silu(lin(x))` with the bias added inside the activation's pass (see [`after_linear`]).
pub fn silu_after(lin: &Linear, x: &Tensor) -> Result<Tensor> {
    after_linear(lin, x, silu_value, silu)
}

/// `x / (1 + e^−x)` for one value.
#[inline(always)]
pub(crate) fn silu_value(v: f32) -> f32 {
    v / (1.0 + exp(-v))
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
