//! Training twins of the convolutional modules (VQVAE encoder and decoder, the LR encoder) built on
//! [`FastConv`]: same structure and state-dict keys as `model::vqvae` and `model::encoder`, so they
//! train the very tensors the inference modules load.

use candle_core::{D, Module, Result, Tensor};
use candle_nn::{GroupNorm, VarBuilder};

use super::fast_conv::FastConv;
use crate::model::config::VqvaeConfig;
use crate::ops::resample::nearest2x;

/// GroupNorm with `groups` groups (at most one per channel), eps 1e-6 as `models/basic_vae.py`.
pub fn group_norm(ch: usize, groups: usize, vb: VarBuilder) -> Result<GroupNorm> {
    GroupNorm::new(
        vb.get(ch, "weight")?,
        vb.get(ch, "bias")?,
        ch,
        groups.min(ch),
        1e-6,
    )
}

fn conv3(i: usize, o: usize, vb: VarBuilder) -> Result<FastConv> {
    FastConv::new(i, o, 3, 1, 1, vb)
}

fn conv1(i: usize, o: usize, vb: VarBuilder) -> Result<FastConv> {
    FastConv::new(i, o, 1, 0, 1, vb)
}

pub struct ResBlock {
    norm1: GroupNorm,
    conv1: FastConv,
    norm2: GroupNorm,
    conv2: FastConv,
    nin_shortcut: Option<FastConv>,
}

impl ResBlock {
    pub fn new(i: usize, o: usize, g: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            norm1: group_norm(i, g, vb.pp("norm1"))?,
            conv1: conv3(i, o, vb.pp("conv1"))?,
            norm2: group_norm(o, g, vb.pp("norm2"))?,
            conv2: conv3(o, o, vb.pp("conv2"))?,
            nin_shortcut: if i != o {
                Some(conv1(i, o, vb.pp("nin_shortcut"))?)
            } else {
                None
            },
        })
    }
}

impl Module for ResBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.conv1.forward(&self.norm1.forward(x)?.silu()?)?;
        let h = self.conv2.forward(&self.norm2.forward(&h)?.silu()?)?;
        match &self.nin_shortcut {
            Some(s) => s.forward(x)? + h,
            None => x + h,
        }
    }
}

pub struct Attn {
    norm: GroupNorm,
    qkv: FastConv,
    proj_out: FastConv,
}

impl Attn {
    pub fn new(ch: usize, g: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            norm: group_norm(ch, g, vb.pp("norm"))?,
            qkv: conv1(ch, 3 * ch, vb.pp("qkv"))?,
            proj_out: conv1(ch, ch, vb.pp("proj_out"))?,
        })
    }
}

impl Module for Attn {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let n = h * w;
        let qkv = self
            .qkv
            .forward(&self.norm.forward(x)?)?
            .reshape((b, 3, c, n))?;
        let q = (qkv.narrow(1, 0, 1)?.squeeze(1)?.transpose(1, 2)? * (c as f64).powf(-0.5))?
            .contiguous()?;
        let k = qkv.narrow(1, 1, 1)?.squeeze(1)?.contiguous()?;
        let v = qkv
            .narrow(1, 2, 1)?
            .squeeze(1)?
            .transpose(1, 2)?
            .contiguous()?;
        let wts = candle_nn::ops::softmax(&q.matmul(&k)?, D::Minus1)?;
        let o = wts.matmul(&v)?.transpose(1, 2)?.reshape((b, c, h, w))?;
        x + self.proj_out.forward(&o)?
    }
}

struct Level {
    block: Vec<ResBlock>,
    attn: Vec<Attn>,
    resample: Option<FastConv>,
}

pub struct Mid {
    block_1: ResBlock,
    attn_1: Attn,
    block_2: ResBlock,
}

