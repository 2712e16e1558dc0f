//! Element-wise maps for the CPU kernels: a vectorisable `exp`, a function over every value split
//! over the CPU threads, and an activation applied to a linear layer's output with its bias added
//! in the same pass.

use candle_core::{CpuStorage, CustomOp1, Layout, Module, Result, Shape, Tensor};
use candle_nn::Linear;

/// Below this many values one thread is faster than starting more.
const PARALLEL_MIN: usize = 1 << 16;

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

/// `f` over `xs`, in chunks on the CPU threads when there is enough work.
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

/// A custom operation applying `f` to every value of a contiguous f32 tensor (no backward pass).
pub(crate) struct MapOp<F>(pub &'static str, pub F);

impl<F: Fn(f32) -> f32 + Copy + Send + Sync> CustomOp1 for MapOp<F> {
    fn name(&self) -> &'static str {
        self.0
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let xs = super::cpu::contiguous_f32(s, l, self.0)?;
        Ok((CpuStorage::F32(map(xs, self.1)), l.shape().clone()))
    }
}

/// `act(lin(x))` with the layer's bias added inside the activation's pass rather than in a pass of
/// its own over the layer's output: the same values, since the sum is the same f32 addition. `f` is
/// the activation of one value; `composed` the tensor form, for tensors that need gradients, other
/// devices and dtypes, and layers without a bias.
pub(crate) fn after_linear<F: Fn(f32) -> f32 + Copy + Send + Sync>(
    lin: &Linear,
    x: &Tensor,
    f: F,
    composed: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let Some(bias) = lin
        .bias()
        .filter(|b| super::cpu::fast_path(&[x, lin.weight(), b]))
    else {
        return composed(&lin.forward(x)?);
    };
    let y = Linear::new(lin.weight().clone(), None).forward(x)?;
    let out = super::cpu::with_f32s(&[&y, bias], "after_linear", |v| {
        let (ys, bias) = (v[0], v[1]);
        let n = bias.len().max(1);
        if ys.len() % n != 0 {
            candle_core::bail!("after_linear: {} values in rows of {n}", ys.len());
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
    })?;
    Tensor::from_vec(out, y.shape(), y.device())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn exp_matches_libm() {
        for i in -870..880 {
            let x = i as f32 * 0.1 + 0.0123;
            let (got, want) = (exp(x), (x as f64).exp());
            let rel = ((got as f64 - want) / want).abs();
            assert!(rel < 3e-7, "exp({x}) = {got}, libm {want}");
        }
    }

    /// With the bias inside the activation's pass: the bits of the layer, then the activation; and
    /// the composed form for tensors that need gradients.
    #[test]
    fn bias_inside_the_pass_gives_the_same_bits() -> Result<()> {
        use super::super::{gelu, silu};
        let dev = Device::Cpu;
        let lin = Linear::new(
            Tensor::randn(0f32, 0.3, (96, 40), &dev)?,
            Some(Tensor::randn(0f32, 1.0, 96, &dev)?),
        );
        let x = Tensor::randn(0f32, 1.0, (3, 700, 40), &dev)?;
        let bits = super::super::cpu::bits;
        let y = lin.forward(&x)?;
        assert!(bits(&silu::silu_after(&lin, &x)?)? == bits(&silu::silu(&y)?)?);
        assert!(bits(&gelu::gelu_after(&lin, &x)?)? == bits(&gelu::gelu(&y)?)?);
        let xv = Var::from_tensor(&x)?;
        let y = silu::silu_after(&lin, xv.as_tensor())?;
        assert!(y.track_op(), "the composed form keeps the graph");
        Ok(())
    }
}
