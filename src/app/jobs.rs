//! Starting and cancelling jobs, and applying the worker's events to the window's state.

use std::sync::Arc;
use std::time::Instant;

use super::state::{Job, JobKind, ModelStatus, ProgressInfo, Sample, ScaleStrip};
use super::textures::TiledTexture;
use super::{Command, VarsrApp};
use crate::worker::{CancelFlag, Event, Request};

impl VarsrApp {
    pub(super) fn apply_job_command(&mut self, command: Command) {
        match command {
            Command::Cancel => {
                self.state.rerender_at = None;
                if let Some(job) = &mut self.state.job
                    && !job.cancelling
                {
                    job.cancel.cancel();
                    job.cancelling = true;
                    self.log.push(format!("Cancelling job {}…", job.id));
                }
            }
            Command::Upscale => self.start(JobKind::Upscale),
            Command::Rerun { from_scale } => self.start(JobKind::Rerun { from_scale }),
            Command::Variations { n } => self.start(JobKind::Variations { n: n.clamp(1, 9) }),
            Command::ResampleRegion => {
                let Some(rect) = super::region::ready(&self.state, &self.settings) else {
                    self.state.notice = Some(
                        "Mark a region (Shift+drag) over a finished result at this scale first."
                            .into(),
                    );
                    return;
                };
                // The result's own settings would redraw the region exactly as it is: roll a seed.
                if self
                    .state
                    .selected_sample()
                    .is_some_and(|s| s.options.params == self.settings.params)
                {
                    self.settings.params.seed = super::fresh_seed();
                }
                self.start(JobKind::Region {
                    rect,
                    from: self.state.selected,
                });
            }
            _ => {}
        }
    }

    fn start(&mut self, kind: JobKind) {
        self.state.rerender_at = None;
        let Some(input) = &self.state.input else {
            self.state.notice = Some("Open an image first (Ctrl+O, drop or paste one).".into());
            return;
        };
        if let ModelStatus::Failed(message) = &self.state.model {
            self.state.error = Some(message.clone());
            return;
        }
        let image = input.image.clone();
        if self.settings.new_seed_each_run && kind == JobKind::Upscale {
            self.settings.params.seed = super::fresh_seed();
        }
        let options = self.settings.job_options();
        // Locked coarse tokens need a finished run of the same image at the same size.
        let tokens = self
            .state
            .selected_sample()
            .filter(|s| !s.partial && s.options.scale == options.scale)
            .and_then(|s| s.tokens.clone());
        if let JobKind::Rerun { .. } = kind
            && tokens.is_none()
        {
            self.state.notice = Some(
                "Upscale once first; re-running keeps the coarse scales of that result.".into(),
            );
            return;
        }
        // A newer request replaces the running one.
        if let Some(old) = self.state.job.take() {
            old.cancel.cancel();
        }
        let id = self.state.new_job_id();
        let cancel = CancelFlag::new();
        let request = match &kind {
            JobKind::Upscale => Request::Upscale {
                job: id,
                image,
                options: options.clone(),
                cancel: cancel.clone(),
            },
            JobKind::Rerun { from_scale } => Request::Rerun {
                job: id,
                image,
                options: options.clone(),
                from_scale: *from_scale,
                tokens: tokens.unwrap_or_default(),
                cancel: cancel.clone(),
            },
            JobKind::Region { rect, .. } => Request::Resample {
                job: id,
                image,
                options: options.clone(),
                region: *rect,
                // `region::ready` checked that the shown result has every tile's latent.
                kept: tokens.unwrap_or_default(),
                base: self
                    .state
                    .selected_sample()
                    .map(|s| Arc::clone(&s.image))
                    .unwrap_or_default(),
                cancel: cancel.clone(),
            },
            JobKind::Variations { n } => Request::Variations {
                job: id,
                image,
                options: options.clone(),
                n: *n,
                from_scale: 0,
                tokens: None,
                cancel: cancel.clone(),
            },
        };
        self.log.push(format!(
            "Job {id}: {kind:?}, ×{}, guidance {}, seed {}, top-k {}, top-p {}",
            options.scale,
            options.params.cfg,
            options.params.seed,
            options.params.top_k,
            options.params.top_p
        ));
        let num_scales = self.state.model.ready().map_or(10, |i| i.num_scales);
        self.state.job = Some(Job {
            id,
            kind,
            cancel,
            seed: options.params.seed,
            options,
            started: Instant::now(),
            variant: 0,
            progress: None,
            live: ScaleStrip::with_scales(num_scales),
            finished: 0,
            cancelling: false,
        });
        self.state.scrub = None;
        self.state.error = None;
        self.worker.send(request);
    }

