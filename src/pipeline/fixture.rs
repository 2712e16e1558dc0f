//! Parity fixtures: a tiny model run through the published VARSR code, with every intermediate value it
//! recorded (layout in `tests/fixtures/parity/README.md`: `VARSR.pth`, `VQVAE.pth`, `config.json`,
//! `reference.safetensors`). Loading one, running our pipeline on it with the recorded refiner noise
//! replayed, and measuring how far each recorded quantity is from ours. The parity test and
//! `varsr parity` both use this, so that what CI checks and what a GPU machine reports are the same thing.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Tensor};

use super::engine::Engine;
use super::{Error, Noise, Observer, Result, SamplingParams, refiner};

pub const REFERENCE_FILE: &str = "reference.safetensors";
pub const CONFIG_FILE: &str = "config.json";

/// Whether `dir` holds a fixture (its recorded values and settings; the weights are checked on load).
pub fn is_fixture(dir: &Path) -> bool {
    dir.join(REFERENCE_FILE).is_file() && dir.join(CONFIG_FILE).is_file()
}

/// The fixture folders named by `paths`: each is a fixture itself or a folder of fixtures (its direct
/// sub-folders, sorted). A path that is neither is an error, so that a typo does not pass as "nothing
/// to check".
pub fn find(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for path in paths {
        if is_fixture(path) {
            found.push(path.clone());
            continue;
        }
        let entries = std::fs::read_dir(path).map_err(|e| {
            Error::Invalid(format!("{}: not a fixture folder ({e})", path.display()))
        })?;
        let mut inner: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_fixture(p))
            .collect();
        if inner.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: neither a fixture ({REFERENCE_FILE} and {CONFIG_FILE}) nor a folder of fixtures",
                path.display()
            )));
        }
        inner.sort();
        found.extend(inner);
    }
    found.dedup();
    Ok(found)
}

/// One fixture's settings and recorded values (held on the CPU).
pub struct Fixture {
    pub dir: PathBuf,
    pub name: String,
    /// `config.json`: the sizes and sampling settings the reference ran with.
    pub config: serde_json::Value,
    pub reference: HashMap<String, Tensor>,
}

impl Fixture {
    pub fn load(dir: &Path) -> Result<Fixture> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        let text = std::fs::read_to_string(dir.join(CONFIG_FILE))
            .map_err(|e| Error::Invalid(format!("{name}: cannot read {CONFIG_FILE}: {e}")))?;
        let config = serde_json::from_str(&text)
            .map_err(|e| Error::Invalid(format!("{name}: {CONFIG_FILE} is not JSON: {e}")))?;
        let reference = candle_core::safetensors::load(dir.join(REFERENCE_FILE), &Device::Cpu)
            .map_err(|e| Error::Invalid(format!("{name}: cannot read {REFERENCE_FILE}: {e}")))?;
        Ok(Fixture {
            dir: dir.to_path_buf(),
            name,
            config,
            reference,
        })
    }

    /// A recorded tensor.
    pub fn get(&self, key: &str) -> Result<&Tensor> {
        self.reference
            .get(key)
            .ok_or_else(|| Error::Invalid(format!("{}: reference lacks `{key}`", self.name)))
    }

    fn number(&self, key: &str) -> Result<f64> {
        self.config[key].as_f64().ok_or_else(|| {
            Error::Invalid(format!(
                "{}: {CONFIG_FILE} lacks the number `{key}`",
                self.name
            ))
        })
    }

    /// The sampling settings of the reference run. The seed is unused: top-k 1 draws nothing, and the
    /// refiner's draws are replayed.
    pub fn params(&self) -> Result<SamplingParams> {
        Ok(SamplingParams {
            cfg: self.number("cfg")? as f32,
            top_k: self.number("top_k")? as usize,
            top_p: self.number("top_p")? as f32,
            seed: 0,
        })
    }

    /// The refiner's recorded draws in the order our sampler asks for them: the initial noise, then one
    /// per step except the last (which the reference multiplies by zero, and we do not draw).
    pub fn noise_draws(&self) -> Result<Vec<Vec<f32>>> {
        let mut keys = vec!["refiner_noise_init".to_string()];
        keys.extend((0..refiner::STEPS - 1).map(|i| format!("refiner_noise_step{i}")));
        keys.iter()
            .map(|k| Ok(self.get(k)?.flatten_all()?.to_vec1::<f32>()?))
            .collect()
    }

    /// Sizes the engine read from the checkpoint's shapes that disagree with `config.json`.
    pub fn config_mismatches(&self, engine: &Engine) -> Vec<String> {
        let vc = &engine.var.config;
        let mut out = Vec::new();
        let mut check = |what: &str, ours: u64, key: &str| {
            if let Some(want) = self.config[key].as_u64().filter(|&w| w != ours) {
                out.push(format!(
                    "{}: {what} read from the shapes is {ours}, {CONFIG_FILE} says {want}",
                    self.name
                ));
            }
        };
        check("depth", vc.depth as u64, "depth");
        check("width", vc.embed_dim as u64, "embed_dim");
        let patch_nums: Option<Vec<usize>> = self.config["patch_nums"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_u64().unwrap_or(0) as usize).collect());
        if let Some(p) = patch_nums
            && p != vc.patch_nums
        {
            out.push(format!(
                "{}: the model's scales are {:?}, {CONFIG_FILE} says {p:?}",
                self.name, vc.patch_nums
            ));
        }
        out
    }

    /// Runs the LR encoder alone, then the whole scale loop and the refiner with the recorded noise
    /// replayed, then the decoder, on `engine` (its device and precision).
    pub fn run(&self, engine: &Engine) -> Result<FixtureRun> {
        let dtype = engine.var.dtype();
        let lr = self.get("lr_input")?.to_device(&engine.device)?;
        let prefix = engine
            .var
            .con_embedding
            .forward(&lr.to_dtype(dtype)?)?
            .to_dtype(DType::F32)?;
        let mut noise = Replay::new(self.noise_draws()?);
        let mut taps = Taps::default();
        let out = engine.generate(&lr, &self.params()?, &[], &mut noise, &mut taps, (0, 1))?;
        if let Some(problem) = noise.problem() {
            return Err(Error::Invalid(format!("{}: {problem}", self.name)));
        }
        let image = engine
            .decode(&out.f_hat.to_dtype(dtype)?)?
            .to_dtype(DType::F32)?;
        Ok(FixtureRun {
            prefix,
            tokens: out.tokens,
            taps: taps.0,
            image,
            unused_draws: noise.remaining(),
        })
    }
}

