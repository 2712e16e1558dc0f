//! Model sizes, read from the checkpoint's tensor shapes so that any VARSR-architecture checkpoint loads
//! (the release, the parity fixture, our own small model) without hard-coded sizes.

use candle_core::{Result, bail};
use serde::{Deserialize, Serialize};

/// The scale schedule of the release (`utils/arg_util.py`, `--pn 1_2_3_4_6_9_13_18_24_32`).
pub const RELEASE_PATCH_NUMS: [usize; 10] = [1, 2, 3, 4, 6, 9, 13, 18, 24, 32];

/// Answers "what shape has tensor `name`?" without reading its data.
pub trait ShapeSource {
    fn shape_of(&self, name: &str) -> Option<Vec<usize>>;
}

impl<F: Fn(&str) -> Option<Vec<usize>>> ShapeSource for F {
    fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        self(name)
    }
}

fn required(src: &dyn ShapeSource, name: &str, rank: usize) -> Result<Vec<usize>> {
    match src.shape_of(name) {
        Some(s) if s.len() == rank => Ok(s),
        Some(s) => bail!("tensor `{name}` has shape {s:?}, expected a rank-{rank} tensor"),
        None => bail!("the checkpoint has no tensor `{name}`"),
    }
}

fn count_indexed(src: &dyn ShapeSource, prefix: &str, suffix: &str) -> usize {
    (0..)
        .take_while(|i| src.shape_of(&format!("{prefix}.{i}.{suffix}")).is_some())
        .count()
}

/// Sizes of the SR transformer (`VAR_RoPE` in `models/var.py`), its LR encoder and its refiner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VarConfig {
    pub depth: usize,
    /// Width C.
    pub embed_dim: usize,
    pub num_heads: usize,
    pub mlp_hidden: usize,
    pub vocab_size: usize,
    /// Latent channels of the VQVAE (Cvae).
    pub cvae: usize,
    pub num_classes: usize,
    /// Scales, coarse to fine. The last one is the side of the final latent grid.
    pub patch_nums: Vec<usize>,
    /// Channels of `con_embedding` (conv_in, then each stride-2 stage).
    pub encoder_channels: Vec<usize>,
    /// Side of the LR encoder's token grid (the prefix holds `prefix_side²` tokens).
    pub prefix_side: usize,
    pub refiner_width: usize,
    pub refiner_depth: usize,
    /// Input width of the refiner's timestep MLP (sinusoidal frequency count × 2).
    pub refiner_freq_dim: usize,
}

impl VarConfig {
    /// Reads the sizes from the shapes of a `VAR_RoPE` state dict. `patch_nums` cannot be read from
    /// shapes (only their count can); pass them when the checkpoint says, else the release's are used.
    pub fn from_shapes(src: &dyn ShapeSource, patch_nums: Option<Vec<usize>>) -> Result<Self> {
        let we = required(src, "word_embed.weight", 2)?;
        let (embed_dim, cvae) = (we[0], we[1]);
        let depth = count_indexed(src, "blocks", "attn.mat_qkv.weight");
        if depth == 0 {
            bail!(
                "the checkpoint has no tensor `blocks.0.attn.mat_qkv.weight`: not a VARSR transformer"
            );
        }
        let num_heads = required(src, "blocks.0.attn.scale_mul_1H11", 4)?[1];
        if num_heads == 0 || embed_dim % num_heads != 0 {
            bail!("width {embed_dim} is not divisible by the head count {num_heads}");
        }
        let mlp_hidden = required(src, "blocks.0.ffn.fc1.weight", 2)?[0];
        let vocab_size = required(src, "head.weight", 2)?[0];
        let num_classes = required(src, "class_emb.weight", 2)?[0];
        let levels = required(src, "lvl_embed.weight", 2)?[0];
        let patch_nums = match patch_nums {
            Some(p) => p,
            None if levels == RELEASE_PATCH_NUMS.len() => RELEASE_PATCH_NUMS.to_vec(),
            None => bail!(
                "the checkpoint has {levels} scales but does not say which patch sizes they have"
            ),
        };
        if patch_nums.len() != levels {
            bail!(
                "patch_nums {patch_nums:?} has {} scales, `lvl_embed.weight` has {levels}",
                patch_nums.len()
            );
        }
        let pos = required(src, "pos_start", 3)?;
        let prefix_tokens = pos[1].saturating_sub(1);
        let prefix_side = (prefix_tokens as f64).sqrt().round() as usize;
        if prefix_side * prefix_side != prefix_tokens {
            bail!(
                "`pos_start` has {} rows; expected a square token grid plus one class token",
                pos[1]
            );
        }
        let mut encoder_channels = vec![required(src, "con_embedding.conv_in.weight", 4)?[0]];
        let enc_blocks = count_indexed(src, "con_embedding.blocks", "weight");
        if !enc_blocks.is_multiple_of(2) {
            bail!("`con_embedding.blocks` has {enc_blocks} convolutions; expected pairs");
        }
        for i in (1..enc_blocks).step_by(2) {
            encoder_channels
                .push(required(src, &format!("con_embedding.blocks.{i}.weight"), 4)?[0]);
        }
        let refiner_width = required(src, "diffloss.net.input_proj.weight", 2)?[0];
        let refiner_depth = count_indexed(src, "diffloss.net.res_blocks", "in_ln.weight");
        let refiner_freq_dim = required(src, "diffloss.net.time_embed.mlp.0.weight", 2)?[1];
        Ok(Self {
            depth,
            embed_dim,
            num_heads,
            mlp_hidden,
            vocab_size,
            cvae,
            num_classes,
            patch_nums,
            encoder_channels,
            prefix_side,
            refiner_width,
            refiner_depth,
            refiner_freq_dim,
        })
    }

