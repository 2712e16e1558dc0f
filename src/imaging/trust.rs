//! The trust view: where a result departs from what the input alone says. Two maps, both in luma
//! levels (BT.601 studio range, as the metrics):
//!
//! * **invented** — `|Y(result) − Y(bicubic↑ input)|` per output pixel: the detail the model drew
//!   on top of a plain (Pillow-bicubic) enlargement of the input;
//! * **inconsistency** — `|Y(bicubic↓ result) − Y(input)|` per input pixel, shown over the output:
//!   where the result, shrunk back to the input's size, no longer matches the input (a faithful
//!   upscale stays near zero whatever detail it adds).

use image::{Rgb, RgbImage, RgbaImage};

use super::metrics::luma;
use super::pil_resize::resize_rgb;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TrustMap {
    /// The result against a bicubic enlargement of the input.
    #[default]
    Invented,
    /// The result shrunk back to the input's size against the input.
    Inconsistency,
}

impl TrustMap {
    pub const ALL: [TrustMap; 2] = [TrustMap::Invented, TrustMap::Inconsistency];

    pub fn label(self) -> &'static str {
        match self {
            TrustMap::Invented => "What was invented",
            TrustMap::Inconsistency => "Disagreement with the input",
        }
    }

    pub fn explain(self) -> &'static str {
        match self {
            TrustMap::Invented => {
                "|result − bicubic enlargement of the input| in luma: the detail the model drew"
            }
            TrustMap::Inconsistency => {
                "|result shrunk to the input's size − input| in luma: where the result \
                 contradicts the input"
            }
        }
    }

    /// The map's name in file names (`photo_trust-invented.png`).
    pub fn slug(self) -> &'static str {
        match self {
            TrustMap::Invented => "invented",
            TrustMap::Inconsistency => "inconsistency",
        }
    }

    /// The difference (luma levels) shown at full colour. On Set5 the detail real photos have over
    /// bicubic reaches 22–66 levels at its 99th percentile (the built-in model's invented detail
    /// 9–13); a faithful result's disagreement is a few levels.
    pub fn full_scale(self) -> f32 {
        match self {
            TrustMap::Invented => 24.0,
            TrustMap::Inconsistency => 12.0,
        }
    }
}

/// A map's values at the result's size, and what it shows at a glance.
#[derive(Clone, Debug, PartialEq)]
pub struct Trust {
    pub map: TrustMap,
    pub width: usize,
    pub height: usize,
    /// Per output pixel, row-major, luma levels (f32: a 64 MP result's map is 256 MB already).
    pub values: Vec<f32>,
    pub mean: f64,
    /// Share of output pixels at or above half the map's full scale.
    pub strong_share: f64,
}

/// Per pixel `|Y(a) − Y(b)|`, kept as f32 (no f64 planes of the whole image).
fn luma_diff(a: &RgbImage, b: &RgbImage) -> Vec<f32> {
    a.pixels()
        .zip(b.pixels())
        .map(|(x, y)| (luma(x) - luma(y)).abs() as f32)
        .collect()
}

/// What a map shows at a glance: its mean and its share of strong differences.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrustFigures {
    pub map: TrustMap,
    pub mean: f64,
    pub strong_share: f64,
}

impl std::fmt::Display for TrustFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mean {:.2} luma levels, {:.2} % of pixels ≥ {:.0}",
            self.mean,
            self.strong_share * 100.0,
            self.map.full_scale() / 2.0
        )
    }
}

impl Trust {
    pub fn figures(&self) -> TrustFigures {
        TrustFigures {
            map: self.map,
            mean: self.mean,
            strong_share: self.strong_share,
        }
    }
}

/// Computes `map` for a `result` made from `input` (any sizes; alpha is ignored).
pub fn trust(map: TrustMap, input: &RgbImage, result: &RgbImage) -> Trust {
    let (w, h) = (result.width() as usize, result.height() as usize);
    let values = match map {
        TrustMap::Invented => luma_diff(result, &resize_rgb(input, w as u32, h as u32)),
        TrustMap::Inconsistency => {
            let small = resize_rgb(result, input.width(), input.height());
            let d = luma_diff(&small, input);
            spread(&d, input.width() as usize, input.height() as usize, w, h)
        }
    };
    let n = values.len().max(1) as f64;
    let half = map.full_scale() / 2.0;
    Trust {
        map,
        width: w,
        height: h,
        mean: values.iter().map(|&v| v as f64).sum::<f64>() / n,
        strong_share: values.iter().filter(|&&v| v >= half).count() as f64 / n,
        values,
    }
}

/// Nearest-neighbour enlargement of the `sw × sh` plane `p` to `w × h` (each source pixel's
/// value over the output pixels whose centres fall in it).
fn spread(p: &[f32], sw: usize, sh: usize, w: usize, h: usize) -> Vec<f32> {
    let src = |o: usize, out: usize, inn: usize| ((o * 2 + 1) * inn / (out * 2)).min(inn - 1);
    let mut data = Vec::with_capacity(w * h);
    for y in 0..h {
        let row = src(y, h, sh) * sw;
        data.extend((0..w).map(|x| p[row + src(x, w, sw)]));
    }
    data
}

/// The heat colour of `t` in [0, 1]: dark blue through magenta and orange to pale yellow, its
/// lightness rising all the way so the map reads in greyscale too.
pub fn heat(t: f32) -> Rgb<u8> {
    const STOPS: [[f32; 3]; 5] = [
        [0.0, 0.0, 0.0],
        [40.0, 11.0, 84.0],
        [180.0, 54.0, 122.0],
        [251.0, 135.0, 40.0],
        [252.0, 255.0, 164.0],
    ];
    let t = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f32;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f32;
    Rgb(std::array::from_fn(|c| {
        (STOPS[i][c] + (STOPS[i + 1][c] - STOPS[i][c]) * f).round() as u8
    }))
}

/// The map drawn for the viewer: the result in dim grey, with the heat colour over it in
/// proportion to the difference (full colour at the map's full scale).
pub fn render(trust: &Trust, result: &RgbImage) -> RgbaImage {
    let full = trust.map.full_scale();
    let mut out = RgbaImage::new(result.width(), result.height());
    for ((px, dst), &v) in result.pixels().zip(out.pixels_mut()).zip(&trust.values) {
        let t = (v / full).min(1.0);
        let grey = ((luma(px) as f32 - 16.0) * (255.0 / 219.0) * 0.35).clamp(0.0, 255.0);
        let hot = heat(t).0;
        let a = (t * 1.5).min(1.0);
        let c: [u8; 3] = std::array::from_fn(|i| (grey + (hot[i] as f32 - grey) * a).round() as u8);
        *dst = image::Rgba([c[0], c[1], c[2], 255]);
    }
    out
}

#[cfg(test)]
#[path = "trust_tests.rs"]
mod tests;