/// What our pipeline produced for a fixture.
pub struct FixtureRun {
    /// LR encoder output `(B, prefix, C)`.
    pub prefix: Tensor,
    /// Token ids per scale, `(B, pn²)`.
    pub tokens: Vec<Tensor>,
    /// The tapped intermediate values (`guided_logits_s{k}`, `f_hat_after_s{k}`, `refiner_cond`,
    /// `refiner_out`).
    pub taps: HashMap<String, Tensor>,
    /// Decoded image `(B, 3, H, W)` in [0, 1].
    pub image: Tensor,
    /// Recorded draws the run did not ask for (0 when our sampler draws what the reference drew).
    pub unused_draws: usize,
}

impl FixtureRun {
    pub fn tap(&self, key: &str) -> Result<&Tensor> {
        self.taps
            .get(key)
            .ok_or_else(|| Error::Invalid(format!("the pipeline did not report `{key}`")))
    }
}

/// Hands out recorded refiner noise in order. Only the guided half of each draw is used (the first
/// `n` values). Asking for more than was recorded, or for uniforms (top-k 1 draws none), is noted and
/// answered with zeros, since [`Noise`] cannot fail; [`Fixture::run`] turns the note into an error.
pub struct Replay {
    draws: VecDeque<Vec<f32>>,
    problem: Option<String>,
}

impl Replay {
    pub fn new(draws: Vec<Vec<f32>>) -> Self {
        Self {
            draws: draws.into(),
            problem: None,
        }
    }

    /// Draws not asked for yet.
    pub fn remaining(&self) -> usize {
        self.draws.len()
    }

    /// What went wrong while replaying, if anything.
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    fn note(&mut self, problem: String) {
        self.problem.get_or_insert(problem);
    }
}

impl Noise for Replay {
    fn normal(&mut self, n: usize) -> Vec<f32> {
        match self.draws.pop_front() {
            Some(d) if d.len() >= n => d[..n].to_vec(),
            Some(d) => {
                self.note(format!(
                    "a recorded draw has {} values, {n} requested",
                    d.len()
                ));
                vec![0.0; n]
            }
            None => {
                self.note("the pipeline asked for more noise than the fixture recorded".into());
                vec![0.0; n]
            }
        }
    }

    fn uniform(&mut self, n: usize) -> Vec<f32> {
        self.note("the pipeline drew uniforms, which top-k 1 never needs".into());
        vec![0.0; n]
    }
}

/// Keeps every tapped value.
#[derive(Default)]
pub struct Taps(pub HashMap<String, Tensor>);

impl Observer for Taps {
    fn tap(&mut self, name: &str, value: &Tensor) {
        self.0.insert(name.to_string(), value.clone());
    }
    fn wants_taps(&self) -> bool {
        true
    }
}

