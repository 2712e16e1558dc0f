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