    /// Applies one worker event; events of superseded jobs only reach the log.
    pub(super) fn on_event(&mut self, event: Event) {
        let current = self.state.job.as_ref().map(|j| j.id);
        match event {
            Event::Log(line) => self.log.push(line),
            Event::ModelLoaded(info) => {
                if info.untrained {
                    self.log.push(
                        "Note: this model has untrained (random) weights; its output is noise.",
                    );
                }
                follow_model_default(
                    &mut self.settings.params.cfg,
                    &mut self.state.model_default_cfg,
                    info.default_cfg,
                );
                self.state.model = ModelStatus::Ready(info);
            }
            Event::ModelFailed { message } => {
                self.state.model = ModelStatus::Failed(message.clone());
                self.state.error = Some(message);
            }
            Event::Started { job, variant, seed } if Some(job) == current => {
                let num_scales = self.state.model.ready().map_or(10, |i| i.num_scales);
                if let Some(j) = &mut self.state.job {
                    j.variant = variant;
                    j.seed = seed;
                    j.live = ScaleStrip::with_scales(num_scales);
                    j.progress = None;
                }
            }
            Event::ScaleDone {
                job,
                scale,
                preview: Some(preview),
                ..
            } if Some(job) == current => {
                if let Some(j) = &mut self.state.job {
                    j.live.set(&self.ctx, scale, preview);
                }
            }
            Event::Progress {
                job,
                tile,
                batch,
                num_tiles,
                stage,
                fraction,
                eta,
                ..
            } if Some(job) == current => {
                if let Some(j) = &mut self.state.job {
                    j.progress = Some(ProgressInfo {
                        tile,
                        batch,
                        num_tiles,
                        stage,
                        fraction,
                        eta,
                    });
                }
            }
            Event::Finished {
                job,
                variant,
                seed,
                image,
                tokens,
                elapsed,
            } if Some(job) == current => {
                let Some(mut j) = self.state.job.take() else {
                    return;
                };
                let texture =
                    TiledTexture::new(&self.ctx, &format!("result{job}.{variant}"), &image);
                let mut options = j.options.clone();
                options.params.seed = seed;
                let sample = Sample {
                    seed,
                    options,
                    image,
                    texture,
                    tokens: Some(tokens),
                    partial: false,
                    elapsed: Some(elapsed),
                    scales: std::mem::take(&mut j.live),
                    saved_to: None,
                    trust: Vec::new(),
                };
                // A re-sampled region is a new version beside the result it started from.
                if let JobKind::Region { from, .. } = j.kind {
                    self.state.selected = self.state.samples.len();
                    let mut note = format!(
                        "Region re-sampled (seed {seed}). Ctrl+{} shows the result it started \
                         from, Ctrl+{} this one.",
                        from + 1,
                        self.state.selected + 1
                    );
                    if j.options.params.top_k == 1 {
                        note.push_str(
                            " With top-k 1 a seed changes only the refiner's fine noise; raise \
                             top-k (Advanced) to draw the region differently.",
                        );
                    }
                    self.state.notice = Some(note);
                } else if j.finished == 0 {
                    self.state.samples.clear();
                    self.state.selected = 0;
                }
                self.state.samples.push(sample);
                j.finished += 1;
                let total = match j.kind {
                    JobKind::Variations { n } => n,
                    _ => 1,
                };
                if j.finished < total {
                    self.state.job = Some(j);
                } else if total > 1 {
                    let mut note = format!(
                        "{total} variations ready: Ctrl+1…Ctrl+{total} flip between them, Ctrl+0 \
                         shows the input."
                    );
                    if j.options.params.top_k == 1 {
                        note.push_str(
                            " With top-k 1 they share their tokens and differ only in fine \
                             detail; raise top-k (Advanced) for more varied samples.",
                        );
                    }
                    self.state.notice = Some(note);
                }
            }
            Event::Cancelled {
                job,
                variant,
                partial,
            } if Some(job) == current => {
                let Some(mut j) = self.state.job.take() else {
                    return;
                };
                let mut options = j.options.clone();
                options.params.seed = j.seed;
                if let Some(image) = partial {
                    let texture =
                        TiledTexture::new(&self.ctx, &format!("partial{job}.{variant}"), &image);
                    let sample = Sample {
                        seed: j.seed,
                        options,
                        image,
                        texture,
                        tokens: None,
                        partial: true,
                        elapsed: Some(j.started.elapsed()),
                        scales: std::mem::take(&mut j.live),
                        saved_to: None,
                        trust: Vec::new(),
                    };
                    if j.finished == 0 && !matches!(j.kind, JobKind::Region { .. }) {
                        self.state.samples.clear();
                    }
                    self.state.samples.push(sample);
                    self.state.selected = self.state.samples.len() - 1;
                    self.state.notice = Some(
                        "Cancelled. The scales finished so far are kept; use the scale strip to \
                         look at them."
                            .into(),
                    );
                } else {
                    self.state.notice = Some("Cancelled before the first scale finished.".into());
                }
            }
            Event::Failed {
                job,
                message,
                detail,
            } if Some(job) == current => {
                // The worker already logged `detail`.
                let _ = detail;
                self.state.job = None;
                self.state.error = Some(message);
            }
            // Events of superseded jobs.
            _ => {}
        }
    }
}

/// A guidance still at the previous model's default follows the new model's; one the person chose
/// stays.
fn follow_model_default(cfg: &mut f32, last_default: &mut f32, new_default: f32) {
    if (*cfg - *last_default).abs() < 1e-4 {
        *cfg = new_default;
    }
    *last_default = new_default;
}

#[cfg(test)]
mod tests {
    use super::follow_model_default;

    #[test]
    fn guidance_follows_the_model_default_unless_chosen() {
        // Fresh settings (the release's 6), then a model whose default is 1, then the release again.
        let (mut cfg, mut last) = (6.0, 6.0);
        follow_model_default(&mut cfg, &mut last, 1.0);
        assert_eq!((cfg, last), (1.0, 1.0));
        follow_model_default(&mut cfg, &mut last, 6.0);
        assert_eq!((cfg, last), (6.0, 6.0));
        // A chosen value survives model changes.
        cfg = 3.5;
        follow_model_default(&mut cfg, &mut last, 1.0);
        assert_eq!((cfg, last), (3.5, 1.0));
    }
}