impl Mid {
    fn new(ch: usize, g: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            block_1: ResBlock::new(ch, ch, g, vb.pp("block_1"))?,
            attn_1: Attn::new(ch, g, vb.pp("attn_1"))?,
            block_2: ResBlock::new(ch, ch, g, vb.pp("block_2"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.block_2
            .forward(&self.attn_1.forward(&self.block_1.forward(x)?)?)
    }
}

fn run_level(level: &Level, mut h: Tensor, up: bool) -> Result<Tensor> {
    for (j, b) in level.block.iter().enumerate() {
        h = b.forward(&h)?;
        if let Some(a) = level.attn.get(j) {
            h = a.forward(&h)?;
        }
    }
    match &level.resample {
        Some(c) if up => c.forward(&nearest2x(&h)?),
        Some(c) => c.forward(&h),
        None => Ok(h),
    }
}

/// Twin of `model::vqvae::encoder::Encoder` (keys under `encoder.`).
pub struct FastEncoder {
    conv_in: FastConv,
    down: Vec<Level>,
    mid: Mid,
    norm_out: GroupNorm,
    conv_out: FastConv,
}

impl FastEncoder {
    /// `g`: GroupNorm groups (32 in the release and in the inference modules).
    pub fn new(cfg: &VqvaeConfig, g: usize, vb: VarBuilder) -> Result<Self> {
        let levels = cfg.ch_mult.len();
        let mut block_in = cfg.ch;
        let mut down = Vec::with_capacity(levels);
        for level in 0..levels {
            let vl = vb.pp("down").pp(level);
            let block_out = cfg.ch * cfg.ch_mult[level];
            let (mut block, mut attn) = (Vec::new(), Vec::new());
            for j in 0..cfg.num_res_blocks {
                block.push(ResBlock::new(block_in, block_out, g, vl.pp("block").pp(j))?);
                block_in = block_out;
                if level == levels - 1 {
                    attn.push(Attn::new(block_in, g, vl.pp("attn").pp(j))?);
                }
            }
            let resample = if level + 1 != levels {
                Some(FastConv::downsample(
                    block_in,
                    vl.pp("downsample").pp("conv"),
                )?)
            } else {
                None
            };
            down.push(Level {
                block,
                attn,
                resample,
            });
        }
        Ok(Self {
            conv_in: conv3(3, cfg.ch, vb.pp("conv_in"))?,
            down,
            mid: Mid::new(block_in, g, vb.pp("mid"))?,
            norm_out: group_norm(block_in, g, vb.pp("norm_out"))?,
            conv_out: conv3(block_in, cfg.cvae, vb.pp("conv_out"))?,
        })
    }
}

impl Module for FastEncoder {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.conv_in.forward(x)?;
        for level in &self.down {
            h = run_level(level, h, false)?;
        }
        let h = self.mid.forward(&h)?;
        self.conv_out.forward(&self.norm_out.forward(&h)?.silu()?)
    }
}

/// Twin of `model::vqvae::decoder::Decoder` (keys under `decoder.`).
pub struct FastDecoder {
    conv_in: FastConv,
    mid: Mid,
    /// Indexed by level (`up.0` = full resolution); run from the last.
    up: Vec<Level>,
    norm_out: GroupNorm,
    conv_out: FastConv,
}

impl FastDecoder {
    /// `g`: GroupNorm groups (32 in the release and in the inference modules).
    pub fn new(cfg: &VqvaeConfig, g: usize, vb: VarBuilder) -> Result<Self> {
        let levels = cfg.ch_mult.len();
        let mut block_in = cfg.ch * cfg.ch_mult[levels - 1];
        let conv_in = conv3(cfg.cvae, block_in, vb.pp("conv_in"))?;
        let mid = Mid::new(block_in, g, vb.pp("mid"))?;
        let mut up = Vec::with_capacity(levels);
        for level in (0..levels).rev() {
            let vl = vb.pp("up").pp(level);
            let block_out = cfg.ch * cfg.ch_mult[level];
            let (mut block, mut attn) = (Vec::new(), Vec::new());
            for j in 0..=cfg.num_res_blocks {
                block.push(ResBlock::new(block_in, block_out, g, vl.pp("block").pp(j))?);
                block_in = block_out;
                if level == levels - 1 {
                    attn.push(Attn::new(block_in, g, vl.pp("attn").pp(j))?);
                }
            }
            let resample = if level != 0 {
                Some(conv3(block_in, block_in, vl.pp("upsample").pp("conv"))?)
            } else {
                None
            };
            up.push(Level {
                block,
                attn,
                resample,
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

impl Module for FastDecoder {
    fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let mut h = self.mid.forward(&self.conv_in.forward(z)?)?;
        for level in self.up.iter().rev() {
            h = run_level(level, h, true)?;
        }
        self.conv_out.forward(&self.norm_out.forward(&h)?.silu()?)
    }
}

/// Twin of `model::encoder::ConEmbedding` (keys under `con_embedding.`): LR image → prefix tokens.
pub struct FastConEmbedding {
    conv_in: FastConv,
    blocks: Vec<FastConv>,
    conv_out: FastConv,
}

impl FastConEmbedding {
    pub fn new(channels: &[usize], out: usize, vb: VarBuilder) -> Result<Self> {
        let vbb = vb.pp("blocks");
        let mut blocks = Vec::new();
        for (i, pair) in channels.windows(2).enumerate() {
            blocks.push(FastConv::new(pair[0], pair[0], 3, 1, 1, vbb.pp(2 * i))?);
            blocks.push(FastConv::new(pair[0], pair[1], 3, 1, 2, vbb.pp(2 * i + 1))?);
        }
        let last = *channels.last().unwrap_or(&channels[0]);
        Ok(Self {
            conv_in: conv3(3, channels[0], vb.pp("conv_in"))?,
            blocks,
            conv_out: conv3(last, out, vb.pp("conv_out"))?,
        })
    }

    pub fn forward(&self, lr: &Tensor) -> Result<Tensor> {
        let mut h = self.conv_in.forward(lr)?.silu()?;
        for b in &self.blocks {
            h = b.forward(&h)?.silu()?;
        }
        let e = self.conv_out.forward(&h)?;
        let (b, c, hh, ww) = e.dims4()?;
        e.reshape((b, c, hh * ww))?.transpose(1, 2)?.contiguous()
    }
}
