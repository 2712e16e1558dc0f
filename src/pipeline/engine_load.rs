//! Building an [`Engine`] from weights: the release's checkpoints, a converted file, the embedded model,
//! or random weights (benchmarks).

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use super::engine::{Engine, ModelSpec};
use super::{Error, Result};
use crate::model::config::{VarConfig, VqvaeConfig};
use crate::model::random_init::RandomInit;
use crate::model::var::Var;
use crate::model::vqvae::Vqvae;
use crate::weights::{ModelFiles, WeightsError, open_model_files};

/// Metadata key of a converted file that holds the model configuration as JSON ([`ModelMeta`]).
pub const META_KEY: &str = "varsr.config";

/// What a converted or trained model file says about itself.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ModelMeta {
    pub name: String,
    pub var: VarConfig,
    pub vqvae: VqvaeConfig,
    /// Latent cells shared by neighbouring tiles; absent: a quarter tile, as published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tile_overlap: Option<usize>,
    /// The guidance this model was tuned for; absent: the release's 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_cfg: Option<f32>,
}

fn weights_err(e: WeightsError) -> Error {
    Error::Invalid(e.to_string())
}

/// The bytes of the embedded default model, when the build found one in `models/`.
pub fn embedded_bytes() -> Option<&'static [u8]> {
    #[cfg(varsr_embedded_model)]
    {
        Some(include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/varsr-studio-small.safetensors"
        )))
    }
    #[cfg(not(varsr_embedded_model))]
    {
        None
    }
}

impl Engine {
    /// Loads in f32.
    pub fn load(spec: &ModelSpec, device: &Device) -> Result<Engine> {
        Self::load_with(spec, device, DType::F32)
    }

    /// Loads with weights and activations in `dtype` (f16/bf16 are meant for CUDA).
    pub fn load_with(spec: &ModelSpec, device: &Device, dtype: DType) -> Result<Engine> {
        let (files, origin) = match spec {
            ModelSpec::Embedded => {
                let bytes = embedded_bytes().ok_or_else(|| {
                    Error::Invalid(
                        "this build has no embedded model (models/varsr-studio-small.safetensors was missing \
                         when it was compiled); pass a model folder with --model"
                            .into(),
                    )
                })?;
                (
                    ModelFiles::from_static(bytes, "embedded model").map_err(weights_err)?,
                    "embedded".to_string(),
                )
            }
            ModelSpec::Path(p) => (
                open_model_files(p).map_err(weights_err)?,
                p.display().to_string(),
            ),
        };
        Self::from_files(&files, &origin, device, dtype)
    }

    pub fn from_files(
        files: &ModelFiles,
        origin: &str,
        device: &Device,
        dtype: DType,
    ) -> Result<Engine> {
        let meta = files.metadata();
        let declared: Option<ModelMeta> = match meta.get(META_KEY) {
            Some(json) => Some(serde_json::from_str(json).map_err(|e| {
                Error::Invalid(format!("{origin}: unreadable `{META_KEY}` metadata: {e}"))
            })?),
            None => None,
        };
        let var_w = files.var();
        let vae_w = files.vae();
        let var_cfg = VarConfig::from_shapes(
            &|n: &str| var_w.shape(n),
            declared.as_ref().map(|m| m.var.patch_nums.clone()),
        )?;
        let mut vae_cfg = VqvaeConfig::from_shapes(&|n: &str| vae_w.shape(n))?;
        // The group count and the residual coding are in no tensor's shape: only the metadata can
        // say they differ from the release's.
        if let Some(m) = &declared {
            vae_cfg.norm_groups = m.vqvae.norm_groups;
            vae_cfg.residual_gain = m.vqvae.residual_gain;
        }
        if var_cfg.vocab_size != vae_cfg.vocab_size || var_cfg.cvae != vae_cfg.cvae {
            return Err(Error::Invalid(format!(
                "{origin}: the transformer predicts {} codes of {} channels but the VQVAE has {} codes of {}",
                var_cfg.vocab_size, var_cfg.cvae, vae_cfg.vocab_size, vae_cfg.cvae
            )));
        }
        let var = Var::new(var_cfg, files.var_builder(dtype, device))?;
        let vae = Vqvae::new(vae_cfg, files.vae_builder(dtype, device))?;
        let overlap = declared.as_ref().and_then(|m| m.tile_overlap);
        let default_cfg = declared.as_ref().and_then(|m| m.default_cfg);
        let name = declared
            .map(|m| m.name)
            .unwrap_or_else(|| "VARSR".to_string());
        let mut engine = Self::assemble(var, vae, device, format!("{name} from {origin}"));
        if let Some(o) = overlap {
            if o >= engine.latent_side() {
                return Err(Error::Invalid(format!(
                    "{origin}: a tile overlap of {o} cells does not fit {}-cell tiles",
                    engine.latent_side()
                )));
            }
            engine.tile_overlap = o;
        }
        if let Some(g) = default_cfg {
            if !(0.0..=100.0).contains(&g) {
                return Err(Error::Invalid(format!(
                    "{origin}: default guidance {g} is outside 0–100"
                )));
            }
            engine.default_cfg = g;
        }
        Ok(engine)
    }

    /// A model of the given sizes with seeded random weights, for benchmarks and tests of plumbing.
    pub fn random(
        var_cfg: VarConfig,
        vae_cfg: VqvaeConfig,
        seed: u64,
        device: &Device,
    ) -> Result<Engine> {
        Self::random_with(var_cfg, vae_cfg, seed, device, DType::F32)
    }

    /// [`Engine::random`] with the weights made directly in `dtype` on `device` (never a full f32
    /// copy on a GPU).
    pub fn random_with(
        var_cfg: VarConfig,
        vae_cfg: VqvaeConfig,
        seed: u64,
        device: &Device,
        dtype: DType,
    ) -> Result<Engine> {
        let vb = |s| VarBuilder::from_backend(Box::new(RandomInit::new(s)), dtype, device.clone());
        let var = Var::new(var_cfg, vb(seed))?;
        let vae = Vqvae::new(vae_cfg, vb(seed ^ 0x9e37))?;
        Ok(Self::assemble(
            var,
            vae,
            device,
            "random weights (not a trained model)".to_string(),
        ))
    }

    fn assemble(var: Var, vae: Vqvae, device: &Device, summary: String) -> Engine {
        let c = &var.config;
        let tile_overlap = super::tiling::TileGeometry::for_tile(c.final_side()).overlap;
        let description = format!(
            "{summary}: depth {}, width {}, {} scales up to {}×{}, {} px tiles",
            c.depth,
            c.embed_dim,
            c.patch_nums.len(),
            c.final_side(),
            c.final_side(),
            c.final_side() * vae.downsample()
        );
        Engine {
            var,
            vae,
            device: device.clone(),
            description,
            tile_overlap,
            default_cfg: crate::pipeline::SamplingParams::DEFAULT_CFG,
            preview_map: Default::default(),
        }
    }
}
