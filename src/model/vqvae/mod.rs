//! The multi-scale VQVAE of VAR/VARSR (models/vqvae.py): quantizer (codebook + φ), decoder, and (for
//! training) encoder. Field names equal the keys of `VQVAE.pth` → `trainer.vae_local`.

pub mod blocks;
pub mod decoder;
pub mod encoder;
pub mod quantizer;

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::config::VqvaeConfig;
use blocks::{Conv3, conv3};
use decoder::Decoder;
use quantizer::Quantizer;

pub struct Vqvae {
    pub config: VqvaeConfig,
    pub quantize: Quantizer,
    pub post_quant_conv: Conv3,
    pub decoder: Decoder,
}

impl Vqvae {
    pub fn new(config: VqvaeConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            quantize: Quantizer::new(
                config.vocab_size,
                config.cvae,
                config.num_phi,
                vb.pp("quantize"),
            )?,
            post_quant_conv: conv3(config.cvae, config.cvae, vb.pp("post_quant_conv"))?,
            decoder: Decoder::new(&config, vb.pp("decoder"))?,
            config,
        })
    }

    pub fn downsample(&self) -> usize {
        self.config.downsample()
    }

    /// `decoder(post_quant_conv(f̂))`, unclamped.
    pub fn decode_raw(&self, f_hat: &Tensor) -> Result<Tensor> {
        self.decoder.forward(&self.post_quant_conv.forward(f_hat)?)
    }

    /// `fhat_to_img`: `clamp(decoder(post_quant_conv(f̂)), −1, 1)`, mapped to [0, 1].
    pub fn decode_to_unit(&self, f_hat: &Tensor) -> Result<Tensor> {
        (self.decode_raw(f_hat)?.clamp(-1f32, 1f32)? + 1.0)? * 0.5
    }
}
