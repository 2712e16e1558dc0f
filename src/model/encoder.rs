//! The LR encoder `con_embedding` (`ControlNetConditioningEmbedding`, models/var.py L29-79): it turns the
//! LR image into the prefix tokens the transformer attends to.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, VarBuilder, conv2d};

use crate::ops::silu::silu;

pub struct ConEmbedding {
    conv_in: Conv2d,
    /// Pairs of 3×3 convolutions; the second of each pair has stride 2.
    blocks: Vec<Conv2d>,
    conv_out: Conv2d,
}

impl ConEmbedding {
    /// `channels` as in the release's `(32, 128, 256, 512, 1536)`; `out` is the transformer width.
    pub fn new(channels: &[usize], out: usize, vb: VarBuilder) -> Result<Self> {
        let same = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        let down = Conv2dConfig {
            padding: 1,
            stride: 2,
            ..Default::default()
        };
        let conv_in = conv2d(3, channels[0], 3, same, vb.pp("conv_in"))?;
        let vbb = vb.pp("blocks");
        let mut blocks = Vec::with_capacity(2 * channels.len());
        for (i, pair) in channels.windows(2).enumerate() {
            blocks.push(conv2d(pair[0], pair[0], 3, same, vbb.pp(2 * i))?);
            blocks.push(conv2d(pair[0], pair[1], 3, down, vbb.pp(2 * i + 1))?);
        }
        let last = *channels.last().unwrap_or(&channels[0]);
        let conv_out = conv2d(last, out, 3, same, vb.pp("conv_out"))?;
        Ok(Self {
            conv_in,
            blocks,
            conv_out,
        })
    }

    /// `(B, 3, S, S)` in [-1, 1] → prefix tokens `(B, (S/2ⁿ)², C)`, row-major.
    pub fn forward(&self, lr: &Tensor) -> Result<Tensor> {
        let mut h = silu(&self.conv_in.forward(lr)?)?;
        for b in &self.blocks {
            h = silu(&b.forward(&h)?)?;
        }
        let e = self.conv_out.forward(&h)?;
        let (b, c, hh, ww) = e.dims4()?;
        e.reshape((b, c, hh * ww))?.transpose(1, 2)?.contiguous()
    }
}
