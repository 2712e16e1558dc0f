//! `varsr bench`: speed and memory of whole upscales with a model of the released size and random
//! weights made in-process (no download), on a chosen device and precision. One warm-up run, then
//! `--runs` timed runs, each split into phases from the pipeline's own events.

use std::process::ExitCode;
use std::time::Instant;

use candle_core::{Device, Tensor};
use clap::Args;
use image::{Rgb, RgbImage};

use super::device::{self, DeviceArg, Precision};
use crate::model::config::{VarConfig, VqvaeConfig};
use crate::pipeline::engine::Engine;
use crate::pipeline::upscale::{self as up, TargetSize, UpscaleInput, UpscaleOptions};
use crate::pipeline::{Observer, Progress, SamplingParams, SeededNoise};

#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Phases (seconds, summed over the tiles of a run):
  encoder      a separate pass of the LR encoder over the run's tiles, timed apart; the scale loop
               runs it again, inside `transformer`, and it is not part of `total`
  transformer  the scale loop: LR encoder, all scales of the transformer, token choice
  refiner      the 10 steps of the diffusion refiner
  decode       VQVAE decoding, resizing to the target and the colour fix
  other        the rest of `total`: resizing the input, cropping tiles, blending latents
  total        wall time of the whole upscale
On CUDA the device is synchronised at each phase boundary, so phases hold the GPU work they queued.
Peak RSS is the process's resident memory high-water mark (VmHWM); GPU memory is not in it.

Tiles are the model's input size (512 px for the released model) and cannot be changed: sizes above
one tile are covered by overlapping tiles, as `varsr upscale` does. --tile only confirms that size.

Examples:
  varsr bench --device cuda --dtype bf16
  varsr bench --device cuda --size 2048 --tile 512
  varsr bench --small --runs 1              (seconds on a CPU)")]
pub struct BenchArgs {
    /// Where to run: auto (CUDA when available, else CPU), cpu, cuda or cuda:N.
    #[arg(long, value_name = "DEVICE", default_value = "auto")]
    pub device: DeviceArg,

    /// Precision of weights and activations: f32, or f16/bf16 on CUDA only.
    #[arg(long, value_name = "DTYPE", default_value_t = Precision::F32)]
    pub dtype: Precision,

    /// Side of the square output in pixels (default: one tile, 512 for the released model).
    #[arg(long, value_name = "PX", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub size: Option<u32>,

    /// Tile side in pixels; must be the model's (512 for the released model; see below).
    #[arg(long, value_name = "PX")]
    pub tile: Option<u32>,

    /// Tiles per batch (default: as many as the free memory allows; on a CPU at most 4 of the
    /// released model's, up to 32 small ones, shared among the batches run side by side, one per
    /// core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub tile_batch: Option<u32>,

    /// Tile batches run at once on a CPU, one per thread (default: one per core). With more
    /// than one, the transformer column holds the whole tile generation and the refiner's is empty.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub lanes: Option<u32>,

    /// Classifier-free guidance strength.
    #[arg(long, default_value_t = SamplingParams::DEFAULT_CFG)]
    pub cfg: f32,

    /// Timed runs after the warm-up.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,

    /// Seed of the random weights and of the sampling.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// The built-in model's size (depth 4, width 128, 64 px tiles) instead of the released one:
    /// quick checks, and the built-in model's speed (`--small --size 512` is a 128→512 upscale).
    #[arg(long)]
    pub small: bool,

    /// Also time re-sampling a PX × PX square at the centre of a finished run (the app's
    /// "Re-sample region"), alternating with whole runs.
    #[arg(long, value_name = "PX")]
    pub region: Option<u32>,
}

/// The model sizes to build: the released VARSR (depth 24, 1.1 B parameters), or the built-in one.
fn configs(small: bool) -> (&'static str, VarConfig, VqvaeConfig) {
    if !small {
        return (
            "released size (depth 24)",
            VarConfig::release(24),
            VqvaeConfig::release(),
        );
    }
    // The built-in model's sizes, so that `--small --size 512` times its 128→512 px upscale.
    (
        "built-in model's size",
        crate::train::small::var_config(),
        crate::train::small::vqvae_config(),
    )
}

/// Seconds per phase of one run.
#[derive(Clone, Copy, Debug, Default)]
struct Phases {
    encoder: f64,
    transformer: f64,
    refiner: f64,
    decode: f64,
    total: f64,
}

impl Phases {
    fn other(&self) -> f64 {
        (self.total - self.transformer - self.refiner - self.decode).max(0.0)
    }

    /// `lanes > 1`: the refiner's time is inside `transformer` (see [`PhaseClock`]).
    fn row(&self, label: &str, lanes: usize) -> String {
        let refiner = if lanes > 1 {
            "-".to_owned()
        } else {
            format!("{:.3}", self.refiner)
        };
        format!(
            "{label:<9} {:>9.3} {:>12.3} {refiner:>9} {:>9.3} {:>9.3} {:>9.3}",
            self.encoder,
            self.transformer,
            self.decode,
            self.other(),
            self.total
        )
    }
}

