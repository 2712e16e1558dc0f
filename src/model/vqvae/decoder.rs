//! The VQVAE decoder (`Decoder` in models/basic_vae.py): latent `(B, Cvae, h, w)` → image `(B, 3, h·f, w·f)`.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::blocks::{AttnBlock, Conv3, GroupNorm, ResnetBlock, Upsample, conv3, group_norm};
use crate::model::config::VqvaeConfig;

pub struct Mid {
    block_1: ResnetBlock,
    attn_1: AttnBlock,
    block_2: ResnetBlock,
}

/// `up.{i}`: residual blocks (with attention at the lowest resolution), then an upsample except at level 0.
pub struct UpLevel {
    block: Vec<ResnetBlock>,
    attn: Vec<AttnBlock>,
    upsample: Option<Upsample>,
}

pub struct Decoder {
    conv_in: Conv3,
    mid: Mid,
    /// Indexed by level as in the checkpoint (`up.0` is the full resolution); run from the last.
    up: Vec<UpLevel>,
    norm_out: GroupNorm,
    conv_out: Conv3,
}

impl Decoder {
    pub fn new(cfg: &VqvaeConfig, vb: VarBuilder) -> Result<Self> {
        let levels = cfg.ch_mult.len();
        let g = cfg.norm_groups;
        let mut block_in = cfg.ch * cfg.ch_mult[levels - 1];
        let conv_in = conv3(cfg.cvae, block_in, vb.pp("conv_in"))?;
        let vm = vb.pp("mid");
        let mid = Mid {
            block_1: ResnetBlock::new(block_in, block_in, g, vm.pp("block_1"))?,
            attn_1: AttnBlock::new(block_in, g, vm.pp("attn_1"))?,
            block_2: ResnetBlock::new(block_in, block_in, g, vm.pp("block_2"))?,
        };
        let mut up: Vec<UpLevel> = Vec::with_capacity(levels);
        for level in (0..levels).rev() {
            let vl = vb.pp("up").pp(level);
            let block_out = cfg.ch * cfg.ch_mult[level];
            let mut block = Vec::new();
            let mut attn = Vec::new();
            for j in 0..=cfg.num_res_blocks {
                block.push(ResnetBlock::new(
                    block_in,
                    block_out,
                    g,
                    vl.pp("block").pp(j),
                )?);
                block_in = block_out;
                if level == levels - 1 {
                    attn.push(AttnBlock::new(block_in, g, vl.pp("attn").pp(j))?);
                }
            }
            let upsample = if level != 0 {
                Some(Upsample::new(block_in, vl.pp("upsample"))?)
            } else {
                None
            };
            up.push(UpLevel {
                block,
                attn,
                upsample,
            });
        }
        up.reverse();
        Ok(Self {
            conv_in,
            mid,
            up,
            norm_out: group_norm(block_in, g, vb.pp("norm_out"))?,
            conv_out: conv3(block_in, 3, vb.pp("conv_out"))?,
        })
    }
}

impl Module for Decoder {
    fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let h = self.conv_in.forward(z)?;
        let mut h = self
            .mid
            .block_2
            .forward(&self.mid.attn_1.forward(&self.mid.block_1.forward(&h)?)?)?;
        for level in self.up.iter().rev() {
            for (j, b) in level.block.iter().enumerate() {
                h = b.forward(&h)?;
                if let Some(a) = level.attn.get(j) {
                    h = a.forward(&h)?;
                }
            }
            if let Some(u) = &level.upsample {
                h = u.forward(&h)?;
            }
        }
        self.conv_out.forward(&self.norm_out.forward_silu(&h)?)
    }
}
