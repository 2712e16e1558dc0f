//! Transparency: the model only sees RGB, so the alpha plane is upscaled on its own with Pillow
//! bicubic and recombined with the upscaled colour.
//!
//! Choice about colour under transparent pixels: files often hold arbitrary colour (black, or
//! leftovers of an edit) where alpha is 0. The model would carry that colour into the visible
//! edge pixels next to it (a dark or coloured halo once recombined). Instead of premultiplying,
//! [`bleed_transparent`] replaces the colour of fully transparent pixels by the colour of the
//! nearest visible pixels (a breadth-first dilation, averaging the visible neighbours of each
//! ring), before the model runs. Visible pixels (alpha > 0) are never changed, so for an opaque
//! image this is a no-op, and the colour of partially transparent pixels is kept as authored.

use super::error::{ImagingError, Result};
use super::pil_resize::resize_gray;
use image::{GrayImage, RgbImage, RgbaImage};

/// Splits RGBA into colour and alpha planes.
pub fn split_rgba(rgba: &RgbaImage) -> (RgbImage, GrayImage) {
    let (w, h) = rgba.dimensions();
    let mut rgb = Vec::with_capacity(rgba.as_raw().len() / 4 * 3);
    let mut alpha = Vec::with_capacity(rgba.as_raw().len() / 4);
    for p in rgba.as_raw().chunks_exact(4) {
        rgb.extend_from_slice(&p[..3]);
        alpha.push(p[3]);
    }
    (
        RgbImage::from_raw(w, h, rgb).unwrap_or_else(|| RgbImage::new(w, h)),
        GrayImage::from_raw(w, h, alpha).unwrap_or_else(|| GrayImage::new(w, h)),
    )
}

/// Joins colour and alpha planes of the same size.
pub fn combine(rgb: &RgbImage, alpha: &GrayImage) -> Result<RgbaImage> {
    if rgb.dimensions() != alpha.dimensions() {
        return Err(ImagingError::SizeMismatch {
            what: "alpha plane",
            got: alpha.dimensions(),
            expected: rgb.dimensions(),
        });
    }
    let data = rgb
        .as_raw()
        .chunks_exact(3)
        .zip(alpha.as_raw())
        .flat_map(|(p, &a)| [p[0], p[1], p[2], a])
        .collect();
    let (w, h) = rgb.dimensions();
    Ok(RgbaImage::from_raw(w, h, data).unwrap_or_else(|| RgbaImage::new(w, h)))
}

/// The alpha plane at the output size, Pillow BICUBIC (as the colour reference is resized).
pub fn upscale_alpha(alpha: &GrayImage, width: u32, height: u32) -> GrayImage {
    resize_gray(alpha, width, height)
}

/// Upscales `alpha` to the size of `upscaled_rgb` and joins them.
pub fn recombine(upscaled_rgb: &RgbImage, alpha: &GrayImage) -> RgbaImage {
    let a = upscale_alpha(alpha, upscaled_rgb.width(), upscaled_rgb.height());
    // Same size by construction.
    combine(upscaled_rgb, &a).unwrap_or_else(|_| RgbaImage::new(a.width(), a.height()))
}