const HEADER: &str = "run         encoder  transformer   refiner    decode     other     total";

/// Timestamps the pipeline's phase boundaries: the `Encoding` event opens a batch's scale loop, the
/// `refiner_cond`/`refiner_out` taps bracket its refiner, `Decoding` starts the decode. The device is
/// synchronised first, so that queued GPU work is counted in the phase that queued it. With several
/// tile lanes the batches' phases overlap, so `transformer` is then all of tile generation (from
/// the start to `Decoding`) and the taps are ignored.
struct PhaseClock<'a> {
    device: &'a Device,
    lanes: usize,
    start: Instant,
    mark: f64,
    phases: Phases,
    decode_start: Option<f64>,
    sync_error: Option<String>,
}

impl PhaseClock<'_> {
    fn now(&mut self) -> f64 {
        if let Err(e) = self.device.synchronize() {
            self.sync_error.get_or_insert(e.to_string());
        }
        self.start.elapsed().as_secs_f64()
    }
}

impl Observer for PhaseClock<'_> {
    fn progress(&mut self, p: &Progress) {
        match p {
            Progress::Encoding { .. } => self.mark = self.now(),
            Progress::Decoding => {
                let now = self.now();
                self.decode_start = Some(now);
                if self.lanes > 1 {
                    self.phases.transformer = now;
                }
            }
            _ => {}
        }
    }

    fn tap(&mut self, name: &str, _value: &Tensor) {
        if self.lanes > 1 {
            return;
        }
        match name {
            "refiner_cond" => {
                let now = self.now();
                self.phases.transformer += now - self.mark;
                self.mark = now;
            }
            "refiner_out" => {
                let now = self.now();
                self.phases.refiner += now - self.mark;
                self.mark = now;
            }
            _ => {}
        }
    }

    fn wants_taps(&self) -> bool {
        self.lanes <= 1
    }
}

/// A smooth synthetic photo (the content does not change the work done).
fn picture(side: u32) -> RgbImage {
    RgbImage::from_fn(side, side, |x, y| {
        Rgb([
            (x * 255 / side) as u8,
            (y * 255 / side) as u8,
            ((x * 7 + y * 3) % 256) as u8,
        ])
    })
}

/// One upscale, with the encoder timed apart first.
fn run_once(
    engine: &Engine,
    input: &UpscaleInput,
    opts: &UpscaleOptions,
    seed: u64,
) -> Result<Phases, String> {
    let plan = up::plan(engine, input.rgb.dimensions(), opts).map_err(|e| e.to_string())?;
    let tp = plan.tile_px();
    let dev = &engine.device;
    let mut encoder = 0.0;
    let mut left = plan.grid.len();
    while left > 0 {
        let n = left.min(plan.batch);
        left -= n;
        let lr = Tensor::rand(-1f32, 1f32, (n, 3, tp, tp), dev)
            .and_then(|t| t.to_dtype(engine.var.dtype()))
            .and_then(|t| dev.synchronize().map(|()| t))
            .map_err(|e| e.to_string())?;
        let t = Instant::now();
        engine
            .var
            .con_embedding
            .forward(&lr)
            .and_then(|_| dev.synchronize())
            .map_err(|e| e.to_string())?;
        encoder += t.elapsed().as_secs_f64();
    }
    let mut clock = PhaseClock {
        device: dev,
        lanes: plan.lanes,
        start: Instant::now(),
        mark: 0.0,
        phases: Phases::default(),
        decode_start: None,
        sync_error: None,
    };
    up::upscale(engine, input, opts, &mut clock, &mut SeededNoise::new(seed))
        .map_err(|e| e.to_string())?;
    let total = clock.now();
    if let Some(e) = clock.sync_error {
        return Err(format!("cannot synchronise the device: {e}"));
    }
    let mut phases = clock.phases;
    phases.encoder = encoder;
    phases.decode = clock.decode_start.map_or(0.0, |s| total - s);
    phases.total = total;
    Ok(phases)
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse::<f64>()
        .ok()?;
    Some(kb / 1024.0)
}

pub fn run(args: BenchArgs) -> ExitCode {
    match bench(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, e)) => {
            eprintln!("error: {e}");
            ExitCode::from(code)
        }
    }
}

