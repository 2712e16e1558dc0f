//! Against scikit-image (tests/fixtures/gen/gen_metrics.py) and analytic cases.

use super::*;
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imaging/metrics")
}

fn rgb(name: &str) -> RgbImage {
    image::open(dir().join(name)).unwrap().to_rgb8()
}

#[test]
fn matches_scikit_image() {
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("manifest.json")).unwrap())
            .unwrap();
    let cases = m["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for c in cases {
        let (hr, sr) = (
            rgb(c["hr"].as_str().unwrap()),
            rgb(c["sr"].as_str().unwrap()),
        );
        let border = c["crop_border"].as_u64().unwrap() as u32;
        let label = format!("{} vs {} crop {border}", c["hr"], c["sr"]);
        let p = psnr_y(&hr, &sr, border).unwrap();
        match c["psnr"].as_f64() {
            Some(want) => assert!((p - want).abs() < 1e-9, "{label}: PSNR {p} vs {want}"),
            None => assert!(p.is_infinite() && p > 0.0, "{label}: {p}"),
        }
        if let Some(want32) = c["psnr_basicsr_f32y"].as_f64() {
            assert!((p - want32).abs() < 1e-4, "{label}: vs basicsr f32 Y");
        }
        let s = ssim_y(&hr, &sr, border).unwrap();
        let want = c["ssim"].as_f64().unwrap();
        assert!((s - want).abs() < 1e-10, "{label}: SSIM {s} vs {want}");
        assert!(
            (s - c["ssim_basicsr_f32y"].as_f64().unwrap()).abs() < 1e-6,
            "{label}"
        );
    }
}

#[test]
fn luma_of_primaries() {
    let img = RgbImage::from_raw(
        5,
        1,
        vec![0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 255],
    )
    .unwrap();
    let y = rgb_to_y(&img).data;
    let want = [16.0, 235.0, 16.0 + 65.481, 16.0 + 128.553, 16.0 + 24.966];
    for (g, w) in y.iter().zip(want) {
        assert!((g - w).abs() < 1e-9, "{y:?}");
    }
}

#[test]
fn psnr_of_constant_offset() {
    // Y differs by exactly d everywhere → MSE = d², PSNR = 20 log10(255/d).
    let a = Plane {
        width: 4,
        height: 1,
        data: vec![10.0, 20.0, 30.0, 40.0],
    };
    let b: Vec<f64> = a.data.iter().map(|v| v + 3.0).collect();
    assert!((psnr(&a.data, &b, 255.0) - 20.0 * (255.0f64 / 3.0).log10()).abs() < 1e-12);
}

#[test]
fn ssim_of_identical_and_shifted_constant_planes() {
    let a = Plane {
        width: 12,
        height: 12,
        data: vec![100.0; 144],
    };
    assert!((ssim(&a, &a, 255.0).unwrap() - 1.0).abs() < 1e-12);
    // Constant planes μa, μb: SSIM = (2 μa μb + C1) / (μa² + μb² + C1).
    let b = Plane {
        data: vec![120.0; 144],
        ..a.clone()
    };
    let c1 = (0.01f64 * 255.0).powi(2);
    let want = (2.0 * 100.0 * 120.0 + c1) / (100.0f64.powi(2) + 120.0f64.powi(2) + c1);
    assert!((ssim(&a, &b, 255.0).unwrap() - want).abs() < 1e-12);
}

#[test]
fn bad_sizes_are_errors() {
    let a = RgbImage::new(20, 20);
    assert!(psnr_y(&a, &RgbImage::new(20, 21), 0).is_err());
    assert!(ssim_y(&a, &a, 5).is_err()); // 10×10 left
    assert!(psnr_y(&a, &a, 10).is_err());
}