/// Copy of `rgb` where every pixel with alpha 0 takes the mean colour of its already-known
/// 8-neighbours, ring by ring outward from the visible pixels. Pixels with alpha > 0 are
/// unchanged; if no pixel is visible the image is returned as is.
pub fn bleed_transparent(rgb: &RgbImage, alpha: &GrayImage) -> Result<RgbImage> {
    if rgb.dimensions() != alpha.dimensions() {
        return Err(ImagingError::SizeMismatch {
            what: "alpha plane",
            got: alpha.dimensions(),
            expected: rgb.dimensions(),
        });
    }
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let mut out = rgb.clone();
    let mut known: Vec<bool> = alpha.as_raw().iter().map(|&a| a > 0).collect();
    if !known.iter().any(|&k| k) {
        return Ok(out);
    }
    let neighbours = |i: usize| {
        let (x, y) = ((i % w) as isize, (i / w) as isize);
        (-1isize..=1)
            .flat_map(move |dy| (-1isize..=1).map(move |dx| (x + dx, y + dy)))
            .filter(move |&(nx, ny)| {
                (nx, ny) != (x, y) && nx >= 0 && ny >= 0 && (nx as usize) < w && (ny as usize) < h
            })
            .map(move |(nx, ny)| ny as usize * w + nx as usize)
    };
    let mut queued = known.clone();
    let mut frontier: Vec<usize> = (0..w * h)
        .filter(|&i| !known[i] && neighbours(i).any(|n| known[n]))
        .collect();
    for &i in &frontier {
        queued[i] = true;
    }
    let buf = out.as_mut();
    while !frontier.is_empty() {
        // Compute the whole ring from the previous rings only, then mark it known.
        let colours: Vec<[u8; 3]> = frontier
            .iter()
            .map(|&i| {
                let (mut sum, mut n) = ([0u32; 3], 0u32);
                for j in neighbours(i).filter(|&j| known[j]) {
                    for c in 0..3 {
                        sum[c] += u32::from(buf[3 * j + c]);
                    }
                    n += 1;
                }
                sum.map(|s| ((s + n / 2) / n.max(1)) as u8)
            })
            .collect();
        for (&i, col) in frontier.iter().zip(&colours) {
            buf[3 * i..3 * i + 3].copy_from_slice(col);
            known[i] = true;
        }
        let mut next = Vec::new();
        for &i in &frontier {
            for j in neighbours(i) {
                if !queued[j] {
                    queued[j] = true;
                    next.push(j);
                }
            }
        }
        frontier = next;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Luma, Rgb};

    #[test]
    fn split_and_combine_are_inverse() {
        let rgba = RgbaImage::from_fn(5, 3, |x, y| {
            image::Rgba([x as u8, y as u8, (x * y) as u8, (10 * x + y) as u8])
        });
        let (rgb, a) = split_rgba(&rgba);
        assert_eq!(rgb.get_pixel(4, 2).0, [4, 2, 8]);
        assert_eq!(a.get_pixel(4, 2).0, [42]);
        assert_eq!(combine(&rgb, &a).unwrap(), rgba);
        assert!(combine(&rgb, &GrayImage::new(4, 3)).is_err());
    }

    #[test]
    fn single_visible_pixel_floods_everything() {
        let mut rgb = RgbImage::from_pixel(6, 4, Rgb([0, 0, 0]));
        rgb.put_pixel(2, 1, Rgb([200, 100, 50]));
        let mut alpha = GrayImage::new(6, 4);
        alpha.put_pixel(2, 1, Luma([255]));
        let out = bleed_transparent(&rgb, &alpha).unwrap();
        assert!(out.pixels().all(|p| p.0 == [200, 100, 50]));
    }

    #[test]
    fn visible_pixels_are_untouched_and_rings_average() {
        // Row of 5: visible at both ends (colours 0 and 200), transparent between.
        let rgb = RgbImage::from_fn(5, 1, |x, _| match x {
            0 => Rgb([0, 0, 0]),
            4 => Rgb([200, 200, 200]),
            _ => Rgb([9, 9, 9]),
        });
        let alpha = GrayImage::from_fn(5, 1, |x, _| Luma([if x == 0 || x == 4 { 1 } else { 0 }]));
        let out = bleed_transparent(&rgb, &alpha).unwrap();
        // Ring 1: x=1 ← 0, x=3 ← 200. Ring 2: x=2 ← mean(0, 200) = 100.
        let got: Vec<u8> = out.pixels().map(|p| p.0[0]).collect();
        assert_eq!(got, vec![0, 0, 100, 200, 200]);
    }

    #[test]
    fn all_transparent_or_opaque_is_identity() {
        let rgb = RgbImage::from_fn(3, 3, |x, y| Rgb([x as u8, y as u8, 7]));
        assert_eq!(bleed_transparent(&rgb, &GrayImage::new(3, 3)).unwrap(), rgb);
        let opaque = GrayImage::from_pixel(3, 3, Luma([255]));
        assert_eq!(bleed_transparent(&rgb, &opaque).unwrap(), rgb);
    }

    #[test]
    fn recombine_resizes_alpha_like_pillow() {
        // A constant alpha stays constant under the normalised bicubic filter; a step edge
        // stays within [0, 255] and keeps its ends.
        let rgb = RgbImage::new(16, 8);
        let alpha = GrayImage::from_pixel(4, 2, Luma([77]));
        let out = recombine(&rgb, &alpha);
        assert_eq!(out.dimensions(), (16, 8));
        assert!(out.pixels().all(|p| p.0[3] == 77));
        let step = GrayImage::from_fn(8, 2, |x, _| Luma([if x < 4 { 0 } else { 255 }]));
        let a = upscale_alpha(&step, 32, 8);
        assert_eq!(a.get_pixel(0, 0).0[0], 0);
        assert_eq!(a.get_pixel(31, 0).0[0], 255);
    }
}