fn bench(args: &BenchArgs) -> Result<(), (u8, String)> {
    let usage = |e: String| (2, e);
    let failed = |e: String| (1, e);
    args.device.check_precision(args.dtype).map_err(usage)?;
    if !(args.cfg.is_finite() && args.cfg >= 0.0) {
        return Err(usage(format!("--cfg {} is not a number ≥ 0", args.cfg)));
    }
    let (label, var_cfg, vae_cfg) = configs(args.small);
    let tile_px = var_cfg.final_side() * vae_cfg.downsample();
    if let Some(t) = args.tile.filter(|&t| t as usize != tile_px) {
        return Err(usage(format!(
            "--tile {t}: tiles are this model's input size, {tile_px} px, and cannot be changed; \
             use --tile {tile_px} or leave it out (--size sets how many tiles a run has)"
        )));
    }
    let size = args.size.unwrap_or(tile_px as u32);
    let (device, device_name) = args.device.open().map_err(usage)?;
    let dtype = device::model_dtype(&device, &device_name, args.dtype).map_err(usage)?;

    let t = Instant::now();
    let mut engine = Engine::random_with(var_cfg, vae_cfg, args.seed, &device, dtype)
        .map_err(|e| failed(format!("cannot build the model: {e}")))?;
    if args.small {
        engine.tile_overlap = crate::train::small::TILE_OVERLAP;
    }
    device.synchronize().map_err(|e| failed(e.to_string()))?;
    let build = t.elapsed().as_secs_f64();

    // A 4× upscale to exactly size × size.
    let input = UpscaleInput::from_rgb(picture(size.div_ceil(4)));
    let opts = UpscaleOptions {
        params: SamplingParams {
            cfg: args.cfg,
            seed: args.seed,
            ..SamplingParams::default()
        },
        size: TargetSize::Width(size),
        tile_batch: args.tile_batch.map(|b| b as usize),
        lanes: args.lanes.map(|l| l as usize),
        ..UpscaleOptions::default()
    };
    let plan =
        up::plan(&engine, input.rgb.dimensions(), &opts).map_err(|e| usage(e.to_string()))?;
    println!(
        "model: {label}, {} · built in {build:.1} s",
        engine.description
    );
    println!(
        "device: {device_name} · {} · cfg {} · output {}×{} from {}×{} · {} tile{} of {} px ({}×{}), {} per batch",
        args.dtype,
        args.cfg,
        plan.target.0,
        plan.target.1,
        plan.input.0,
        plan.input.1,
        plan.grid.len(),
        if plan.grid.len() == 1 { "" } else { "s" },
        plan.tile_px(),
        plan.grid.rows(),
        plan.grid.cols(),
        plan.batch
    );
    if plan.lanes > 1 {
        println!(
            "{} batches at once, one per thread: `transformer` is all of tile generation, refiner included",
            plan.lanes
        );
    }
    println!("seconds per phase (see --help):");
    println!("{HEADER}");
    let warm = run_once(&engine, &input, &opts, args.seed).map_err(failed)?;
    println!("{}", warm.row("warm-up", plan.lanes));
    let mut all = Vec::new();
    for i in 1..=args.runs {
        let p = run_once(&engine, &input, &opts, args.seed).map_err(failed)?;
        println!("{}", p.row(&format!("run {i}"), plan.lanes));
        all.push(p);
    }
    if all.len() > 1 {
        let n = all.len() as f64;
        let mean = |f: fn(&Phases) -> f64| all.iter().map(f).sum::<f64>() / n;
        let m = Phases {
            encoder: mean(|p| p.encoder),
            transformer: mean(|p| p.transformer),
            refiner: mean(|p| p.refiner),
            decode: mean(|p| p.decode),
            total: mean(|p| p.total),
        };
        println!("{}", m.row("mean", plan.lanes));
    }
    if let Some(side) = args.region {
        region(&engine, &input, &opts, &plan, side, args).map_err(failed)?;
    }
    match peak_rss_mib() {
        Some(m) => println!("peak RSS: {m:.0} MiB ({:.2} GiB)", m / 1024.0),
        None => println!("peak RSS: unknown (no /proc/self/status)"),
    }
    Ok(())
}

/// Re-sampling a centred square against whole runs, alternately, in seconds.
fn region(
    engine: &Engine,
    input: &UpscaleInput,
    opts: &UpscaleOptions,
    plan: &up::UpscalePlan,
    side: u32,
    args: &BenchArgs,
) -> Result<(), String> {
    let (w, h) = plan.target;
    let side = side.clamp(1, w.min(h));
    let rect = ((w - side) / 2, (h - side) / 2, side, side);
    let redone = plan.tiles_touching(rect).len();
    let base = up::upscale(
        engine,
        input,
        opts,
        &mut crate::pipeline::events::Silent,
        &mut SeededNoise::new(args.seed),
    )
    .map_err(|e| e.to_string())?;
    let resample = UpscaleOptions {
        kept: Some(up::KeptTiles {
            latents: base.latents,
            tokens: base.tokens,
            region: rect,
        }),
        ..opts.clone()
    };
    println!(
        "re-sampling a {side}×{side} region at the centre: {} of {} tiles",
        redone,
        plan.grid.len()
    );
    let timed = |o: &UpscaleOptions| -> Result<f64, String> {
        let t = Instant::now();
        up::upscale(
            engine,
            input,
            o,
            &mut crate::pipeline::events::Silent,
            &mut SeededNoise::new(args.seed + 1),
        )
        .map_err(|e| e.to_string())?;
        engine.device.synchronize().map_err(|e| e.to_string())?;
        Ok(t.elapsed().as_secs_f64())
    };
    for i in 1..=args.runs {
        let (whole, part) = (timed(opts)?, timed(&resample)?);
        println!(
            "pair {i}: whole run {whole:.2} s, region {part:.2} s ({:.2}× the time)",
            part / whole
        );
    }
    Ok(())
}
