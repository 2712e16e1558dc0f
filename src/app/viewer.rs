//! Zoom and pan shared by every pane, and drawing pictures into a pane.
//!
//! All panes show the same "frame": the output image's pixel grid. The input is stretched over
//! it (so it lines up with the result), previews too. Zoom is in screen pixels per frame pixel,
//! so 100 % means one output pixel on one screen pixel.

use egui::{Color32, Painter, Pos2, Rect, Response, Ui, Vec2, vec2};

use super::textures::{Checker, LiveTexture, TiledTexture};

pub const MIN_ZOOM: f32 = 0.01;
pub const MAX_ZOOM: f32 = 64.0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    /// Screen pixels per frame pixel.
    pub zoom: f32,
    /// The frame point at the centre of each pane, in frame pixels.
    pub center: Vec2,
    /// Keep fitting the frame into the pane (until the person zooms or pans).
    pub fit: bool,
}

impl Default for View {
    fn default() -> Self {
        Self {
            zoom: 1.0,
            center: Vec2::ZERO,
            fit: true,
        }
    }
}

impl View {
    /// Points per frame pixel.
    fn scale(&self, pixels_per_point: f32) -> f32 {
        self.zoom / pixels_per_point
    }

    /// Fits `frame` into `pane` if fitting is on.
    pub fn update_fit(&mut self, pane: Rect, frame: Vec2, pixels_per_point: f32) {
        if self.fit && frame.x > 0.0 && frame.y > 0.0 {
            let s = (pane.width() / frame.x).min(pane.height() / frame.y) * 0.98;
            self.zoom = (s * pixels_per_point).clamp(MIN_ZOOM, MAX_ZOOM);
            self.center = frame / 2.0;
        }
    }

    /// Where the frame lands in `pane`, in screen points.
    pub fn image_rect(&self, pane: Rect, frame: Vec2, pixels_per_point: f32) -> Rect {
        let s = self.scale(pixels_per_point);
        let min = pane.center() - self.center * s;
        Rect::from_min_size(min, frame * s)
    }

    /// The frame point under a screen position.
    pub fn frame_point(&self, pane: Rect, screen: Pos2, pixels_per_point: f32) -> Vec2 {
        self.center + (screen - pane.center()) / self.scale(pixels_per_point)
    }

    /// Sets the zoom keeping the frame point under `anchor` (screen) where it is.
    pub fn zoom_about(&mut self, pane: Rect, anchor: Pos2, zoom: f32, pixels_per_point: f32) {
        let p = self.frame_point(pane, anchor, pixels_per_point);
        self.zoom = zoom.clamp(MIN_ZOOM, MAX_ZOOM);
        self.center = p - (anchor - pane.center()) / self.scale(pixels_per_point);
        self.fit = false;
    }

    pub fn pan(&mut self, delta_points: Vec2, pixels_per_point: f32) {
        self.center -= delta_points / self.scale(pixels_per_point);
        self.fit = false;
    }

    pub fn fit(&mut self) {
        self.fit = true;
    }

    /// Mouse interaction on a pane: drag pans, scroll zooms about the cursor, double-click fits.
    pub fn interact(&mut self, ui: &Ui, response: &Response, pane: Rect) {
        let ppp = ui.ctx().pixels_per_point();
        if response.double_clicked() {
            self.fit();
            return;
        }
        if response.dragged() {
            self.pan(response.drag_delta(), ppp);
        }
        if let Some(pointer) = response.hover_pos() {
            let (scroll, pinch) = ui.input(|i| (i.smooth_scroll_delta, i.zoom_delta()));
            let mut factor = pinch;
            if scroll.y != 0.0 {
                factor *= (scroll.y * 0.002).exp();
            }
            if factor != 1.0 {
                self.zoom_about(pane, pointer, self.zoom * factor, ppp);
            }
        }
    }
}

/// One thing drawn into a pane, stretched over the frame.
pub enum Layer<'a> {
    Full(&'a TiledTexture),
    Preview(&'a LiveTexture),
}

impl Layer<'_> {
    fn has_alpha(&self) -> bool {
        match self {
            Layer::Full(t) => t.has_alpha,
            Layer::Preview(_) => false,
        }
    }

    fn paint(&self, painter: &Painter, rect: Rect, tint: Color32) {
        match self {
            Layer::Full(t) => t.paint(painter, rect, tint),
            Layer::Preview(t) => t.paint(painter, rect, tint),
        }
    }
}

/// Draws layers (first at the bottom) over the frame inside `clip`; a dimmed first layer is
/// the input showing through where a preview has no tiles yet.
pub fn paint_layers(
    painter: &Painter,
    checker: &Checker,
    image_rect: Rect,
    layers: &[(Layer<'_>, Color32)],
) {
    if layers.iter().any(|(l, _)| l.has_alpha()) {
        checker.paint(painter, image_rect);
    }
    for (layer, tint) in layers {
        layer.paint(painter, image_rect, *tint);
    }
}

/// A label in a pane's corner, readable on any image.
pub fn corner_label(painter: &Painter, pane: Rect, text: &str, right: bool) {
    let font = egui::FontId::proportional(13.0);
    let galley = painter.layout_no_wrap(text.to_owned(), font, Color32::WHITE);
    let pad = vec2(6.0, 3.0);
    let size = galley.size() + pad * 2.0;
    let min = if right {
        Pos2::new(pane.max.x - size.x - 6.0, pane.min.y + 6.0)
    } else {
        pane.min + vec2(6.0, 6.0)
    };
    let bg = Rect::from_min_size(min, size);
    painter.rect_filled(bg, 4.0, Color32::from_black_alpha(170));
    painter.galley(min + pad, galley, Color32::WHITE);
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui::pos2;

    #[test]
    fn zooming_about_a_point_keeps_that_point_under_the_cursor() {
        let pane = Rect::from_min_size(pos2(10.0, 20.0), vec2(400.0, 300.0));
        let mut v = View {
            zoom: 1.0,
            center: vec2(100.0, 80.0),
            fit: false,
        };
        let anchor = pos2(300.0, 60.0);
        let before = v.frame_point(pane, anchor, 2.0);
        v.zoom_about(pane, anchor, 3.5, 2.0);
        let after = v.frame_point(pane, anchor, 2.0);
        assert!((before - after).length() < 1e-3, "{before:?} vs {after:?}");
    }

    #[test]
    fn fit_shows_the_whole_frame_centred() {
        let pane = Rect::from_min_size(pos2(0.0, 0.0), vec2(400.0, 200.0));
        let mut v = View::default();
        v.update_fit(pane, vec2(1000.0, 1000.0), 1.0);
        let r = v.image_rect(pane, vec2(1000.0, 1000.0), 1.0);
        assert!(pane.expand(0.01).contains_rect(r));
        assert!((r.center() - pane.center()).length() < 1e-3);
        assert!((r.height() - 196.0).abs() < 1e-3);
    }

    #[test]
    fn hundred_percent_is_one_frame_pixel_per_screen_pixel() {
        let pane = Rect::from_min_size(pos2(0.0, 0.0), vec2(400.0, 200.0));
        let v = View {
            zoom: 1.0,
            center: vec2(50.0, 50.0),
            fit: false,
        };
        // At 2 physical pixels per point, 100 frame pixels span 50 points.
        assert_eq!(v.image_rect(pane, vec2(100.0, 100.0), 2.0).width(), 50.0);
    }
}
