//! What the window holds while it runs (never persisted): the input, the results, the running
//! job, the model's status and the view.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::Vec2;

use super::textures::{LiveTexture, TiledTexture};
use super::viewer::View;
use crate::worker::{
    CancelFlag, InputImage, JobId, JobOptions, ModelInfo, ModelSpec, Picture, Stage, Tokens,
};

pub struct Input {
    pub image: InputImage,
    pub texture: TiledTexture,
    /// File stem used in output names ("pasted" for clipboard images).
    pub name: String,
}

impl Input {
    pub fn size(&self) -> [u32; 2] {
        [self.image.picture.width(), self.image.picture.height()]
    }
}

/// The pictures of the scales of one run, coarse to fine.
#[derive(Default)]
pub struct ScaleStrip {
    pub frames: Vec<Option<(Picture, LiveTexture)>>,
}

impl ScaleStrip {
    pub fn with_scales(n: usize) -> Self {
        Self {
            frames: (0..n).map(|_| None).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.iter().all(Option::is_none)
    }

    pub fn get(&self, k: usize) -> Option<&(Picture, LiveTexture)> {
        self.frames.get(k).and_then(Option::as_ref)
    }

    /// The finest scale with a picture.
    pub fn latest(&self) -> Option<usize> {
        self.frames.iter().rposition(Option::is_some)
    }

    pub fn set(&mut self, ctx: &egui::Context, k: usize, picture: Picture) {
        if k >= self.frames.len() {
            self.frames.resize_with(k + 1, || None);
        }
        match &mut self.frames[k] {
            Some((p, tex)) => {
                tex.set(&picture);
                *p = picture;
            }
            slot @ None => {
                let tex = LiveTexture::new(ctx, &format!("scale{k}"), &picture);
                *slot = Some((picture, tex));
            }
        }
    }

    pub fn pictures(&self) -> Vec<Picture> {
        self.frames
            .iter()
            .flatten()
            .map(|(p, _)| p.clone())
            .collect()
    }
}

/// One result: a finished image (or the partial picture of a cancelled run).
pub struct Sample {
    pub seed: u64,
    pub options: JobOptions,
    pub image: Picture,
    pub texture: TiledTexture,
    pub tokens: Option<Arc<Tokens>>,
    /// Cancelled before the end: `image` is the finest preview, not the output.
    pub partial: bool,
    pub elapsed: Option<Duration>,
    pub scales: ScaleStrip,
    /// Where it was last exported.
    pub saved_to: Option<PathBuf>,
    /// Its trust maps computed so far (one per kind).
    pub trust: Vec<super::trust_view::TrustOverlay>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum JobKind {
    Upscale,
    Rerun {
        from_scale: usize,
    },
    Variations {
        n: usize,
    },
    /// The tiles under `rect` (output pixels) of result `from`, generated again.
    Region {
        rect: (u32, u32, u32, u32),
        from: usize,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProgressInfo {
    pub tile: usize,
    pub batch: usize,
    pub num_tiles: usize,
    pub stage: Stage,
    pub fraction: f32,
    pub eta: Option<Duration>,
}

pub struct Job {
    pub id: JobId,
    pub kind: JobKind,
    pub cancel: CancelFlag,
    pub options: JobOptions,
    pub started: Instant,
    /// The variation being generated now (0 for single runs).
    pub variant: usize,
    pub seed: u64,
    pub progress: Option<ProgressInfo>,
    pub live: ScaleStrip,
    /// Results of this job received so far (variations arrive one by one).
    pub finished: usize,
    pub cancelling: bool,
}

pub enum ModelStatus {
    NotLoaded,
    Loading(ModelSpec),
    Ready(ModelInfo),
    Failed(String),
}

impl ModelStatus {
    pub fn ready(&self) -> Option<&ModelInfo> {
        match self {
            ModelStatus::Ready(i) => Some(i),
            _ => None,
        }
    }
}

/// The overwrite question of an export in flight.
#[derive(Clone, Debug)]
pub struct PendingOverwrite {
    pub path: PathBuf,
    pub what: ExportWhat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportWhat {
    Image,
    Gif,
    ContactSheet,
    /// The trust view's map of the result, as shown.
    TrustMap,
}

/// Frame-time statistics, for the measurement example and the status line.
#[derive(Default, Clone, Debug)]
pub struct FrameStats {
    pub frames: u64,
    pub last_ui: Duration,
    pub max_ui: Duration,
    pub total_ui: Duration,
    pub last_drain: Duration,
    pub max_drain: Duration,
    pub events: u64,
}

pub struct State {
    pub input: Option<Input>,
    pub samples: Vec<Sample>,
    pub selected: usize,
    /// Show this scale of the selected result (or of the running job) instead of the result.
    pub scrub: Option<usize>,
    pub job: Option<Job>,
    pub model: ModelStatus,
    /// The default guidance of the model the settings' guidance was last set from: a guidance
    /// still at that value follows the next model's default, one the person chose stays.
    pub model_default_cfg: f32,
    /// The last failure in plain words, shown until dismissed.
    pub error: Option<String>,
    /// A short note ("Saved to …"), shown until the next one.
    pub notice: Option<String>,
    pub view: View,
    /// Divider of the split view, as a share of the pane width.
    pub split: f32,
    /// Space held: show the input in place of the result.
    pub flip: bool,
    /// The input was picked in the gallery (Ctrl+0) in place of a result.
    pub show_input: bool,
    /// When the debounced re-render is due.
    pub rerender_at: Option<Instant>,
    /// When the replay of the scales started.
    pub playing: Option<Instant>,
    pub overwrite: Option<PendingOverwrite>,
    /// Files being decoded in the background.
    pub loading: usize,
    /// Exports being written in the background.
    pub exporting: usize,
    pub show_help: bool,
    pub next_job: JobId,
    pub stats: FrameStats,
    /// The last pane size, for keyboard zoom about the centre.
    pub pane_size: Vec2,
    /// Where pictures were drawn in the last frame (panes, scale thumbnails).
    pub picture_rects: Vec<egui::Rect>,
    /// The result pane shows the selected result's trust map (T).
    pub trust_view: bool,
    /// A trust map is being computed (one at a time).
    pub trust_busy: bool,
    /// The region marked for re-sampling (Shift+drag), in output pixels.
    pub region: Option<super::region::Region>,
    /// A Shift+drag is under way.
    pub selecting: bool,
}

impl Default for State {
    fn default() -> Self {
        Self {
            input: None,
            samples: Vec::new(),
            selected: 0,
            scrub: None,
            job: None,
            model: ModelStatus::NotLoaded,
            model_default_cfg: crate::pipeline::SamplingParams::DEFAULT_CFG,
            error: None,
            notice: None,
            view: View::default(),
            split: 0.5,
            flip: false,
            show_input: false,
            rerender_at: None,
            playing: None,
            overwrite: None,
            loading: 0,
            exporting: 0,
            show_help: false,
            next_job: 1,
            stats: FrameStats::default(),
            pane_size: Vec2::new(800.0, 600.0),
            picture_rects: Vec::new(),
            trust_view: false,
            trust_busy: false,
            region: None,
            selecting: false,
        }
    }
}

impl State {
    pub fn new_job_id(&mut self) -> JobId {
        let id = self.next_job;
        self.next_job += 1;
        id
    }

    pub fn selected_sample(&self) -> Option<&Sample> {
        self.samples.get(self.selected)
    }

    pub fn busy(&self) -> bool {
        self.job.is_some()
    }

    /// The frame (output pixel grid) that all panes show.
    pub fn frame_size(&self, default_scale: u32) -> Vec2 {
        let Some(input) = &self.input else {
            return Vec2::new(512.0, 512.0);
        };
        let scale = self
            .selected_sample()
            .map_or(default_scale, |s| s.options.scale);
        let [w, h] = input.size();
        Vec2::new((w * scale) as f32, (h * scale) as f32)
    }
}
