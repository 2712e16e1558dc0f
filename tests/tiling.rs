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
        self, KeptTiles, LockedTokens, TargetSize, UpscaleInput, UpscaleOptions, UpscaleOutput,
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

    /// Mean absolute difference of two images over the columns `x0..x1`.
    fn strip_diff(a: &RgbImage, b: &RgbImage, x0: u32, x1: u32) -> f64 {
        let (mut sum, mut n) = (0.0, 0.0);
        for y in 0..a.height() {
            for x in x0..x1 {
                for c in 0..3 {
                    sum += (a.get_pixel(x, y)[c] as f64 - b.get_pixel(x, y)[c] as f64).abs();
                    n += 1.0;
                }
            }
        }
        sum / n
    }

    /// Re-sampling a region: only the tiles under it are generated, with the new seed, exactly as
    /// a whole run with that seed makes them; the others come back bit for bit and the image is
    /// the blend of both.
    #[test]
    fn resampling_a_region_regenerates_only_its_tiles() {
        let engine = engine();
        let opts = |seed, kept| UpscaleOptions {
            params: SamplingParams {
                top_k: 0,
                top_p: 1.0,
                seed,
                ..SamplingParams::default()
            },
            size: TargetSize::Scale(4),
            tile_batch: Some(1),
            lanes: Some(1),
            kept,
            ..UpscaleOptions::default()
        };
        let a = run(&engine, &opts(3, None), &mut Recorder::default()).unwrap();
        let b = run(&engine, &opts(8, None), &mut Recorder::default()).unwrap();
        assert_eq!(a.latents.len(), 2);
        assert_eq!(a.latents[0].len(), 32 * 32 * 32);
        let keep = |region| {
            Some(KeptTiles {
                latents: a.latents.clone(),
                tokens: a.tokens.clone(),
                region,
            })
        };
        let (w, h) = a.rgb.dimensions();

        // An empty region: no tile is generated and the image is the first one again.
        let mut rec = Recorder::default();
        let same = run(&engine, &opts(8, keep((0, 0, 0, 0))), &mut rec).unwrap();
        assert!(rec.scales.is_empty(), "{:?}", rec.scales);
        assert!(same.rgb == a.rgb && same.tokens == a.tokens);

        // A rectangle at the right edge lies on the second tile only (tiles span 0–512 and
        // 64–576 of the 576-px canvas, i.e. 0–462 and 58–520 of the 520-px output).
        assert_eq!(a.plan.tiles_touching((w - 20, 10, 20, 20)), vec![1]);
        assert_eq!(a.plan.tiles_touching((0, 0, 30, h)), vec![0]);
        assert_eq!(a.plan.tiles_touching((200, 50, 10, 10)), vec![0, 1]);
        let mut rec = Recorder::default();
        let r = run(&engine, &opts(8, keep((w - 20, 10, 20, 20))), &mut rec).unwrap();
        let expect: Vec<_> = (0..10).map(|s| (1, 2, s, 10)).collect();
        assert_eq!(rec.scales, expect, "only tile 1 is generated");
        assert!(r.latents[0] == a.latents[0] && r.tokens[0] == a.tokens[0]);
        assert!(
            r.latents[1] == b.latents[1] && r.tokens[1] == b.tokens[1],
            "the re-sampled tile is what a whole run with the new seed makes of it"
        );
        // The image is the blend of those tiles: what a run that generates nothing makes of the
        // same tile set.
        let mixed = KeptTiles {
            latents: vec![a.latents[0].clone(), b.latents[1].clone()],
            tokens: vec![a.tokens[0].clone(), b.tokens[1].clone()],
            region: (0, 0, 0, 0),
        };
        let blend = run(&engine, &opts(3, Some(mixed)), &mut Recorder::default()).unwrap();
        assert!(r.rgb == blend.rgb);
        // The decoder's attention spreads every latent over its whole window, so no strip is the
        // old image to the bit; still the left edge (tile 0 alone) is nearer the first run and the
        // right edge (tile 1 alone) nearer the second.
        let (left, right) = ((0, 24), (w - 24, w));
        assert!(
            strip_diff(&r.rgb, &a.rgb, left.0, left.1) < strip_diff(&r.rgb, &b.rgb, left.0, left.1)
        );
        assert!(
            strip_diff(&r.rgb, &b.rgb, right.0, right.1)
                < strip_diff(&r.rgb, &a.rgb, right.0, right.1)
        );

        // The whole output redone with the new seed: the second run exactly.
        let all = run(
            &engine,
            &opts(8, keep((0, 0, w, h))),
            &mut Recorder::default(),
        )
        .unwrap();
        assert!(all.rgb == b.rgb && all.tokens == b.tokens);

        // A kept result of another size is refused before any work.
        let wrong = KeptTiles {
            latents: vec![a.latents[0].clone()],
            tokens: vec![a.tokens[0].clone()],
            region: (0, 0, 10, 10),
        };
        let err = run(&engine, &opts(8, Some(wrong)), &mut Recorder::default()).unwrap_err();
        assert!(err.to_string().contains("same image and size"), "{err}");
        // So is a region reaching past the output.
        let outside = keep((w - 10, 0, 20, 10)).unwrap();
        assert!(matches!(
            run(&engine, &opts(8, Some(outside)), &mut Recorder::default()),
            Err(Error::Invalid(_))
        ));
    }
}
