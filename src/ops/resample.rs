//! `F.interpolate` of PyTorch as separable interpolation matrices: `y = My · x · Mxᵀ`.
//!
//! Both resamplers the published inference uses on latents are separable, so one small matrix per axis
//! reproduces them exactly (up to float summation order), runs as two matmuls, and is differentiable
//! for training.

use candle_core::{Device, Result, Tensor};

const TORCH_CUBIC_A: f64 = -0.75;

fn cubic_near(x: f64, a: f64) -> f64 {
    ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
}

fn cubic_far(x: f64, a: f64) -> f64 {
    ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
}

/// Row-major `(out, in)` weights of `mode='bicubic', align_corners=False` (A = −0.75, source
/// `(dst+0.5)·in/out − 0.5` without clamping, taps clamped to the border).
pub fn torch_bicubic_weights(input: usize, output: usize) -> Vec<f64> {
    let scale = input as f64 / output as f64;
    let mut w = vec![0.0; output * input];
    for o in 0..output {
        let src = (o as f64 + 0.5) * scale - 0.5;
        let i0 = src.floor();
        let t = src - i0;
        let taps = [
            cubic_far(t + 1.0, TORCH_CUBIC_A),
            cubic_near(t, TORCH_CUBIC_A),
            cubic_near(1.0 - t, TORCH_CUBIC_A),
            cubic_far(2.0 - t, TORCH_CUBIC_A),
        ];
        for (k, c) in taps.iter().enumerate() {
            let idx = (i0 as isize - 1 + k as isize).clamp(0, input as isize - 1) as usize;
            w[o * input + idx] += c;
        }
    }
    w
}

/// Row-major `(out, in)` weights of `mode='area'` (adaptive average pooling with bins
/// `[floor(i·in/out), ceil((i+1)·in/out))`).
pub fn area_weights(input: usize, output: usize) -> Vec<f64> {
    let mut w = vec![0.0; output * input];
    for o in 0..output {
        let start = (o * input) / output;
        let end = ((o + 1) * input).div_ceil(output);
        let n = (end - start) as f64;
        for i in start..end {
            w[o * input + i] = 1.0 / n;
        }
    }
    w
}

fn matrix(w: Vec<f64>, rows: usize, cols: usize, device: &Device) -> Result<Tensor> {
    Tensor::from_vec(
        w.into_iter().map(|v| v as f32).collect::<Vec<_>>(),
        (rows, cols),
        device,
    )
}

/// Applies `My` to the rows and `Mx` to the columns of `x` `(B, C, H, W)`.
fn apply_separable(x: &Tensor, my: &Tensor, mx: &Tensor) -> Result<Tensor> {
    let x = x.broadcast_matmul(&mx.t()?.to_dtype(x.dtype())?)?;
    my.to_dtype(x.dtype())?.broadcast_matmul(&x)
}

/// `F.interpolate(x, size=(h, w), mode='bicubic', align_corners=False)` for `x` `(B, C, H, W)`.
pub fn torch_bicubic(x: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    let (_, _, ih, iw) = x.dims4()?;
    let dev = x.device();
    let my = matrix(torch_bicubic_weights(ih, h), h, ih, dev)?;
    let mx = matrix(torch_bicubic_weights(iw, w), w, iw, dev)?;
    apply_separable(x, &my, &mx)
}

/// `F.interpolate(x, size=(h, w), mode='area')` for `x` `(B, C, H, W)`.
pub fn area(x: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    let (_, _, ih, iw) = x.dims4()?;
    let dev = x.device();
    let my = matrix(area_weights(ih, h), h, ih, dev)?;
    let mx = matrix(area_weights(iw, w), w, iw, dev)?;
    apply_separable(x, &my, &mx)
}

