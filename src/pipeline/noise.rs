//! Random draws of a run, behind a trait so that tests can replay recorded noise.
//!
//! The seeded source is a self-contained xoshiro256++ with Box–Muller normals, so the same seed
//! gives the same draws on every platform and with every version of the `rand` crates.

/// The random draws a run needs, in the order it needs them.
pub trait Noise {
    /// `n` standard-normal values (refiner noise).
    fn normal(&mut self, n: usize) -> Vec<f32>;
    /// `n` uniform values in [0, 1) (token sampling).
    fn uniform(&mut self, n: usize) -> Vec<f32>;
}

/// A seeded, reproducible noise source.
#[derive(Clone, Debug)]
pub struct SeededNoise {
    s: [u64; 4],
}

impl SeededNoise {
    pub fn new(seed: u64) -> Self {
        // splitmix64 expands the seed so that nearby seeds give unrelated streams.
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^ (x >> 31)
        };
        Self {
            s: [next(), next(), next(), next()],
        }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

impl Noise for SeededNoise {
    fn normal(&mut self, n: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            // Box–Muller; 1 - u keeps the log argument in (0, 1].
            let u1 = 1.0 - self.next_f64();
            let u2 = self.next_f64();
            let r = (-2.0 * u1.ln()).sqrt();
            let th = std::f64::consts::TAU * u2;
            out.push((r * th.cos()) as f32);
            out.push((r * th.sin()) as f32);
        }
        out.truncate(n);
        out
    }

    fn uniform(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next_f64() as f32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_draws_and_different_seeds_differ() {
        let a = SeededNoise::new(7).normal(1001);
        let b = SeededNoise::new(7).normal(1001);
        let c = SeededNoise::new(8).normal(1001);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn normal_draws_have_unit_moments() {
        let x = SeededNoise::new(1).normal(200_000);
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "var {var}");
    }

    #[test]
    fn uniform_draws_cover_unit_interval() {
        let u = SeededNoise::new(3).uniform(100_000);
        assert!(u.iter().all(|&v| (0.0..1.0).contains(&v)));
        let below_quarter = u.iter().filter(|&&v| v < 0.25).count() as f64 / u.len() as f64;
        assert!((below_quarter - 0.25).abs() < 0.01);
    }
}
