//! `varsr convert`: the released `VARSR.pth` + `VQVAE.pth` (or a converted file) into one
//! safetensors file with the model configuration in its metadata.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use candle_core::DType;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::info::read_configs;
use crate::pipeline::engine_load::{META_KEY, ModelMeta};
use crate::weights::{self, open_model_files};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DtypeArg {
    F32,
    F16,
    Bf16,
}

impl DtypeArg {
    fn dtype(self) -> DType {
        match self {
            DtypeArg::F32 => DType::F32,
            DtypeArg::F16 => DType::F16,
            DtypeArg::Bf16 => DType::BF16,
        }
    }
}

#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Only the tensors inference reads are kept (no optimizer state, no VQVAE encoder), so the 13.7 GB
released VARSR.pth becomes about 4.5 GB in f32 or 2.3 GB in f16/bf16.

Example:
  varsr convert checkpoints/ -o varsr.safetensors --dtype bf16")]
pub struct ConvertArgs {
    /// A folder with the released VARSR.pth and VQVAE.pth (or a converted .safetensors to re-cast).
    #[arg(value_name = "MODEL")]
    pub source: PathBuf,

    /// The safetensors file to write.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,

    /// Floating-point type of the written weights.
    #[arg(long, value_enum, default_value_t = DtypeArg::F32)]
    pub dtype: DtypeArg,

    /// Model name stored in the file (shown by `varsr info` and in output metadata).
    #[arg(long)]
    pub name: Option<String>,

    /// Replace the output file if it exists.
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(args: ConvertArgs) -> ExitCode {
    match convert(&args) {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn convert(args: &ConvertArgs) -> Result<String, String> {
    if args.output.exists() && !args.overwrite {
        return Err(format!(
            "{} exists (--overwrite replaces it)",
            args.output.display()
        ));
    }
    let files = open_model_files(&args.source).map_err(|e| e.to_string())?;
    let (var_cfg, vae_cfg, declared_name) = read_configs(&files)?;
    let name = args
        .name
        .clone()
        .or(declared_name)
        .unwrap_or_else(|| "VARSR".to_string());
    let meta = ModelMeta {
        name,
        var: var_cfg,
        vqvae: vae_cfg,
        tile_overlap: None,
        default_cfg: None,
    };
    let json = serde_json::to_string(&meta).map_err(|e| e.to_string())?;
    let metadata = HashMap::from([(META_KEY.to_string(), json)]);
    let bar = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("converting [{bar:30}] {bytes}/{total_bytes} · ETA {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let summary = weights::convert_with_progress(
        &files.var(),
        &files.vae(),
        weights::is_inference_key,
        &args.output,
        args.dtype.dtype(),
        metadata,
        &mut |done, total| {
            bar.set_length(total.max(1));
            bar.set_position(done);
        },
    );
    bar.finish_and_clear();
    let summary = summary.map_err(|e| e.to_string())?;
    Ok(format!(
        "wrote {}: {} tensors, {:.1} MB ({} training-only tensors left out)",
        args.output.display(),
        summary.tensors,
        summary.data_bytes as f64 / 1e6,
        summary.dropped.len()
    ))
}
