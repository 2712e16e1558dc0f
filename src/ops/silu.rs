//! SiLU, `x·σ(x)`, fast on the CPU: candle's kernel calls libm's `expf` once per value. The refiner
//! applies it to every token twice per block and step, the LR encoder after each convolution.
//! Tensors that need gradients, other devices and dtypes use candle's kernel.

use candle_core::{CpuStorage, CustomOp1, Layout, Module, Result, Shape, Tensor};
use candle_nn::Linear;

use super::cpu::fast_path;
use super::gelu::{exp, map, map_biased, split_bias};

/// `silu(x) = x / (1 + e^−x)`.
pub fn silu(x: &Tensor) -> Result<Tensor> {
    if !fast_path(&[x]) {
        return x.silu();
    }
    x.contiguous()?.apply_op1_no_bwd(&Silu)
}

/// `silu(lin(x))` with the bias added inside the activation's pass (see [`super::gelu::gelu_after`]).
pub fn silu_after(lin: &Linear, x: &Tensor) -> Result<Tensor> {
    match split_bias(lin, x)? {
        Some((y, bias)) => Ok(Tensor::from_vec(
            map_biased(&y, &bias, silu_value)?,
            y.shape(),
            y.device(),
        )?),
        None => silu(&lin.forward(x)?),
    }
}

#[inline(always)]
fn silu_value(v: f32) -> f32 {
    v / (1.0 + exp(-v))
}

struct Silu;

impl CustomOp1 for Silu {
    fn name(&self) -> &'static str {
        "silu-fast"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let xs = super::cpu::contiguous_f32(s, l, self.name())?;
        Ok((CpuStorage::F32(map(xs, silu_value)), l.shape().clone()))
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

    /// With the bias inside the activation's pass: the same bits as the layer, then the activation;
    /// and the composed form for tensors that need gradients.
    #[test]
    fn bias_inside_the_pass_gives_the_same_bits() -> Result<()> {
        let dev = Device::Cpu;
        let lin = Linear::new(
            Tensor::randn(0f32, 0.3, (96, 40), &dev)?,
            Some(Tensor::randn(0f32, 1.0, 96, &dev)?),
        );
        let x = Tensor::randn(0f32, 1.0, (3, 700, 40), &dev)?;
        let bits = |t: Tensor| -> Result<Vec<u32>> {
            Ok(t.flatten_all()?
                .to_vec1::<f32>()?
                .iter()
                .map(|v| v.to_bits())
                .collect())
        };
        assert!(bits(silu_after(&lin, &x)?)? == bits(silu(&lin.forward(&x)?)?)?);
        let gelu = super::super::gelu::gelu_after(&lin, &x)?;
        assert!(bits(gelu)? == bits(super::super::gelu::gelu(&lin.forward(&x)?)?)?);
        let xv = candle_core::Var::from_tensor(&x)?;
        let y = silu_after(&lin, xv.as_tensor())?;
        assert!(y.track_op(), "the composed form keeps the graph");
        Ok(())
    }
}
