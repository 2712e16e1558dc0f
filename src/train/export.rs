//! Writes the trained model as the app loads it: one safetensors file with `var.`/`vae.` tensors
//! (training-only ones dropped by `weights::convert`'s filter), f16 storage, and the configuration as
//! `varsr.config` metadata.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::DType;

use super::{checkpoint, small};
use crate::pipeline::engine_load::{META_KEY, ModelMeta};
use crate::weights::{Weights, convert, is_inference_key};

/// Builds `out` from the two training checkpoints. Returns the file size in bytes.
pub fn export(
    tokenizer_ckpt: &Path,
    transformer_ckpt: &Path,
    out: &Path,
    name: &str,
) -> Result<u64> {
    let tmp = tempdir_near(out)?;
    let var_path = tmp.join("var.safetensors");
    let vae_path = tmp.join("vae.safetensors");
    for (src, dst) in [(transformer_ckpt, &var_path), (tokenizer_ckpt, &vae_path)] {
        let params =
            checkpoint::load_frozen(src).with_context(|| format!("reading {}", src.display()))?;
        candle_core::safetensors::save(&params, dst)?;
    }
    let var = Weights::open_safetensors(&var_path)?;
    let vae = Weights::open_safetensors(&vae_path)?;
    let meta = ModelMeta {
        name: name.to_string(),
        var: small::var_config(),
        vqvae: small::vqvae_config(),
        tile_overlap: Some(small::TILE_OVERLAP),
        default_cfg: Some(small::DEFAULT_CFG),
    };
    let mut metadata = HashMap::new();
    metadata.insert(META_KEY.to_string(), serde_json::to_string(&meta)?);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    convert(&var, &vae, is_inference_key, out, DType::F16, metadata)?;
    std::fs::remove_dir_all(&tmp).ok();
    Ok(std::fs::metadata(out)?.len())
}

fn tempdir_near(out: &Path) -> Result<std::path::PathBuf> {
    let base = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = base.join(format!(".export-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
