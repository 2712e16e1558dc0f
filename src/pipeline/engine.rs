//! A loaded model, ready to generate: the transformer (with its LR encoder and refiner), the
//! VQVAE, the device and a description for people.

use std::path::PathBuf;

use candle_core::{Device, Tensor};

use super::{Noise, Observer, Result, SamplingParams};

/// Where to load a model from.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSpec {
    /// The small model embedded in the binary (`models/varsr-studio-small.safetensors`).
    Embedded,
    /// A folder with the released `VARSR.pth` and `VQVAE.pth`, or one converted `.safetensors` file.
    Path(PathBuf),
}

/// The output of the scale loop for one batch of LR inputs.
pub struct Generated {
    /// The final latent after the refiner, `(B, Cvae, pn, pn)`.
    pub f_hat: Tensor,
    /// Token ids per scale, each `(B, pn²)` u32.
    pub tokens: Vec<Tensor>,
}

pub struct Engine {
    pub var: crate::model::var::Var,
    pub vae: crate::model::vqvae::Vqvae,
    pub device: Device,
    /// One line for people: which model, its size, where it came from.
    pub description: String,
    /// Latent cells shared by neighbouring tiles (a quarter tile unless the model file says otherwise).
    pub tile_overlap: usize,
    /// The guidance this model was tuned for (the release's 6 unless its file says otherwise).
    pub default_cfg: f32,
    /// Latent → RGB map for previews, fitted on first use.
    pub preview_map: std::sync::OnceLock<Tensor>,
}

impl Engine {
    /// Side in pixels of the model's input and output (512 for the release).
    pub fn tile_px(&self) -> usize {
        self.latent_side() * self.vae.downsample()
    }

    /// Side of the final latent grid (the last patch number; 32 for the release).
    pub fn latent_side(&self) -> usize {
        *self.var.config.patch_nums.last().unwrap_or(&0)
    }

    /// How tiles are laid over a latent larger than one tile.
    pub fn tile_geometry(&self) -> crate::pipeline::tiling::TileGeometry {
        crate::pipeline::tiling::TileGeometry {
            tile: self.latent_side(),
            overlap: self.tile_overlap,
        }
    }

    pub fn patch_nums(&self) -> &[usize] {
        &self.var.config.patch_nums
    }

    /// Runs the scale loop and the refiner on `lr` (`(B, 3, tile_px, tile_px)` in [-1, 1]).
    ///
    /// `locked` holds the token ids of the first `locked.len()` scales to reuse instead of
    /// sampling ("re-run from scale k", and teacher forcing in tests).
    pub fn generate(
        &self,
        lr: &Tensor,
        params: &SamplingParams,
        locked: &[Tensor],
        noise: &mut dyn Noise,
        observer: &mut dyn Observer,
        tile: (usize, usize),
    ) -> Result<Generated> {
        super::generate::generate(self, lr, params, locked, noise, observer, tile)
    }

    /// The preview colour map, fitted by decoding a small latent the first time it is needed.
    pub fn preview_map(&self) -> Result<Tensor> {
        if let Some(m) = self.preview_map.get() {
            return Ok(m.clone());
        }
        let m = super::preview::fit_rgb_map(self)?;
        Ok(self.preview_map.get_or_init(|| m).clone())
    }

    /// Decodes a latent `(B, Cvae, h, w)` to `(B, 3, h·f, w·f)`: the image in [0, 1], or, for a
    /// residual VQVAE ([`Engine::is_residual`]), the signed change to add to the bicubic upscale, in
    /// the same units.
    pub fn decode(&self, f_hat: &Tensor) -> Result<Tensor> {
        match self.vae.config.residual_gain {
            0 => Ok(self.vae.decode_to_unit(f_hat)?),
            g => Ok((self.vae.decode_raw(f_hat)? / (2.0 * g as f64))?),
        }
    }

    /// Whether the model codes detail on top of the bicubic upscale rather than whole images.
    pub fn is_residual(&self) -> bool {
        self.vae.config.residual_gain > 0
    }
}
