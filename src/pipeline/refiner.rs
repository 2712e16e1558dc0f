//! The diffusion refiner's sampler: the cosine schedule respaced to 10 steps, learned-range variance,
//! x₀ clamp, HART's guidance `(1+s)·ε_c − s·ε_u`, output ×0.6 (models/diffusion/*, var.py L349-365).

use candle_core::{Device, Tensor};

use super::{Error, Noise, Observer, Progress};
use crate::model::diffloss::SimpleMlpAdaLn;

/// Training steps of the cosine schedule.
pub const TRAIN_STEPS: usize = 1000;
/// Respaced sampling steps.
pub const STEPS: usize = 10;
/// `vae_scale`: the refiner works on the residual divided by 0.6.
pub const VAE_SCALE: f64 = 0.6;

/// Per-step tables of the respaced schedule, float64 as the reference builds them.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub timestep_map: Vec<usize>,
    pub betas: Vec<f64>,
    pub alphas_cumprod: Vec<f64>,
    pub post_logvar_clipped: Vec<f64>,
    pub post_mean_coef1: Vec<f64>,
    pub post_mean_coef2: Vec<f64>,
    pub sqrt_recip_ac: Vec<f64>,
    pub sqrt_recipm1_ac: Vec<f64>,
    pub log_betas: Vec<f64>,
}

fn cosine_alpha_bar(t: f64) -> f64 {
    ((t + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2)
        .cos()
        .powi(2)
}

/// `space_timesteps(T, "n")`: n evenly spaced indices, rounded.
pub fn spaced_timesteps(train_steps: usize, n: usize) -> Vec<usize> {
    if n <= 1 {
        return vec![0];
    }
    let stride = (train_steps - 1) as f64 / (n - 1) as f64;
    (0..n)
        .map(|i| (i as f64 * stride).round() as usize)
        .collect()
}

impl Schedule {
    /// `create_diffusion(str(steps), 'cosine')` with learned sigma.
    pub fn cosine(train_steps: usize, steps: usize) -> Self {
        let full_betas: Vec<f64> = (0..train_steps)
            .map(|i| {
                let t1 = i as f64 / train_steps as f64;
                let t2 = (i + 1) as f64 / train_steps as f64;
                (1.0 - cosine_alpha_bar(t2) / cosine_alpha_bar(t1)).min(0.999)
            })
            .collect();
        let mut ac = 1.0;
        let full_ac: Vec<f64> = full_betas
            .iter()
            .map(|b| {
                ac *= 1.0 - b;
                ac
            })
            .collect();
        let timestep_map = spaced_timesteps(train_steps, steps);
        let mut last = 1.0;
        let betas: Vec<f64> = timestep_map
            .iter()
            .map(|&t| {
                let b = 1.0 - full_ac[t] / last;
                last = full_ac[t];
                b
            })
            .collect();
        Self::from_betas(timestep_map, betas)
    }

    fn from_betas(timestep_map: Vec<usize>, betas: Vec<f64>) -> Self {
        let n = betas.len();
        let mut acc = 1.0;
        let alphas_cumprod: Vec<f64> = betas
            .iter()
            .map(|b| {
                acc *= 1.0 - b;
                acc
            })
            .collect();
        let prev = |i: usize| if i == 0 { 1.0 } else { alphas_cumprod[i - 1] };
        let post_var: Vec<f64> = (0..n)
            .map(|i| betas[i] * (1.0 - prev(i)) / (1.0 - alphas_cumprod[i]))
            .collect();
        let post_logvar_clipped = (0..n)
            .map(|i| {
                if i == 0 {
                    post_var[1.min(n - 1)].ln()
                } else {
                    post_var[i].ln()
                }
            })
            .collect();
        Self {
            post_mean_coef1: (0..n)
                .map(|i| betas[i] * prev(i).sqrt() / (1.0 - alphas_cumprod[i]))
                .collect(),
            post_mean_coef2: (0..n)
                .map(|i| (1.0 - prev(i)) * (1.0 - betas[i]).sqrt() / (1.0 - alphas_cumprod[i]))
                .collect(),
            sqrt_recip_ac: alphas_cumprod.iter().map(|a| (1.0 / a).sqrt()).collect(),
            sqrt_recipm1_ac: alphas_cumprod
                .iter()
                .map(|a| (1.0 / a - 1.0).sqrt())
                .collect(),
            log_betas: betas.iter().map(|b| b.ln()).collect(),
            post_logvar_clipped,
            alphas_cumprod,
            betas,
            timestep_map,
        }
    }

    pub fn release() -> Self {
        Self::cosine(TRAIN_STEPS, STEPS)
    }
}

/// Where the refiner's intermediate values go (the parity test replays and checks them).
pub struct RefinerIo<'a> {
    pub noise: &'a mut dyn Noise,
    pub observer: &'a mut dyn Observer,
    pub tile: (usize, usize),
}

