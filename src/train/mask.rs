//! The block-causal training mask: a query attends to a key when `level(query) ≥ level(key)`, the
//! LR prefix and the class token being level 0 and scale `si` (≥ 1) level `si`. One forward pass then
//! equals the scale-by-scale inference with the KV cache.

use candle_core::{Device, Result, Tensor};

/// Level of every sequence position: `prefix + 1` zeros, then `pn²` times `si` for scales 1..K.
pub fn levels(prefix_tokens: usize, patch_nums: &[usize]) -> Vec<u32> {
    let mut out = vec![0u32; prefix_tokens + 1];
    for (si, &pn) in patch_nums.iter().enumerate().skip(1) {
        out.extend(std::iter::repeat_n(si as u32, pn * pn));
    }
    out
}

/// Additive `(L, L)` mask: 0 where attention is allowed, −∞ elsewhere.
pub fn block_causal(prefix_tokens: usize, patch_nums: &[usize], device: &Device) -> Result<Tensor> {
    let lv = levels(prefix_tokens, patch_nums);
    let l = lv.len();
    let mut m = vec![0f32; l * l];
    for (q, &lq) in lv.iter().enumerate() {
        for (k, &lk) in lv.iter().enumerate() {
            if lq < lk {
                m[q * l + k] = f32::NEG_INFINITY;
            }
        }
    }
    Tensor::from_vec(m, (l, l), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_mask_follow_the_scales() -> Result<()> {
        // Prefix of 4 tokens, scales 1, 2, 3: positions 0..5 level 0, 5..9 level 1, 9..18 level 2.
        let lv = levels(4, &[1, 2, 3]);
        assert_eq!(lv.len(), 4 + 1 + 4 + 9);
        assert_eq!(&lv[..5], &[0; 5]);
        assert_eq!(&lv[5..9], &[1; 4]);
        assert_eq!(&lv[9..], &[2; 9]);
        let m = block_causal(4, &[1, 2, 3], &Device::Cpu)?.to_vec2::<f32>()?;
        assert_eq!(m.len(), 18);
        // The class token (position 4) sees the prefix and itself, not scale 1.
        assert!(m[4][..5].iter().all(|&v| v == 0.0));
        assert!(m[4][5..].iter().all(|&v| v == f32::NEG_INFINITY));
        // A scale-1 token sees everything up to and including its scale (bidirectional inside it).
        assert!(m[6][..9].iter().all(|&v| v == 0.0));
        assert!(m[6][9..].iter().all(|&v| v == f32::NEG_INFINITY));
        // The last scale sees everything.
        assert!(m[17].iter().all(|&v| v == 0.0));
        Ok(())
    }
}
