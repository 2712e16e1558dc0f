//! The refiner's training loss (MAR/IDDPM `training_losses` with learned-range variance): ε-MSE plus
//! the variational bound term on the variance with ε frozen, on the 1000-step cosine schedule the
//! sampler in `pipeline::refiner` respaces. At t = 0 the KL to the posterior replaces IDDPM's
//! discretised-image likelihood (the targets are latents, not 8-bit pixels).

use candle_core::{D, DType, Device, IndexOp, Result, Tensor};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::model::diffloss::SimpleMlpAdaLn;
use crate::pipeline::refiner::{Schedule, TRAIN_STEPS};

pub struct DiffusionLoss {
    pub schedule: Schedule,
    /// Distinct timesteps drawn per call (rows are split among them).
    pub timesteps_per_call: usize,
}

/// Loss parts, each a scalar tensor.
pub struct DiffusionTerms {
    pub mse: Tensor,
    pub vb: Tensor,
}

fn column(values: &[f64], rows: &[usize], dev: &Device) -> Result<Tensor> {
    let v: Vec<f32> = rows.iter().map(|&t| values[t] as f32).collect();
    Tensor::from_vec(v, (rows.len(), 1), dev)
}

impl Default for DiffusionLoss {
    fn default() -> Self {
        Self {
            schedule: Schedule::cosine(TRAIN_STEPS, TRAIN_STEPS),
            timesteps_per_call: 32,
        }
    }
}

impl DiffusionLoss {
    /// `x0` `(N, C)` targets, `cond` `(N, Cz)` condition rows.
    pub fn terms(
        &self,
        net: &SimpleMlpAdaLn,
        x0: &Tensor,
        cond: &Tensor,
        rng: &mut impl Rng,
    ) -> Result<DiffusionTerms> {
        let dev = x0.device();
        let (n, c) = x0.dims2()?;
        let s = &self.schedule;
        let groups = self.timesteps_per_call.clamp(1, n);
        let ts: Vec<usize> = (0..groups)
            .map(|_| rng.random_range(0..TRAIN_STEPS))
            .collect();
        let group_of: Vec<u32> = (0..n).map(|i| (i * groups / n) as u32).collect();
        let rows: Vec<usize> = group_of.iter().map(|&g| ts[g as usize]).collect();
        let t_embs = ts
            .iter()
            .map(|&t| net.time_embed.forward(t as f32, dev))
            .collect::<Result<Vec<_>>>()?;
        let t_emb =
            Tensor::cat(&t_embs, 0)?.index_select(&Tensor::from_vec(group_of, n, dev)?, 0)?;

        let sqrt_ac: Vec<f64> = s.alphas_cumprod.iter().map(|a| a.sqrt()).collect();
        let sqrt_1mac: Vec<f64> = s.alphas_cumprod.iter().map(|a| (1.0 - a).sqrt()).collect();
        let noise: Vec<f32> = (0..n * c).map(|_| StandardNormal.sample(rng)).collect();
        let noise = Tensor::from_vec(noise, (n, c), dev)?;
        let x_t = (x0.broadcast_mul(&column(&sqrt_ac, &rows, dev)?)?
            + noise.broadcast_mul(&column(&sqrt_1mac, &rows, dev)?)?)?;

        let c_emb = net.embed_cond(cond)?;
        let out = net.forward(&x_t, &t_emb, &c_emb)?.to_dtype(DType::F32)?;
        let eps = out.i((.., 0..c))?;
        let var_values = out.i((.., c..2 * c))?;
        let mse = (&noise - &eps)?.sqr()?.mean_all()?;

        let coef1 = column(&s.post_mean_coef1, &rows, dev)?;
        let coef2 = column(&s.post_mean_coef2, &rows, dev)?;
        let min_log = column(&s.post_logvar_clipped, &rows, dev)?;
        let max_log = column(&s.log_betas, &rows, dev)?;
        let frac = ((var_values + 1.0)? * 0.5)?;
        let model_logvar =
            (frac.broadcast_mul(&max_log)? + (frac.neg()? + 1.0)?.broadcast_mul(&min_log)?)?;
        let pred_x0 = (x_t.broadcast_mul(&column(&s.sqrt_recip_ac, &rows, dev)?)?
            - eps
                .detach()
                .broadcast_mul(&column(&s.sqrt_recipm1_ac, &rows, dev)?)?)?;
        let model_mean = (pred_x0.broadcast_mul(&coef1)? + x_t.broadcast_mul(&coef2)?)?;
        let true_mean = (x0.broadcast_mul(&coef1)? + x_t.broadcast_mul(&coef2)?)?;
        // KL(N(true_mean, e^min_log) ‖ N(model_mean, e^model_logvar)).
        let kl = ((model_logvar.broadcast_sub(&min_log)? - 1.0)?
            + min_log.broadcast_sub(&model_logvar)?.exp()?
            + (true_mean - model_mean)?
                .sqr()?
                .mul(&model_logvar.neg()?.exp()?)?)?;
        let vb = (kl.mean_all()? * (0.5 / std::f64::consts::LN_2))?;
        Ok(DiffusionTerms { mse, vb })
    }
}

/// Mean of `x` over the last dimension (helper for logging).
pub fn row_mean(x: &Tensor) -> Result<Tensor> {
    x.mean(D::Minus1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_schedule_is_the_cosine_one() {
        let s = DiffusionLoss::default().schedule;
        assert_eq!(s.betas.len(), 1000);
        // ᾱ(t) = f(t+1)/f(0), f(u) = cos²((u/1000 + 0.008)/1.008 · π/2), clipped β ≤ 0.999.
        let f = |u: f64| {
            ((u / 1000.0 + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2)
                .cos()
                .powi(2)
        };
        for t in [0usize, 10, 500, 900] {
            assert!(
                (s.alphas_cumprod[t] - f(t as f64 + 1.0) / f(0.0)).abs() < 1e-9,
                "t={t}"
            );
        }
        // Respacing to 10 steps keeps the published ᾱ at step 111.
        assert!((s.alphas_cumprod[111] - 0.96558694).abs() < 1e-6);
    }
}