/// Samples the refined residual for the condition rows `z` `(2N, C)` (guided rows first): returns
/// `(N, Cvae)` already multiplied by 0.6.
pub fn sample(
    net: &SimpleMlpAdaLn,
    z: &Tensor,
    cfg: f32,
    schedule: &Schedule,
    io: RefinerIo,
) -> super::Result<Tensor> {
    let dev: &Device = z.device();
    let dtype = net.dtype();
    let two_n = z.dims()[0];
    let n = two_n / 2;
    let c = net.target_channels();
    let c_emb = net.embed_cond(&z.to_dtype(dtype)?)?;
    let mut x = Tensor::from_vec(io.noise.normal(n * c), (n, c), dev)?;
    let steps = schedule.betas.len();
    let cfg = cfg as f64;
    for (done, i) in (0..steps).rev().enumerate() {
        if io.observer.cancelled() {
            return Err(Error::Cancelled);
        }
        let t_emb = net
            .time_embed
            .forward(schedule.timestep_map[i] as f32, dev)?
            .to_dtype(dtype)?;
        let both = Tensor::cat(&[&x, &x], 0)?.to_dtype(dtype)?;
        let out = net
            .forward(&both, &t_emb, &c_emb)?
            .to_dtype(candle_core::DType::F32)?;
        let eps_c = out.narrow(0, 0, n)?.narrow(1, 0, c)?;
        let eps_u = out.narrow(0, n, n)?.narrow(1, 0, c)?;
        let var_values = out.narrow(0, 0, n)?.narrow(1, c, c)?;
        let eps = ((eps_c * (1.0 + cfg))? - (eps_u * cfg)?)?;
        let f = |v: f64| v as f32 as f64;
        let x0 = ((&x * f(schedule.sqrt_recip_ac[i]))? - (eps * f(schedule.sqrt_recipm1_ac[i]))?)?
            .clamp(-1f32, 1f32)?;
        let mean =
            ((x0 * f(schedule.post_mean_coef1[i]))? + (&x * f(schedule.post_mean_coef2[i]))?)?;
        x = if i == 0 {
            mean
        } else {
            let frac = ((var_values + 1.0)? / 2.0)?;
            let min_log = f(schedule.post_logvar_clipped[i]);
            let max_log = f(schedule.log_betas[i]);
            let logvar = ((&frac * max_log)? + ((frac.neg()? + 1.0)? * min_log)?)?;
            let z = Tensor::from_vec(io.noise.normal(n * c), (n, c), dev)?;
            (mean + ((logvar * 0.5)?.exp()? * z)?)?
        };
        io.observer.progress(&Progress::Refiner {
            tile: io.tile.0,
            num_tiles: io.tile.1,
            step: done + 1,
            steps,
        });
    }
    Ok((x * VAE_SCALE)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference §4.6, from the official `create_diffusion('10', 'cosine')`.
    #[test]
    fn respaced_tables_match_the_published_values() {
        let s = Schedule::release();
        assert_eq!(
            s.timestep_map,
            vec![0, 111, 222, 333, 444, 555, 666, 777, 888, 999]
        );
        let close = |got: &[f64], want: &[f64], rel: f64| {
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                // The published table has 6-8 significant digits: allow half a unit of the 7th.
                assert!(
                    (g - w).abs() <= rel * w.abs() + 5e-8 * w.abs().max(1e-12) * 10.0,
                    "index {i}: {g} vs {w}"
                );
            }
        };
        close(
            &s.betas,
            &[
                4.1284e-05,
                3.43732e-02,
                9.27217e-02,
                1.53051e-01,
                2.19339e-01,
                2.97158e-01,
                3.95736e-01,
                5.32522e-01,
                7.42368e-01,
                9.9999992e-01,
            ],
            1e-5,
        );
        close(
            &s.alphas_cumprod,
            &[
                0.99995872,
                0.96558694,
                0.87605605,
                0.74197475,
                0.57923060,
                0.40710746,
                0.24600056,
                0.11499975,
                0.02962760,
                2.4287669e-09,
            ],
            1e-6,
        );
        close(
            &s.post_logvar_clipped,
            &[
                -10.0961892,
                -10.0961892,
                -3.6595457,
                -2.6102118,
                -2.0061634,
                -1.5564188,
                -1.1673875,
                -0.7903266,
                -0.3900020,
                -0.0300754,
            ],
            1e-6,
        );
        close(
            &s.post_mean_coef1,
            &[
                1.0, 0.99882095, 0.73510919, 0.55518798, 0.44902103, 0.38144991, 0.33487953,
                0.29844377, 0.25943548, 0.17212667,
            ],
            1e-6,
        );
        close(
            &s.post_mean_coef2[1..],
            &[
                1.17887e-03,
                0.26446504,
                0.44207071,
                0.54181277,
                0.59497258,
                0.61124944,
                0.58251625,
                0.46291868,
                2.7783e-04,
            ],
            1e-4,
        );
        assert_eq!(s.post_mean_coef2[0], 0.0);
        close(
            &s.sqrt_recip_ac,
            &[
                1.00002064, 1.01766376, 1.06840043, 1.16092840, 1.31393612, 1.56727594, 2.01619231,
                2.94884227, 5.80967433, 20291.1696,
            ],
            1e-6,
        );
        close(
            &s.sqrt_recipm1_ac,
            &[
                6.42541e-03,
                0.18878435,
                0.37613757,
                0.58970735,
                0.85230753,
                1.20679488,
                1.75072312,
                2.77410720,
                5.72296390,
                20291.1696,
            ],
            1e-5,
        );
        close(
            &s.log_betas[..9],
            &[
                -10.0950301,
                -3.3704781,
                -2.3781525,
                -1.8769838,
                -1.5171359,
                -1.2134905,
                -0.9270090,
                -0.6301303,
                -0.2979100,
            ],
            1e-6,
        );
        assert!((s.log_betas[9] - -8.1977e-08).abs() < 1e-11);
    }
}
