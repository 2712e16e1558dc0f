//! Composes per-tile previews into whole-image pictures, one per scale, at a reduced size so that
//! a flood of previews stays cheap to send and to upload.

use std::sync::Arc;

use image::{RgbaImage, imageops};

use super::messages::Picture;
use crate::pipeline::events::PreviewImage;

/// Longest side of a composed preview in pixels.
pub const PREVIEW_MAX_SIDE: u32 = 1024;

/// A tile's place in the output image, in output pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileRect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// Where every tile of a job lands in the output.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    pub tiles: Vec<TileRect>,
    /// What the tiles not generated show: the earlier result when a region is re-sampled.
    pub background: Option<Picture>,
}

impl Layout {
    /// One tile covering the whole output.
    pub fn single(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            tiles: vec![TileRect {
                x: 0,
                y: 0,
                w: width,
                h: height,
            }],
            background: None,
        }
    }
}

/// The composed previews of one job: `per_scale[k]` holds every tile's scale-k preview so far,
/// `best` holds each tile's finest preview (what a cancelled job leaves behind).
pub struct Canvases {
    layout: Layout,
    factor: f32,
    per_scale: Vec<Option<RgbaImage>>,
    best: Option<RgbaImage>,
}

impl Canvases {
    pub fn new(layout: Layout, num_scales: usize) -> Self {
        let long = layout.width.max(layout.height).max(1);
        let factor = (PREVIEW_MAX_SIDE as f32 / long as f32).min(1.0);
        let mut c = Self {
            layout,
            factor,
            per_scale: Vec::new(),
            best: None,
        };
        let (w, h) = c.size();
        let start = c
            .layout
            .background
            .as_ref()
            .map(|b| imageops::resize(b.as_ref(), w, h, imageops::FilterType::Triangle));
        c.per_scale = (0..num_scales).map(|_| start.clone()).collect();
        c.best = start;
        c
    }

    fn size(&self) -> (u32, u32) {
        let w = ((self.layout.width as f32 * self.factor).round() as u32).max(1);
        let h = ((self.layout.height as f32 * self.factor).round() as u32).max(1);
        (w, h)
    }

    /// Pastes `preview` (the tile's whole area at some resolution) and returns the updated
    /// picture of this scale.
    pub fn paste(&mut self, tile: usize, scale: usize, preview: &PreviewImage) -> Option<Picture> {
        let rect = *self.layout.tiles.get(tile)?;
        if preview.width == 0 || preview.height == 0 {
            return None;
        }
        let src = RgbaImage::from_fn(preview.width as u32, preview.height as u32, |x, y| {
            let i = (y as usize * preview.width + x as usize) * 3;
            let p = preview.rgb.get(i..i + 3).unwrap_or(&[0, 0, 0]);
            image::Rgba([p[0], p[1], p[2], 255])
        });
        let x0 = (rect.x as f32 * self.factor).round() as u32;
        let y0 = (rect.y as f32 * self.factor).round() as u32;
        let x1 = ((rect.x + rect.w) as f32 * self.factor).round() as u32;
        let y1 = ((rect.y + rect.h) as f32 * self.factor).round() as u32;
        let (tw, th) = ((x1 - x0).max(1), (y1 - y0).max(1));
        // Coarse scales are a few tokens wide: nearest keeps them visibly blocky, which is the
        // point of watching the scales arrive.
        let filter = if src.width() < tw {
            imageops::FilterType::Nearest
        } else {
            imageops::FilterType::Triangle
        };
        let scaled = if (src.width(), src.height()) == (tw, th) {
            src
        } else {
            imageops::resize(&src, tw, th, filter)
        };
        let (w, h) = self.size();
        let slot = self.per_scale.get_mut(scale)?;
        let canvas = slot.get_or_insert_with(|| RgbaImage::new(w, h));
        imageops::replace(canvas, &scaled, x0 as i64, y0 as i64);
        let picture = Arc::new(canvas.clone());
        let best = self.best.get_or_insert_with(|| RgbaImage::new(w, h));
        imageops::replace(best, &scaled, x0 as i64, y0 as i64);
        Some(picture)
    }

    /// Each tile at the finest scale it reached.
    pub fn best(&self) -> Option<Picture> {
        self.best.as_ref().map(|b| Arc::new(b.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: usize, h: usize, rgb: [u8; 3]) -> PreviewImage {
        PreviewImage {
            width: w,
            height: h,
            rgb: rgb.iter().copied().cycle().take(w * h * 3).collect(),
        }
    }

    #[test]
    fn tiles_land_in_their_rectangles_and_unfinished_tiles_stay_transparent() {
        let layout = Layout {
            width: 200,
            height: 100,
            tiles: vec![
                TileRect {
                    x: 0,
                    y: 0,
                    w: 100,
                    h: 100,
                },
                TileRect {
                    x: 100,
                    y: 0,
                    w: 100,
                    h: 100,
                },
            ],
            background: None,
        };
        let mut c = Canvases::new(layout.clone(), 10);
        let pic = c.paste(1, 3, &solid(2, 2, [10, 20, 30])).unwrap();
        assert_eq!((pic.width(), pic.height()), (200, 100));
        assert_eq!(pic.get_pixel(150, 50).0, [10, 20, 30, 255]);
        assert_eq!(pic.get_pixel(50, 50).0, [0, 0, 0, 0]);
        // A finer scale of the same tile replaces it in `best` but not in scale 3's picture.
        c.paste(1, 4, &solid(4, 4, [1, 2, 3]));
        assert_eq!(c.best().unwrap().get_pixel(199, 99).0, [1, 2, 3, 255]);

        // Over a background (re-sampling a region), the other tiles show it from the start.
        let base = RgbaImage::from_pixel(200, 100, image::Rgba([7, 8, 9, 255]));
        let mut c = Canvases::new(
            Layout {
                background: Some(Arc::new(base)),
                ..layout
            },
            10,
        );
        assert_eq!(c.best().unwrap().get_pixel(50, 50).0, [7, 8, 9, 255]);
        let pic = c.paste(1, 0, &solid(2, 2, [10, 20, 30])).unwrap();
        assert_eq!(pic.get_pixel(50, 50).0, [7, 8, 9, 255]);
        assert_eq!(pic.get_pixel(150, 50).0, [10, 20, 30, 255]);
    }

    #[test]
    fn large_outputs_are_reduced_to_the_preview_side() {
        let mut c = Canvases::new(Layout::single(4096, 2048), 10);
        let pic = c.paste(0, 0, &solid(1, 1, [5, 5, 5])).unwrap();
        assert_eq!(
            (pic.width(), pic.height()),
            (PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE / 2)
        );
        assert!(c.paste(7, 0, &solid(1, 1, [5, 5, 5])).is_none());
    }
}
