//! Conversions between 8-bit images and the model's float layouts (reference §4.1, §4.8).

use image::RgbImage;

/// CHW f32 in [-1, 1]: torchvision ToTensor (`u8 / 255`, in f32) then `x * 2 − 1`, as the
/// reference feeds the LR image. Length `3 · w · h`, channel planes R, G, B.
pub fn to_model_input(rgb: &RgbImage) -> Vec<f32> {
    let plane = rgb.width() as usize * rgb.height() as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, px) in rgb.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (f32::from(px.0[c]) / 255.0) * 2.0 - 1.0;
        }
    }
    out
}

/// CHW f32 in [0, 1] (the decoder output after `(x + 1) / 2`) to an 8-bit image:
/// `round(x · 255)` as diffusers' `numpy_to_pil` does, i.e. numpy's round half to even, after
/// clamping to [0, 1] (NaN becomes 0). Missing samples (a short slice) are black.
pub fn from_unit_f32(chw: &[f32], width: u32, height: u32) -> RgbImage {
    let plane = width as usize * height as usize;
    let mut img = RgbImage::new(width, height);
    for (i, px) in img.pixels_mut().enumerate() {
        for c in 0..3 {
            let x = chw.get(c * plane + i).copied().unwrap_or(0.0);
            px.0[c] = unit_to_u8_round(x);
        }
    }
    img
}

/// `round(clamp(x, 0, 1) · 255)` with ties to even, f32 arithmetic.
pub fn unit_to_u8_round(x: f32) -> u8 {
    let x = if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
    (x * 255.0).round_ties_even() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_input_layout_and_values() {
        let img = RgbImage::from_raw(2, 1, vec![0, 255, 51, 102, 204, 255]).unwrap();
        let t = to_model_input(&img);
        // Planes: R = [0, 102], G = [255, 204], B = [51, 255]; x/255·2−1.
        let want = [-1.0, -0.2, 1.0, 0.6, -0.6, 1.0];
        for (g, w) in t.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{t:?}");
        }
    }

    #[test]
    fn unit_round_trip_is_exact_for_all_levels() {
        // v/255 then round(x·255) must return v for every 8-bit level.
        for v in 0..=255u8 {
            assert_eq!(unit_to_u8_round(f32::from(v) / 255.0), v);
        }
    }

    #[test]
    fn rounding_ties_to_even_and_clamps() {
        // (k + 0.5)/255 · 255 is exactly k + 0.5 in f32; numpy rounds these to even:
        // 0.5→0, 1.5→2, 2.5→2, 4.5→4, 9.5→10 (checked with numpy float32).
        for (k, want) in [(0.5f32, 0u8), (1.5, 2), (2.5, 2), (4.5, 4), (9.5, 10)] {
            assert_eq!(unit_to_u8_round(k / 255.0), want, "{k}");
        }
        assert_eq!(unit_to_u8_round(-0.3), 0);
        assert_eq!(unit_to_u8_round(1.7), 255);
        assert_eq!(unit_to_u8_round(f32::NAN), 0);
    }

    #[test]
    fn from_unit_layout() {
        let chw = [0.0, 1.0, 0.5, 0.25, 1.0, 0.0];
        let img = from_unit_f32(&chw, 2, 1);
        assert_eq!(img.as_raw(), &vec![0, 128, 255, 255, 64, 0]);
    }
}