/// Largest absolute difference, in f32 on the CPU; NaN when either side holds a non-finite value (so that
/// no tolerance passes it). Tensors of different shapes are an error.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    if a.dims() != b.dims() {
        return Err(Error::Invalid(format!(
            "shape mismatch: {:?} vs {:?}",
            a.dims(),
            b.dims()
        )));
    }
    let flat = |t: &Tensor| -> Result<Vec<f32>> {
        Ok(t.to_device(&Device::Cpu)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    };
    let (a, b) = (flat(a)?, flat(b)?);
    let mut worst = 0f32;
    for (x, y) in a.iter().zip(&b) {
        if !x.is_finite() || !y.is_finite() {
            return Ok(f32::NAN);
        }
        worst = worst.max((x - y).abs());
    }
    Ok(worst)
}

/// The largest differences the parity test accepts for an f32 run (the fixtures README's expectations).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerances {
    pub prefix: f32,
    pub logits: f32,
    pub latents: f32,
    pub refiner: f32,
    pub image: f32,
}

impl Tolerances {
    pub const F32: Tolerances = Tolerances {
        prefix: 1e-4,
        logits: 1e-4,
        latents: 1e-4,
        refiner: 1e-4,
        image: 1e-3,
    };
}

/// One scale's agreement with the reference.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleAgreement {
    pub scale: usize,
    pub pn: usize,
    /// Token ids equal to the reference's, out of `total` (all batch items).
    pub identical: usize,
    pub total: usize,
    /// Max |Δ| of the guided logits, for the scales the reference recorded them.
    pub logits: Option<f32>,
    /// Max |Δ| of the accumulated latent after this scale.
    pub latent: f32,
}

impl ScaleAgreement {
    pub fn percent(&self) -> f64 {
        100.0 * self.identical as f64 / self.total.max(1) as f64
    }

    pub fn all_identical(&self) -> bool {
        self.identical == self.total
    }
}

/// How far a run is from the reference, quantity by quantity.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub scales: Vec<ScaleAgreement>,
    pub prefix: f32,
    pub refiner_cond: f32,
    pub refiner_out: f32,
    pub image: f32,
    pub unused_draws: usize,
}

impl Comparison {
    pub fn new(fixture: &Fixture, run: &FixtureRun, patch_nums: &[usize]) -> Result<Comparison> {
        let want = fixture.get("prefix_tokens")?;
        let (b, c, h, w) = want.dims4()?;
        let want = want.reshape((b, c, h * w))?.transpose(1, 2)?;
        let prefix = max_abs_diff(&run.prefix, &want)?;

        let mut scales = Vec::with_capacity(patch_nums.len());
        for (si, &pn) in patch_nums.iter().enumerate() {
            let ids = |t: &Tensor| -> Result<Vec<i64>> {
                Ok(t.to_device(&Device::Cpu)?
                    .to_dtype(DType::I64)?
                    .flatten_all()?
                    .to_vec1::<i64>()?)
            };
            let want = ids(fixture.get(&format!("tokens_s{si}"))?)?;
            let got = ids(run
                .tokens
                .get(si)
                .ok_or_else(|| Error::Invalid(format!("the run has no tokens for scale {si}")))?)?;
            if want.len() != got.len() {
                return Err(Error::Invalid(format!(
                    "scale {si}: {} token ids, the reference has {}",
                    got.len(),
                    want.len()
                )));
            }
            let key = format!("guided_logits_s{si}");
            let logits = match fixture.reference.get(&key) {
                Some(want) => Some(max_abs_diff(run.tap(&key)?, want)?),
                None => None,
            };
            let key = format!("f_hat_after_s{si}");
            let latent = max_abs_diff(run.tap(&key)?, fixture.get(&key)?)?;
            scales.push(ScaleAgreement {
                scale: si,
                pn,
                identical: want.iter().zip(&got).filter(|(a, b)| a == b).count(),
                total: want.len(),
                logits,
                latent,
            });
        }

        let refiner_cond = max_abs_diff(run.tap("refiner_cond")?, fixture.get("refiner_cond")?)?;
        // The reference keeps both branches' rows; only the guided half is the output.
        let ours = run.tap("refiner_out")?;
        let n = ours.dims()[0];
        let refiner_out = max_abs_diff(ours, &fixture.get("refiner_out")?.i(0..n)?)?;
        let image = max_abs_diff(&run.image, fixture.get("output_image")?)?;
        Ok(Comparison {
            scales,
            prefix,
            refiner_cond,
            refiner_out,
            image,
            unused_draws: run.unused_draws,
        })
    }

    pub fn tokens_identical(&self) -> bool {
        self.scales.iter().all(ScaleAgreement::all_identical)
    }

    /// The first scale whose tokens differ (the place to start looking, per the fixtures README).
    pub fn first_token_difference(&self) -> Option<usize> {
        self.scales
            .iter()
            .find(|s| !s.all_identical())
            .map(|s| s.scale)
    }