/// Nearest ×2 upsampling (`F.interpolate(scale_factor=2, mode='nearest')`) by broadcasting, which is
/// much faster than candle's `upsample_nearest2d` on CPU.
pub fn nearest2x(x: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    x.reshape((b, c, h, 1, w, 1))?
        .broadcast_as((b, c, h, 2, w, 2))?
        .reshape((b, c, 2 * h, 2 * w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bicubic_identity_when_sizes_match() {
        let w = torch_bicubic_weights(7, 7);
        for o in 0..7 {
            for i in 0..7 {
                let expect = if o == i { 1.0 } else { 0.0 };
                assert!(
                    (w[o * 7 + i] - expect).abs() < 1e-12,
                    "({o},{i}) = {}",
                    w[o * 7 + i]
                );
            }
        }
    }

    #[test]
    fn bicubic_rows_sum_to_one() {
        // The kernel interpolates constants exactly, borders included (taps are clamped, not dropped).
        let (n_in, n_out) = (9, 32);
        let w = torch_bicubic_weights(n_in, n_out);
        for o in 0..n_out {
            let row = &w[o * n_in..(o + 1) * n_in];
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn bicubic_matches_torch_values() {
        // torch.nn.functional.interpolate(torch.arange(4.).view(1,1,1,4)**2, size=(1,8),
        // mode='bicubic', align_corners=False) — computed by hand from the definition:
        // src = (o+0.5)/2-0.5, taps at floor(src)-1..+2 clamped.
        let x = [0.0f64, 1.0, 4.0, 9.0];
        let w = torch_bicubic_weights(4, 8);
        let y: Vec<f64> = (0..8)
            .map(|o| (0..4).map(|i| w[o * 4 + i] * x[i]).sum())
            .collect();
        // o=0: src=-0.25, floor -1, t=0.75; taps idx -2,-1,0,1 → clamp 0,0,0,1.
        let t: f64 = 0.75;
        let a = -0.75;
        let c = [
            cubic_far(t + 1.0, a),
            cubic_near(t, a),
            cubic_near(1.0 - t, a),
            cubic_far(2.0 - t, a),
        ];
        let expect0 = (c[0] + c[1] + c[2]) * 0.0 + c[3] * 1.0;
        assert!((y[0] - expect0).abs() < 1e-12);
        // o=3: src=1.25, t=0.25, taps 0,1,2,3 (no clamping): cubic of x² at 1.25 differs from 1.5625
        // by the kernel's known second-order error; check against direct evaluation.
        let t: f64 = 0.25;
        let c = [
            cubic_far(t + 1.0, a),
            cubic_near(t, a),
            cubic_near(1.0 - t, a),
            cubic_far(2.0 - t, a),
        ];
        let expect3 = c[0] * 0.0 + c[1] * 1.0 + c[2] * 4.0 + c[3] * 9.0;
        assert!((y[3] - expect3).abs() < 1e-12);
        // The A=-0.75 kernel at t=0.25, evaluated by hand from Keys' polynomials:
        // W(1.25) = -0.10546875, W(0.25) = 0.87890625, W(0.75) = 0.26171875, W(1.75) = -0.03515625.
        let known = [-0.10546875, 0.87890625, 0.26171875, -0.03515625];
        for (ci, ki) in c.iter().zip(known) {
            assert!((ci - ki).abs() < 1e-12);
        }
    }

    #[test]
    fn area_bins_match_adaptive_avg_pool() {
        // 32 → 9: bins [floor(i·32/9), ceil((i+1)·32/9)).
        let w = area_weights(32, 9);
        let bins = [
            (0, 4),
            (3, 8),
            (7, 11),
            (10, 15),
            (14, 18),
            (17, 22),
            (21, 25),
            (24, 29),
            (28, 32),
        ];
        for (o, (s, e)) in bins.iter().enumerate() {
            for i in 0..32 {
                let expect = if i >= *s && i < *e {
                    1.0 / (e - s) as f64
                } else {
                    0.0
                };
                assert!((w[o * 32 + i] - expect).abs() < 1e-15, "bin {o} idx {i}");
            }
        }
    }

    #[test]
    fn tensor_resamplers_apply_the_matrices() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::arange(0f32, 2.0 * 3.0 * 5.0 * 6.0, &dev)?.reshape((2, 3, 5, 6))?;
        let y = area(&x, 2, 3)?;
        // Area 5→2 rows: bins [0,3) and [2,5); 6→3 cols: pairs.
        let v = x.i_plane(1, 2)?;
        let got = y.i_plane(1, 2)?;
        let expect00 = (0..3)
            .flat_map(|r| (0..2).map(move |c| (r, c)))
            .map(|(r, c)| v[r][c])
            .sum::<f32>()
            / 6.0;
        assert!((got[0][0] - expect00).abs() < 1e-4);
        let z = torch_bicubic(&x, 5, 6)?;
        let diff = (z - &x)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(
            diff < 1e-4,
            "same-size bicubic is the identity, diff {diff}"
        );
        let n = nearest2x(&x)?;
        let nv = n.i_plane(1, 2)?;
        assert_eq!(nv[3][5], v[1][2]);
        Ok(())
    }

    trait Plane {
        fn i_plane(&self, b: usize, c: usize) -> Result<Vec<Vec<f32>>>;
    }
    impl Plane for Tensor {
        fn i_plane(&self, b: usize, c: usize) -> Result<Vec<Vec<f32>>> {
            self.get(b)?.get(c)?.to_vec2::<f32>()
        }
    }
}
