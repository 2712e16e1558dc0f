//! Degradations that make training LR inputs from HR patches, in the spirit of Real-ESRGAN's first
//! order (blur → downscale → noise → JPEG) but mild, and with a share of plain bicubic downscales
//! (the usual benchmark setting). The model sees the LR bicubically upsampled back to the HR size, as
//! the pipeline feeds it.

use image::{ImageBuffer, RgbImage};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::imaging::resize_rgb;

#[derive(Clone, Debug, PartialEq)]
pub struct Degradation {
    /// Gaussian blur σ in HR pixels before downscaling (0 = none).
    pub blur_sigma: f32,
    /// Additive Gaussian noise σ in 8-bit levels (0 = none).
    pub noise_sigma: f32,
    /// Noise shared by the three channels (luma noise) instead of per channel.
    pub gray_noise: bool,
    /// JPEG quality (None = no compression).
    pub jpeg_quality: Option<u8>,
}

impl Degradation {
    pub const NONE: Degradation = Degradation {
        blur_sigma: 0.0,
        noise_sigma: 0.0,
        gray_noise: false,
        jpeg_quality: None,
    };

    /// 40 % plain bicubic; otherwise each of blur, noise and JPEG with probability ½, mild.
    pub fn random(rng: &mut impl Rng) -> Self {
        if rng.random_bool(0.4) {
            return Self::NONE;
        }
        Self {
            blur_sigma: if rng.random_bool(0.5) {
                rng.random_range(0.3..1.5)
            } else {
                0.0
            },
            noise_sigma: if rng.random_bool(0.5) {
                rng.random_range(1.0..8.0)
            } else {
                0.0
            },
            gray_noise: rng.random_bool(0.4),
            jpeg_quality: if rng.random_bool(0.5) {
                Some(rng.random_range(50..96))
            } else {
                None
            },
        }
    }

    /// A strong version for the negative (low-quality) class: heavier blur, noise and compression.
    pub fn strong(rng: &mut impl Rng) -> Self {
        Self {
            blur_sigma: rng.random_range(1.0..3.0),
            noise_sigma: if rng.random_bool(0.5) {
                rng.random_range(2.0..12.0)
            } else {
                0.0
            },
            gray_noise: rng.random_bool(0.4),
            jpeg_quality: if rng.random_bool(0.7) {
                Some(rng.random_range(20..70))
            } else {
                None
            },
        }
    }
}

fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let r = (3.0 * sigma).ceil().max(1.0) as i32;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f32 = k.iter().sum();
    k.into_iter().map(|v| v / s).collect()
}

/// Separable Gaussian blur with clamped borders.
pub fn blur(img: &RgbImage, sigma: f32) -> RgbImage {
    if sigma <= 0.0 {
        return img.clone();
    }
    let k = gaussian_kernel(sigma);
    let r = (k.len() / 2) as i64;
    let (w, h) = (img.width() as i64, img.height() as i64);
    let src: Vec<f32> = img.as_raw().iter().map(|&v| v as f32).collect();
    let mut tmp = vec![0f32; src.len()];
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let mut acc = 0.0;
                for (i, kv) in k.iter().enumerate() {
                    let xx = (x + i as i64 - r).clamp(0, w - 1);
                    acc += kv * src[((y * w + xx) * 3 + c) as usize];
                }
                tmp[((y * w + x) * 3 + c) as usize] = acc;
            }
        }
    }
    let mut out = vec![0u8; src.len()];
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let mut acc = 0.0;
                for (i, kv) in k.iter().enumerate() {
                    let yy = (y + i as i64 - r).clamp(0, h - 1);
                    acc += kv * tmp[((yy * w + x) * 3 + c) as usize];
                }
                out[((y * w + x) * 3 + c) as usize] = acc.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    ImageBuffer::from_raw(img.width(), img.height(), out).unwrap_or_else(|| img.clone())
}