    pub fn head_dim(&self) -> usize {
        self.embed_dim / self.num_heads
    }

    /// Side of the final latent grid.
    pub fn final_side(&self) -> usize {
        self.patch_nums.last().copied().unwrap_or(0)
    }

    /// Tokens over all scales, the first scale replaced by the class token.
    pub fn total_tokens(&self) -> usize {
        self.prefix_side * self.prefix_side + self.patch_nums.iter().map(|p| p * p).sum::<usize>()
    }

    /// The released VARSR at depth `d` (`models/__init__.py`: width 64·d, d heads), encoder
    /// (32,128,256,512,1536), refiner 1024×6.
    pub fn release(depth: usize) -> Self {
        Self {
            depth,
            embed_dim: 64 * depth,
            num_heads: depth,
            mlp_hidden: 4 * 64 * depth,
            vocab_size: 4096,
            cvae: 32,
            num_classes: 2,
            patch_nums: RELEASE_PATCH_NUMS.to_vec(),
            encoder_channels: vec![32, 128, 256, 512, 1536],
            prefix_side: 32,
            refiner_width: 1024,
            refiner_depth: 6,
            refiner_freq_dim: 256,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let last = self.final_side();
        if self.patch_nums.is_empty() || self.patch_nums[0] != 1 {
            bail!("patch_nums must start at 1, got {:?}", self.patch_nums);
        }
        if self.patch_nums.windows(2).any(|w| w[0] >= w[1]) {
            bail!("patch_nums must increase, got {:?}", self.patch_nums);
        }
        if self.prefix_side != last {
            bail!(
                "the LR encoder gives a {0}×{0} grid but the last scale is {last}×{last}",
                self.prefix_side
            );
        }
        Ok(())
    }
}

/// Sizes of the multi-scale VQVAE (`models/vqvae.py`, `basic_vae.py`, `quant.py`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VqvaeConfig {
    pub vocab_size: usize,
    pub cvae: usize,
    pub ch: usize,
    pub ch_mult: Vec<usize>,
    pub num_res_blocks: usize,
    /// Number of φ convolutions (`share_quant_resi`).
    pub num_phi: usize,
    /// GroupNorm groups in the encoder and decoder: 32 in the release, where `basic_vae.py` fixes it.
    /// Not visible in any tensor shape, so it travels in the `varsr.config` metadata; small models
    /// need fewer groups (at 32 channels, 32 groups is an instance norm that erases tile colour).
    #[serde(default = "release_norm_groups")]
    pub norm_groups: usize,
    /// 0 for an image VQVAE (the release). Otherwise the VQVAE codes the detail that bicubic
    /// upscaling misses, `(HR − bicubic(LR))·residual_gain`, and the pipeline adds its decoded output
    /// back onto the bicubic base: a small model then starts from bicubic's quality instead of having
    /// to learn to reproduce the whole photo. Metadata only, like `norm_groups`.
    #[serde(default)]
    pub residual_gain: u32,
}

fn release_norm_groups() -> usize {
    32
}

impl VqvaeConfig {
    pub fn from_shapes(src: &dyn ShapeSource) -> Result<Self> {
        let emb = required(src, "quantize.embedding.weight", 2)?;
        let ch = required(src, "decoder.conv_out.weight", 4)?[1];
        let levels = count_indexed(src, "decoder.up", "block.0.conv1.weight");
        if levels == 0 {
            bail!(
                "the checkpoint has no tensor `decoder.up.0.block.0.conv1.weight`: not a VQVAE decoder"
            );
        }
        let mut ch_mult = Vec::with_capacity(levels);
        for i in 0..levels {
            let out = required(src, &format!("decoder.up.{i}.block.0.conv2.weight"), 4)?[0];
            if ch == 0 || out % ch != 0 {
                bail!(
                    "`decoder.up.{i}.block.0.conv2.weight` has {out} channels, not a multiple of {ch}"
                );
            }
            ch_mult.push(out / ch);
        }
        let num_res_blocks =
            count_indexed(src, "decoder.up.0.block", "conv1.weight").saturating_sub(1);
        let num_phi = count_indexed(src, "quantize.quant_resi.qresi_ls", "weight");
        Ok(Self {
            vocab_size: emb[0],
            cvae: emb[1],
            ch,
            ch_mult,
            num_res_blocks,
            num_phi,
            norm_groups: release_norm_groups(),
            residual_gain: 0,
        })
    }

    /// The release's VQVAE: V 4096, z 32, ch 160, ch_mult (1,1,2,2,4), 2 res blocks, 4 φ.
    pub fn release() -> Self {
        Self {
            vocab_size: 4096,
            cvae: 32,
            ch: 160,
            ch_mult: vec![1, 1, 2, 2, 4],
            num_res_blocks: 2,
            num_phi: 4,
            norm_groups: 32,
            residual_gain: 0,
        }
    }

    /// Pixels per latent cell.
    pub fn downsample(&self) -> usize {
        1 << self.ch_mult.len().saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_without_norm_groups_means_the_release_value() {
        // Files converted before the field existed carry no `norm_groups`; basic_vae.py fixes 32.
        let json = r#"{"vocab_size":4096,"cvae":32,"ch":160,"ch_mult":[1,1,2,2,4],
                       "num_res_blocks":2,"num_phi":4}"#;
        let cfg: VqvaeConfig = serde_json::from_str(json).unwrap();
        assert_eq!(cfg.norm_groups, 32);
        let small: VqvaeConfig =
            serde_json::from_str(&json.replace('}', r#","norm_groups":8}"#)).unwrap();
        assert_eq!(small.norm_groups, 8);
    }
}
