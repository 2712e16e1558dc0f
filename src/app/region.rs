//! Choosing a region of the result to re-sample: Shift+drag on any pane marks a rectangle of the
//! output image; "Re-sample region" then generates only the tiles under it again, with the current
//! seed and guidance, and blends them into the shown result (desktop-ux.md, "what none of them
//! has" #6).

use egui::{Color32, Painter, Rect, Response, Stroke, StrokeKind, Ui, Vec2};

use super::settings::Settings;
use super::state::State;

/// A rectangle of the output image, corners as dragged, in shares of its width and height: it stays
/// on the same part of the picture when the scale (and so the output size) changes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Region {
    pub a: Vec2,
    pub b: Vec2,
}

impl Region {
    /// `(x, y, w, h)` in whole output pixels inside a `frame` of that size; `None` when nothing
    /// of it lies inside.
    pub fn pixels(&self, frame: Vec2) -> Option<(u32, u32, u32, u32)> {
        let lo = (self.a.min(self.b) * frame).max(Vec2::ZERO);
        let hi = (self.a.max(self.b) * frame).min(frame);
        let (x0, y0) = (lo.x.floor() as u32, lo.y.floor() as u32);
        let (x1, y1) = (hi.x.ceil() as u32, hi.y.ceil() as u32);
        (x1 > x0 && y1 > y0).then_some((x0, y0, x1 - x0, y1 - y0))
    }
}

/// The marked region in output pixels, when it can be re-sampled: it covers part of the image and
/// the shown result is finished, at the chosen scale, with its tiles' latents.
pub fn ready(state: &State, settings: &Settings) -> Option<(u32, u32, u32, u32)> {
    let base = state.selected_sample()?;
    let usable = !base.partial
        && base.options.scale == settings.scale
        && base.tokens.as_ref().is_some_and(|t| !t.latents.is_empty());
    let frame = state.frame_size(settings.scale);
    state
        .region
        .and_then(|r| r.pixels(frame))
        .filter(|_| usable)
}

/// Shift+drag on a pane marks the region; returns whether the pointer is selecting (and so must
/// not pan the view).
pub fn interact(ui: &Ui, response: &Response, pane: Rect, frame: Vec2, state: &mut State) -> bool {
    let ppp = ui.ctx().pixels_per_point();
    if frame.x <= 0.0 || frame.y <= 0.0 {
        return false;
    }
    let shift = ui.input(|i| i.modifiers.shift);
    if response.clicked() && shift {
        state.region = None;
        return true;
    }
    // The drag is recognised once the pointer has moved: it started where the button went down.
    let origin = ui.input(|i| i.pointer.press_origin());
    if response.drag_started()
        && shift
        && let Some(p) = origin.or(response.interact_pointer_pos())
    {
        let at = state.view.frame_point(pane, p, ppp) / frame;
        state.region = Some(Region { a: at, b: at });
        state.selecting = true;
    }
    if !state.selecting {
        return false;
    }
    if response.dragged()
        && let (Some(p), Some(r)) = (response.interact_pointer_pos(), &mut state.region)
    {
        r.b = state.view.frame_point(pane, p, ppp) / frame;
    }
    if response.drag_stopped() {
        state.selecting = false;
        // A Shift+click (no area) clears the region.
        if state
            .region
            .is_some_and(|r| ((r.a - r.b) * frame).abs().min_elem() < 1.0)
        {
            state.region = None;
        }
    }
    true
}

/// Outlines the region over a pane whose output image is drawn at `img`.
pub fn paint(painter: &Painter, img: Rect, region: &Region) {
    let s = img.size();
    let r = Rect::from_two_pos(img.min + region.a * s, img.min + region.b * s);
    // Dark under light: visible on any picture.
    painter.rect_stroke(r, 0.0, Stroke::new(3.0, Color32::BLACK), StrokeKind::Middle);
    painter.rect_stroke(
        r,
        0.0,
        Stroke::new(1.5, Color32::from_rgb(255, 200, 40)),
        StrokeKind::Middle,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui::vec2;

    #[test]
    fn pixels_are_the_covered_whole_pixels_inside_the_frame() {
        let frame = vec2(100.0, 50.0);
        // Corners at (30.4, 40.2) and (10.6, 5.0) output pixels.
        let r = Region {
            a: vec2(0.304, 0.804),
            b: vec2(0.106, 0.1),
        };
        assert_eq!(r.pixels(frame), Some((10, 5, 21, 36)));
        // The same part of the picture at twice the size.
        assert_eq!(r.pixels(frame * 2.0), Some((21, 10, 40, 71)));
        // Dragged past the edges: clamped to the image.
        let r = Region {
            a: vec2(-0.2, -0.1),
            b: vec2(1.3, 1.4),
        };
        assert_eq!(r.pixels(frame), Some((0, 0, 100, 50)));
        // Wholly outside, or empty.
        let r = Region {
            a: vec2(1.2, 0.2),
            b: vec2(1.4, 0.4),
        };
        assert_eq!(r.pixels(frame), None);
        let r = Region {
            a: vec2(0.2, 0.2),
            b: vec2(0.2, 0.6),
        };
        assert_eq!(r.pixels(frame), None);
    }
}
