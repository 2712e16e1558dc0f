//! The sizes of the embedded default model, chosen for a 2-core CPU: a 64 px tile (VQVAE f = 4, a
//! 16×16 final latent: one latent cell per LR pixel at 4×), 8 scales, a 4-block transformer of width
//! 128 and a small refiner. An f = 8 tokenizer of this size stayed 6 dB below bicubic on its own after
//! 1800 steps, which no transformer can make up; f = 4 compresses 48 values into 16 per cell.

use crate::model::config::{VarConfig, VqvaeConfig};

/// The small VQVAE codes `(HR − bicubic(LR))·4`: the detail bicubic misses has a standard deviation of
/// 0.073 in [-1, 1] units on the training patches, so ×4 brings it near the latent's unit range.
pub const RESIDUAL_GAIN: u32 = 4;

/// Side in pixels of the tiles the small model works on.
pub const TILE_PX: usize = 64;

/// Latent cells shared by neighbouring tiles: 2 of 16 (8 px) instead of the published quarter tile.
/// The model adds detail to a bicubic base that is continuous across tiles, so a narrow cross-fade
/// hides the seams, and a 512-px output needs 81 tiles instead of 121.
pub const TILE_OVERLAP: usize = 2;

/// The guidance the small model is used with by default (measured on Set5, models/README.md).
pub const DEFAULT_CFG: f32 = 12.0;

pub fn vqvae_config() -> VqvaeConfig {
    VqvaeConfig {
        vocab_size: 1024,
        cvae: 16,
        ch: 32,
        ch_mult: vec![1, 2, 2],
        num_res_blocks: 1,
        num_phi: 4,
        // One group per 4 channels: at 32 channels the release's 32 groups would be an instance
        // norm, which erased each tile's colour (15.5 dB vs 23.8 dB on a fixed batch).
        norm_groups: 8,
        residual_gain: RESIDUAL_GAIN,
    }
}

pub fn var_config() -> VarConfig {
    let width = 128;
    VarConfig {
        depth: 4,
        embed_dim: width,
        num_heads: width / 64,
        mlp_hidden: 4 * width,
        vocab_size: 1024,
        cvae: 16,
        num_classes: 2,
        patch_nums: vec![1, 2, 3, 4, 6, 8, 11, 16],
        // Two stride-2 stages: 64 px → 16×16 prefix tokens = the last scale.
        encoder_channels: vec![32, 64, 128],
        prefix_side: 16,
        refiner_width: 128,
        refiner_depth: 2,
        refiner_freq_dim: 256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_grid_matches_the_last_scale_and_the_tile() {
        let v = var_config();
        let q = vqvae_config();
        v.validate().unwrap();
        let stages = v.encoder_channels.len() - 1;
        assert_eq!(TILE_PX >> stages, v.prefix_side);
        assert_eq!(v.final_side() * q.downsample(), TILE_PX);
        assert_eq!(v.num_heads * 64, v.embed_dim);
    }
}
