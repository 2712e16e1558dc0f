//! The multi-scale VQVAE on the training side: encoder + `quant_conv`, the residual multi-scale
//! quantization with straight-through gradients and VAR's losses (`VectorQuantizer2.forward` in
//! models/quant.py, without φ at the last scale as VARSR), and the tokenization the transformer is
//! trained on (token ids per scale and teacher-forcing inputs).

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::fast_conv::FastConv;
use super::fast_modules::{FastDecoder, FastEncoder};
use crate::model::config::VqvaeConfig;
use crate::model::vqvae::quantizer::Quantizer;
use crate::ops::resample::area;

/// β of the commitment term.
pub const BETA: f64 = 0.25;

/// The VQVAE with its encoder; keys as in `VQVAE.pth` (`encoder.*`, `quant_conv`, `quantize.*`,
/// `post_quant_conv`, `decoder.*`).
pub struct Tokenizer {
    pub encoder: FastEncoder,
    pub quant_conv: FastConv,
    pub quantize: Quantizer,
    pub post_quant_conv: FastConv,
    pub decoder: FastDecoder,
}

/// The result of quantizing one batch of latents.
pub struct Quantized {
    /// `f̂` with gradients to the codebook and φ (value = the quantized latent).
    pub f_hat: Tensor,
    /// VQ loss: mean over scales of ‖f̂ₛ − sg(f)‖² (codebook, φ) + β·‖sg(f̂) − f‖² (commitment to the
    /// complete f̂).
    pub vq_loss: Tensor,
    /// Token ids per scale, `(B, pn²)` u32.
    pub idx: Vec<Tensor>,
    /// Teacher-forcing inputs: `next[s]` is the area-downsampled `f̂` after scales `0..=s`, the input of
    /// scale `s+1`, `(B, Cvae, pn_{s+1}, pn_{s+1})`.
    pub next: Vec<Tensor>,
    /// `f̂` after all scales but the last (the refiner's target is `f − this − emb(idx_last)`).
    pub f_hat_before_last: Tensor,
    /// The residual vectors each scale quantized, all scales stacked, `(N, Cvae)` (for code restarts).
    pub rest_rows: Tensor,
}

impl Tokenizer {
    pub fn new(cfg: VqvaeConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            encoder: FastEncoder::new(&cfg, cfg.norm_groups, vb.pp("encoder"))?,
            quant_conv: FastConv::new(cfg.cvae, cfg.cvae, 3, 1, 1, vb.pp("quant_conv"))?,
            quantize: Quantizer::new(cfg.vocab_size, cfg.cvae, cfg.num_phi, vb.pp("quantize"))?,
            post_quant_conv: FastConv::new(cfg.cvae, cfg.cvae, 3, 1, 1, vb.pp("post_quant_conv"))?,
            decoder: FastDecoder::new(&cfg, cfg.norm_groups, vb.pp("decoder"))?,
        })
    }

    /// `quant_conv(encoder(img))` for `img` `(B, 3, H, W)` in [-1, 1].
    pub fn encode(&self, img: &Tensor) -> Result<Tensor> {
        self.quant_conv.forward(&self.encoder.forward(img)?)
    }

    /// Nearest codebook entries (L2) of the vectors of `x` `(B, C, h, w)`: ids `(B, h·w)`.
    pub fn nearest(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let v = x.detach().permute((0, 2, 3, 1))?.reshape((b * h * w, c))?;
        let e = self.quantize.embedding.embeddings().detach();
        let d = v
            .matmul(&e.t()?)?
            .affine(-2.0, 0.0)?
            .broadcast_add(&e.sqr()?.sum(1)?.unsqueeze(0)?)?;
        d.argmin(D::Minus1)?.reshape((b, h * w))
    }

    /// Residual multi-scale quantization of `f` over the first `scales` entries of `patch_nums` (all of
    /// them normally; fewer for scale dropout).
    pub fn quantize(&self, f: &Tensor, patch_nums: &[usize], scales: usize) -> Result<Quantized> {
        self.quantize_fed(f, patch_nums, scales, |_, ids| Ok(ids.clone()))
    }

    /// [`Self::quantize`] where `fed(scale, ids)` chooses the ids that enter `f̂` (and so every later
    /// scale's residual and teacher-forcing input) in place of the nearest ones; `idx` keeps the
    /// nearest ids.
    pub fn quantize_fed(
        &self,
        f: &Tensor,
        patch_nums: &[usize],
        scales: usize,
        mut fed: impl FnMut(usize, &Tensor) -> Result<Tensor>,
    ) -> Result<Quantized> {
        let k = patch_nums.len();
        let scales = scales.clamp(1, k);
        let f_ng = f.detach();
        let mut f_hat = f.zeros_like()?;
        let mut f_hat_before_last = f_hat.clone();
        let mut idx = Vec::with_capacity(scales);
        let mut next = Vec::with_capacity(scales);
        let mut loss = Tensor::zeros((), f.dtype(), f.device())?;
        let mut rests = Vec::with_capacity(scales);
        let q = &self.quantize;
        for (si, &pn) in patch_nums.iter().enumerate().take(scales) {
            let rest = (&f_ng - f_hat.detach())?;
            let small = if si + 1 < k {
                area(&rest, pn, pn)?
            } else {
                rest
            };
            let ids = self.nearest(&small)?;
            let (b, c, h, w) = small.dims4()?;
            rests.push(small.permute((0, 2, 3, 1))?.reshape((b * h * w, c))?);
            let h = q.lookup_map(&fed(si, &ids)?, pn)?;
            if si + 1 == k {
                f_hat_before_last = f_hat.clone();
            }
            let (fh, nx) = q.accumulate(&f_hat, &h, si, patch_nums)?;
            f_hat = fh;
            if let Some(nx) = nx {
                next.push(nx);
            }
            // The codebook and φ learn to approximate f at every scale; the encoder is pulled only
            // towards the complete f̂ (pulling it towards the coarse partial sums, as VAR's
            // per-scale commitment does, flattened the latent in small-scale runs).
            let code = (&f_hat - &f_ng)?.sqr()?.mean_all()?;
            loss = (loss + code)?;
            idx.push(ids);
        }
        let commit = (f_hat.detach() - f)?.sqr()?.mean_all()?;
        Ok(Quantized {
            vq_loss: ((loss / scales as f64)? + (commit * BETA)?)?,
            f_hat,
            idx,
            next,
            f_hat_before_last,
            rest_rows: Tensor::cat(&rests, 0)?,
        })
    }

    /// The straight-through latent: the value of `f̂`, the gradient of `f`.
    pub fn straight_through(f: &Tensor, f_hat: &Tensor) -> Result<Tensor> {
        (f_hat.detach() - f.detach())? + f
    }

    /// `decoder(post_quant_conv(z))` in [-1, 1] scale (not clamped, for the loss).
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        self.decoder.forward(&self.post_quant_conv.forward(z)?)
    }
}

