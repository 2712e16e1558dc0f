//! The worker's only contact with the pipeline: load a model, plan a job's tiles, run a job.
//! Tensors stay in here; what leaves is RGBA.

use std::sync::Arc;

use candle_core::Device;

use super::canvas::{Layout, TileRect};
use super::messages::{DeviceChoice, InputImage, JobOptions, ModelInfo, Picture, Tokens};
use crate::pipeline::engine::{Engine, ModelSpec};
use crate::pipeline::upscale::{
    self, KeptTiles, LockedTokens, TargetSize, UpscaleInput, UpscaleOptions,
};
use crate::pipeline::{Observer, Result, SeededNoise};

pub struct Loaded {
    pub engine: Engine,
    pub info: ModelInfo,
    /// Lines for the log (device fallbacks and the like).
    pub notes: Vec<String>,
}

/// The device for a choice, falling back to the CPU when CUDA is not there.
fn device(choice: DeviceChoice, notes: &mut Vec<String>) -> (Device, String) {
    match choice {
        DeviceChoice::Cpu => (Device::Cpu, "CPU".into()),
        DeviceChoice::Auto | DeviceChoice::Cuda => match Device::new_cuda(0) {
            Ok(d) => (d, "CUDA GPU 0".into()),
            Err(e) => {
                if choice == DeviceChoice::Cuda {
                    notes.push(format!(
                        "CUDA is not available ({e}); using the CPU instead."
                    ));
                    (Device::Cpu, "CPU (CUDA not available)".into())
                } else {
                    (Device::Cpu, "CPU".into())
                }
            }
        },
    }
}

/// Whether a model's weights are known to be untrained (random or a test fixture).
///
/// The engine does not record this, so it is read from what it says about itself and where it
/// came from; a trained release model never matches.
fn looks_untrained(spec: &ModelSpec, description: &str) -> bool {
    let d = description.to_ascii_lowercase();
    let from_fixture = match spec {
        ModelSpec::Path(p) => {
            let p = p.to_string_lossy().to_ascii_lowercase();
            p.contains("fixture") || p.contains("parity") || p.contains("random")
        }
        ModelSpec::Embedded => false,
    };
    d.contains("random") || d.contains("untrained") || from_fixture
}

pub fn load(spec: &ModelSpec, choice: DeviceChoice) -> std::result::Result<Loaded, String> {
    let mut notes = Vec::new();
    let (device, device_name) = device(choice, &mut notes);
    let engine = Engine::load(spec, &device).map_err(|e| e.to_string())?;
    // The banner names the model by its folder or file name; the log keeps the full path.
    let description = match spec {
        ModelSpec::Path(p) => match p.file_name() {
            Some(name) => engine
                .description
                .replace(&p.display().to_string(), &name.to_string_lossy()),
            None => engine.description.clone(),
        },
        ModelSpec::Embedded => engine.description.clone(),
    };
    notes.push(format!("Model: {}", engine.description));
    let info = ModelInfo {
        description,
        tile_px: engine.tile_px(),
        num_scales: engine.patch_nums().len(),
        default_cfg: engine.default_cfg,
        device: device_name,
        untrained: looks_untrained(spec, &engine.description),
    };
    Ok(Loaded {
        engine,
        info,
        notes,
    })
}

/// What a run keeps of an earlier result of the same image and size.
#[derive(Clone, Copy, Debug)]
pub enum Reuse<'a> {
    Nothing,
    /// The tokens of the scales before `from_scale`, in every tile.
    Scales {
        tokens: &'a Tokens,
        from_scale: usize,
    },
    /// Every tile except those under `rect` (output pixels), whose image is `base`.
    AllBut {
        kept: &'a Tokens,
        rect: (u32, u32, u32, u32),
        base: &'a Picture,
    },
}

fn options(job: &JobOptions, reuse: Reuse) -> UpscaleOptions {
    let mut opts = UpscaleOptions {
        params: job.params.clone(),
        size: TargetSize::Scale(job.scale),
        ..UpscaleOptions::default()
    };
    match reuse {
        Reuse::Nothing => {}
        Reuse::Scales { tokens, from_scale } => {
            opts.locked = Some(LockedTokens {
                from_scale,
                per_tile: tokens.per_tile.clone(),
            });
        }
        Reuse::AllBut { kept, rect, .. } => {
            opts.kept = Some(KeptTiles {
                latents: kept.latents.clone(),
                tokens: kept.per_tile.clone(),
                region: rect,
            });
        }
    }
    opts
}

/// Where each tile lands in the output, for composing previews.
pub fn layout(loaded: &Loaded, image: &InputImage, job: &JobOptions, reuse: Reuse) -> Layout {
    let size = (image.picture.width(), image.picture.height());
    let background = match reuse {
        Reuse::AllBut { base, .. } => Some(base.clone()),
        _ => None,
    };
    match upscale::plan(&loaded.engine, size, &options(job, Reuse::Nothing)) {
        Ok(plan) => Layout {
            width: plan.target.0,
            height: plan.target.1,
            tiles: plan
                .tile_rects()
                .into_iter()
                .map(|(x, y, w, h)| TileRect { x, y, w, h })
                .collect(),
            background,
        },
        // The run itself will report the problem; previews just go without tiles.
        Err(_) => Layout {
            background,
            ..Layout::single(size.0 * job.scale, size.1 * job.scale)
        },
    }
}

pub fn upscale(
    loaded: &Loaded,
    image: &InputImage,
    job: &JobOptions,
    reuse: Reuse,
    observer: &mut dyn Observer,
) -> Result<(Picture, Tokens)> {
    let input = UpscaleInput::from_rgba(&image.picture);
    let opts = options(job, reuse);
    let mut noise = SeededNoise::new(job.params.seed);
    let out = upscale::upscale(&loaded.engine, &input, &opts, observer, &mut noise)?;
    let tokens = Tokens {
        per_tile: out.tokens.clone(),
        latents: out.latents.clone(),
    };
    Ok((Arc::new(out.to_rgba()), tokens))
}
