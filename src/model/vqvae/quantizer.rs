//! The multi-scale residual quantizer `quantize` (models/quant.py): codebook lookup and the φ convolutions
//! that accumulate each scale's tokens into the latent `f̂`.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Conv2d, Embedding, VarBuilder, embedding};

use super::blocks::conv3_direct;
use crate::model::config::RELEASE_PATCH_NUMS;
use crate::ops::resample::{area, torch_bicubic};

/// φ index per scale of the release, `[0,0,1,1,1,2,2,3,3]` (reference §4.4.8). Hard-coded because at
/// scale 2 the two candidates tie mathematically and only float64 rounding picks 1.
const RELEASE_PHI_INDEX: [usize; 9] = [0, 0, 1, 1, 1, 2, 2, 3, 3];

/// `PhiPartiallyShared` index: the tick in `linspace(1/3n, 1−1/3n, n)` closest to `si/(K−1)`, computed
/// in f64 the way numpy does; the release's table is returned as published.
pub fn phi_index(si: usize, patch_nums: &[usize], num_phi: usize) -> usize {
    if patch_nums == RELEASE_PATCH_NUMS && num_phi == 4 && si < RELEASE_PHI_INDEX.len() {
        return RELEASE_PHI_INDEX[si];
    }
    if num_phi <= 1 {
        return 0;
    }
    let k = patch_nums.len();
    let start = 1.0 / 3.0 / num_phi as f64;
    let stop = 1.0 - start;
    let step = (stop - start) / (num_phi - 1) as f64;
    let at = si as f64 / (k - 1).max(1) as f64;
    (0..num_phi)
        .map(|i| {
            let tick = if i == num_phi - 1 {
                stop
            } else {
                start + step * i as f64
            };
            (i, (tick - at).abs())
        })
        .fold(
            (0, f64::INFINITY),
            |best, (i, d)| if d < best.1 { (i, d) } else { best },
        )
        .0
}

/// `Phi`: `0.5·x + 0.5·conv(x)` (`quant_resi = 0.5`).
pub struct Phi {
    conv: Conv2d,
}

impl Module for Phi {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        (x * 0.5)? + (self.conv.forward(x)? * 0.5)?
    }
}

pub struct Quantizer {
    pub embedding: Embedding,
    /// `quant_resi.qresi_ls.{j}`.
    pub quant_resi: Vec<Phi>,
    cvae: usize,
}

impl Quantizer {
    pub fn new(vocab: usize, cvae: usize, num_phi: usize, vb: VarBuilder) -> Result<Self> {
        let vq = vb.pp("quant_resi").pp("qresi_ls");
        let quant_resi = (0..num_phi)
            .map(|j| {
                Ok(Phi {
                    conv: conv3_direct(cvae, cvae, vq.pp(j))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embedding: embedding(vocab, cvae, vb.pp("embedding"))?,
            quant_resi,
            cvae,
        })
    }

    /// Codebook vectors of `idx` `(B, L)` as `(B, L, Cvae)`.
    pub fn lookup(&self, idx: &Tensor) -> Result<Tensor> {
        self.embedding.forward(idx)
    }

    /// Codebook vectors of one scale's tokens `(B, pn²)` as a map `(B, Cvae, pn, pn)`.
    pub fn lookup_map(&self, idx: &Tensor, pn: usize) -> Result<Tensor> {
        let b = idx.dims()[0];
        self.lookup(idx)?
            .transpose(1, 2)?
            .reshape((b, self.cvae, pn, pn))
    }

    /// Adds scale `si`'s codebook map `h` to `f_hat` (`get_next_autoregressive_input`): bicubic to the final
    /// size then φ, except at the last scale (no upsample, no φ). Returns the new `f_hat` and, before the
    /// last scale, the area-downsampled input of the next scale.
    pub fn accumulate(
        &self,
        f_hat: &Tensor,
        h: &Tensor,
        si: usize,
        patch_nums: &[usize],
    ) -> Result<(Tensor, Option<Tensor>)> {
        let k = patch_nums.len();
        let last = patch_nums[k - 1];
        if si + 1 == k {
            return Ok((f_hat.add(h)?, None));
        }
        let up = torch_bicubic(h, last, last)?;
        let phi = &self.quant_resi[phi_index(si, patch_nums, self.quant_resi.len())];
        let f_hat = f_hat.add(&phi.forward(&up)?)?;
        let pn = patch_nums[si + 1];
        let next = area(&f_hat, pn, pn)?;
        Ok((f_hat, Some(next)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn general_rule_reproduces_the_release_table_except_the_float_tie() {
        // Compute with the general rule by passing a non-release schedule of the same length.
        let pn: Vec<usize> = (1..=10).collect();
        let general: Vec<usize> = (0..9).map(|si| phi_index(si, &pn, 4)).collect();
        // Ticks 1/12, 5/12, 9/12, 11/12 vs si/9: only si = 2 is an exact mathematical tie (5/36 each way).
        for si in [0, 1, 3, 4, 5, 6, 7, 8] {
            assert_eq!(general[si], RELEASE_PHI_INDEX[si], "scale {si}");
        }
        let release: Vec<usize> = (0..9)
            .map(|si| phi_index(si, &RELEASE_PATCH_NUMS, 4))
            .collect();
        assert_eq!(release, RELEASE_PHI_INDEX);
    }

    #[test]
    fn phi_ticks_for_other_counts() {
        // Two φ over 5 scales: ticks 1/6 and 5/6; si/4 = 0, .25, .5, .75 → 0, 0, tie→first, 1.
        let pn = [1, 2, 4, 6, 8];
        assert_eq!(phi_index(0, &pn, 2), 0);
        assert_eq!(phi_index(1, &pn, 2), 0);
        assert_eq!(phi_index(3, &pn, 2), 1);
    }
}
