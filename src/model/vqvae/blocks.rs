//! Building blocks of the VQVAE encoder and decoder (models/basic_vae.py).

use candle_core::{Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, VarBuilder, conv2d};

use crate::ops::resample::nearest2x;
use crate::ops::{self, winograd};

const GN_EPS: f64 = 1e-6;

/// `nn.GroupNorm(groups, ch, eps=1e-6)`. `groups` comes from
/// [`VqvaeConfig::norm_groups`](crate::model::config::VqvaeConfig): 32 in the release; capped at one
/// channel per group as torch requires `ch % groups == 0`.
pub struct GroupNorm {
    weight: Tensor,
    bias: Tensor,
    groups: usize,
}

pub fn group_norm(ch: usize, groups: usize, vb: VarBuilder) -> Result<GroupNorm> {
    Ok(GroupNorm {
        weight: vb.get(ch, "weight")?,
        bias: vb.get(ch, "bias")?,
        groups: groups.min(ch),
    })
}

impl GroupNorm {
    /// `silu(norm(x))` in one pass.
    pub fn forward_silu(&self, x: &Tensor) -> Result<Tensor> {
        ops::group_norm::group_norm(x, &self.weight, &self.bias, self.groups, GN_EPS, true)
    }
}

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::group_norm::group_norm(x, &self.weight, &self.bias, self.groups, GN_EPS, false)
    }
}

/// A 3×3 convolution with padding 1 (`nn.Conv2d(i, o, 3, padding=1)`), run by
/// [`winograd::conv3x3`] on the CPU.
pub struct Conv3(Conv2d);

pub fn conv3(i: usize, o: usize, vb: VarBuilder) -> Result<Conv3> {
    Ok(Conv3(conv3_direct(i, o, vb)?))
}

/// The same convolution run by candle's direct kernel: for the quantizer's φ, whose rounding
/// decides the next scale's tokens and must match the published code's as closely as possible.
pub fn conv3_direct(i: usize, o: usize, vb: VarBuilder) -> Result<Conv2d> {
    conv2d(
        i,
        o,
        3,
        Conv2dConfig {
            padding: 1,
            ..Default::default()
        },
        vb,
    )
}

impl Module for Conv3 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        winograd::conv3x3(x, self.0.weight(), self.0.bias())
    }
}

pub fn conv1(i: usize, o: usize, vb: VarBuilder) -> Result<Conv2d> {
    conv2d(i, o, 1, Default::default(), vb)
}

/// `ResnetBlock`: `nin_shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))))))`.
pub struct ResnetBlock {
    norm1: GroupNorm,
    conv1: Conv3,
    norm2: GroupNorm,
    conv2: Conv3,
    nin_shortcut: Option<Conv2d>,
}

impl ResnetBlock {
    pub fn new(i: usize, o: usize, groups: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            norm1: group_norm(i, groups, vb.pp("norm1"))?,
            conv1: conv3(i, o, vb.pp("conv1"))?,
            norm2: group_norm(o, groups, vb.pp("norm2"))?,
            conv2: conv3(o, o, vb.pp("conv2"))?,
            nin_shortcut: if i != o {
                Some(conv1(i, o, vb.pp("nin_shortcut"))?)
            } else {
                None
            },
        })
    }
}

impl Module for ResnetBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.conv1.forward(&self.norm1.forward_silu(x)?)?;
        let h = self.conv2.forward(&self.norm2.forward_silu(&h)?)?;
        match &self.nin_shortcut {
            Some(s) => s.forward(x)? + h,
            None => x + h,
        }
    }
}

/// `AttnBlock`: single-head self-attention over all positions, `x + proj_out(v·softmax(qᵀk/√C)ᵀ)`.
pub struct AttnBlock {
    norm: GroupNorm,
    qkv: Conv2d,
    proj_out: Conv2d,
    ch: usize,
}

/// Query rows per chunk: bounds the `(rows, HW)` score matrix for large latents.
const ATTN_QUERY_CHUNK: usize = 1024;

impl AttnBlock {
    pub fn new(ch: usize, groups: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            norm: group_norm(ch, groups, vb.pp("norm"))?,
            qkv: conv1(ch, 3 * ch, vb.pp("qkv"))?,
            proj_out: conv1(ch, ch, vb.pp("proj_out"))?,
            ch,
        })
    }
}

impl Module for AttnBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let n = h * w;
        let qkv = self
            .qkv
            .forward(&self.norm.forward(x)?)?
            .reshape((b, 3, c, n))?;
        let scale = (self.ch as f64).powf(-0.5);
        let q = (qkv.narrow(1, 0, 1)?.squeeze(1)?.transpose(1, 2)? * scale)?.contiguous()?; // (B, N, C)
        let k = qkv.narrow(1, 1, 1)?.squeeze(1)?.contiguous()?; // (B, C, N)
        let v = qkv
            .narrow(1, 2, 1)?
            .squeeze(1)?
            .transpose(1, 2)?
            .contiguous()?; // (B, N, C)
        let mut outs = Vec::with_capacity(n.div_ceil(ATTN_QUERY_CHUNK));
        for s in (0..n).step_by(ATTN_QUERY_CHUNK) {
            let qs = q.narrow(1, s, ATTN_QUERY_CHUNK.min(n - s))?;
            let s = qs.matmul(&k)?;
            // The fused softmax has no backward pass; the tokenizer's training needs the composed one.
            let wts = if s.track_op() {
                candle_nn::ops::softmax(&s, candle_core::D::Minus1)?
            } else {
                candle_nn::ops::softmax_last_dim(&s)?
            };
            outs.push(wts.matmul(&v)?);
        }
        let o = Tensor::cat(&outs, 1)?
            .transpose(1, 2)?
            .reshape((b, c, h, w))?;
        x + self.proj_out.forward(&o)?
    }
}

/// `Upsample2x`: nearest ×2 then a 3×3 conv.
pub struct Upsample {
    conv: Conv3,
}

impl Upsample {
    pub fn new(ch: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            conv: conv3(ch, ch, vb.pp("conv"))?,
        })
    }
}

impl Module for Upsample {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.conv.forward(&nearest2x(x)?)
    }
}

/// `Downsample2x`: zero-pad right and bottom by one, then a stride-2 3×3 conv.
pub struct Downsample {
    conv: Conv2d,
}

impl Downsample {
    pub fn new(ch: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            conv: conv2d(
                ch,
                ch,
                3,
                Conv2dConfig {
                    stride: 2,
                    ..Default::default()
                },
                vb.pp("conv"),
            )?,
        })
    }
}

impl Module for Downsample {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.pad_with_zeros(3, 0, 1)?.pad_with_zeros(2, 0, 1)?;
        self.conv.forward(&x)
    }
}
