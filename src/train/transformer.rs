//! The SR transformer's training forward: the whole sequence at once (LR prefix, class token, then the
//! teacher-forced inputs of scales 1..K as VAR's `idxBl_to_var_input`) under the block-causal mask,
//! cross-entropy on every scale's tokens, and the refiner's diffusion loss on the last scale.

use candle_core::{D, DType, IndexOp, Module, Result, Tensor};
use rand::Rng;

use super::diffusion::DiffusionLoss;
use super::fast_modules::FastConEmbedding;
use super::tokenizer::Targets;
use crate::model::transformer::AttnContext;
use crate::model::var::Var;

/// Weight λ of the diffusion loss (the paper's 2).
pub const DIFFUSION_WEIGHT: f64 = 2.0;

pub struct Batch {
    /// `(B, 3, S, S)` in [-1, 1]: the degraded LR, upsampled to the tile size.
    pub lr: Tensor,
    /// `(B)` u32: 0 = high-quality target, 1 = low-quality target or dropped label.
    pub labels: Tensor,
    pub targets: Targets,
}

pub struct Losses {
    pub total: Tensor,
    pub ce: f32,
    pub diff_mse: f32,
    pub diff_vb: f32,
    /// The latent loss (see [`LossOptions::latent_weight`]) before its weight, when trained on.
    pub latent: Option<f32>,
    /// Share of last-scale tokens whose argmax is right.
    pub acc_last: f32,
    /// The same over the coarse half of the scales, whose tokens the LR image determines: it rises
    /// only once the model reads the LR prefix.
    pub acc_coarse: f32,
}

/// Output of the teacher-forced pass.
pub struct Forward {
    /// Logits of every scale's tokens, `(B, Σpn², V)`.
    pub logits: Tensor,
    /// Block output at the last scale's positions, `(B, pn², C)`.
    pub h_last: Tensor,
}

/// `enc` is the training twin of `var.con_embedding` (same tensors).
pub fn forward(
    var: &Var,
    enc: &FastConEmbedding,
    mask: &Tensor,
    lr: &Tensor,
    labels: &Tensor,
    next: &[Tensor],
    frozen_prefix: bool,
) -> Result<Forward> {
    let cfg = &var.config;
    let cond = var.class_emb.forward(labels)?;
    let e = enc.forward(lr)?;
    let e = if frozen_prefix { e.detach() } else { e };
    let p = e.dims()[1];
    let first = Tensor::cat(&[&e, &cond.unsqueeze(1)?], 1)?
        .broadcast_add(&var.pos_start)?
        .broadcast_add(&var.lvl_embed.embeddings().i(0)?)?;
    let mut parts = vec![first];
    for (si, nx) in next.iter().enumerate().take(cfg.patch_nums.len() - 1) {
        let (b, cv, h, w) = nx.dims4()?;
        let t = nx.reshape((b, cv, h * w))?.transpose(1, 2)?;
        parts.push(
            var.word_embed
                .forward(&t)?
                .broadcast_add(&var.lvl_embed.embeddings().i(si + 1)?)?,
        );
    }
    let mut x = Tensor::cat(&parts, 1)?;
    let l = x.dims()[1];
    let (cos, sin) = var.rope.slice(0, l)?;
    for blk in &var.blocks {
        let m = blk.modulation(&cond)?;
        x = blk.forward(&x, &m, &cos, &sin, AttnContext::Masked(mask))?;
    }
    let head = var.head_nm.modulation(&cond)?;
    let hq = x.narrow(1, p, l - p)?;
    let logits = var.head.forward(&var.head_nm.forward(&hq, &head)?)?;
    let last = cfg.final_side() * cfg.final_side();
    Ok(Forward {
        logits,
        h_last: x.narrow(1, l - last, last)?,
    })
}

/// How the loss terms are formed.
#[derive(Clone, Copy, Debug)]
pub struct LossOptions {
    /// Refiner loss repeats per token with fresh noise and timesteps (MAR's `diffusion_batch_mul`).
    pub diff_mul: usize,
    /// Every scale weighs the same in the cross-entropy (instead of every token): the coarse scales,
    /// which carry the LR image's structure, are a few dozen of the tokens and otherwise learn last.
    pub scale_balanced: bool,
    /// Weight of the latent loss: the squared distance from the softmax-weighted mean code vector
    /// to the target's, which (unlike the cross-entropy, for which every wrong token is as wrong)
    /// prefers wrong tokens whose vectors are near the right one's.
    pub latent_weight: f64,
    /// The LR encoder's output is detached: a pretrained encoder (`train::prefix`) is kept from
    /// the untrained transformer's first, noisy gradients.
    pub frozen_prefix: bool,
}

