use image::{Rgb, RgbImage};

use super::*;
use crate::imaging::pil_resize::resize_rgb;

fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            (40 + x * 5) as u8,
            (60 + y * 4) as u8,
            (100 + (x + y) * 2) as u8,
        ])
    })
}

#[test]
fn invented_detail_is_zero_for_bicubic_and_the_added_luma_elsewhere() {
    let input = gradient(16, 12);
    let mut result = resize_rgb(&input, 64, 48);
    let t = trust(TrustMap::Invented, &input, &result);
    assert!(
        t.values.iter().all(|&v| v < 1e-4),
        "bicubic invents nothing"
    );
    // +20 on R, G and B is +20·(65.481+128.553+24.966)/255 = +17.176… luma levels (strong: at
    // least half the full scale of 24); +10 (8.588…) in a second block is not.
    let blocks = [(10..20, 30..40, 20u8), (30..35, 5..15, 10u8)];
    for (ys, xs, add) in blocks.clone() {
        for y in ys {
            for x in xs.clone() {
                result
                    .get_pixel_mut(x, y)
                    .0
                    .iter_mut()
                    .for_each(|c| *c += add);
            }
        }
    }
    let t = trust(TrustMap::Invented, &input, &result);
    let levels = |add: u8| add as f64 * 219.0 / 255.0;
    for y in 0..48u32 {
        for x in 0..64u32 {
            let v = t.values[(y * 64 + x) as usize] as f64;
            let expect = blocks
                .iter()
                .find(|(ys, xs, _)| ys.contains(&y) && xs.contains(&x))
                .map_or(0.0, |b| levels(b.2));
            assert!((v - expect).abs() < 1e-4, "({x},{y}): {v}");
        }
    }
    let mean = (100.0 * levels(20) + 50.0 * levels(10)) / 3072.0;
    assert!((t.mean - mean).abs() < 1e-5, "{} vs {mean}", t.mean);
    assert!((t.strong_share - 100.0 / 3072.0).abs() < 1e-12);
}

#[test]
fn disagreement_is_the_luma_offset_of_flat_images_and_spreads_over_the_output() {
    let input = RgbImage::from_pixel(5, 3, Rgb([100, 100, 100]));
    let result = RgbImage::from_pixel(20, 12, Rgb([110, 110, 110]));
    let t = trust(TrustMap::Inconsistency, &input, &result);
    assert_eq!((t.width, t.height, t.values.len()), (20, 12, 240));
    let want = 10.0 * 219.0 / 255.0;
    assert!(t.values.iter().all(|&v| (v as f64 - want).abs() < 1e-4));
    // One bright input pixel: its disagreement covers the 4×4 output pixels it became.
    let mut input = RgbImage::from_pixel(5, 3, Rgb([110, 110, 110]));
    input.put_pixel(2, 1, Rgb([150, 150, 150]));
    let t = trust(TrustMap::Inconsistency, &input, &result);
    for y in 0..12usize {
        for x in 0..20usize {
            let v = t.values[y * 20 + x] as f64;
            let inside = (4..8).contains(&y) && (8..12).contains(&x);
            let expect = if inside { 40.0 * 219.0 / 255.0 } else { 0.0 };
            assert!((v - expect).abs() < 1e-4, "({x},{y}): {v}");
        }
    }
}

#[test]
fn the_heat_ramp_brightens_monotonically_from_black() {
    assert_eq!(heat(0.0), Rgb([0, 0, 0]));
    assert_eq!(heat(1.0), Rgb([252, 255, 164]));
    assert_eq!(heat(2.0), heat(1.0));
    let lum = |t: f32| {
        let [r, g, b] = heat(t).0.map(f32::from);
        0.299 * r + 0.587 * g + 0.114 * b
    };
    let steps: Vec<f32> = (0..=100).map(|i| lum(i as f32 / 100.0)).collect();
    assert!(steps.windows(2).all(|w| w[1] >= w[0]), "{steps:?}");
}

#[test]
fn the_rendered_map_is_dim_grey_where_nothing_changed_and_hot_where_it_did() {
    let input = RgbImage::from_pixel(4, 4, Rgb([128, 128, 128]));
    let mut result = resize_rgb(&input, 16, 16);
    result.put_pixel(3, 3, Rgb([255, 255, 255]));
    let t = trust(TrustMap::Invented, &input, &result);
    let img = render(&t, &result);
    assert_eq!(img.dimensions(), (16, 16));
    let calm = img.get_pixel(10, 10).0;
    assert_eq!(calm[0], calm[1]);
    assert_eq!(calm[1], calm[2]);
    assert!(calm[0] < 60, "grey at 35 %: {calm:?}");
    // 127 levels of red, green and blue: far past full scale, so the top of the ramp.
    assert_eq!(img.get_pixel(3, 3).0, [252, 255, 164, 255]);
}
