//! Speed and memory of one generation at the released configuration (random weights made in-process, no
//! download), one 512×512 output at cfg 6, plus a quick small configuration.
//!
//! `cargo bench --bench generate` (add `-- --quick` for the small configuration only).
//! Prints seconds per phase and the peak resident memory (VmHWM).

use std::time::Instant;

use candle_core::{Device, Tensor};
use varsr::model::config::{VarConfig, VqvaeConfig};
use varsr::pipeline::events::{Progress, ScaleEvent};
use varsr::pipeline::{Engine, Observer, SamplingParams, SeededNoise, preview};

fn peak_rss_gib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / (1024.0 * 1024.0))
}

/// Timestamps of the pipeline's events.
struct Clock {
    start: Instant,
    scale_end: Vec<f64>,
    refiner_steps: Vec<f64>,
}

impl Observer for Clock {
    fn scale_done(&mut self, _e: &ScaleEvent) {
        self.scale_end.push(self.start.elapsed().as_secs_f64());
    }
    fn progress(&mut self, p: &Progress) {
        if let Progress::Refiner { .. } = p {
            self.refiner_steps.push(self.start.elapsed().as_secs_f64());
        }
    }
}

fn run(label: &str, var_cfg: VarConfig, vae_cfg: VqvaeConfig) -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let t = Instant::now();
    let engine = Engine::random(var_cfg, vae_cfg, 1, &dev)?;
    let build = t.elapsed().as_secs_f64();
    let side = engine.tile_px();
    let lr = Tensor::rand(0f32, 1f32, (1, 3, side, side), &dev)?.affine(2.0, -1.0)?;
    let params = SamplingParams::default();

    let t = Instant::now();
    let _ = engine.var.con_embedding.forward(&lr)?;
    let encoder = t.elapsed().as_secs_f64();

    let mut clock = Clock {
        start: Instant::now(),
        scale_end: vec![],
        refiner_steps: vec![],
    };
    let out = engine.generate(
        &lr,
        &params,
        &[],
        &mut SeededNoise::new(0),
        &mut clock,
        (0, 1),
    )?;
    let k = clock.scale_end.len();
    // Events come after the refiner's steps; the refiner starts one step before its first report.
    let steps = &clock.refiner_steps;
    let step = (steps[steps.len() - 1] - steps[0]) / (steps.len() - 1).max(1) as f64;
    let refiner_start = steps[0] - step;
    let t = Instant::now();
    let _img = engine.decode(&out.f_hat)?;
    let decode = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let _ = engine.preview_map()?;
    let fit = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..k {
        let _ = preview::latent_previews(&engine, &out.f_hat, None)?;
    }
    let previews = t.elapsed().as_secs_f64();

    let total_gen = clock.scale_end[k - 1];
    println!("== {label}: {}", engine.description);
    println!("model build (random init)   {build:8.2} s");
    println!("encoder (standalone)        {encoder:8.2} s");
    let mut prev = 0.0;
    for (si, end) in clock.scale_end.iter().enumerate() {
        let pn = engine.patch_nums()[si];
        let dt = if si + 1 == k {
            refiner_start - prev
        } else {
            end - prev
        };
        let note = if si == 0 {
            " (includes encoder)"
        } else if si + 1 == k {
            " (before refiner)"
        } else {
            ""
        };
        println!("transformer scale {si:2} ({pn:2}²) {dt:8.2} s{note}");
        prev = *end;
    }
    let refiner = steps[steps.len() - 1] - refiner_start;
    let transformer = refiner_start - encoder;
    println!("refiner (10 steps)          {:8.2} s", refiner);
    println!("decode                      {decode:8.2} s");
    println!("previews: fit {fit:.2} s once + {k} previews {previews:.3} s");
    let full = total_gen + decode;
    println!(
        "TOTAL generate+decode       {full:8.2} s  (encoder {encoder:.1}, transformer {transformer:.1}, refiner {:.1}, decode {decode:.1}); previews would add {:.1} %",
        refiner,
        100.0 * (fit + previews) / full
    );
    println!("peak RSS                    {:8.2} GiB", peak_rss_gib());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // SAFETY: no other thread exists yet.
    unsafe { varsr::init_process(varsr::Workload::Inference) };
    let quick = std::env::args().any(|a| a == "--quick");
    let small = VarConfig {
        depth: 4,
        embed_dim: 256,
        num_heads: 4,
        mlp_hidden: 1024,
        vocab_size: 4096,
        cvae: 32,
        num_classes: 2,
        patch_nums: vec![1, 2, 3, 4, 6, 8, 11, 16],
        encoder_channels: vec![32, 64, 128, 256],
        prefix_side: 16,
        refiner_width: 256,
        refiner_depth: 3,
        refiner_freq_dim: 256,
    };
    let small_vae = VqvaeConfig {
        vocab_size: 4096,
        cvae: 32,
        ch: 64,
        ch_mult: vec![1, 1, 2, 2],
        num_res_blocks: 2,
        num_phi: 4,
        norm_groups: 8,
        residual_gain: 0,
    };
    run("small configuration (128 px tiles)", small, small_vae)?;
    if !quick {
        run(
            "released configuration (depth 24, 512 px)",
            VarConfig::release(24),
            VqvaeConfig::release(),
        )?;
    }
    Ok(())
}
