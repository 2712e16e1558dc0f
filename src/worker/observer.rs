//! The pipeline [`Observer`] of a window job: forwards scales and progress as [`Event`]s, wakes
//! the window, and answers "cancelled?" from the job's flag.

use std::collections::BTreeMap;
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
    /// Tiles generated together with `tile` (a batch, or the batches under way).
    batch: usize,
    num_tiles: usize,
    stage: Stage,
    /// Batches under way by first tile: their tile count and stage. Tile lanes run several at
    /// once; the progress line shows the span of their tiles and the stage of the first, rather
    /// than jumping between them at each event.
    active: BTreeMap<usize, (usize, Stage)>,
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
            active: BTreeMap::new(),
        }
    }

    /// Records the stage of the batch starting at `tile` (`batch` tiles; `None`: as known), then
    /// what the progress line shows: the batches under way, from the first one's tile.
    fn batch_stage(&mut self, tile: usize, batch: Option<usize>, stage: Stage) {
        let known = self.active.get(&tile).map_or(1, |(b, _)| *b);
        self.active
            .insert(tile, (batch.unwrap_or(known).max(1), stage.clone()));
        self.show_active();
    }

    /// The batch starting at `tile` is finished.
    fn batch_done(&mut self, tile: usize) {
        self.active.remove(&tile);
        if !self.active.is_empty() {
            self.show_active();
        }
    }

    fn show_active(&mut self) {
        let Some((&first, (_, stage))) = self.active.first_key_value() else {
            return;
        };
        let end = self
            .active
            .iter()
            .map(|(t, (b, _))| t + b)
            .max()
            .unwrap_or(first + 1);
        self.tile = first;
        self.batch = end - first;
        self.stage = stage.clone();
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
        let stage = Stage::Scale {
            scale: event.scale,
            num_scales: event.num_scales,
        };
        self.batch_stage(event.tile, Some(event.tokens.len()), stage);
        // The last scale is reported after the refiner: the batch is finished.
        let finished = event.scale + 1 >= event.num_scales;
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
        if finished {
            self.batch_done(event.tile);
        }
        // The job's token-weighted fraction follows as a `Progress::Fraction`, which reports.
    }

    fn progress(&mut self, progress: &Progress) {
        match *progress {
            Progress::Fraction(f) => self.fraction = f.clamp(0.0, 1.0),
            Progress::Encoding { tile, num_tiles } => {
                self.num_tiles = num_tiles.max(1);
                self.batch_stage(tile, None, Stage::Encoding);
            }
            Progress::Refiner {
                tile,
                num_tiles,
                step,
                steps,
            } => {
                self.num_tiles = num_tiles.max(1);
                self.batch_stage(tile, None, Stage::Refining { step, steps });
                // The fraction that follows reports it.
                return;
            }
            Progress::Decoding => {
                self.active.clear();
                self.stage = Stage::Decoding;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn observer() -> (ChannelObserver, crossbeam_channel::Receiver<Event>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let o = ChannelObserver::new(
            JobId::default(),
            0,
            tx,
            std::sync::Arc::new(|| {}),
            CancelFlag::new(),
            false,
            Layout::single(64, 64),
            3,
        );
        (o, rx)
    }

    fn scale(tile: usize, batch: usize, scale: usize) -> ScaleEvent {
        ScaleEvent {
            tile,
            num_tiles: 8,
            scale,
            num_scales: 3,
            pn: 1,
            tokens: vec![vec![0]; batch],
            previews: Vec::new(),
        }
    }

    /// Two batches under way at once (tile lanes): the line spans both and follows the first,
    /// instead of jumping to whichever sent the last event.
    #[test]
    fn progress_follows_the_first_batch_under_way() {
        let (mut o, _rx) = observer();
        let refine = |tile, step| Progress::Refiner {
            tile,
            num_tiles: 8,
            step,
            steps: 2,
        };
        o.progress(&Progress::Encoding {
            tile: 0,
            num_tiles: 8,
        });
        o.scale_done(&scale(0, 2, 0));
        o.progress(&Progress::Encoding {
            tile: 2,
            num_tiles: 8,
        });
        o.scale_done(&scale(2, 2, 0));
        o.scale_done(&scale(0, 2, 1));
        o.scale_done(&scale(2, 2, 1));
        let second_scale = Stage::Scale {
            scale: 1,
            num_scales: 3,
        };
        assert_eq!((o.tile, o.batch), (0, 4));
        assert_eq!(o.stage, second_scale);
        // The first batch refines, then reports its last scale and is finished: the line moves
        // on to the second.
        o.progress(&refine(0, 1));
        assert_eq!(o.stage, Stage::Refining { step: 1, steps: 2 });
        o.progress(&refine(0, 2));
        assert_eq!((o.tile, o.batch), (0, 4));
        o.scale_done(&scale(0, 2, 2));
        assert_eq!((o.tile, o.batch), (2, 2));
        assert_eq!(o.stage, second_scale);
        o.progress(&refine(2, 2));
        o.scale_done(&scale(2, 2, 2));
        o.progress(&Progress::Decoding);
        assert_eq!(o.stage, Stage::Decoding);
        // One batch at a time reads as before.
        let (mut o, _rx) = observer();
        o.scale_done(&scale(4, 3, 1));
        assert_eq!((o.tile, o.batch), (4, 3));
    }
}
