//! The built-in model (compiled in when `models/varsr-studio-small.safetensors` exists) upscales a
//! real photo it never saw in training: Set5's "bird", the SR benchmarks' protocol (Pillow-bicubic 4×
//! downscale, PSNR on Y with a 4-px border crop). The truth is the original high-resolution photo;
//! bicubic interpolation of the same input is the baseline.
#![cfg(varsr_embedded_model)]

use std::path::PathBuf;

use candle_core::Device;
use varsr::pipeline::Engine;
use varsr::pipeline::engine::ModelSpec;
use varsr::train::eval::{EvalArgs, evaluate};

#[test]
fn built_in_model_upscales_a_held_out_photo() {
    let engine = Engine::load(&ModelSpec::Embedded, &Device::Cpu).expect("built-in model loads");
    assert!(
        engine.description.contains("VARSR Studio small"),
        "{}",
        engine.description
    );
    // Both travel only in the metadata.
    assert_eq!(engine.vae.config.norm_groups, 8);
    assert!(engine.is_residual());
    assert!(engine.default_cfg > 0.0);
    let args = EvalArgs {
        hr_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/quality"),
        model: None,
        cfg: vec![0.0, engine.default_cfg],
        out: None,
        seed: 42,
        top_k: 1,
        top_p: 0.75,
        limit: None,
        tokenizer: None,
    };
    let scores = evaluate(&engine, &args).expect("evaluation runs");
    let (bicubic, unguided, guided) = (&scores[0], &scores[1], &scores[2]);
    for s in &scores {
        eprintln!("{}: PSNR-Y {:.2} dB, SSIM-Y {:.4}", s.name, s.psnr, s.ssim);
    }
    assert_eq!(bicubic.count, 1);
    // The model adds detail to the bicubic upscale. A broken one (wrong norm groups, a swapped
    // tensor, a decoder fed the wrong latent) paints noise over it and loses many dB; the trained
    // one, at its default guidance, stays within about a dB (0.87 dB on this photo when it was
    // built: short of issue #5's 0.5 dB, see models/README.md). Guidance is what keeps its detail
    // clean, so the unguided run gets a wider margin.
    for (s, max_psnr, max_ssim) in [
        (guided, MAX_PSNR_DEFICIT_DB, MAX_SSIM_DEFICIT),
        (unguided, 2.0 * MAX_PSNR_DEFICIT_DB, 2.0 * MAX_SSIM_DEFICIT),
    ] {
        assert!(
            s.psnr > bicubic.psnr - max_psnr,
            "{}: {:.2} dB vs bicubic {:.2} dB",
            s.name,
            s.psnr,
            bicubic.psnr
        );
        assert!(
            s.ssim > bicubic.ssim - max_ssim,
            "{}: SSIM {:.4} vs bicubic {:.4}",
            s.name,
            s.ssim,
            bicubic.ssim
        );
    }
    // Guidance must change the result.
    assert!((unguided.psnr - guided.psnr).abs() > 1e-3);
}

/// The largest PSNR-Y shortfall against bicubic at the default guidance (measured: 0.87 dB).
const MAX_PSNR_DEFICIT_DB: f64 = 1.5;
/// The largest SSIM-Y shortfall against bicubic at the default guidance (measured: 0.055).
const MAX_SSIM_DEFICIT: f64 = 0.1;
