//! How far a job is and how long it will still take, measured in model work rather than steps.
//!
//! The work of a scale is its token count `pn²` (the transformer's cost is dominated by
//! per-token matmuls), so a 32×32 scale weighs 1024 times the first one and a linear "scale k of
//! K" bar would be badly wrong. The refiner and the decoder get fixed shares in the same unit.
//! Time is passed in as seconds so that everything here is pure and testable.

/// Refiner cost per tile, as a fraction of the last scale's tokens (a 10-step MLP over the final
/// tokens: small beside the transformer, not negligible).
pub const REFINER_SHARE: f64 = 0.25;
/// Decoding cost per tile, as a fraction of one tile's tokens.
pub const DECODE_SHARE: f64 = 0.15;

/// The work units of one job.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkPlan {
    scale_units: Vec<f64>,
    tiles: usize,
    refiner_units: f64,
    decode_units: f64,
}

impl WorkPlan {
    pub fn new(patch_nums: &[usize], tiles: usize) -> Self {
        let scale_units: Vec<f64> = patch_nums.iter().map(|&p| (p * p) as f64).collect();
        let per_tile: f64 = scale_units.iter().sum();
        let last = scale_units.last().copied().unwrap_or(0.0);
        Self {
            tiles,
            refiner_units: REFINER_SHARE * last,
            decode_units: DECODE_SHARE * per_tile * tiles as f64,
            scale_units,
        }
    }

    /// Units of scale `k` for one tile (0 past the last scale).
    pub fn scale(&self, k: usize) -> f64 {
        self.scale_units.get(k).copied().unwrap_or(0.0)
    }

    /// Units of the refiner for one tile.
    pub fn refiner(&self) -> f64 {
        self.refiner_units
    }

    /// Units of the whole decode.
    pub fn decode(&self) -> f64 {
        self.decode_units
    }

    pub fn tiles(&self) -> usize {
        self.tiles
    }

    /// Units of one tile, scales and refiner.
    pub fn per_tile(&self) -> f64 {
        self.scale_units.iter().sum::<f64>() + self.refiner_units
    }

    pub fn total(&self) -> f64 {
        self.per_tile() * self.tiles as f64 + self.decode_units
    }
}

/// Remaining-time estimate from work done so far.
///
/// The rate is the work done over the time since the job started (start-up costs such as encoding
/// the LR input are part of every batch, so they belong in the rate).
#[derive(Clone, Debug)]
pub struct Eta {
    plan: WorkPlan,
    start_s: f64,
    done: f64,
    last_s: f64,
}

impl Eta {
    pub fn new(plan: WorkPlan, start_s: f64) -> Self {
        Self {
            plan,
            start_s,
            done: 0.0,
            last_s: start_s,
        }
    }

    pub fn plan(&self) -> &WorkPlan {
        &self.plan
    }

    fn add(&mut self, units: f64, at_s: f64) {
        self.done = (self.done + units).min(self.plan.total());
        self.last_s = self.last_s.max(at_s);
    }

    /// Scale `scale` finished for `tiles` tiles (one batch) at time `at_s`.
    pub fn scale_done(&mut self, scale: usize, tiles: usize, at_s: f64) {
        self.add(self.plan.scale(scale) * tiles as f64, at_s);
    }

    /// `steps_done` of `steps` refiner steps finished for `tiles` tiles.
    pub fn refiner_steps_done(&mut self, steps_done: usize, steps: usize, tiles: usize, at_s: f64) {
        if steps > 0 {
            let units = self.plan.refiner() * tiles as f64 * steps_done as f64 / steps as f64;
            self.add(units, at_s);
        }
    }

    /// A fraction (0..=1) of the decode finished since the last call.
    pub fn decode_done(&mut self, fraction: f64, at_s: f64) {
        self.add(self.plan.decode() * fraction.clamp(0.0, 1.0), at_s);
    }

    /// Fraction of the job's work done, 0..=1.
    pub fn fraction(&self) -> f64 {
        let total = self.plan.total();
        if total > 0.0 {
            (self.done / total).clamp(0.0, 1.0)
        } else {
            1.0
        }
    }

