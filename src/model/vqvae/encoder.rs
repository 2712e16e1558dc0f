//! The VQVAE encoder (`Encoder` in models/basic_vae.py), used only to train the tokenizer: image
//! `(B, 3, H, W)` in [-1, 1] → latent `(B, Cvae, H/f, W/f)` (before `quant_conv`).

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::blocks::{AttnBlock, Conv3, Downsample, GroupNorm, ResnetBlock, conv3, group_norm};
use crate::model::config::VqvaeConfig;

pub struct Mid {
    block_1: ResnetBlock,
    attn_1: AttnBlock,
    block_2: ResnetBlock,
}

/// `down.{i}`: residual blocks (with attention at the lowest resolution), then a downsample except at
/// the last level.
pub struct DownLevel {
    block: Vec<ResnetBlock>,
    attn: Vec<AttnBlock>,
    downsample: Option<Downsample>,
}

pub struct Encoder {
    conv_in: Conv3,
    down: Vec<DownLevel>,
    mid: Mid,
    norm_out: GroupNorm,
    conv_out: Conv3,
}

impl Encoder {
    pub fn new(cfg: &VqvaeConfig, vb: VarBuilder) -> Result<Self> {
        let levels = cfg.ch_mult.len();
        let g = cfg.norm_groups;
        let conv_in = conv3(3, cfg.ch, vb.pp("conv_in"))?;
        let mut block_in = cfg.ch;
        let mut down = Vec::with_capacity(levels);
        for level in 0..levels {
            let vl = vb.pp("down").pp(level);
            let block_out = cfg.ch * cfg.ch_mult[level];
            let mut block = Vec::new();
            let mut attn = Vec::new();
            for j in 0..cfg.num_res_blocks {
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
            let downsample = if level + 1 != levels {
                Some(Downsample::new(block_in, vl.pp("downsample"))?)
            } else {
                None
            };
            down.push(DownLevel {
                block,
                attn,
                downsample,
            });
        }
        let vm = vb.pp("mid");
        let mid = Mid {
            block_1: ResnetBlock::new(block_in, block_in, g, vm.pp("block_1"))?,
            attn_1: AttnBlock::new(block_in, g, vm.pp("attn_1"))?,
            block_2: ResnetBlock::new(block_in, block_in, g, vm.pp("block_2"))?,
        };
        Ok(Self {
            conv_in,
            down,
            mid,
            norm_out: group_norm(block_in, g, vb.pp("norm_out"))?,
            conv_out: conv3(block_in, cfg.cvae, vb.pp("conv_out"))?,
        })
    }
}

impl Module for Encoder {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.conv_in.forward(x)?;
        for level in &self.down {
            for (j, b) in level.block.iter().enumerate() {
                h = b.forward(&h)?;
                if let Some(a) = level.attn.get(j) {
                    h = a.forward(&h)?;
                }
            }
            if let Some(d) = &level.downsample {
                h = d.forward(&h)?;
            }
        }
        let h = self
            .mid
            .block_2
            .forward(&self.mid.attn_1.forward(&self.mid.block_1.forward(&h)?)?)?;
        self.conv_out.forward(&self.norm_out.forward_silu(&h)?)
    }
}
