//! A residual model (its VQVAE codes the detail bicubic upscaling misses) adds what it decodes to the
//! bicubic upscale exactly once, also where tiles and decode windows overlap. With a decoder whose
//! last convolution is zero the detail is zero, so the result must be the bicubic upscale itself;
//! with the random decoder left in place it must not be.

use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use image::RgbImage;
use varsr::imaging::resize_rgb;
use varsr::model::random_init::RandomInit;
use varsr::model::var::Var;
use varsr::model::vqvae::Vqvae;
use varsr::pipeline::events::{Observer, ScaleEvent, Silent};
use varsr::pipeline::upscale::{UpscaleInput, UpscaleOptions, upscale};
use varsr::pipeline::{Engine, SeededNoise};
use varsr::train::small;

/// Random weights, except `decoder.conv_out` (weight and bias) when `zero_out`.
struct Weights {
    random: RandomInit,
    zero_out: bool,
}

impl SimpleBackend for Weights {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        if self.zero_out && name.starts_with("decoder.conv_out") {
            return Tensor::zeros(s, dtype, dev);
        }
        self.random.get(s, name, h, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        self.random.get_unchecked(name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.random.contains_tensor(name)
    }
}

fn engine(zero_out: bool) -> Engine {
    let dev = Device::Cpu;
    let vb = |seed, zero_out| {
        let w = Weights {
            random: RandomInit::new(seed),
            zero_out,
        };
        VarBuilder::from_backend(Box::new(w), DType::F32, dev.clone())
    };
    let vae_cfg = small::vqvae_config();
    assert!(vae_cfg.residual_gain > 0);
    Engine {
        var: Var::new(small::var_config(), vb(1, false)).unwrap(),
        vae: Vqvae::new(vae_cfg, vb(2, zero_out)).unwrap(),
        device: dev,
        description: "residual test model".into(),
        tile_overlap: small::TILE_OVERLAP,
        default_cfg: small::DEFAULT_CFG,
        preview_map: Default::default(),
    }
}

fn max_diff(a: &RgbImage, b: &RgbImage) -> u8 {
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

#[test]
fn detail_is_added_once_to_the_bicubic_upscale() {
    // 40 px → 160 px: a 40-cell latent, 3×3 tiles and 3×3 decode windows of 16 cells.
    let lr = RgbImage::from_fn(40, 40, |x, y| {
        image::Rgb([
            (x * 6) as u8,
            (y * 6) as u8,
            if (x / 5 + y / 5) % 2 == 0 { 40 } else { 200 },
        ])
    });
    let bicubic = resize_rgb(&lr, 160, 160);
    let run = |e: &Engine| {
        upscale(
            e,
            &UpscaleInput::from_rgb(lr.clone()),
            &UpscaleOptions::default(),
            &mut Silent,
            &mut SeededNoise::new(7),
        )
        .unwrap()
    };
    let flat = engine(true);
    let out = run(&flat);
    assert!(out.plan.grid.len() > 1, "the case must span several tiles");
    // The colour fix of an image against itself moves values by rounding only.
    assert!(max_diff(&out.rgb, &bicubic) <= 1);

    let detailed = run(&engine(false));
    assert!(max_diff(&detailed.rgb, &bicubic) > 8);
}

/// Keeps the previews of the first batch's last scale.
#[derive(Default)]
struct LastPreview(Option<ScaleEvent>);

impl Observer for LastPreview {
    fn scale_done(&mut self, e: &ScaleEvent) {
        if e.tile == 0 && e.scale + 1 == e.num_scales {
            self.0 = Some(e.clone());
        }
    }
    fn wants_previews(&self) -> bool {
        true
    }
}

#[test]
fn previews_show_the_detail_on_top_of_the_input() {
    let lr = RgbImage::from_fn(16, 16, |x, y| {
        image::Rgb([(x * 15) as u8, (y * 15) as u8, 90])
    });
    let mut seen = LastPreview::default();
    upscale(
        &engine(true),
        &UpscaleInput::from_rgb(lr.clone()),
        &UpscaleOptions::default(),
        &mut seen,
        &mut SeededNoise::new(7),
    )
    .unwrap();
    let event = seen.0.expect("the last scale was reported");
    let preview = &event.previews[0];
    let side = small::TILE_PX / 4;
    assert_eq!((preview.width, preview.height), (side, side));
    // No detail: the preview is the model's input (the bicubic upscale) averaged over each latent
    // cell of 4×4 pixels.
    let input = resize_rgb(&lr, 64, 64);
    for cy in 0..side {
        for cx in 0..side {
            for c in 0..3 {
                let sum: f64 = (0..16)
                    .map(|i| {
                        input.get_pixel((cx * 4 + i % 4) as u32, (cy * 4 + i / 4) as u32)[c] as f64
                    })
                    .sum();
                let got = preview.rgb[(cy * side + cx) * 3 + c] as f64;
                assert!(
                    (got - sum / 16.0).abs() <= 1.0,
                    "cell ({cx}, {cy}) channel {c}"
                );
            }
        }
    }
}
