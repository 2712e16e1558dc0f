//! The refiner network `diffloss.net` (`SimpleMLPAdaLN`, models/diffusion/diffloss.py L197-280, HART's copy
//! of MAR's diffusion head). The sampling loop lives in `pipeline::refiner`.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder, linear};

use super::transformer::AffineLayerNorm;
use crate::ops::adaln;
use crate::ops::silu::{silu, silu_after};

/// `time_embed`: sinusoidal features (cos first) → Linear → SiLU → Linear.
pub struct TimestepEmbedder {
    mlp0: Linear,
    mlp2: Linear,
    freq_dim: usize,
}

impl TimestepEmbedder {
    fn new(freq_dim: usize, width: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            mlp0: linear(freq_dim, width, vb.pp("mlp").pp(0))?,
            mlp2: linear(width, width, vb.pp("mlp").pp(2))?,
            freq_dim,
        })
    }

    /// `[cos(t·f), sin(t·f)]` with `f_k = exp(−ln(10000)·k/half)`, computed in f32 step by step as
    /// the reference does so that large timesteps round the same way.
    pub fn features(t: f32, freq_dim: usize) -> Vec<f32> {
        let half = freq_dim / 2;
        let ln_max = -(10000f64.ln() as f32);
        let args: Vec<f32> = (0..half)
            .map(|k| t * ((ln_max * k as f32) / half as f32).exp())
            .collect();
        let mut out: Vec<f32> = args.iter().map(|&a| (a as f64).cos() as f32).collect();
        out.extend(args.iter().map(|&a| (a as f64).sin() as f32));
        out
    }

    /// Embedding of one timestep, `(1, width)`.
    pub fn forward(&self, t: f32, dev: &candle_core::Device) -> Result<Tensor> {
        let f = Tensor::from_vec(Self::features(t, self.freq_dim), (1, self.freq_dim), dev)?;
        self.mlp2.forward(&self.mlp0.forward(&f)?.silu()?)
    }
}

/// `res_blocks.{j}`: `h + gate·mlp(LN(h)·(1+scale) + shift)` with (shift, scale, gate) from `adaLN_modulation`.
pub struct ResBlock {
    in_ln: AffineLayerNorm,
    mlp0: Linear,
    mlp2: Linear,
    ada: Linear,
}

impl ResBlock {
    fn new(width: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            in_ln: AffineLayerNorm::new(width, vb.pp("in_ln"))?,
            mlp0: linear(width, width, vb.pp("mlp").pp(0))?,
            mlp2: linear(width, width, vb.pp("mlp").pp(2))?,
            ada: linear(width, 3 * width, vb.pp("adaLN_modulation").pp(1))?,
        })
    }

    fn forward(&self, h: &Tensor, y_silu: &Tensor) -> Result<Tensor> {
        let m = self.ada.forward(y_silu)?;
        let x = adaln::modulate(h, Some(self.in_ln.params()), &m, 3)?;
        let x = self.mlp2.forward(&silu_after(&self.mlp0, &x)?)?;
        adaln::gated_residual(h, &x, &m, 3)
    }
}

/// `final_layer`: `linear(LN(h)·(1+scale) + shift)` with (shift, scale).
pub struct FinalLayer {
    ada: Linear,
    linear: Linear,
}

impl FinalLayer {
    fn new(width: usize, out: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            ada: linear(width, 2 * width, vb.pp("adaLN_modulation").pp(1))?,
            linear: linear(width, out, vb.pp("linear"))?,
        })
    }

    fn forward(&self, h: &Tensor, y_silu: &Tensor) -> Result<Tensor> {
        let m = self.ada.forward(y_silu)?;
        self.linear.forward(&adaln::modulate(h, None, &m, 2)?)
    }
}

/// `diffloss.net`.
pub struct SimpleMlpAdaLn {
    pub time_embed: TimestepEmbedder,
    cond_embed: Linear,
    input_proj: Linear,
    res_blocks: Vec<ResBlock>,
    final_layer: FinalLayer,
}

impl SimpleMlpAdaLn {
    pub fn new(
        target: usize,
        cond_dim: usize,
        width: usize,
        depth: usize,
        freq_dim: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let res_blocks = (0..depth)
            .map(|j| ResBlock::new(width, vb.pp("res_blocks").pp(j)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            time_embed: TimestepEmbedder::new(freq_dim, width, vb.pp("time_embed"))?,
            cond_embed: linear(cond_dim, width, vb.pp("cond_embed"))?,
            input_proj: linear(target, width, vb.pp("input_proj"))?,
            res_blocks,
            final_layer: FinalLayer::new(width, 2 * target, vb.pp("final_layer"))?,
        })
    }

    /// The condition part of `y`, which is the same at every step: compute it once per run.
    pub fn embed_cond(&self, c: &Tensor) -> Result<Tensor> {
        self.cond_embed.forward(c)
    }

    /// One evaluation: `x` `(N, target)`, `t_emb` `(1, width)` or `(N, width)` from
    /// [`TimestepEmbedder::forward`], `c_emb` `(N, width)` from [`Self::embed_cond`]. Returns `(N, 2·target)`:
    /// ε then the variance interpolation values.
    pub fn forward(&self, x: &Tensor, t_emb: &Tensor, c_emb: &Tensor) -> Result<Tensor> {
        let y_silu = silu(&c_emb.broadcast_add(t_emb)?)?;
        let mut h = self.input_proj.forward(x)?;
        for b in &self.res_blocks {
            h = b.forward(&h, &y_silu)?;
        }
        self.final_layer.forward(&h, &y_silu)
    }

    /// Channels of the refined latent (Cvae).
    pub fn target_channels(&self) -> usize {
        self.input_proj.weight().dims()[1]
    }

    pub fn dtype(&self) -> DType {
        self.input_proj.weight().dtype()
    }
}
