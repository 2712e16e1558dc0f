//! Bit-exactness against Pillow 11 (fixtures from tests/fixtures/gen/gen_pil_resize.py).

use super::*;
use serde_json::Value;
use std::path::PathBuf;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imaging/pil_resize")
}

/// Same integer hash as `pattern()` in the generator script.
fn pattern(w: u32, h: u32, c: u32, seed: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity((w * h * c) as usize);
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                let mut v = x
                    .wrapping_mul(374_761_393)
                    .wrapping_add(y.wrapping_mul(668_265_263))
                    .wrapping_add(ch.wrapping_mul(2_246_822_519))
                    .wrapping_add(seed.wrapping_mul(3_266_489_917));
                v = (v ^ (v >> 13)).wrapping_mul(1_274_126_177);
                v ^= v >> 16;
                out.push((v & 255) as u8);
            }
        }
    }
    out
}

fn checker(w: u32, h: u32, c: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let v = if ((x / 2) + (y / 3)) % 2 == 0 { 255 } else { 0 };
            out.extend(std::iter::repeat_n(v, c as usize));
        }
    }
    out
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_f32(path: PathBuf) -> Vec<f32> {
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn matches_pillow_bit_exact() {
    let dir = fixture_dir();
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let cases = manifest["cases"].as_array().unwrap();
    assert!(cases.len() >= 15);
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let get = |k: &str| case[k].as_u64().unwrap() as u32;
        let (c, w, h, ow, oh) = (
            get("channels"),
            get("in_w"),
            get("in_h"),
            get("out_w"),
            get("out_h"),
        );
        let src = match case["source"]["kind"].as_str().unwrap() {
            "pattern" => pattern(w, h, c, case["source"]["seed"].as_u64().unwrap() as u32),
            "checker" => checker(w, h, c),
            "png" => {
                let img = image::open(dir.join(case["source"]["file"].as_str().unwrap()))
                    .unwrap()
                    .to_rgb8();
                assert_eq!((img.width(), img.height()), (w, h));
                img.into_raw()
            }
            other => panic!("unknown source {other}"),
        };
        let got = resize_u8(&src, c as usize, w, h, ow, oh);
        assert_eq!(got.len(), (ow * oh * c) as usize, "{name}");
        if let Some(png) = case.get("expected_png").and_then(Value::as_str) {
            let img = image::open(dir.join(png)).unwrap();
            let want = if c == 3 {
                img.to_rgb8().into_raw()
            } else {
                img.to_luma8().into_raw()
            };
            if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
                let px = i / c as usize;
                failures.push(format!(
                    "{name}: first difference at x={} y={} channel {}: got {} want {}",
                    px % ow as usize,
                    px / ow as usize,
                    i % c as usize,
                    got[i],
                    want[i]
                ));
            }
        } else {
            let want_hash = case["fnv1a64"].as_str().unwrap();
            let got_hash = format!("{:016x}", fnv1a64(&got));
            if got_hash != want_hash {
                let row = hex(&got[..(ow * c) as usize]);
                let want_row = case["first_row_hex"].as_str().unwrap();
                failures.push(format!(
                    "{name}: hash {got_hash} != {want_hash}; first row equal: {}",
                    row == want_row
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn rgb_and_gray_wrappers_match_core() {
    let src = pattern(13, 9, 3, 99);
    let img = RgbImage::from_raw(13, 9, src.clone()).unwrap();
    let out = resize_rgb(&img, 31, 4);
    assert_eq!(out.dimensions(), (31, 4));
    assert_eq!(out.into_raw(), resize_u8(&src, 3, 13, 9, 31, 4));
    let g = GrayImage::from_raw(13, 9, pattern(13, 9, 1, 5)).unwrap();
    assert_eq!(resize_gray(&g, 6, 20).dimensions(), (6, 20));
}

#[test]
fn constant_images_stay_constant() {
    // Normalised weights sum to 1 (in fixed point to within rounding), so flat input is preserved.
    for v in [0u8, 1, 77, 128, 254, 255] {
        let src = vec![v; 19 * 11 * 3];
        for (ow, oh) in [(64, 64), (5, 3), (19, 40), (1, 1)] {
            let out = resize_u8(&src, 3, 19, 11, ow, oh);
            assert!(out.iter().all(|&x| x == v), "value {v} -> {ow}x{oh}");
        }
    }
}

#[test]
fn degenerate_sizes_do_not_panic() {
    assert!(resize_u8(&[1, 2, 3], 3, 1, 1, 0, 5).is_empty());
    assert_eq!(resize_u8(&[], 3, 0, 0, 2, 2), vec![0; 12]);
    assert_eq!(resize_u8(&[9; 12], 3, 2, 2, 2, 2), vec![9; 12]);
}

#[test]
fn float_plane_matches_pillow_mode_f() {
    let dir = fixture_dir();
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    for case in manifest["float_cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let get = |k: &str| case[k].as_u64().unwrap() as u32;
        let src = read_f32(dir.join(format!("{name}.in.f32")));
        let want = read_f32(dir.join(format!("{name}.out.f32")));
        let got = resize_f32(&src, get("in_w"), get("in_h"), get("out_w"), get("out_h"));
        assert_eq!(got.len(), want.len(), "{name}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "{name}[{i}]: {g} vs {w}");
        }
    }
}