pub fn add_noise(img: &RgbImage, sigma: f32, gray: bool, rng: &mut impl Rng) -> RgbImage {
    if sigma <= 0.0 {
        return img.clone();
    }
    let mut out = img.clone();
    for px in out.pixels_mut() {
        let shared: f32 = StandardNormal.sample(rng);
        for c in 0..3 {
            let n: f32 = if gray {
                shared
            } else {
                StandardNormal.sample(rng)
            };
            px[c] = (px[c] as f32 + sigma * n).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// Compresses and decodes with the image crate's JPEG codec.
pub fn jpeg(img: &RgbImage, quality: u8) -> RgbImage {
    let mut buf = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality);
    if img.write_with_encoder(enc).is_err() {
        return img.clone();
    }
    match image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg) {
        Ok(d) => d.to_rgb8(),
        Err(_) => img.clone(),
    }
}

/// The degraded LR image (`1/scale` of the HR size).
pub fn degrade(hr: &RgbImage, scale: u32, d: &Degradation, rng: &mut impl Rng) -> RgbImage {
    let blurred = blur(hr, d.blur_sigma);
    let lr = resize_rgb(&blurred, hr.width() / scale, hr.height() / scale);
    let lr = add_noise(&lr, d.noise_sigma, d.gray_noise, rng);
    match d.jpeg_quality {
        Some(q) => jpeg(&lr, q),
        None => lr,
    }
}

/// What the model's LR encoder sees: the degraded LR upsampled (Pillow bicubic) back to the HR size.
pub fn model_input(hr: &RgbImage, scale: u32, d: &Degradation, rng: &mut impl Rng) -> RgbImage {
    let lr = degrade(hr, scale, d, rng);
    resize_rgb(&lr, hr.width(), hr.height())
}

/// A low-quality version of the HR image at the HR size (the target of the negative class).
pub fn low_quality(hr: &RgbImage, rng: &mut impl Rng) -> RgbImage {
    let d = Degradation::strong(rng);
    let scale = if rng.random_bool(0.5) { 2 } else { 4 };
    model_input(hr, scale, &d, rng)
}

/// `(3, H, W)` floats in [-1, 1], row-major, channel-first.
pub fn to_chw(img: &RgbImage) -> Vec<f32> {
    let n = (img.width() * img.height()) as usize;
    let mut out = vec![0f32; 3 * n];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * n + i] = px[c] as f32 / 127.5 - 1.0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;
    use rand::SeedableRng;

    fn test_image() -> RgbImage {
        RgbImage::from_fn(64, 48, |x, y| {
            Rgb([(x * 4) as u8, (y * 5) as u8, ((x * y) % 256) as u8])
        })
    }

    #[test]
    fn sizes_and_ranges_are_kept() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let hr = test_image();
        for _ in 0..6 {
            let d = Degradation::strong(&mut rng);
            let lr = degrade(&hr, 4, &d, &mut rng);
            assert_eq!(lr.dimensions(), (16, 12));
            let up = model_input(&hr, 4, &d, &mut rng);
            assert_eq!(up.dimensions(), (64, 48));
            let v = to_chw(&up);
            assert!(v.iter().all(|x| (-1.0..=1.0).contains(x)));
        }
    }

    #[test]
    fn blur_keeps_constant_images_and_mean() {
        let flat = RgbImage::from_pixel(9, 7, Rgb([10, 200, 77]));
        assert_eq!(blur(&flat, 1.3), flat);
        // A symmetric kernel spreads a centred impulse symmetrically and keeps its energy.
        let mut dot = RgbImage::from_pixel(21, 21, Rgb([0, 0, 0]));
        dot.put_pixel(10, 10, Rgb([255, 255, 255]));
        let b = blur(&dot, 1.0);
        assert_eq!(b.get_pixel(9, 10), b.get_pixel(11, 10));
        assert_eq!(b.get_pixel(10, 9), b.get_pixel(10, 11));
        let total: u32 = b.pixels().map(|p| p[0] as u32).sum();
        assert!((total as i32 - 255).abs() <= 12, "{total}");
    }

    #[test]
    fn noise_has_the_requested_spread_and_jpeg_stays_close() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let grey = RgbImage::from_pixel(64, 64, Rgb([128, 128, 128]));
        let n = add_noise(&grey, 5.0, false, &mut rng);
        let var: f64 = n
            .as_raw()
            .iter()
            .map(|&v| (v as f64 - 128.0).powi(2))
            .sum::<f64>()
            / n.as_raw().len() as f64;
        assert!((var.sqrt() - 5.0).abs() < 0.3, "{}", var.sqrt());
        let img = RgbImage::from_fn(64, 48, |x, y| {
            Rgb([(x * 4) as u8, (y * 5) as u8, ((x + y) * 2) as u8])
        });
        let j = jpeg(&img, 90);
        let mse: f64 = img
            .as_raw()
            .iter()
            .zip(j.as_raw())
            .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
            .sum::<f64>()
            / img.as_raw().len() as f64;
        assert!(mse > 0.0 && mse < 30.0, "{mse}");
    }
}