    /// Predicted seconds left at time `now_s`; `None` until some work is done.
    ///
    /// Time already spent since the last completed piece of work counts against the prediction.
    pub fn remaining(&self, now_s: f64) -> Option<f64> {
        let elapsed = self.last_s - self.start_s;
        if self.done <= 0.0 || elapsed <= 0.0 {
            return None;
        }
        let rate = self.done / elapsed;
        let left = (self.plan.total() - self.done) / rate;
        Some((left - (now_s - self.last_s).max(0.0)).max(0.0))
    }
}

/// The same estimate from a work fraction alone (for observers that only see
/// [`super::Progress::Fraction`]): `elapsed·(1−f)/f`.
pub fn remaining_from_fraction(fraction: f64, elapsed_s: f64) -> Option<f64> {
    if fraction <= 0.0 || elapsed_s <= 0.0 {
        return None;
    }
    let f = fraction.min(1.0);
    Some(elapsed_s * (1.0 - f) / f)
}

/// `1:05:03`, `4:07`, `0:09`: a remaining time for people.
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELEASE: [usize; 10] = [1, 2, 3, 4, 6, 9, 13, 18, 24, 32];

    #[test]
    fn plan_weights_scales_by_tokens() {
        let p = WorkPlan::new(&RELEASE, 3);
        // Σpn² of the release is 2240 (reference §3).
        assert_eq!(p.scale(0), 1.0);
        assert_eq!(p.scale(9), 1024.0);
        assert_eq!(p.scale(10), 0.0);
        assert_eq!(p.refiner(), 256.0);
        assert_eq!(p.per_tile(), 2240.0 + 256.0);
        assert_eq!(p.decode(), 0.15 * 2240.0 * 3.0);
        assert!((p.total() - (3.0 * 2496.0 + 1008.0)).abs() < 1e-9);
    }

    /// Work arriving at a constant rate: the prediction is exact at every point.
    #[test]
    fn constant_rate_is_predicted_exactly() {
        let plan = WorkPlan::new(&RELEASE, 2);
        let total = plan.total();
        let rate = 500.0; // units per second
        let mut eta = Eta::new(plan.clone(), 10.0);
        assert_eq!(eta.remaining(10.0), None);
        let mut done = 0.0;
        for tile in 0..2 {
            for (k, &pn) in RELEASE.iter().enumerate() {
                done += (pn * pn) as f64;
                let t = 10.0 + done / rate;
                eta.scale_done(k, 1, t);
                let expect = (total - done) / rate;
                let got = eta.remaining(t).unwrap();
                assert!(
                    (got - expect).abs() < 1e-9,
                    "tile {tile} scale {k}: {got} vs {expect}"
                );
                assert!((eta.fraction() - done / total).abs() < 1e-12);
            }
            done += plan.refiner();
            let t = 10.0 + done / rate;
            eta.refiner_steps_done(10, 10, 1, t);
            assert!((eta.remaining(t).unwrap() - (total - done) / rate).abs() < 1e-9);
        }
        eta.decode_done(1.0, 10.0 + total / rate);
        assert_eq!(eta.fraction(), 1.0);
        assert_eq!(eta.remaining(10.0 + total / rate), Some(0.0));
    }

    /// A batch of B tiles counts B times; waiting without progress eats into the estimate.
    #[test]
    fn batches_and_idle_time() {
        let plan = WorkPlan::new(&[1, 2], 4);
        // per tile 1 + 4 + refiner 0.25·4 = 6; decode 0.15·5·4 = 3; total 27.
        assert!((plan.total() - 27.0).abs() < 1e-12);
        let mut eta = Eta::new(plan, 0.0);
        eta.scale_done(0, 2, 1.0); // 2 units in 1 s
        eta.scale_done(1, 2, 5.0); // 10 units in 5 s → 2 units/s
        assert!((eta.remaining(5.0).unwrap() - 17.0 / 2.0).abs() < 1e-12);
        assert!((eta.remaining(7.0).unwrap() - 6.5).abs() < 1e-12);
        assert_eq!(eta.remaining(100.0), Some(0.0));
    }

    #[test]
    fn fraction_shortcut_and_formatting() {
        assert_eq!(remaining_from_fraction(0.0, 5.0), None);
        assert_eq!(remaining_from_fraction(0.25, 10.0), Some(30.0));
        assert_eq!(remaining_from_fraction(1.0, 10.0), Some(0.0));
        assert_eq!(format_duration(9.4), "0:09");
        assert_eq!(format_duration(247.0), "4:07");
        assert_eq!(format_duration(3903.0), "1:05:03");
    }
}
