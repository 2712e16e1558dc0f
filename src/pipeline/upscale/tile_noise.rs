//! Per-tile random streams, so that a tile's draws do not depend on the batch it runs in.

use crate::pipeline::noise::{Noise, SeededNoise};

/// Random streams per tile, derived from a job seed.
///
/// Every draw of the engine is batch-major (`B` equal runs, one per batch item: refiner noise
/// rows, sampling uniforms), so a batch's request is split into `B` parts, part `i` coming from
/// tile `first + i`'s own stream. Normal draws (refiner) and uniform draws (token sampling) come
/// from separate streams, so that locking scales (which then draw no uniforms) leaves the
/// refiner's noise as it was.
pub struct TileNoise {
    job_seed: u64,
}

impl TileNoise {
    /// Takes the job seed from `noise` (two uniform draws).
    pub fn new(noise: &mut dyn Noise) -> Self {
        let u = noise.uniform(2);
        let bits =
            |v: Option<&f32>| (v.copied().unwrap_or(0.0) as f64 * (1u64 << 32) as f64) as u64;
        Self {
            job_seed: bits(u.first()) << 32 | bits(u.get(1)),
        }
    }

    /// The `(normal, uniform)` streams of tile `index`.
    pub fn streams(&self, index: usize) -> (SeededNoise, SeededNoise) {
        let key = |kind: u64| {
            self.job_seed ^ (2 * index as u64 + kind + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        };
        (SeededNoise::new(key(0)), SeededNoise::new(key(1)))
    }

    /// The noise of a batch of `len` tiles (at least one) starting at tile `first`: a value of its
    /// own, so that batches can run on several threads at once.
    pub fn for_batch(&self, first: usize, len: usize) -> BatchNoise {
        BatchNoise {
            streams: (first..first + len.max(1))
                .map(|i| self.streams(i))
                .collect(),
        }
    }
}

/// The streams of one batch's tiles (see [`TileNoise`]).
pub struct BatchNoise {
    /// `(normal, uniform)` per tile, never empty.
    streams: Vec<(SeededNoise, SeededNoise)>,
}

impl BatchNoise {
    fn split(
        &mut self,
        n: usize,
        draw: impl Fn(&mut (SeededNoise, SeededNoise), usize) -> Vec<f32>,
    ) -> Vec<f32> {
        let b = self.streams.len();
        if !n.is_multiple_of(b) {
            // Not batch-major: one stream serves it all (still reproducible for a fixed batch).
            return draw(&mut self.streams[0], n);
        }
        let mut out = Vec::with_capacity(n);
        for s in &mut self.streams {
            out.extend(draw(s, n / b));
        }
        out
    }
}

impl Noise for BatchNoise {
    fn normal(&mut self, n: usize) -> Vec<f32> {
        self.split(n, |s, k| s.0.normal(k))
    }

    fn uniform(&mut self, n: usize) -> Vec<f32> {
        self.split(n, |s, k| s.1.uniform(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tile 1's draws are the same whether it runs alone or second in a batch of two.
    #[test]
    fn tile_noise_does_not_depend_on_the_batch() {
        let tn = TileNoise::new(&mut SeededNoise::new(5));
        let mut pair_noise = tn.for_batch(0, 2);
        let pair = pair_noise.normal(8);
        let pair_next = pair_noise.uniform(6);
        let mut alone_noise = tn.for_batch(1, 1);
        let alone = alone_noise.normal(4);
        let alone_next = alone_noise.uniform(3);
        assert_eq!(&pair[4..], &alone[..]);
        assert_eq!(&pair_next[3..], &alone_next[..]);
        assert_eq!(pair[..4], tn.streams(0).0.normal(4)[..]);
        assert_ne!(pair[..4], pair[4..]);
        // Uniform draws do not move the normal stream.
        let plain = tn.for_batch(1, 1).normal(4);
        let mut moved = tn.for_batch(1, 1);
        let _ = moved.uniform(100);
        assert_eq!(moved.normal(4), plain);
        // Another job seed gives other draws.
        let other = TileNoise::new(&mut SeededNoise::new(6));
        assert_ne!(other.for_batch(1, 1).normal(4), alone);
    }
}
