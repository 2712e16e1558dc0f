//! Against numpy (tests/fixtures/gen/gen_color_fix.py) and analytic properties.

use super::*;
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imaging/color_fix")
}

fn rgb(name: &str) -> RgbImage {
    image::open(dir().join(name)).unwrap().to_rgb8()
}

#[test]
fn matches_numpy_reference() {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("manifest.json")).unwrap())
            .unwrap();
    for case in manifest["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let sr = rgb(&format!("{name}.sr.png"));
        let reference = rgb(&format!("{name}.ref.png"));
        let got = if case["resize_ref_to_sr"].as_bool().unwrap() {
            adain_color_fix_to_lr(&sr, &reference)
        } else {
            adain_color_fix(&sr, &reference)
        };
        let want = rgb(&format!("{name}.out.png"));
        assert_eq!(got.dimensions(), want.dimensions(), "{name}");
        let bad: Vec<_> = got
            .as_raw()
            .iter()
            .zip(want.as_raw())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(5)
            .collect();
        assert!(
            bad.is_empty(),
            "{name}: differences (index, (got, want)) {bad:?}"
        );
        // The all-f32 reduction variant must stay within 1 LSB.
        let want32 = rgb(&format!("{name}.out_f32stats.png"));
        assert!(
            got.as_raw()
                .iter()
                .zip(want32.as_raw())
                .all(|(a, b)| a.abs_diff(*b) <= 1),
            "{name}"
        );
    }
}

#[test]
fn stats_of_two_pixel_image() {
    // Channel values 0 and 255 → mean 0.5, unbiased var 0.5, std sqrt(0.5 + 1e-5).
    let img = RgbImage::from_raw(2, 1, vec![0, 0, 0, 255, 255, 255]).unwrap();
    let s = ChannelStats::of(&img);
    for c in 0..3 {
        assert!((s.mean[c] - 0.5).abs() < 1e-7);
        assert!((s.std[c] - (0.5f32 + 1e-5).sqrt()).abs() < 1e-7);
    }
}

#[test]
fn identical_images_are_nearly_unchanged() {
    // x' = x exactly in real arithmetic; f32 rounding then truncation can drop to x − 1 only.
    let img = rgb("baboon_cast.sr.png");
    let out = adain_color_fix(&img, &img);
    for (a, b) in out.as_raw().iter().zip(img.as_raw()) {
        assert!(*a == *b || *a + 1 == *b, "{a} vs {b}");
    }
}

#[test]
fn single_pixel_does_not_produce_nan() {
    let sr = RgbImage::from_raw(1, 1, vec![10, 20, 30]).unwrap();
    let lr = RgbImage::from_raw(1, 1, vec![200, 100, 0]).unwrap();
    // var taken as 0: output is the reference mean (v/255 in f32), ×255 and truncated: v or v − 1.
    let out = adain_color_fix(&sr, &lr);
    for (a, b) in out.as_raw().iter().zip(lr.as_raw()) {
        assert!(*a == *b || *a + 1 == *b, "{a} vs {b}");
    }
}
