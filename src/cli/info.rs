//! `varsr info`: what a model is, read from its files' indexes (no weights are loaded).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::model::config::{VarConfig, VqvaeConfig};
use crate::pipeline::engine_load::{META_KEY, ModelMeta, embedded_bytes};
use crate::weights::{ModelFiles, Weights, open_model_files};

#[derive(Args, Debug, Clone)]
pub struct InfoArgs {
    /// A folder with VARSR.pth + VQVAE.pth, or a converted .safetensors file. Default: the
    /// model built into this program.
    #[arg(value_name = "MODEL")]
    pub model: Option<PathBuf>,

    /// Print the configuration as JSON only.
    #[arg(long)]
    pub json: bool,
}

/// The sizes of both networks from the tensor shapes (patch sizes and name from the metadata of
/// a converted file when it has them).
pub fn read_configs(
    files: &ModelFiles,
) -> Result<(VarConfig, VqvaeConfig, Option<String>), String> {
    let declared: Option<ModelMeta> = match files.metadata().get(META_KEY) {
        Some(json) => Some(
            serde_json::from_str(json)
                .map_err(|e| format!("unreadable `{META_KEY}` metadata: {e}"))?,
        ),
        None => None,
    };
    let var = files.var();
    let vae = files.vae();
    let var_cfg = VarConfig::from_shapes(
        &|n: &str| var.shape(n),
        declared.as_ref().map(|m| m.var.patch_nums.clone()),
    )
    .map_err(|e| e.to_string())?;
    let vae_cfg = VqvaeConfig::from_shapes(&|n: &str| vae.shape(n)).map_err(|e| e.to_string())?;
    Ok((var_cfg, vae_cfg, declared.map(|m| m.name)))
}

fn parameters(w: &Weights) -> u64 {
    w.keys()
        .filter_map(|k| w.shape(k))
        .map(|s| s.iter().product::<usize>() as u64)
        .sum()
}

pub fn run(args: InfoArgs) -> ExitCode {
    match info(&args) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn info(args: &InfoArgs) -> Result<String, String> {
    let files = match &args.model {
        Some(p) => open_model_files(p).map_err(|e| e.to_string())?,
        None => {
            let bytes =
                embedded_bytes().ok_or("this build has no embedded model; give a model path")?;
            ModelFiles::from_static(bytes, "embedded model").map_err(|e| e.to_string())?
        }
    };
    let (var, vae, name) = read_configs(&files)?;
    let json = serde_json::json!({ "name": name, "var": var, "vqvae": vae });
    if args.json {
        return serde_json::to_string_pretty(&json).map_err(|e| e.to_string());
    }
    let f = vae.downsample();
    let side = var.final_side();
    let lines = [
        format!("model:        {}", name.unwrap_or_else(|| "VARSR".into())),
        format!("files:        {}", files.describe()),
        format!(
            "transformer:  depth {}, width {}, {} heads, MLP {}, {:.1} M parameters",
            var.depth,
            var.embed_dim,
            var.num_heads,
            var.mlp_hidden,
            parameters(&files.var()) as f64 / 1e6
        ),
        format!(
            "scales:       {} ({:?}), {} tokens with the LR prefix",
            var.patch_nums.len(),
            var.patch_nums,
            var.total_tokens()
        ),
        format!(
            "codebook:     {} codes of {} channels; LR encoder channels {:?}",
            var.vocab_size, var.cvae, var.encoder_channels
        ),
        format!(
            "refiner:      width {}, depth {}",
            var.refiner_width, var.refiner_depth
        ),
        format!(
            "VQVAE:        ch {}, ch_mult {:?}, {} res blocks, {} φ convs, {:.1} M parameters",
            vae.ch,
            vae.ch_mult,
            vae.num_res_blocks,
            vae.num_phi,
            parameters(&files.vae()) as f64 / 1e6
        ),
        format!(
            "tiles:        {side}×{side} latents = {0}×{0} px, downsampling {f}",
            side * f
        ),
        String::new(),
        serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?,
    ];
    Ok(lines.join("\n"))
}
