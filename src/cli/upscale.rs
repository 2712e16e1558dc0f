//! `varsr upscale`: a batch of files and folders, one model load, one line per file, a summary,
//! and a non-zero exit when any file failed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;

use super::bar::BarObserver;
use super::device::{self, DeviceArg, Precision};
use super::image_io::{self, Extras, Format, SaveError};
use super::inputs::{self, InputFile};
use super::naming::{self, NameFields};
use crate::imaging::trust::{self, TrustMap};
use crate::pipeline::engine::{Engine, ModelSpec};
use crate::pipeline::upscale::{self as up, TargetSize, UpscaleOptions, UpscaleOutput};
use crate::pipeline::{SamplingParams, SeededNoise};

#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Naming placeholders: {stem} (input name without extension), {ext} (output format), {scale}, {cfg}, {seed}.
Existing files are never replaced unless --overwrite is given; they are reported as skipped.
The exit status is 0 when every file was written or skipped, 1 when any failed, 2 for bad arguments.

Examples:
  varsr upscale photo.jpg
  varsr upscale holiday/ -o big/ --recursive --format jpg --quality 92
  varsr upscale scan.png --width 3000 --seed 7 --name '{stem}_{seed}.{ext}'")]
pub struct UpscaleArgs {
    /// Images, or folders of images (PNG, JPEG, WebP, TIFF, GIF), to upscale.
    #[arg(required = true, value_name = "FILES_OR_FOLDERS")]
    pub inputs: Vec<PathBuf>,

    /// Folder to write the results to (created if needed); folders given as input keep their
    /// tree below it. Default: beside each input.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,

    /// Upscaling factor: 2, 3 or 4.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(2..=4),
          conflicts_with_all = ["width", "height"])]
    pub scale: u32,

    /// Output width in pixels; the height follows the aspect ratio.
    #[arg(long, value_name = "W", value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "height")]
    pub width: Option<u32>,

    /// Output height in pixels; the width follows the aspect ratio.
    #[arg(long, value_name = "H", value_parser = clap::value_parser!(u32).range(1..))]
    pub height: Option<u32>,

    /// Classifier-free guidance strength (0 = none). Default: the model's own (6 for the release,
    /// 12 for the built-in model).
    #[arg(long, value_parser = parse_cfg)]
    pub cfg: Option<f32>,

    /// Random seed (refiner noise and sampling); the same seed gives the same image.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Sample among the K most likely tokens (1 = always the most likely, 0 = no limit).
    #[arg(long = "top-k", value_name = "K", default_value_t = 1)]
    pub top_k: usize,

    /// Nucleus sampling threshold in (0, 1] (1 = off).
    #[arg(long = "top-p", value_name = "P", default_value_t = 0.75, value_parser = parse_top_p)]
    pub top_p: f32,

    /// Model: a folder with the released VARSR.pth + VQVAE.pth, or a converted .safetensors
    /// file. Default: the model built into this program.
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,

    /// Where to run: auto (CUDA when available, else CPU), cpu, cuda or cuda:N.
    #[arg(long, value_name = "DEVICE", default_value = "auto")]
    pub device: DeviceArg,

    /// Precision of the model's weights and activations: f32, or f16/bf16 on CUDA only (logits,
    /// normalisation, the latent and the refiner schedule stay in f32).
    #[arg(long, value_name = "DTYPE", default_value_t = Precision::F32)]
    pub dtype: Precision,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Png)]
    pub format: Format,

    /// JPEG quality, 1–100 (WebP is written lossless, PNG is always lossless).
    #[arg(long, value_name = "Q", default_value_t = 95, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,

    /// Output file name template (see the placeholders below).
    #[arg(long, value_name = "TEMPLATE", default_value = naming::DEFAULT_TEMPLATE)]
    pub name: String,

    /// Replace existing output files.
    #[arg(long)]
    pub overwrite: bool,

    /// Walk folders given as input into their sub-folders.
    #[arg(short, long)]
    pub recursive: bool,

    /// Tiles per batch (default: as many as the free memory allows; on a CPU at most 4 of the
    /// released model's, up to 32 small ones, shared among the batches run side by side, one per
    /// core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub tile_batch: Option<u32>,

    /// Copy the input's ICC profile and EXIF data into the output (orientation reset to normal,
    /// since the pixels are turned upright). The generation settings are always written into
    /// PNG outputs.
    #[arg(long)]
    pub keep_metadata: bool,

    /// Also write the trust view's heat map of each result beside it as PNG
    /// (`<output name>_trust-<map>.png`): `invented` shows the detail drawn over a bicubic
    /// enlargement of the input, `inconsistency` where the result shrunk back disagrees with it.
    #[arg(long, value_enum, value_name = "MAP")]
    pub trust_map: Option<TrustArg>,

    /// No progress bars.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TrustArg {
    Invented,
    Inconsistency,
}

