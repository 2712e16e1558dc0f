//! Softmax over the last dimension, fast on the CPU.
//!
//! The transformer's attention scores reach 48 × 1024 × 3264 values per block at the last scale;
//! candle's CPU softmax spends about 4 ns a value there (libm's `expf`, three passes), which made
//! the softmax cost more than the two matrix products around it. Here: the same three steps (max,
//! `exp(x − max)` with their sum, division by the sum) with the vectorisable `exp` of
//! [`super::gelu`], rows split over candle's threads. Other devices and dtypes, and tensors that
//! need gradients, use candle's kernel.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::pointwise::exp;

/// `softmax(x, dim = -1)`.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if !super::cpu::fast_path(&[x]) {
        return candle_nn::ops::softmax_last_dim(x);
    }
    x.contiguous()?.apply_op1_no_bwd(&Softmax)
}

struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax-last-dim-fast"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let xs = super::cpu::contiguous_f32(s, l, self.name())?;
        let n = l.dims().last().copied().unwrap_or(1).max(1);
        let mut out = vec![0f32; xs.len()];
        if !xs.is_empty() {
            super::cpu::for_each_row_block(&mut out, n, 65_536, |first, dst| {
                let start = first * n;
                super::simd::dispatch!({
                    for (src, d) in xs[start..start + dst.len()]
                        .chunks_exact(n)
                        .zip(dst.chunks_exact_mut(n))
                    {
                        row(src, d);
                    }
                })
            });
        }
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

#[inline(always)]
fn row(src: &[f32], dst: &mut [f32]) {
    let mut m = [f32::NEG_INFINITY; 8];
    let mut chunks = src.chunks_exact(8);
    for c in &mut chunks {
        for (m, &v) in m.iter_mut().zip(c) {
            *m = m.max(v);
        }
    }
    let max = chunks.remainder().iter().fold(
        m.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        |a, &v| a.max(v),
    );
    for (d, &v) in dst.iter_mut().zip(src) {
        *d = exp(v - max);
    }
    let mut sums = [0f32; 8];
    let mut chunks = dst.chunks_exact(8);
    for c in &mut chunks {
        for (acc, &v) in sums.iter_mut().zip(c) {
            *acc += v;
        }
    }
    let sum = sums.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>();
    for d in dst.iter_mut() {
        *d /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Against the definition in f64, on rows of many lengths (vector body and tail), with large and
    /// negative-infinite scores (the masked entries of training).
    #[test]
    fn matches_the_definition() -> Result<()> {
        // (rows, length): fewer values than one thread's share, then many rows of each length.
        let mut cases = vec![(2usize, 5usize)];
        cases.extend([1usize, 7, 8, 13, 64, 1000, 3264].map(|n| (200_000 / n + 1, n)));
        for (rows, n) in cases {
            let mut xs: Vec<f32> = (0..rows * n)
                .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 0.05)
                .collect();
            xs[0] += 80.0;
            if n > 1 {
                xs[n - 1] = f32::NEG_INFINITY;
            }
            let t = Tensor::from_vec(xs.clone(), (rows, n), &Device::Cpu)?;
            let got = softmax_last_dim(&t)?.flatten_all()?.to_vec1::<f32>()?;
            for (src, out) in xs.chunks(n).zip(got.chunks(n)) {
                let max = src.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v as f64));
                let sum: f64 = src.iter().map(|&v| (v as f64 - max).exp()).sum();
                for (&v, &g) in src.iter().zip(out) {
                    let want = (v as f64 - max).exp() / sum;
                    assert!(
                        (g as f64 - want).abs() <= 1e-6 * want + 1e-12,
                        "row of {n}: {g} vs {want}"
                    );
                }
            }
        }
        Ok(())
    }
}
