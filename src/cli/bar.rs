//! A progress bar per file, in model terms: "tile 3/12 · scale 7/10", with an ETA from the
//! token-weighted fraction of work done.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::pipeline::progress::{format_duration, remaining_from_fraction};
use crate::pipeline::{Observer, Progress, ScaleEvent};

const STEPS: u64 = 1000;

pub struct BarObserver {
    bar: ProgressBar,
    started: Instant,
    tile: usize,
    num_tiles: usize,
    scale: usize,
    num_scales: usize,
    stage: &'static str,
    fraction: f64,
}

impl BarObserver {
    /// `label` names the file; the bar draws on stderr and only when it is a terminal.
    pub fn new(label: &str, quiet: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(STEPS), target);
        let style = ProgressStyle::with_template("{prefix} [{bar:28}] {percent:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(250));
        Self {
            bar,
            started: Instant::now(),
            tile: 0,
            num_tiles: 1,
            scale: 0,
            num_scales: 0,
            stage: "preparing",
            fraction: 0.0,
        }
    }

    /// The line shown beside the bar.
    pub fn message(&self) -> String {
        let place = if self.num_scales > 0 {
            format!(
                "tile {}/{} · scale {}/{}",
                self.tile + 1,
                self.num_tiles,
                self.scale + 1,
                self.num_scales
            )
        } else {
            format!("tile {}/{}", self.tile + 1, self.num_tiles)
        };
        let eta = remaining_from_fraction(self.fraction, self.started.elapsed().as_secs_f64())
            .filter(|_| self.fraction >= 0.01)
            .map(|s| format!(" · ETA {}", format_duration(s)))
            .unwrap_or_default();
        format!("{} · {place}{eta}", self.stage)
    }

    fn redraw(&self) {
        self.bar
            .set_position((self.fraction * STEPS as f64).round() as u64);
        self.bar.set_message(self.message());
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for BarObserver {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

impl Observer for BarObserver {
    fn scale_done(&mut self, event: &ScaleEvent) {
        // A batch reports its first tile; the last one of the batch is as far.
        self.tile = event.tile + event.tokens.len().saturating_sub(1);
        self.num_tiles = event.num_tiles.max(1);
        self.scale = event.scale;
        self.num_scales = event.num_scales;
        self.stage = "generating";
        self.redraw();
    }

    fn progress(&mut self, progress: &Progress) {
        match *progress {
            Progress::Fraction(f) => self.fraction = f.clamp(0.0, 1.0) as f64,
            Progress::Encoding { tile, num_tiles } => {
                self.tile = tile;
                self.num_tiles = num_tiles.max(1);
                self.stage = "encoding";
            }
            Progress::Refiner { .. } => self.stage = "refining",
            Progress::Decoding => self.stage = "decoding",
        }
        self.redraw();
    }
}
