//! `varsr eval HR_DIR`: the 4× benchmark protocol. Each HR image is cropped to a multiple of 4,
//! downscaled 4× (Pillow bicubic), upscaled by the model (`pipeline::upscale`, tiled, colour-fixed) at
//! each requested guidance, and by bicubic; PSNR and SSIM on the Y channel with a 4-pixel border crop.
//! Outputs can be saved for the LPIPS script (`scripts/lpips.py`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use image::RgbImage;

use super::loops::{batch_tensor, load_tokenizer, target_tensor};
use super::small;
use super::tokenizer::Tokenizer;
use crate::imaging::tensor::from_unit_f32;
use crate::imaging::{psnr_y, resize_rgb, ssim_y};
use crate::pipeline::engine::ModelSpec;
use crate::pipeline::events::Silent;
use crate::pipeline::upscale::{UpscaleInput, UpscaleOptions, upscale};
use crate::pipeline::{Engine, SamplingParams, SeededNoise};

const SCALE: u32 = 4;

#[derive(clap::Args, Debug, Clone)]
pub struct EvalArgs {
    /// Folder of high-resolution reference images (PNG, JPEG, BMP).
    pub hr_dir: PathBuf,
    /// Model file or folder; the embedded model when absent.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Guidance values to measure (comma-separated); the model's default guidance when absent.
    #[arg(long, value_delimiter = ',')]
    pub cfg: Vec<f32>,
    /// Save the outputs under this folder (`hr/`, `bicubic/`, `cfg<g>/`), e.g. for LPIPS.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Sample from the `top_k` most likely codes (1 = argmax, the default; 0 = all).
    #[arg(long, default_value_t = SamplingParams::default().top_k)]
    pub top_k: usize,
    /// Nucleus threshold for sampling (1 = off).
    #[arg(long, default_value_t = SamplingParams::default().top_p)]
    pub top_p: f32,
    /// Use at most this many images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// A tokenizer training checkpoint (`work-data/ckpt/tokenizer*.safetensors`): also report its
    /// own reconstruction of each HR image (encode, decode the continuous latent), the ceiling of any
    /// model built on it.
    #[arg(long, value_name = "CKPT")]
    pub tokenizer: Option<PathBuf>,
}

/// Mean metrics of one method over the images.
#[derive(Clone, Debug, Default)]
pub struct Scores {
    pub name: String,
    pub psnr: f64,
    pub ssim: f64,
    pub seconds: f64,
    pub count: usize,
}

impl Scores {
    fn add(&mut self, p: f64, s: f64, t: f64) {
        self.psnr += p;
        self.ssim += s;
        self.seconds += t;
        self.count += 1;
    }

    fn mean(mut self) -> Self {
        let n = self.count.max(1) as f64;
        self.psnr /= n;
        self.ssim /= n;
        self.seconds /= n;
        self
    }
}

fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                matches!(
                    e.to_ascii_lowercase().as_str(),
                    "png" | "jpg" | "jpeg" | "bmp" | "tif" | "tiff"
                )
            })
        })
        .collect();
    v.sort();
    Ok(v)
}

fn save(out: &Option<PathBuf>, sub: &str, name: &str, img: &RgbImage) -> Result<()> {
    if let Some(o) = out {
        let dir = o.join(sub);
        std::fs::create_dir_all(&dir)?;
        img.save(dir.join(format!("{name}.png")))?;
    }
    Ok(())
}

