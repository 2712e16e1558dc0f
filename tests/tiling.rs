//! Latent tile blending against an independent numpy implementation of test_tile.py
//! (`tests/fixtures/gen/tiling_blend.py` → `tests/fixtures/tiling/blend.json`).

use varsr::pipeline::tiling::{LatentBlender, TileGeometry, TileGrid};

#[derive(serde::Deserialize)]
struct Case {
    h: usize,
    w: usize,
    channels: usize,
    tile: usize,
    tiles: usize,
    blend: Vec<f64>,
}

/// Same closed form as the generator script.
fn tile_value(t: usize, c: usize, y: usize, x: usize) -> f32 {
    ((0.3 * t as f64 + 0.7 * c as f64 + 0.11 * y as f64 - 0.05 * x as f64).sin() + 0.1 * c as f64)
        as f32
}

#[test]
fn latent_blend_matches_numpy_reference() {
    let text = include_str!("fixtures/tiling/blend.json");
    let cases: Vec<Case> = serde_json::from_str(text).unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let grid = TileGrid::new(case.h, case.w, TileGeometry::for_tile(case.tile)).unwrap();
        assert_eq!(
            grid.len(),
            case.tiles,
            "tile count for {}×{}",
            case.h,
            case.w
        );
        let mut blender = LatentBlender::new(grid.clone(), case.channels);
        let t = case.tile;
        for tile in grid.tiles() {
            let mut v = Vec::with_capacity(case.channels * t * t);
            for c in 0..case.channels {
                for y in 0..t {
                    for x in 0..t {
                        v.push(tile_value(tile.index, c, y, x));
                    }
                }
            }
            blender.add(&tile, &v).unwrap();
        }
        let out = blender.finish().unwrap();
        assert_eq!(out.len(), case.blend.len());
        let worst = out
            .iter()
            .zip(&case.blend)
            .map(|(&a, &e)| (a as f64 - e).abs())
            .fold(0.0f64, f64::max);
        assert!(
            worst < 1e-6,
            "{}×{} tile {}: max error {worst}",
            case.h,
            case.w,
            case.tile
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Whole upscales through the tiled pipeline with the parity fixture model (random weights, the
// release's 512 px tiles): a 130×40 input pads to 576×512, two tiles side by side and a decode in
// two overlapping windows.

mod pipeline {
    use image::{Rgb, RgbImage};
    use varsr::pipeline::engine::{Engine, ModelSpec};
    use varsr::pipeline::upscale::{
        self, LockedTokens, TargetSize, UpscaleInput, UpscaleOptions, UpscaleOutput,
    };
    use varsr::pipeline::{Error, Observer, Progress, SamplingParams, ScaleEvent, SeededNoise};

    const MODEL: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/parity/parity-d2"
    );

    fn engine() -> Engine {
        Engine::load(&ModelSpec::Path(MODEL.into()), &candle_core::Device::Cpu).unwrap()
    }

    fn input() -> UpscaleInput {
        UpscaleInput::from_rgb(RgbImage::from_fn(130, 40, |x, y| {
            Rgb([(x * 2) as u8, (y * 6) as u8, ((x + 3 * y) % 256) as u8])
        }))
    }

    #[derive(Default)]
    struct Recorder {
        scales: Vec<(usize, usize, usize, usize)>,
        fractions: Vec<f32>,
        decoding: bool,
        cancel_after: Option<usize>,
    }

    impl Observer for Recorder {
        fn scale_done(&mut self, e: &ScaleEvent) {
            for i in 0..e.tokens.len() {
                self.scales
                    .push((e.tile + i, e.num_tiles, e.scale, e.num_scales));
            }
        }
        fn progress(&mut self, p: &Progress) {
            match p {
                Progress::Fraction(f) => self.fractions.push(*f),
                Progress::Decoding => self.decoding = true,
                _ => {}
            }
        }
        fn cancelled(&self) -> bool {
            self.cancel_after.is_some_and(|n| self.scales.len() >= n)
        }
    }

    fn run(
        engine: &Engine,
        opts: &UpscaleOptions,
        rec: &mut Recorder,
    ) -> Result<UpscaleOutput, Error> {
        upscale::upscale(
            engine,
            &input(),
            opts,
            rec,
            &mut SeededNoise::new(opts.params.seed),
        )
    }

    fn max_diff(a: &RgbImage, b: &RgbImage) -> u8 {
        a.as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(0)
    }

    /// Batching, progress, locked tokens and cancellation on one loaded model (each run is two
    /// tiles).
    #[test]
    fn tiled_upscale_batches_progress_and_locked_scales() {
        let engine = engine();
        let opts = |batch, top_k, seed, locked: Option<LockedTokens>| UpscaleOptions {
            params: SamplingParams {
                top_k,
                top_p: 1.0,
                seed,
                ..SamplingParams::default()
            },
            size: TargetSize::Scale(4),
            tile_batch: Some(batch),
            // One batch at a time unless a check says otherwise: events come in tile order.
            lanes: Some(1),
            locked,
            ..UpscaleOptions::default()
        };

        let mut rec = Recorder::default();
        let one = run(&engine, &opts(1, 1, 3, None), &mut rec).unwrap();
        assert_eq!(one.plan.padded, (576, 512));
        assert_eq!(one.plan.grid.len(), 2);
        assert_eq!(one.rgb.dimensions(), (520, 160));
        // Every tile reports every scale, in order, with the tile count.
        let expect: Vec<_> = (0..2)
            .flat_map(|t| (0..10).map(move |s| (t, 2, s, 10)))
            .collect();
        assert_eq!(rec.scales, expect);
        assert!(rec.decoding);
        assert!(
            rec.fractions.windows(2).all(|w| w[0] <= w[1]),
            "{:?}",
            rec.fractions
        );
        assert_eq!(rec.fractions.last(), Some(&1.0));
        assert_eq!(one.tokens.len(), 2);
        for (k, pn) in engine.patch_nums().iter().enumerate() {
            assert_eq!(one.tokens[0][k].len(), pn * pn);
        }

        // Both tiles in one batch: the same tokens, and the same image (each tile draws its
        // refiner noise from its own stream; 1 LSB allowed for batched float arithmetic).
        let two = run(&engine, &opts(2, 1, 3, None), &mut Recorder::default()).unwrap();
        for t in 0..2 {
            for k in 0..10 {
                assert!(
                    two.tokens[t][k] == one.tokens[t][k],
                    "tile {t} scale {k}: tokens differ between tile batch 1 and 2"
                );
            }
        }
        assert!(
            max_diff(&two.rgb, &one.rgb) <= 1,
            "output must not depend on the tile batch"
        );

        // Both tiles at once on two lanes: the same tokens and, since each tile's work and the
        // blend order are unchanged, the same image bit for bit; every scale of both tiles is
        // reported (interleaved).
        let mut rec = Recorder::default();
        let lanes = UpscaleOptions {
            lanes: Some(2),
            ..opts(1, 1, 3, None)
        };
        let both = run(&engine, &lanes, &mut rec).unwrap();
        assert_eq!(both.plan.lanes, 2);
        assert!(
            both.tokens == one.tokens,
            "tokens differ between 1 and 2 lanes"
        );
        assert!(
            both.rgb == one.rgb,
            "the image differs between 1 and 2 lanes"
        );
        let mut scales = rec.scales.clone();
        scales.sort();
        assert_eq!(scales, expect);
        assert_eq!(rec.fractions.last(), Some(&1.0));

        // Sampling (top-k 0): a run with another seed and scales 0..4 locked to a first run keeps
        // those scales and samples the finer ones anew.
        let first = run(&engine, &opts(1, 0, 3, None), &mut Recorder::default()).unwrap();
        let locked = LockedTokens {
            from_scale: 4,
            per_tile: first.tokens.clone(),
        };
        let rerun = run(
            &engine,
            &opts(1, 0, 99, Some(locked)),
            &mut Recorder::default(),
        )
        .unwrap();
        for t in 0..2 {
            assert!(
                rerun.tokens[t][..4] == first.tokens[t][..4],
                "locked scales kept"
            );
            assert!(
                rerun.tokens[t][4..] != first.tokens[t][4..],
                "finer scales resampled"
            );
        }
        // Locking every scale with the same seed repeats the run exactly.
        let all = LockedTokens {
            from_scale: 10,
            per_tile: rerun.tokens.clone(),
        };
        let repeat = run(
            &engine,
            &opts(1, 0, 99, Some(all)),
            &mut Recorder::default(),
        )
        .unwrap();
        assert!(repeat.tokens == rerun.tokens);
        assert!(
            repeat.rgb == rerun.rgb,
            "same tokens and seed give the same image"
        );

        // Wrong kept tokens are refused before any work.
        let wrong = LockedTokens {
            from_scale: 2,
            per_tile: vec![one.tokens[0].clone()],
        };
        assert!(matches!(
            run(
                &engine,
                &opts(1, 1, 3, Some(wrong)),
                &mut Recorder::default()
            ),
            Err(Error::Invalid(_))
        ));

        // Cancelling during the second tile: the first tile's scales were all reported.
        let mut rec = Recorder {
            cancel_after: Some(13),
            ..Recorder::default()
        };
        assert!(matches!(
            run(&engine, &opts(1, 1, 3, None), &mut rec),
            Err(Error::Cancelled)
        ));
        assert_eq!(rec.scales.len(), 13);
        assert_eq!(rec.scales[9], (0, 2, 9, 10));

        // The same on two lanes: the run stops (the lanes are told at their next scale).
        let mut rec = Recorder {
            cancel_after: Some(13),
            ..Recorder::default()
        };
        assert!(matches!(
            run(
                &engine,
                &UpscaleOptions {
                    lanes: Some(2),
                    ..opts(1, 1, 3, None)
                },
                &mut rec
            ),
            Err(Error::Cancelled)
        ));
        assert!(rec.scales.len() >= 13 && rec.scales.len() < 20);
    }
}
