//! Time and peak memory of whole-photo upscales (tiling, batching, blending, tiled decode) as the
//! output area grows, up to 1024×768 → 4096×3072, with a small model of the release's tile
//! geometry (512 px tiles, 32×32 latents) and random weights made in-process.
//!
//! `cargo bench --bench tiled_upscale` (add `-- --quick` to stop at 2048×1536, `-- --lanes N` to
//! set the tile lanes instead of one per core). Each size runs in its own child process so that
//! its peak resident memory (VmHWM) is its own.

use std::process::Command;
use std::time::Instant;

use image::{Rgb, RgbImage};
use varsr::model::config::{VarConfig, VqvaeConfig};
use varsr::pipeline::events::{Progress, ScaleEvent};
use varsr::pipeline::upscale::{self, TargetSize, UpscaleInput, UpscaleOptions};
use varsr::pipeline::{Engine, Observer, SeededNoise};

/// Input sizes (4× outputs: 512×384 … 4096×3072).
const SIZES: [(u32, u32); 4] = [(128, 96), (256, 192), (512, 384), (1024, 768)];

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The parity fixture's sizes (depth 2, width 128, VQVAE ch 32) with the release's scales.
fn small_model() -> (VarConfig, VqvaeConfig) {
    let mut var = VarConfig::release(2);
    var.encoder_channels = vec![8, 16, 16, 32, 32];
    var.refiner_width = 64;
    var.refiner_depth = 2;
    let vae = VqvaeConfig {
        ch: 32,
        ..VqvaeConfig::release()
    };
    (var, vae)
}

/// When generation ended and decoding began.
struct Clock {
    start: Instant,
    decode_at: Option<f64>,
    scales: usize,
}

impl Observer for Clock {
    fn scale_done(&mut self, _e: &ScaleEvent) {
        self.scales += 1;
    }
    fn progress(&mut self, p: &Progress) {
        if matches!(p, Progress::Decoding) {
            self.decode_at = Some(self.start.elapsed().as_secs_f64());
        }
    }
}

fn child(w: u32, h: u32, lanes: Option<usize>) -> Result<(), String> {
    let (var, vae) = small_model();
    let engine =
        Engine::random(var, vae, 1, &candle_core::Device::Cpu).map_err(|e| e.to_string())?;
    let input = UpscaleInput::from_rgb(RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, ((x ^ y) % 256) as u8])
    }));
    let opts = UpscaleOptions {
        size: TargetSize::Scale(4),
        lanes,
        ..UpscaleOptions::default()
    };
    let base_rss = peak_rss_mib();
    let mut clock = Clock {
        start: Instant::now(),
        decode_at: None,
        scales: 0,
    };
    let out = upscale::upscale(&engine, &input, &opts, &mut clock, &mut SeededNoise::new(0))
        .map_err(|e| e.to_string())?;
    let total = clock.start.elapsed().as_secs_f64();
    let gen_s = clock.decode_at.unwrap_or(total);
    let plan = &out.plan;
    println!(
        "{:>9} → {:>9}  {:>3} tiles (batch {:>2}, {} lane{})  {:7.1} s  generate {:7.1} s ({:5.2} s/tile)  decode+finish {:6.1} s  peak RSS {:7.0} MiB (model {:4.0} MiB)",
        format!("{w}×{h}"),
        format!("{}×{}", plan.target.0, plan.target.1),
        plan.grid.len(),
        plan.batch,
        plan.lanes,
        if plan.lanes == 1 { "" } else { "s" },
        total,
        gen_s,
        gen_s / plan.grid.len() as f64,
        total - gen_s,
        peak_rss_mib(),
        base_rss
    );
    Ok(())
}

fn main() {
    // SAFETY: no other thread exists yet.
    unsafe { varsr::init_process(varsr::Workload::Inference) };
    let args: Vec<String> = std::env::args().collect();
    let lanes = args
        .iter()
        .position(|a| a == "--lanes")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse::<usize>().ok());
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let num = |k: usize| args.get(i + k).and_then(|s| s.parse().ok()).unwrap_or(0);
        if let Err(e) = child(num(1), num(2), lanes) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let exe = std::env::current_exe().expect("own path");
    println!(
        "tiled upscale, 4×, small random model with 512 px tiles (depth 2, width 128, VQVAE ch 32), CPU"
    );
    for &(w, h) in SIZES.iter().take(if quick { 3 } else { SIZES.len() }) {
        let mut child = Command::new(&exe);
        child.args(["--child", &w.to_string(), &h.to_string()]);
        if let Some(l) = lanes {
            child.args(["--lanes", &l.to_string()]);
        }
        let status = child.status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("{w}×{h}: failed");
        }
    }
}