/// Runs the benchmark on `hr_dir` and returns bicubic's scores then the model's per guidance.
pub fn evaluate(engine: &Engine, args: &EvalArgs) -> Result<Vec<Scores>> {
    let cfgs = if args.cfg.is_empty() {
        vec![engine.default_cfg]
    } else {
        args.cfg.clone()
    };
    let mut bicubic = Scores {
        name: "bicubic".into(),
        ..Default::default()
    };
    let mut model: Vec<Scores> = cfgs
        .iter()
        .map(|g| Scores {
            name: format!("model cfg {g}"),
            ..Default::default()
        })
        .collect();
    let tokenizer = match &args.tokenizer {
        Some(p) => Some(load_tokenizer(p, &Device::Cpu)?),
        None => None,
    };
    let mut ceiling = Scores {
        name: "tokenizer ceiling".into(),
        ..Default::default()
    };
    let mut token_ceiling = Scores {
        name: "tokens ceiling".into(),
        ..Default::default()
    };
    let mut files = list_images(&args.hr_dir)?;
    if let Some(l) = args.limit {
        files.truncate(l);
    }
    for path in &files {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let img = image::open(path)
            .with_context(|| format!("reading {}", path.display()))?
            .to_rgb8();
        let (w, h) = (img.width() / SCALE * SCALE, img.height() / SCALE * SCALE);
        let hr = image::imageops::crop_imm(&img, 0, 0, w, h).to_image();
        let lr = resize_rgb(&hr, w / SCALE, h / SCALE);
        let t = Instant::now();
        let bic = resize_rgb(&lr, w, h);
        bicubic.add(
            psnr_y(&hr, &bic, SCALE)?,
            ssim_y(&hr, &bic, SCALE)?,
            t.elapsed().as_secs_f64(),
        );
        if let Some(tok) = &tokenizer {
            let t = Instant::now();
            let (crop, [rec, tokens]) = reconstruct(tok, &hr)?;
            ceiling.add(
                psnr_y(&crop, &rec, SCALE)?,
                ssim_y(&crop, &rec, SCALE)?,
                t.elapsed().as_secs_f64(),
            );
            token_ceiling.add(
                psnr_y(&crop, &tokens, SCALE)?,
                ssim_y(&crop, &tokens, SCALE)?,
                0.0,
            );
            save(&args.out, "tokenizer", &name, &rec)?;
            save(&args.out, "tokens", &name, &tokens)?;
        }
        save(&args.out, "hr", &name, &hr)?;
        save(&args.out, "bicubic", &name, &bic)?;
        for (g, scores) in cfgs.iter().zip(model.iter_mut()) {
            let opts = UpscaleOptions {
                params: SamplingParams {
                    cfg: *g,
                    seed: args.seed,
                    top_k: args.top_k,
                    top_p: args.top_p,
                },
                ..Default::default()
            };
            let t = Instant::now();
            let mut noise = SeededNoise::new(args.seed);
            let out = upscale(
                engine,
                &UpscaleInput::from_rgb(lr.clone()),
                &opts,
                &mut Silent,
                &mut noise,
            )?;
            let secs = t.elapsed().as_secs_f64();
            let sr = out.rgb;
            let (p, s) = (psnr_y(&hr, &sr, SCALE)?, ssim_y(&hr, &sr, SCALE)?);
            println!("{name}: cfg {g}: PSNR-Y {p:.2} SSIM-Y {s:.4} ({secs:.1} s)");
            scores.add(p, s, secs);
            save(&args.out, &format!("cfg{g}"), &name, &sr)?;
        }
    }
    let mut all = vec![bicubic.mean()];
    if tokenizer.is_some() {
        all.push(ceiling.mean());
        all.push(token_ceiling.mean());
    }
    all.extend(model.into_iter().map(Scores::mean));
    Ok(all)
}

/// `hr` cropped to whole latent cells, and the tokenizer's reconstructions of it (for a residual
/// tokenizer: of its detail over the bicubic upscale of its 4× downscale, added back): from the
/// continuous latent (what the refiner restores), and from its tokens (each 64-px tile quantized on
/// its own, tiles side by side without overlap).
fn reconstruct(tok: &Tokenizer, hr: &RgbImage) -> Result<(RgbImage, [RgbImage; 2])> {
    let cfg = small::vqvae_config();
    let t = small::TILE_PX as u32;
    let (w, h) = (hr.width() / t * t, hr.height() / t * t);
    let crop = image::imageops::crop_imm(hr, 0, 0, w, h).to_image();
    let base = resize_rgb(&resize_rgb(&crop, w / SCALE, h / SCALE), w, h);
    let dev = Device::Cpu;
    let gain = cfg.residual_gain;
    let base_t = batch_tensor(std::slice::from_ref(&base), &dev)?;
    let x = target_tensor(
        &batch_tensor(std::slice::from_ref(&crop), &dev)?,
        &base_t,
        gain,
    )?;
    let latent = tok.encode(&x)?;
    let pns = small::var_config().patch_nums;
    let (c, lh, lw) = latent.dims4().map(|(_, c, h, w)| (c, h, w))?;
    let s = small::TILE_PX / cfg.downsample();
    let (rows, cols) = (lh / s, lw / s);
    let tiles = latent
        .reshape((c, rows, s, cols, s))?
        .permute((1, 3, 0, 2, 4))?
        .reshape((rows * cols, c, s, s))?;
    let quantized = tok
        .quantize(&tiles, &pns, pns.len())?
        .f_hat
        .reshape((rows, cols, c, s, s))?
        .permute((2, 0, 3, 1, 4))?
        .reshape((1, c, lh, lw))?;
    let image = |z: &Tensor| -> Result<RgbImage> {
        let mut y = tok.decode(z)?;
        if gain > 0 {
            y = (&base_t + (y / gain as f64)?)?;
        }
        let y = ((y.clamp(-1f32, 1f32)? + 1.0)? / 2.0)?;
        Ok(from_unit_f32(&y.flatten_all()?.to_vec1::<f32>()?, w, h))
    };
    Ok((crop, [image(&latent)?, image(&quantized)?]))
}

pub fn run(args: EvalArgs) -> Result<()> {
    let spec = match &args.model {
        Some(p) => ModelSpec::Path(p.clone()),
        None => ModelSpec::Embedded,
    };
    let engine = Engine::load(&spec, &Device::Cpu)?;
    println!("{}", engine.description);
    let scores = evaluate(&engine, &args)?;
    println!(
        "{:<16} {:>8} {:>8} {:>9}",
        "method", "PSNR-Y", "SSIM-Y", "s/image"
    );
    for s in &scores {
        println!(
            "{:<16} {:>8.3} {:>8.4} {:>9.2}",
            s.name, s.psnr, s.ssim, s.seconds
        );
    }
    Ok(())
}
