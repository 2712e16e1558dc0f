//! The pipeline [`Observer`] of a window job: forwards scales and progress as [`Event`]s, wakes
//! the window, and answers "cancelled?" from the job's flag.

use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::Waker;
use super::canvas::{Canvases, Layout};
use super::messages::{CancelFlag, Event, JobId, Stage};
use crate::pipeline::{Observer, Progress, ScaleEvent};

pub struct ChannelObserver {
    job: JobId,
    variant: usize,
    tx: Sender<Event>,
    waker: Waker,
    cancel: CancelFlag,
    previews: bool,
    canvases: Canvases,
    started: Instant,
    fraction: f32,
    tile: usize,
    /// Tiles generated together with `tile` (a batch).
    batch: usize,
    num_tiles: usize,
    stage: Stage,
}

impl ChannelObserver {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        job: JobId,
        variant: usize,
        tx: Sender<Event>,
        waker: Waker,
        cancel: CancelFlag,
        previews: bool,
        layout: Layout,
        num_scales: usize,
    ) -> Self {
        let num_tiles = layout.tiles.len();
        Self {
            job,
            variant,
            tx,
            waker,
            cancel,
            previews,
            canvases: Canvases::new(layout, num_scales),
            started: Instant::now(),
            fraction: 0.0,
            tile: 0,
            batch: 1,
            num_tiles,
            stage: Stage::Preparing,
        }
    }

    fn send(&self, event: Event) {
        // A closed channel means the window is gone; nothing is left to tell.
        let _ = self.tx.send(event);
        (self.waker)();
    }

    /// Time left, extrapolated from the token-weighted fraction done so far.
    pub fn eta(&self) -> Option<Duration> {
        let f = self.fraction;
        if !(0.02..1.0).contains(&f) {
            return None;
        }
        let elapsed = self.started.elapsed().as_secs_f32();
        Some(Duration::from_secs_f32(elapsed * (1.0 - f) / f))
    }

    /// The finest preview of every tile, for a cancelled job.
    pub fn partial(&self) -> Option<super::messages::Picture> {
        self.canvases.best()
    }

    fn send_progress(&self) {
        self.send(Event::Progress {
            job: self.job,
            variant: self.variant,
            tile: self.tile,
            batch: self.batch,
            num_tiles: self.num_tiles,
            stage: self.stage.clone(),
            fraction: self.fraction,
            eta: self.eta(),
        });
    }
}

impl Observer for ChannelObserver {
    fn scale_done(&mut self, event: &ScaleEvent) {
        self.num_tiles = event.num_tiles.max(1);
        self.tile = event.tile;
        self.batch = event.tokens.len().max(1);
        self.stage = Stage::Scale {
            scale: event.scale,
            num_scales: event.num_scales,
        };
        // Batched tiles: item `i` of the batch is tile `event.tile + i`.
        let mut preview = None;
        for (i, p) in event.previews.iter().enumerate() {
            preview = self
                .canvases
                .paste(event.tile + i, event.scale, p)
                .or(preview);
        }
        self.send(Event::ScaleDone {
            job: self.job,
            variant: self.variant,
            tile: event.tile,
            num_tiles: self.num_tiles,
            scale: event.scale,
            num_scales: event.num_scales,
            preview,
        });
        // The job's token-weighted fraction follows as a `Progress::Fraction`, which reports.
    }

    fn progress(&mut self, progress: &Progress) {
        match *progress {
            Progress::Fraction(f) => self.fraction = f.clamp(0.0, 1.0),
            Progress::Encoding { tile, num_tiles } => {
                self.tile = tile;
                self.num_tiles = num_tiles.max(1);
                self.stage = Stage::Encoding;
            }
            Progress::Refiner {
                tile,
                num_tiles,
                step,
                steps,
            } => {
                self.tile = tile;
                self.num_tiles = num_tiles.max(1);
                self.stage = Stage::Refining { step, steps };
                // The fraction that follows reports it.
                return;
            }
            Progress::Decoding => self.stage = Stage::Decoding,
        }
        self.send_progress();
    }

    fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    fn wants_previews(&self) -> bool {
        self.previews
    }
}
