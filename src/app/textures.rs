//! Images on the GPU as a grid of textures no larger than the adapter allows (8192 on software
//! adapters), plus a reduced copy for zoomed-out views so that minification does not shimmer.

use egui::{
    Color32, ColorImage, Context, Painter, Pos2, Rect, TextureFilter, TextureHandle,
    TextureOptions, TextureWrapMode, pos2, vec2,
};
use image::RgbaImage;

/// Past 100 % pixels stay sharp squares; below it they are averaged.
pub const IMAGE_OPTIONS: TextureOptions = TextureOptions {
    magnification: TextureFilter::Nearest,
    minification: TextureFilter::Linear,
    wrap_mode: TextureWrapMode::ClampToEdge,
    mipmap_mode: None,
};

/// Longest side of the reduced copy.
const OVERVIEW_SIDE: u32 = 2048;

struct Piece {
    /// Where this piece sits in the image, in image pixels.
    rect: Rect,
    texture: TextureHandle,
}

struct Level {
    width: u32,
    height: u32,
    pieces: Vec<Piece>,
}

impl Level {
    fn upload(ctx: &Context, name: &str, image: &RgbaImage, max_side: usize) -> Self {
        let (w, h) = (image.width() as usize, image.height() as usize);
        let side = max_side.max(64);
        let mut pieces = Vec::new();
        for y0 in (0..h.max(1)).step_by(side) {
            for x0 in (0..w.max(1)).step_by(side) {
                let (pw, ph) = (side.min(w - x0).max(1), side.min(h - y0).max(1));
                let mut pixels = Vec::with_capacity(pw * ph * 4);
                for y in y0..(y0 + ph).min(h) {
                    let row = &image.as_raw()[(y * w + x0) * 4..(y * w + x0 + pw) * 4];
                    pixels.extend_from_slice(row);
                }
                pixels.resize(pw * ph * 4, 0);
                let color = ColorImage::from_rgba_unmultiplied([pw, ph], &pixels);
                let texture = ctx.load_texture(format!("{name}@{x0},{y0}"), color, IMAGE_OPTIONS);
                pieces.push(Piece {
                    rect: Rect::from_min_size(
                        pos2(x0 as f32, y0 as f32),
                        vec2(pw as f32, ph as f32),
                    ),
                    texture,
                });
            }
        }
        Self {
            width: image.width(),
            height: image.height(),
            pieces,
        }
    }

    /// Draws the level stretched over `target` (screen points), clipped by the painter.
    fn paint(&self, painter: &Painter, target: Rect, tint: Color32) {
        let sx = target.width() / self.width.max(1) as f32;
        let sy = target.height() / self.height.max(1) as f32;
        let clip = painter.clip_rect();
        for piece in &self.pieces {
            let r = Rect::from_min_max(
                target.min + vec2(piece.rect.min.x * sx, piece.rect.min.y * sy),
                target.min + vec2(piece.rect.max.x * sx, piece.rect.max.y * sy),
            );
            if !r.intersects(clip) {
                continue;
            }
            let uv = Rect::from_min_max(Pos2::ZERO, pos2(1.0, 1.0));
            painter.image(piece.texture.id(), r, uv, tint);
        }
    }
}

/// An image uploaded for display, whatever its size.
pub struct TiledTexture {
    full: Level,
    overview: Option<Level>,
    pub has_alpha: bool,
}

impl TiledTexture {
    pub fn new(ctx: &Context, name: &str, image: &RgbaImage) -> Self {
        let max_side = ctx.input(|i| i.max_texture_side).min(8192);
        let full = Level::upload(ctx, name, image, max_side);
        let long = image.width().max(image.height());
        let overview = (long > OVERVIEW_SIDE).then(|| {
            let f = OVERVIEW_SIDE as f32 / long as f32;
            let (w, h) = (
                ((image.width() as f32 * f).round() as u32).max(1),
                ((image.height() as f32 * f).round() as u32).max(1),
            );
            let small = image::imageops::resize(image, w, h, image::imageops::FilterType::Triangle);
            Level::upload(ctx, &format!("{name}/overview"), &small, max_side)
        });
        let has_alpha = image.pixels().any(|p| p.0[3] < 255);
        Self {
            full,
            overview,
            has_alpha,
        }
    }

    pub fn size(&self) -> [u32; 2] {
        [self.full.width, self.full.height]
    }

    /// Number of GPU textures holding the full-size image.
    pub fn num_pieces(&self) -> usize {
        self.full.pieces.len()
    }

    /// Draws the image stretched over `target`; the reduced copy when the image is shown at
    /// less than half its size.
    pub fn paint(&self, painter: &Painter, target: Rect, tint: Color32) {
        let pixels_per_point = painter.pixels_per_point();
        let shown = target.width() * pixels_per_point / self.full.width.max(1) as f32;
        match &self.overview {
            Some(o) if shown * (self.full.width as f32 / o.width as f32) <= 1.0 => {
                o.paint(painter, target, tint)
            }
            _ => self.full.paint(painter, target, tint),
        }
    }
}

/// A small grey checkerboard, repeated behind transparent images.
pub struct Checker {
    texture: TextureHandle,
}

impl Checker {
    const CELL_POINTS: f32 = 8.0;

    pub fn new(ctx: &Context) -> Self {
        let (a, b) = (Color32::from_gray(0x99), Color32::from_gray(0x66));
        let image = ColorImage::new([2, 2], vec![a, b, b, a]);
        let texture = ctx.load_texture(
            "checker",
            image,
            TextureOptions {
                magnification: TextureFilter::Nearest,
                minification: TextureFilter::Nearest,
                wrap_mode: TextureWrapMode::Repeat,
                mipmap_mode: None,
            },
        );
        Self { texture }
    }

    pub fn paint(&self, painter: &Painter, rect: Rect) {
        let r = rect.intersect(painter.clip_rect());
        if r.width() <= 0.0 || r.height() <= 0.0 {
            return;
        }
        // Anchored to the screen, not to the image, so that panning does not make it crawl.
        let cell = 2.0 * Self::CELL_POINTS;
        let uv = Rect::from_min_max(
            pos2(r.min.x / cell, r.min.y / cell),
            pos2(r.max.x / cell, r.max.y / cell),
        );
        painter.image(self.texture.id(), r, uv, Color32::WHITE);
    }
}

/// A picture that is replaced often (live previews): one texture, updated in place.
pub struct LiveTexture {
    pub texture: TextureHandle,
    pub size: [u32; 2],
}

impl LiveTexture {
    pub fn new(ctx: &Context, name: &str, image: &RgbaImage) -> Self {
        Self {
            texture: ctx.load_texture(name, to_color_image(image), IMAGE_OPTIONS),
            size: [image.width(), image.height()],
        }
    }

    pub fn set(&mut self, image: &RgbaImage) {
        self.texture.set(to_color_image(image), IMAGE_OPTIONS);
        self.size = [image.width(), image.height()];
    }

    pub fn paint(&self, painter: &Painter, target: Rect, tint: Color32) {
        let uv = Rect::from_min_max(Pos2::ZERO, pos2(1.0, 1.0));
        painter.image(self.texture.id(), target, uv, tint);
    }
}

pub fn to_color_image(image: &RgbaImage) -> ColorImage {
    ColorImage::from_rgba_unmultiplied(
        [image.width() as usize, image.height() as usize],
        image.as_raw(),
    )
}
