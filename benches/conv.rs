//! The VQVAE decoder's 3×3 convolutions: candle's direct kernel against Winograd F(4×4, 3×3), on each
//! convolution shape of the released decoder for a 512×512 output, then the whole released decoder.
//!
//! `cargo bench --bench conv` (add `-- --quick` to skip the largest shape and the decoder,
//! `-- --decoder` for the decoder only).

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use varsr::model::config::VqvaeConfig;
use varsr::model::random_init::RandomInit;
use varsr::model::vqvae::Vqvae;
use varsr::ops::winograd;

/// Best of `reps` runs, in seconds.
fn time<T>(reps: usize, mut f: impl FnMut() -> candle_core::Result<T>) -> candle_core::Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

fn main() -> anyhow::Result<()> {
    // SAFETY: no other thread exists yet.
    unsafe { varsr::init_process(varsr::Workload::Inference) };
    let quick = std::env::args().any(|a| a == "--quick");
    let decoder_only = std::env::args().any(|a| a == "--decoder");
    let dev = Device::Cpu;
    // (C_in, C_out, side, count in the decoder)
    let mut shapes = vec![
        (640, 640, 32, 10),
        (640, 640, 64, 1),
        (640, 320, 64, 1),
        (320, 320, 64, 5),
        (320, 320, 128, 7),
        (320, 320, 256, 1),
        (320, 160, 256, 1),
        (160, 160, 256, 5),
    ];
    if !quick {
        shapes.push((160, 160, 512, 7));
    }
    if decoder_only {
        shapes.clear();
    }
    println!("shape (C_in→C_out @ side)   direct s   winograd s   speed-up   × count in decoder");
    let (mut sum_direct, mut sum_wino) = (0.0, 0.0);
    for (ci, co, side, count) in shapes {
        let x = Tensor::randn(0f32, 1f32, (1, ci, side, side), &dev)?;
        let w = (Tensor::randn(0f32, 1f32, (co, ci, 3, 3), &dev)? / (9.0 * ci as f64).sqrt())?;
        let b = Tensor::randn(0f32, 1f32, co, &dev)?;
        let reps = if side >= 256 { 1 } else { 3 };
        let direct = time(reps, || {
            x.conv2d(&w, 1, 1, 1, 1)?
                .broadcast_add(&b.reshape((1, co, 1, 1))?)
        })?;
        let wino = time(reps, || winograd::conv3x3(&x, &w, Some(&b)))?;
        sum_direct += direct * count as f64;
        sum_wino += wino * count as f64;
        println!(
            "{ci:4}→{co:<4} @ {side:4}        {direct:8.3}     {wino:8.3}     {:6.2}×    × {count}",
            direct / wino
        );
    }
    println!(
        "weighted sum                {sum_direct:8.2}     {sum_wino:8.2}     {:6.2}×",
        sum_direct / sum_wino
    );
    if !quick {
        let vb = VarBuilder::from_backend(Box::new(RandomInit::new(7)), DType::F32, dev.clone());
        let vae = Vqvae::new(VqvaeConfig::release(), vb)?;
        let z = Tensor::randn(0f32, 1f32, (1, 32, 32, 32), &dev)?;
        let t = time(1, || vae.decode_raw(&z))?;
        println!("released decoder, 32² latent → 512² image: {t:.2} s");
    }
    Ok(())
}
