//! Scale-aligned 2-D rotary embedding (models/basic_var.py L66-98): every scale's token grid is placed
//! on the final grid (`t = r/p · grid`, top-left aligned), rows rotate channel pairs 0..D/2, columns
//! the rest, and channels are paired as adjacent (2m, 2m+1) complex numbers.

use candle_core::{D, Device, Result, Tensor};

const THETA: f32 = 10000.0;

/// Cos/sin tables for every sequence position, expanded to one value per channel so that rotation is
/// `x·cos + pairswap(x)·sin` with the sign folded into `sin`.
pub struct Rope {
    cos: Tensor,
    sin: Tensor,
}

/// Angles `(positions, head_dim/2)` in the published layout: `[x-rotations | y-rotations]`.
pub fn angles(seq_patch_nums: &[usize], grid: usize, head_dim: usize) -> Vec<Vec<f32>> {
    let quarter = head_dim / 4;
    // 1/θ^(k·4/D) for k < D/4, in f32 as the reference computes it.
    let freqs: Vec<f32> = (0..quarter)
        .map(|k| 1.0 / THETA.powf((4 * k) as f32 / head_dim as f32))
        .collect();
    let mut out = Vec::new();
    for &p in seq_patch_nums {
        for r in 0..p {
            for c in 0..p {
                let tx = (r as f32 / p as f32) * grid as f32;
                let ty = (c as f32 / p as f32) * grid as f32;
                let mut row: Vec<f32> = freqs.iter().map(|f| tx * f).collect();
                row.extend(freqs.iter().map(|f| ty * f));
                out.push(row);
            }
        }
    }
    out
}

impl Rope {
    /// Table for the prefix grid (`prefix_side²` tokens), the class token and scales 2.. of
    /// `patch_nums`, in sequence order. `grid` is the final scale's side.
    pub fn new(
        prefix_side: usize,
        patch_nums: &[usize],
        head_dim: usize,
        dev: &Device,
    ) -> Result<Self> {
        let grid = *patch_nums.last().unwrap_or(&1);
        let mut seq = vec![prefix_side];
        seq.extend_from_slice(patch_nums);
        let ang = angles(&seq, grid, head_dim);
        let n = ang.len();
        let mut cos = Vec::with_capacity(n * head_dim);
        let mut sin = Vec::with_capacity(n * head_dim);
        for row in &ang {
            for &a in row {
                let (s, c) = (a as f64).sin_cos();
                cos.extend([c as f32, c as f32]);
                sin.extend([-s as f32, s as f32]);
            }
        }
        Ok(Self {
            cos: Tensor::from_vec(cos, (n, head_dim), dev)?,
            sin: Tensor::from_vec(sin, (n, head_dim), dev)?,
        })
    }

    pub fn len(&self) -> usize {
        self.cos.dims()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows for sequence positions `start..start+len`.
    pub fn slice(&self, start: usize, len: usize) -> Result<(Tensor, Tensor)> {
        Ok((
            self.cos.narrow(0, start, len)?,
            self.sin.narrow(0, start, len)?,
        ))
    }
}

/// Rotates `x` `(B, H, L, D)` by the `(L, D)` tables of [`Rope::slice`], in f32 as the reference does.
pub fn apply(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let dtype = x.dtype();
    let x = &x.to_dtype(candle_core::DType::F32)?;
    let dims = x.dims().to_vec();
    let d = dims[dims.len() - 1];
    let mut pairs = dims.clone();
    pairs.pop();
    pairs.extend([d / 2, 2]);
    let xp = x.reshape(pairs)?;
    let swapped = Tensor::cat(
        &[xp.narrow(D::Minus1, 1, 1)?, xp.narrow(D::Minus1, 0, 1)?],
        D::Minus1,
    )?
    .reshape(dims)?;
    x.broadcast_mul(cos)?
        .add(&swapped.broadcast_mul(sin)?)?
        .to_dtype(dtype)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_top_left_aligned_on_the_final_grid() {
        // Prefix 2×2 at integer positions, class token at (0,0), then a 3×3 scale on a grid of 4.
        let a = angles(&[2, 1, 3], 4, 8);
        assert_eq!(a.len(), 4 + 1 + 9);
        // head_dim 8 → 2 frequencies: 1 and 1/θ^(4/8) = 0.01.
        let f1 = 1.0 / 10000f32.powf(0.5);
        // Prefix token (r=1, c=0) on a 2-grid mapped to grid 4: t_x = 1/2·4 = 2.
        assert_eq!(a[2], vec![2.0, 2.0 * f1, 0.0, 0.0]);
        // Class token at (0, 0).
        assert_eq!(a[4], vec![0.0; 4]);
        // Scale p=3, token (r=2, c=1): t_x = 2/3·4, t_y = 1/3·4.
        let tx = (2f32 / 3f32) * 4.0;
        let ty = (1f32 / 3f32) * 4.0;
        assert_eq!(a[5 + 2 * 3 + 1], vec![tx, tx * f1, ty, ty * f1]);
    }

    #[test]
    fn rotation_is_adjacent_pair_complex_multiplication() -> Result<()> {
        let dev = Device::Cpu;
        let rope = Rope::new(1, &[1, 2], 8, &dev)?;
        // Position 3 = scale p=2, token (0,1): t_x=0, t_y=1 → columns 4..8 rotate by (1, 0.01).
        let (cos, sin) = rope.slice(3, 1)?;
        let x = Tensor::new(&[1f32, 2., 3., 4., 5., 6., 7., 8.], &dev)?.reshape((1, 1, 1, 8))?;
        let y = apply(&x, &cos, &sin)?.flatten_all()?.to_vec1::<f32>()?;
        let rot = |re: f32, im: f32, ang: f32| {
            (
                re * ang.cos() - im * ang.sin(),
                re * ang.sin() + im * ang.cos(),
            )
        };
        let f1 = 1.0 / 10000f32.powf(0.5);
        let expect = [
            rot(1., 2., 0.),
            rot(3., 4., 0.),
            rot(5., 6., 1.),
            rot(7., 8., f1),
        ];
        for (m, (re, im)) in expect.iter().enumerate() {
            assert!(
                (y[2 * m] - re).abs() < 1e-6 && (y[2 * m + 1] - im).abs() < 1e-6,
                "pair {m}: {y:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn release_table_has_3264_rows() -> Result<()> {
        let rope = Rope::new(
            32,
            &crate::model::config::RELEASE_PATCH_NUMS,
            64,
            &Device::Cpu,
        )?;
        assert_eq!(rope.len(), 1024 + 2240);
        Ok(())
    }
}