    /// Identical token ids over all scales, in percent.
    pub fn token_percent(&self) -> f64 {
        let (same, total) = self
            .scales
            .iter()
            .fold((0, 0), |(s, t), a| (s + a.identical, t + a.total));
        100.0 * same as f64 / total.max(1) as f64
    }

    pub fn worst_logits(&self) -> f32 {
        worst(self.scales.iter().filter_map(|s| s.logits))
    }

    pub fn worst_latent(&self) -> f32 {
        worst(self.scales.iter().map(|s| s.latent))
    }

    /// Whether every compared value was finite on our side (a NaN difference means it was not).
    pub fn finite(&self) -> bool {
        let all = [self.prefix, self.refiner_cond, self.refiner_out, self.image];
        all.iter().all(|d| d.is_finite())
            && self
                .scales
                .iter()
                .all(|s| s.latent.is_finite() && s.logits.is_none_or(f32::is_finite))
    }

    /// The quantities beyond `tol`, one line each.
    pub fn beyond(&self, tol: &Tolerances) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |what: String, d: f32, t: f32| {
            if d.is_nan() || d > t {
                out.push(format!("{what} differs by {d:.2e} (tolerance {t:.0e})"));
            }
        };
        check("LR encoder output".into(), self.prefix, tol.prefix);
        for s in &self.scales {
            if let Some(d) = s.logits {
                check(format!("guided_logits_s{}", s.scale), d, tol.logits);
            }
            check(format!("f_hat_after_s{}", s.scale), s.latent, tol.latents);
        }
        check("refiner condition".into(), self.refiner_cond, tol.refiner);
        check("refiner output".into(), self.refiner_out, tol.refiner);
        check("decoded image".into(), self.image, tol.image);
        out
    }
}

/// Largest of some differences, NaN if any is NaN.
fn worst(values: impl Iterator<Item = f32>) -> f32 {
    values.fold(0f32, |w, d| {
        if d.is_nan() || w.is_nan() {
            f32::NAN
        } else {
            w.max(d)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_exact_and_non_finite_values_never_pass() {
        let a = Tensor::new(&[1.0f32, 2.0, -3.0], &Device::Cpu).unwrap();
        let b = Tensor::new(&[1.5f32, 2.0, -3.25], &Device::Cpu).unwrap();
        assert_eq!(max_abs_diff(&a, &b).unwrap(), 0.5);
        let nan = Tensor::new(&[1.0f32, f32::NAN, 0.0], &Device::Cpu).unwrap();
        assert!(max_abs_diff(&nan, &b).unwrap().is_nan());
        let inf = Tensor::new(&[f32::INFINITY, 2.0, -3.0], &Device::Cpu).unwrap();
        assert!(max_abs_diff(&a, &inf).unwrap().is_nan());
        let short = Tensor::new(&[1.0f32, 2.0], &Device::Cpu).unwrap();
        assert!(max_abs_diff(&a, &short).is_err());
        assert!(worst([1.0, f32::NAN, 3.0].into_iter()).is_nan());
        assert_eq!(worst([1.0, 3.0, 2.0].into_iter()), 3.0);
    }

    #[test]
    fn replay_hands_out_draws_in_order_and_notes_overdraws() {
        let mut r = Replay::new(vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0]]);
        assert_eq!(r.normal(2), vec![1.0, 2.0]);
        assert_eq!(r.remaining(), 1);
        assert!(r.problem().is_none());
        assert_eq!(r.normal(3), vec![0.0; 3]);
        assert!(r.problem().unwrap().contains("2 values"));
        assert_eq!(r.normal(1), vec![0.0]);
        assert_eq!(Replay::new(vec![]).uniform(2), vec![0.0; 2]);
    }

    #[test]
    fn agreement_counts_and_tolerances() {
        let scale = |identical, logits, latent| ScaleAgreement {
            scale: 0,
            pn: 2,
            identical,
            total: 4,
            logits,
            latent,
        };
        let mut c = Comparison {
            scales: vec![scale(4, Some(1e-5), 1e-6), scale(3, None, 2e-4)],
            prefix: 0.0,
            refiner_cond: 0.0,
            refiner_out: 0.0,
            image: 5e-4,
            unused_draws: 0,
        };
        c.scales[1].scale = 1;
        assert!(!c.tokens_identical());
        assert_eq!(c.first_token_difference(), Some(1));
        assert_eq!(c.token_percent(), 87.5);
        assert_eq!(c.scales[1].percent(), 75.0);
        let beyond = c.beyond(&Tolerances::F32);
        assert_eq!(beyond.len(), 1, "{beyond:?}");
        assert!(beyond[0].contains("f_hat_after_s1"));
        assert!(c.finite());
        c.image = f32::NAN;
        assert!(!c.finite());
        assert_eq!(c.beyond(&Tolerances::F32).len(), 2);
    }
}