impl TrustArg {
    fn map(self) -> TrustMap {
        match self {
            TrustArg::Invented => TrustMap::Invented,
            TrustArg::Inconsistency => TrustMap::Inconsistency,
        }
    }
}

fn parse_cfg(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a guidance strength (a number ≥ 0)")),
    }
}

fn parse_top_p(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("`{s}` is not a probability in (0, 1]")),
    }
}

impl UpscaleArgs {
    fn size(&self) -> TargetSize {
        match (self.width, self.height) {
            (Some(w), _) => TargetSize::Width(w),
            (None, Some(h)) => TargetSize::Height(h),
            (None, None) => TargetSize::Scale(self.scale),
        }
    }

    /// The guidance in use (resolved to the model's default before any file is processed).
    fn cfg(&self) -> f32 {
        self.cfg.unwrap_or(SamplingParams::DEFAULT_CFG)
    }

    fn params(&self) -> SamplingParams {
        SamplingParams {
            cfg: self.cfg(),
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
        }
    }

    fn options(&self) -> UpscaleOptions {
        UpscaleOptions {
            params: self.params(),
            size: self.size(),
            tile_batch: self.tile_batch.map(|b| b as usize),
            ..UpscaleOptions::default()
        }
    }

    /// Where the output of `input` goes, given its target size.
    fn output_path(
        &self,
        input: &InputFile,
        input_size: (u32, u32),
        target: (u32, u32),
    ) -> PathBuf {
        let stem = input
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        let scale = match self.size() {
            TargetSize::Scale(s) => s.to_string(),
            _ => naming::short_number(target.0 as f64 / input_size.0 as f64),
        };
        let name = naming::render(
            &self.name,
            &NameFields {
                stem: &stem,
                ext: self.format.ext(),
                scale,
                cfg: self.cfg(),
                seed: self.seed,
            },
        );
        let dir = match &self.output {
            Some(o) => o.join(&input.subdir),
            None => input
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        };
        dir.join(name)
    }
}

/// The settings of a result as JSON (PNG text chunk `varsr`, JPEG comment, WebP XMP; as the desktop app writes).
pub fn settings_json(args: &UpscaleArgs, model: &str, input: &Path, out: &UpscaleOutput) -> String {
    let p = args.params();
    let plan = &out.plan;
    let scale = plan.target.0 as f64 / plan.input.0 as f64;
    let software = format!("VARSR Studio {}", env!("CARGO_PKG_VERSION"));
    let json = serde_json::json!({
        "software": software,
        "model": model,
        "scale": naming::short_number(scale),
        "input_size": [plan.input.0, plan.input.1],
        "output_size": [plan.target.0, plan.target.1],
        "cfg": p.cfg,
        "seed": p.seed,
        "top_k": p.top_k,
        "top_p": p.top_p,
        "tiling": {
            "tiles": plan.grid.len(),
            "rows": plan.grid.rows(),
            "cols": plan.grid.cols(),
            "tile_px": plan.tile_px(),
            "overlap_px": plan.grid.geometry.overlap * plan.f,
            "padded_size": [plan.padded.0, plan.padded.1],
            "batch": plan.batch,
        },
        "source": input.file_name().map(|n| n.to_string_lossy().into_owned()),
    });
    json.to_string()
}

#[derive(Default)]
struct Tally {
    written: usize,
    skipped: usize,
    failed: usize,
}

enum Outcome {
    /// The output, and what happened to its trust map if one was asked for.
    Written(PathBuf, Option<String>),
    Skipped(PathBuf),
}

/// The model, loaded when the first file needs it (a batch whose outputs all exist loads none).
enum Model {
    NotLoaded,
    Loaded(Box<Engine>),
    Failed(String),
}