/// The mean over scales of each scale's mean of `nll` `(B, Σcounts)`, whose tokens come in runs of
/// `counts` (one per scale).
pub fn scale_balanced_mean(nll: &Tensor, counts: &[usize]) -> Result<Tensor> {
    let (b, n) = nll.dims2()?;
    let k = counts.len() as f32;
    let weights: Vec<f32> = counts
        .iter()
        .flat_map(|&c| std::iter::repeat_n(1.0 / (k * c as f32), c))
        .collect();
    let w = Tensor::from_vec(weights, (1, n), nll.device())?;
    nll.broadcast_mul(&w)?.sum_all()? / b as f64
}

/// `‖Σᵥ p(v)·E[v] − E[target]‖²` per token, for log-probabilities `logp` `(N, V)`, targets `(N)` and
/// codebook `E` `(V, C)`.
pub fn latent_distance(logp: &Tensor, target: &Tensor, codebook: &Tensor) -> Result<Tensor> {
    let n = logp.dims()[0];
    let mean = logp.exp()?.matmul(codebook)?;
    let want = codebook.index_select(&target.flatten_all()?, 0)?;
    (mean - want)?.sqr()?.sum(1)?.reshape(n)
}

/// Cross-entropy over all scales plus λ × the refiner's loss.
pub fn losses(
    var: &Var,
    enc: &FastConEmbedding,
    mask: &Tensor,
    batch: &Batch,
    diffusion: &DiffusionLoss,
    opts: LossOptions,
    rng: &mut impl Rng,
) -> Result<Losses> {
    let fw = forward(
        var,
        enc,
        mask,
        &batch.lr,
        &batch.labels,
        &batch.targets.next,
        opts.frozen_prefix,
    )?;
    let (b, n, v) = fw.logits.dims3()?;
    let target = Tensor::cat(&batch.targets.idx, 1)?;
    let logp = candle_nn::ops::log_softmax(&fw.logits.reshape((b * n, v))?, D::Minus1)?;
    let nll = logp
        .gather(&target.reshape((b * n, 1))?, 1)?
        .neg()?
        .reshape((b, n))?;
    let ce = nll.mean_all()?;
    let counts: Vec<usize> = batch.targets.idx.iter().map(|t| t.dims()[1]).collect();
    let objective = |per_token: &Tensor| {
        if opts.scale_balanced {
            scale_balanced_mean(per_token, &counts)
        } else {
            per_token.mean_all()
        }
    };
    let ce_objective = objective(&nll)?;
    // Only computed when it is trained on: a softmax over every token's vocabulary per step.
    let latent = if opts.latent_weight > 0.0 {
        let d = latent_distance(&logp, &target, &batch.targets.codebook)?;
        Some(objective(&d.reshape((b, n))?)?)
    } else {
        None
    };

    // One argmax over all tokens serves both accuracies.
    let correct = fw
        .logits
        .argmax(D::Minus1)?
        .eq(&target)?
        .to_dtype(DType::F32)?;
    let share = |start: usize, len: usize| -> Result<f32> {
        correct
            .narrow(1, start, len)?
            .mean_all()?
            .to_scalar::<f32>()
    };
    let last = batch.targets.idx.last().map(|t| t.dims()[1]).unwrap_or(0);
    let acc_last = share(n - last, last)?;
    let coarse: usize = batch.targets.idx[..batch.targets.idx.len() / 2]
        .iter()
        .map(|t| t.dims()[1])
        .sum();
    let acc_coarse = share(0, coarse)?;

    let d = var.word_embed.forward(&batch.targets.last_vectors)?;
    let z = var.decoder_norm.forward(&(fw.h_last + d)?)?;
    let (_, l, c) = z.dims3()?;
    let z = z.reshape((b * l, c))?;
    let reps = opts.diff_mul.max(1);
    let z = Tensor::cat(&vec![&z; reps], 0)?;
    let x0 = Tensor::cat(&vec![&batch.targets.refiner_target; reps], 0)?;
    let terms = diffusion.terms(&var.diffloss.net, &x0, &z, rng)?;
    let diff = (&terms.mse + &terms.vb)?;
    let mut total = (&ce_objective + (diff * DIFFUSION_WEIGHT)?)?;
    if let Some(latent) = &latent {
        total = (total + (latent * opts.latent_weight)?)?;
    }
    Ok(Losses {
        ce: ce.to_scalar::<f32>()?,
        diff_mse: terms.mse.to_scalar::<f32>()?,
        diff_vb: terms.vb.to_scalar::<f32>()?,
        latent: latent.map(|l| l.to_scalar::<f32>()).transpose()?,
        acc_last,
        acc_coarse,
        total,
    })
}
