//! The scale loop (`VAR_RoPE.autoregressive_infer_cfg`, models/var.py L261-366): encode the LR image,
//! predict each scale's tokens with ramped guidance, accumulate them into the latent, refine the last
//! scale with the diffusion head.

use candle_core::{DType, IndexOp, Tensor};

use super::engine::{Engine, Generated};
use super::events::{Progress, ScaleEvent};
use super::refiner::{self, RefinerIo, Schedule};
use super::{Error, Noise, Observer, Result, SamplingParams, preview, sampling};
use crate::model::transformer::KvCache;

pub fn generate(
    engine: &Engine,
    lr: &Tensor,
    params: &SamplingParams,
    locked: &[Tensor],
    noise: &mut dyn Noise,
    observer: &mut dyn Observer,
    tile: (usize, usize),
) -> Result<Generated> {
    let var = &engine.var;
    let quant = &engine.vae.quantize;
    let cfg = &var.config;
    let pns = cfg.patch_nums.clone();
    let k = pns.len();
    let last = cfg.final_side();
    let (b, ch, hh, ww) = lr.dims4()?;
    let side = engine.tile_px();
    if ch != 3 || hh != side || ww != side {
        return Err(Error::Invalid(format!(
            "the model takes 3×{side}×{side} inputs, got {ch}×{hh}×{ww}"
        )));
    }
    if locked.len() > k {
        return Err(Error::Invalid(format!(
            "{} locked scales but the model has {k}",
            locked.len()
        )));
    }
    observer.progress(&Progress::Encoding {
        tile: tile.0,
        num_tiles: tile.1,
    });
    let cond = var.conditioning(b)?;
    let mut x = var.first_input(lr, &cond)?;
    let mut caches: Vec<KvCache> = (0..cfg.depth).map(|_| KvCache::default()).collect();
    let mut f_hat = Tensor::zeros((b, cfg.cvae, last, last), DType::F32, lr.device())?;
    let mut pos = 0;
    let mut tokens = Vec::with_capacity(k);
    let reporter = Reporter {
        engine,
        // A residual model's previews show its detail on top of the LR at the latent's resolution.
        base: match engine.is_residual() && observer.wants_previews() {
            true => Some(((crate::ops::resample::area(lr, last, last)? + 1.0)? * 0.5)?),
            false => None,
        },
        num_scales: k,
        tile,
    };
    for (si, &pn) in pns.iter().enumerate() {
        if observer.cancelled() {
            return Err(Error::Cancelled);
        }
        let is_last = si + 1 == k;
        let l = x.dims()[1];
        let h = var.blocks_forward(&x, &cond, pos, &mut caches, !is_last)?;
        pos += l;
        let idx = match locked.get(si) {
            Some(t) => t.to_device(lr.device())?,
            None => {
                // The first step's input is the prefix plus the class token; only the class token predicts.
                let hq = if si == 0 {
                    h.narrow(1, l - 1, 1)?
                } else {
                    h.clone()
                };
                let logits = var.logits(&hq, &cond)?;
                let t = (params.cfg as f64) * si as f64 / (k - 1).max(1) as f64;
                choose_tokens(&logits, t, params, noise, observer, si)?
            }
        };
        let hmap = quant.lookup_map(&idx, pn)?;
        if is_last {
            f_hat = (f_hat + hmap)?;
            if observer.wants_taps() {
                observer.tap(&format!("f_hat_after_s{si}"), &f_hat);
            }
            let z = var.refiner_condition(&h, &quant.lookup(&idx)?)?;
            drop(caches);
            drop(h);
            if observer.wants_taps() {
                observer.tap("refiner_cond", &z);
            }
            let io = RefinerIo {
                noise: &mut *noise,
                observer: &mut *observer,
                tile,
            };
            let r = refiner::sample(&var.diffloss.net, &z, params.cfg, &Schedule::release(), io)?;
            if observer.wants_taps() {
                observer.tap("refiner_out", &r);
            }
            let r = r
                .reshape((b, pn * pn, cfg.cvae))?
                .transpose(1, 2)?
                .reshape((b, cfg.cvae, pn, pn))?;
            f_hat = (f_hat + r)?;
            reporter.scale(observer, &f_hat, &idx, si, pn)?;
            tokens.push(idx);
            break;
        }
        let (f, next) = quant.accumulate(&f_hat, &hmap, si, &pns)?;
        f_hat = f;
        if observer.wants_taps() {
            observer.tap(&format!("f_hat_after_s{si}"), &f_hat);
        }
        reporter.scale(observer, &f_hat, &idx, si, pn)?;
        tokens.push(idx);
        if let Some(next) = next {
            x = var.scale_input(&next, si + 1)?;
        }
    }
    Ok(Generated { f_hat, tokens })
}

/// Tokens from a scale's logits `(2B, L, V)` with guidance weight `t`: `(1 + t)·cond − t·uncond`, then
/// top-k/top-p sampling. Argmax needs only the guided maximum, found in one pass; the parity test's
/// taps need the guided tensor itself.
fn choose_tokens(
    logits: &Tensor,
    t: f64,
    params: &SamplingParams,
    noise: &mut dyn Noise,
    observer: &mut dyn Observer,
    si: usize,
) -> Result<Tensor> {
    if params.top_k == 1
        && !observer.wants_taps()
        && let Some(ids) = sampling::guided_argmax(logits, t)?
    {
        return Ok(ids);
    }
    let b = logits.dim(0)? / 2;
    let guided = ((logits.i(0..b)? * (1.0 + t))? - (logits.i(b..2 * b)? * t)?)?;
    if observer.wants_taps() {
        observer.tap(&format!("guided_logits_s{si}"), &guided);
    }
    Ok(sampling::sample(
        &guided,
        params.top_k,
        params.top_p,
        noise,
    )?)
}

/// Reports finished scales of one batch of tiles to the observer.
struct Reporter<'a> {
    engine: &'a Engine,
    /// What previews add the mapped latent to (a residual model's LR), `(B, 3, h, w)` in [0, 1].
    base: Option<Tensor>,
    num_scales: usize,
    tile: (usize, usize),
}

impl Reporter<'_> {
    fn scale(
        &self,
        observer: &mut dyn Observer,
        f_hat: &Tensor,
        idx: &Tensor,
        si: usize,
        pn: usize,
    ) -> Result<()> {
        let previews = if observer.wants_previews() {
            preview::latent_previews(self.engine, f_hat, self.base.as_ref())?
        } else {
            Vec::new()
        };
        let tokens = idx.to_dtype(DType::U32)?.to_vec2::<u32>()?;
        observer.scale_done(&ScaleEvent {
            tile: self.tile.0,
            num_tiles: self.tile.1,
            scale: si,
            num_scales: self.num_scales,
            pn,
            tokens,
            previews,
        });
        Ok(())
    }
}