pub fn run(args: UpscaleArgs) -> ExitCode {
    if let Err(e) = naming::validate(&args.name).and(args.device.check_precision(args.dtype)) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let collected = inputs::collect(&args.inputs, args.recursive);
    let mut tally = Tally::default();
    for (path, why) in &collected.problems {
        eprintln!("failed  {}: {why}", path.display());
        tally.failed += 1;
    }
    if collected.files.is_empty() && collected.problems.is_empty() {
        eprintln!("error: no images found in the folders given (use --recursive for sub-folders)");
        return ExitCode::from(1);
    }
    let mut model = Model::NotLoaded;
    let mut args = args;
    if args.cfg.is_none() && !collected.files.is_empty() {
        // The guidance names the output files, so the model (and its default) comes first.
        args.cfg = engine(&args, &mut model).ok().map(|e| e.default_cfg);
    }
    let mut planned: HashSet<PathBuf> = HashSet::new();
    let total = collected.files.len();
    for (i, input) in collected.files.iter().enumerate() {
        let started = Instant::now();
        let label = format!("[{}/{total}] {}", i + 1, short_name(&input.path));
        match process(&args, input, &label, &mut model, &mut planned) {
            Ok(Outcome::Written(out, trust_note)) => {
                tally.written += 1;
                println!(
                    "wrote   {} ({:.1} s)",
                    out.display(),
                    started.elapsed().as_secs_f64()
                );
                if let Some(note) = trust_note {
                    println!("{note}");
                }
            }
            Ok(Outcome::Skipped(out)) => {
                tally.skipped += 1;
                println!(
                    "skipped {}: exists (--overwrite replaces it)",
                    out.display()
                );
            }
            Err(e) => {
                tally.failed += 1;
                eprintln!("failed  {}: {e}", input.path.display());
            }
        }
    }
    println!(
        "{} written, {} skipped, {} failed",
        tally.written, tally.skipped, tally.failed
    );
    if tally.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn short_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn process(
    args: &UpscaleArgs,
    input: &InputFile,
    label: &str,
    model: &mut Model,
    planned: &mut HashSet<PathBuf>,
) -> Result<Outcome, String> {
    let image = image_io::load(&input.path)?;
    let size = image.rgb.dimensions();
    let target = up::target_size(size, args.size()).map_err(|e| e.to_string())?;
    let out_path = args.output_path(input, size, target);
    if !planned.insert(out_path.clone()) {
        return Err(format!(
            "its output name {} is the same as that of an earlier input (use --name with other placeholders)",
            out_path.display()
        ));
    }
    if !args.overwrite && out_path.exists() {
        return Ok(Outcome::Skipped(out_path));
    }
    let engine = engine(args, model)?;
    if let Some(dir) = out_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the folder {}: {e}", dir.display()))?;
    }
    let mut bar = BarObserver::new(label, args.quiet);
    let mut noise = SeededNoise::new(args.seed);
    let result = up::upscale(engine, &image, &args.options(), &mut bar, &mut noise);
    bar.finish();
    let out = result.map_err(|e| e.to_string())?;
    let extras = Extras {
        settings_json: Some(settings_json(args, &engine.description, &input.path, &out)),
        icc: out.icc.clone().filter(|_| args.keep_metadata),
        exif: out.exif.clone().filter(|_| args.keep_metadata),
    };
    match image_io::save(
        &out_path,
        &out,
        args.format,
        args.quality,
        &extras,
        args.overwrite,
    ) {
        Ok(()) => {
            let note = args
                .trust_map
                .map(|m| write_trust(m.map(), &image.rgb, &out.rgb, &out_path, args.overwrite));
            Ok(Outcome::Written(out_path, note))
        }
        Err(SaveError::Exists(p)) => Ok(Outcome::Skipped(p)),
        Err(SaveError::Failed(m)) => Err(m),
    }
}

/// Writes the trust map of `result` beside `out_path`; returns the line to print (the map's
/// figures, or why it was not written: the result itself is kept either way).
fn write_trust(
    map: TrustMap,
    input: &image::RgbImage,
    result: &image::RgbImage,
    out_path: &Path,
    overwrite: bool,
) -> String {
    let t = trust::trust(map, input, result);
    let picture = image::DynamicImage::ImageRgba8(trust::render(&t, result)).to_rgb8();
    let stem = out_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = out_path.with_file_name(format!("{stem}_trust-{}.png", map.slug()));
    let options = crate::imaging::SaveOptions {
        format: crate::imaging::OutputFormat::Png,
        settings_json: None,
        icc: None,
        exif: None,
        overwrite,
    };
    match crate::imaging::save(&path, &picture, None, &options) {
        Ok(()) => format!("trust   {} ({})", path.display(), t.figures()),
        Err(crate::imaging::ImagingError::AlreadyExists { path }) => format!(
            "skipped {}: exists (--overwrite replaces it)",
            path.display()
        ),
        Err(e) => format!("trust map not written: {e}"),
    }
}

fn engine<'a>(args: &UpscaleArgs, model: &'a mut Model) -> Result<&'a Engine, String> {
    if let Model::NotLoaded = model {
        *model = match load_engine(args) {
            Ok(e) => Model::Loaded(Box::new(e)),
            Err(e) => {
                eprintln!("error: {e}");
                Model::Failed(e)
            }
        };
    }
    match model {
        Model::Loaded(e) => Ok(e),
        Model::Failed(e) => Err(format!("no model ({e})")),
        Model::NotLoaded => Err("no model".into()),
    }
}

fn load_engine(args: &UpscaleArgs) -> Result<Engine, String> {
    let (device, device_name) = args.device.open()?;
    let spec = match &args.model {
        Some(p) => ModelSpec::Path(p.clone()),
        None => ModelSpec::Embedded,
    };
    let dtype = device::model_dtype(&device, &device_name, args.dtype)?;
    let engine = Engine::load_with(&spec, &device, dtype)
        .map_err(|e| format!("cannot load the model: {e}"))?;
    eprintln!(
        "model: {} · {device_name} · {}",
        engine.description, args.dtype
    );
    Ok(engine)
}
