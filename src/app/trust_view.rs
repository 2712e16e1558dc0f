//! The trust view (T): the selected result replaced by a heat map of what the model invented or
//! of where it disagrees with the input (`imaging::trust`). Maps are computed off the UI thread
//! once per result and kind, and kept with the result.

use std::sync::Arc;

use image::buffer::ConvertBuffer;
use image::{RgbImage, RgbaImage};

use super::VarsrApp;
use super::state::Sample;
use super::tasks::Done;
use super::textures::TiledTexture;
use crate::imaging::trust::{TrustFigures, TrustMap, render, trust};
use crate::worker::Picture;

/// A computed map, ready to draw.
pub struct TrustOverlay {
    pub figures: TrustFigures,
    /// The map as drawn, for export.
    pub image: Picture,
    pub texture: TiledTexture,
}

impl TrustOverlay {
    /// What the pane's corner says about it.
    pub fn label(&self) -> String {
        format!(
            "Trust view · {} · {}",
            self.figures.map.label(),
            self.figures
        )
    }
}

/// The finished map of one result, as the background task returns it.
pub struct TrustDone {
    pub result: Picture,
    pub figures: TrustFigures,
    pub image: RgbaImage,
}

impl std::fmt::Debug for TrustDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustDone")
            .field("figures", &self.figures)
            .field("size", &self.image.dimensions())
            .finish_non_exhaustive()
    }
}

/// The overlay of `sample` for `map`, if it is computed.
pub fn overlay_of(sample: &Sample, map: TrustMap) -> Option<&TrustOverlay> {
    sample.trust.iter().find(|t| t.figures.map == map)
}

impl VarsrApp {
    /// The selected result's map of the kind the trust view shows, if computed.
    pub(super) fn shown_trust_map(&self) -> Option<Picture> {
        let sample = self.state.selected_sample()?;
        overlay_of(sample, self.settings.trust_map).map(|t| Arc::clone(&t.image))
    }

    /// The map the trust view shows but the selected result does not have yet.
    pub(super) fn missing_trust(&self) -> Option<TrustMap> {
        let map = self.settings.trust_map;
        let sample = self.state.selected_sample()?;
        let needed = self.state.trust_view
            && self.state.input.is_some()
            && !sample.partial
            && overlay_of(sample, map).is_none();
        needed.then_some(map)
    }

    /// Starts the map the trust view needs for the selected result, unless it exists or one is
    /// being computed. Called every frame; cheap when there is nothing to do.
    pub(super) fn request_trust(&mut self) {
        if self.state.trust_busy {
            return;
        }
        let Some(map) = self.missing_trust() else {
            return;
        };
        let (Some(input), Some(sample)) = (&self.state.input, self.state.selected_sample()) else {
            return;
        };
        let input = Arc::clone(&input.image.picture);
        let result = Arc::clone(&sample.image);
        self.state.trust_busy = true;
        self.tasks.spawn("trust", move || {
            let lr: RgbImage = input.as_ref().convert();
            let sr: RgbImage = result.as_ref().convert();
            let t = trust(map, &lr, &sr);
            Done::Trust(Box::new(TrustDone {
                image: render(&t, &sr),
                result,
                figures: t.figures(),
            }))
        });
    }

    pub(super) fn on_trust(&mut self, done: TrustDone) {
        self.state.trust_busy = false;
        // The result may have gone (a new run, another file) while the map was computed.
        let Some(sample) = self
            .state
            .samples
            .iter_mut()
            .find(|s| Arc::ptr_eq(&s.image, &done.result))
        else {
            return;
        };
        let texture = TiledTexture::new(&self.ctx, "trust", &done.image);
        let figures = done.figures;
        sample.trust.retain(|t| t.figures.map != figures.map);
        sample.trust.push(TrustOverlay {
            figures,
            image: Arc::new(done.image),
            texture,
        });
        self.log
            .push(format!("Trust view ({}): {figures}", figures.map.label()));
    }
}