/// Everything the transformer needs from one batch of target images.
pub struct Targets {
    pub idx: Vec<Tensor>,
    pub next: Vec<Tensor>,
    /// `(f − f̂_{K−1} − emb(idx_last)) / 0.6` as `(B·pn², Cvae)` rows, the refiner's training target.
    pub refiner_target: Tensor,
    /// Codebook vectors of the last scale's ids, `(B, pn², Cvae)`.
    pub last_vectors: Tensor,
    /// The frozen codebook `(V, Cvae)`, for the latent loss on the expected code vector.
    pub codebook: Tensor,
}

/// For every code of `codebook` `(V, C)`, its `k` nearest other codes (L2), nearest first.
pub fn code_neighbours(codebook: &Tensor, k: usize) -> Result<Vec<Vec<u32>>> {
    let rows = codebook.to_vec2::<f32>()?;
    Ok(rows
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut d: Vec<(f32, u32)> = rows
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(j, b)| {
                    let d2 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
                    (d2, j as u32)
                })
                .collect();
            d.sort_by(|x, y| x.0.total_cmp(&y.0));
            d.into_iter().take(k).map(|(_, j)| j).collect()
        })
        .collect())
}

/// Replaces each id of `ids` with probability `p` by one of its `neighbours` (drawn uniformly):
/// stand-ins for the plausible wrong tokens a coarser scale produces at inference.
pub fn corrupt_ids(
    ids: &Tensor,
    neighbours: &[Vec<u32>],
    p: f64,
    rng: &mut impl rand::Rng,
) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(ids.clone());
    }
    let mut v = ids.flatten_all()?.to_vec1::<u32>()?;
    for id in &mut v {
        let near = &neighbours[*id as usize];
        if !near.is_empty() && rng.random_bool(p) {
            *id = near[rng.random_range(0..near.len())];
        }
    }
    Tensor::from_vec(v, ids.shape(), ids.device())
}

/// Tokenizes target images `(B, 3, S, S)` with a frozen tokenizer.
pub fn targets(tok: &Tokenizer, img: &Tensor, patch_nums: &[usize]) -> Result<Targets> {
    targets_fed(tok, img, patch_nums, |_, ids| Ok(ids.clone()))
}

/// [`targets`] where every scale but the last feeds `fed(scale, ids)` forward instead of its nearest
/// ids (see [`Tokenizer::quantize_fed`]): each later scale's target is then the residual left by those
/// ids, which teaches the transformer to correct a coarser scale's mistakes as inference needs.
pub fn targets_fed(
    tok: &Tokenizer,
    img: &Tensor,
    patch_nums: &[usize],
    mut fed: impl FnMut(usize, &Tensor) -> Result<Tensor>,
) -> Result<Targets> {
    let k = patch_nums.len();
    let f = tok.encode(img)?.detach();
    let q = tok.quantize_fed(&f, patch_nums, k, |si, ids| {
        if si + 1 < k {
            fed(si, ids)
        } else {
            Ok(ids.clone())
        }
    })?;
    let last = q
        .idx
        .last()
        .cloned()
        .ok_or_else(|| candle_core::Error::Msg("no scales".into()))?;
    let pn = *patch_nums.last().unwrap_or(&1);
    let hmap = tok.quantize.lookup_map(&last, pn)?;
    let resid = ((&f - &q.f_hat_before_last)? - hmap)?;
    let (b, c, _, _) = resid.dims4()?;
    let rows = (resid.permute((0, 2, 3, 1))?.reshape((b * pn * pn, c))?
        / crate::pipeline::refiner::VAE_SCALE)?;
    Ok(Targets {
        idx: q.idx.iter().map(|t| t.detach()).collect(),
        next: q.next.iter().map(|t| t.detach()).collect(),
        refiner_target: rows.detach(),
        last_vectors: tok.quantize.lookup(&last)?.detach(),
        codebook: tok.quantize.embedding.embeddings().detach(),
    })
}

/// `mean(relu(|f| − 1)²)`: keeps latents in [-1, 1] so that the refiner's clamped x₀ = residual/0.6 fits.
pub fn latent_hinge(f: &Tensor) -> Result<Tensor> {
    (f.abs()? - 1.0)?.relu()?.sqr()?.mean_all()
}

pub fn to_f32_scalar(t: &Tensor) -> Result<f32> {
    t.to_dtype(DType::F32)?.to_scalar::<f32>()
}
