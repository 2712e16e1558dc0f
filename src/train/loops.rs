//! The two training stages as resumable loops: the tokenizer (VQVAE), then the SR transformer with
//! its refiner on the frozen tokenizer. Each saves a checkpoint every `save_every` steps and resumes
//! from it when started again.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use image::RgbImage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::data::Patches;
use super::degrade::{self, Degradation};
use super::diffusion::DiffusionLoss;
use super::fast_modules::FastConEmbedding;
use super::optim::{AdamW, AdamWConfig, lr_at};
use super::tokenizer::{Tokenizer, code_neighbours, corrupt_ids, latent_hinge, targets_fed};
use super::transformer::{Batch, LossOptions, losses};
use super::{checkpoint, init, mask, prefix, small};
use crate::model::var::Var;

/// Stacks images into `(B, 3, H, W)` in [-1, 1].
pub fn batch_tensor(imgs: &[RgbImage], dev: &Device) -> Result<Tensor> {
    let (w, h) = imgs[0].dimensions();
    let mut v = Vec::with_capacity(imgs.len() * 3 * (w * h) as usize);
    for im in imgs {
        v.extend(degrade::to_chw(im));
    }
    Ok(Tensor::from_vec(
        v,
        (imgs.len(), 3, h as usize, w as usize),
        dev,
    )?)
}

/// What the tokenizer codes for HR tiles `hr` whose model inputs (the bicubic upscales of their LR,
/// as [`batch_tensor`]s) are `lr`: the images themselves, or for a residual tokenizer `(hr − lr)·gain`.
pub fn target_tensor(hr: &Tensor, lr: &Tensor, gain: u32) -> Result<Tensor> {
    if gain == 0 {
        return Ok(hr.clone());
    }
    Ok(((hr - lr)? * gain as f64)?)
}

/// PSNR in image units (signal range 2) of an error whose mean square is `mse` in the units the
/// tokenizer codes: a residual tokenizer's error at `gain` is the error of bicubic + residual.
pub(super) fn residual_psnr(mse: f64, gain: u32) -> f64 {
    let g2 = (gain.max(1) as f64).powi(2);
    10.0 * (4.0 / (mse / g2).max(1e-12)).log10()
}

/// A random `side × side` window (the same for the whole batch) of `x` `(B, C, S, S)`.
fn random_window(x: &Tensor, side: usize, rng: &mut impl Rng) -> Result<Tensor> {
    let s = x.dim(2)?;
    if side >= s {
        return Ok(x.clone());
    }
    let (y0, x0) = (
        rng.random_range(0..=s - side),
        rng.random_range(0..=s - side),
    );
    Ok(x.narrow(2, y0, side)?.narrow(3, x0, side)?)
}

pub(super) fn random_crop(img: &RgbImage, side: u32, rng: &mut impl Rng) -> RgbImage {
    if img.width() <= side {
        return img.clone();
    }
    let x = rng.random_range(0..=img.width() - side);
    let y = rng.random_range(0..=img.height() - side);
    image::imageops::crop_imm(img, x, y, side, side).to_image()
}

pub struct TokenizerRun {
    pub patches: PathBuf,
    pub checkpoint: PathBuf,
    pub steps: usize,
    /// Steps of the first stage (small crops); the rest is the second stage (full tiles, scale dropout).
    pub stage1_steps: usize,
    pub batch: usize,
    pub crop: usize,
    pub lr: f64,
    pub scale_dropout: f64,
    /// Probability of decoding the continuous latent (what the refiner restores) instead of `f̂`.
    pub continuous_prob: f64,
    pub save_every: usize,
    pub log_every: usize,
    pub seed: u64,
    /// Train only `post_quant_conv` and the decoder: the encoder, codebook and φ (everything the
    /// transformer's targets depend on) stay frozen, so the transformer can train at the same time.
    pub decoder_only: bool,
}

pub fn train_tokenizer(run: &TokenizerRun) -> Result<()> {
    let dev = Device::Cpu;
    let patches = Patches::load(&run.patches)?;
    let cfg = small::vqvae_config();
    let full_pns = small::var_config().patch_nums;
    let varmap = VarMap::new();
    let tok = Tokenizer::new(
        cfg.clone(),
        VarBuilder::from_varmap(&varmap, DType::F32, &dev),
    )?;
    let mut rng = StdRng::seed_from_u64(run.seed);
    init::init_vqvae(&varmap, &mut rng)?;
    let mut opt = AdamW::new(
        &varmap,
        AdamWConfig {
            lr: run.lr,
            weight_decay: 0.0,
            beta2: 0.99,
            ..Default::default()
        },
    )?;
    if run.checkpoint.is_file() {
        let step = checkpoint::load(&run.checkpoint, &varmap, &mut opt)?;
        println!(
            "resumed the tokenizer from {} at step {step}",
            run.checkpoint.display()
        );
        rng = StdRng::seed_from_u64(run.seed ^ step as u64);
    }
    let f = cfg.downsample();
    let mut hits = vec![0u32; cfg.vocab_size];
    let mut t0 = Instant::now();
    let mut acc = [0f64; 6];
    while opt.step < run.steps {
        let stage2 = opt.step >= run.stage1_steps;
        let side = if stage2 {
            patches.side.min(small::TILE_PX)
        } else {
            run.crop
        };
        let last = side / f;
        let pns: Vec<usize> = full_pns.iter().copied().filter(|&p| p <= last).collect();
        let (hrs, lrs): (Vec<RgbImage>, Vec<RgbImage>) = (0..run.batch)
            .map(|_| {
                let p = patches.augmented(rng.random_range(0..patches.len()), &mut rng);
                let hr = random_crop(&p, small::TILE_PX as u32, &mut rng);
                let lr = degrade::model_input(&hr, 4, &Degradation::random(&mut rng), &mut rng);
                // The transformer's negative class targets degraded copies: code those too.
                let tgt = if rng.random_bool(0.2) {
                    degrade::low_quality(&hr, &mut rng)
                } else {
                    hr
                };
                (tgt, lr)
            })
            .unzip();
        let x = random_window(
            &target_tensor(
                &batch_tensor(&hrs, &dev)?,
                &batch_tensor(&lrs, &dev)?,
                cfg.residual_gain,
            )?,
            side,
            &mut rng,
        )?;
        let fl = if run.decoder_only {
            tok.encode(&x)?.detach()
        } else {
            tok.encode(&x)?
        };
        let scales = if stage2 && rng.random_bool(run.scale_dropout) {
            rng.random_range(1..pns.len())
        } else {
            pns.len()
        };
        let q = tok.quantize(&fl, &pns, scales)?;
        // Code usage only feeds the dead-code restarts, which decoder-only training never does.
        if !run.decoder_only {
            for ids in &q.idx {
                for i in ids.flatten_all()?.to_vec1::<u32>()? {
                    hits[i as usize] += 1;
                }
            }
        }
        let z = if scales == pns.len() && rng.random_bool(run.continuous_prob) {
            fl.clone()
        } else {
            Tokenizer::straight_through(&fl, &q.f_hat)?
        };
        let rec = tok.decode(&z)?;
        let diff = (&rec - &x)?;
        let l1 = diff.abs()?.mean_all()?;
        let l2 = diff.sqr()?.mean_all()?;
        let loss = if run.decoder_only {
            (&l1 + &l2)?
        } else {
            (((&l1 + &l2)? + &q.vq_loss)? + latent_hinge(&fl)?)?
        };
        let grads = loss.backward()?;
        let norm = opt.grad_norm(&grads)?;
        let lr = lr_at(opt.step, run.steps, 100, run.lr, 0.1);
        opt.step(&grads, lr, if norm > 1.0 { 1.0 / norm } else { 1.0 })?;
        acc[0] += l1.to_scalar::<f32>()? as f64;
        acc[1] += q.vq_loss.to_scalar::<f32>()? as f64;
        acc[2] += fl.sqr()?.mean_all()?.sqrt()?.to_scalar::<f32>()? as f64;
        acc[3] += 1.0;
        acc[4] += l2.to_scalar::<f32>()? as f64;
        // What decoding nothing scores: bicubic alone, for a residual tokenizer.
        acc[5] += x.sqr()?.mean_all()?.to_scalar::<f32>()? as f64;
        let every = if opt.step <= 500 { 20 } else { 100 };
        if !run.decoder_only && (opt.step == 1 || opt.step % every == 0) {
            let n = restart_dead_codes(&tok, &varmap, &q.rest_rows, &mut hits, &mut rng)?;
            if n > 0 {
                println!("restarted {n} unused codes");
            }
        }
        if opt.step % run.log_every == 0 {
            let n = acc[3];
            println!(
                "tokenizer step {} l1 {:.4} psnr {:.2} dB (zero {:.2} dB) vq {:.4} f_rms {:.3} lr {:.2e} |g| {:.2} {:.2}s/step",
                opt.step,
                acc[0] / n,
                residual_psnr(acc[4] / n, cfg.residual_gain),
                residual_psnr(acc[5] / n, cfg.residual_gain),
                acc[1] / n,
                acc[2] / n,
                lr,
                norm,
                t0.elapsed().as_secs_f64() / acc[3]
            );
            acc = [0.0; 6];
            t0 = Instant::now();
        }
        if opt.step % run.save_every == 0 || opt.step == run.steps {
            save(&run.checkpoint, &varmap, &opt)?;
        }
    }
    Ok(())
}

pub(super) fn save(path: &Path, varmap: &VarMap, opt: &AdamW) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    checkpoint::save(path, varmap, opt).with_context(|| format!("saving {}", path.display()))
}

/// Codes unused since the last call are moved onto residual vectors the quantizer just saw (all
/// scales), VQ-VAE's usual cure for dead codes; called on the first step it is a data-dependent init.
pub fn restart_dead_codes(
    tok: &Tokenizer,
    varmap: &VarMap,
    rest_rows: &Tensor,
    hits: &mut [u32],
    rng: &mut impl Rng,
) -> Result<usize> {
    let dead: Vec<usize> = hits
        .iter()
        .enumerate()
        .filter(|(_, h)| **h == 0)
        .map(|(i, _)| i)
        .collect();
    hits.iter_mut().for_each(|h| *h = 0);
    if dead.is_empty() {
        return Ok(0);
    }
    let rows = rest_rows.detach().to_vec2::<f32>()?;
    let emb = tok.quantize.embedding.embeddings();
    let mut table = emb.to_vec2::<f32>()?;
    for &d in &dead {
        let r = &rows[rng.random_range(0..rows.len())];
        table[d] = r
            .iter()
            .map(|v| v * rng.random_range(0.9f32..1.1))
            .collect();
    }
    let flat: Vec<f32> = table.into_iter().flatten().collect();
    let data = varmap
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned var map"))?;
    if let Some(var) = data.get("quantize.embedding.weight") {
        var.set(&Tensor::from_vec(flat, emb.shape(), emb.device())?)?;
    }
    Ok(dead.len())
}

/// Loads a frozen tokenizer from its training checkpoint.
pub fn load_tokenizer(path: &Path, dev: &Device) -> Result<Tokenizer> {
    let tensors =
        checkpoint::load_frozen(path).with_context(|| format!("reading {}", path.display()))?;
    let vb = VarBuilder::from_tensors(tensors, DType::F32, dev);
    Ok(Tokenizer::new(small::vqvae_config(), vb)?)
}

/// How many of a token's nearest codes input noise draws its replacement from.
const NOISE_NEIGHBOURS: usize = 8;

pub struct TransformerRun {
    pub patches: PathBuf,
    pub tokenizer: PathBuf,
    pub checkpoint: PathBuf,
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub warmup: usize,
    /// Share of samples whose target is a degraded copy of the HR patch, labelled class 1.
    pub negative_prob: f64,
    /// Share of high-quality samples labelled class 1 anyway (label dropout).
    pub label_dropout: f64,
    pub diff_mul: usize,
    /// Every scale weighs the same in the cross-entropy (`LossOptions::scale_balanced`).
    pub scale_balanced: bool,
    pub save_every: usize,
    pub log_every: usize,
    pub seed: u64,
    /// Head 0 of every block starts as a position lookup (`init::init_positional_heads`).
    pub positional_heads: bool,
    /// Share of teacher-forced tokens replaced by a near code (`tokenizer::targets_fed`).
    pub input_noise: f64,
    /// `LossOptions::latent_weight`.
    pub latent_weight: f64,
    /// A `train prefix` checkpoint the LR encoder starts from.
    pub init_prefix: Option<PathBuf>,
    /// Steps during which the LR encoder gets no gradient (`LossOptions::frozen_prefix`).
    pub freeze_prefix_steps: usize,
}

pub fn train_transformer(run: &TransformerRun) -> Result<()> {
    let dev = Device::Cpu;
    let patches = Patches::load(&run.patches)?;
    let tok = load_tokenizer(&run.tokenizer, &dev)?;
    let cfg = small::var_config();
    let varmap = VarMap::new();
    let build = || -> Result<(Var, FastConEmbedding)> {
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let enc =
            FastConEmbedding::new(&cfg.encoder_channels, cfg.embed_dim, vb.pp("con_embedding"))?;
        Ok((Var::new(cfg.clone(), vb)?, enc))
    };
    build()?;
    let mut rng = StdRng::seed_from_u64(run.seed);
    if run.positional_heads {
        init::init_var(&varmap, &cfg, &mut rng)?;
    } else {
        init::init_var_plain(&varmap, &cfg, &mut rng)?;
    }
    let mut opt = AdamW::new(
        &varmap,
        AdamWConfig {
            lr: run.lr,
            ..Default::default()
        },
    )?;
    if let Some(path) = &run.init_prefix {
        let n = prefix::load_pretrained(path, &varmap)?;
        println!("LR encoder: {n} tensors from {}", path.display());
    }
    if run.checkpoint.is_file() {
        let step = checkpoint::load(&run.checkpoint, &varmap, &mut opt)?;
        println!(
            "resumed the transformer from {} at step {step}",
            run.checkpoint.display()
        );
        rng = StdRng::seed_from_u64(run.seed ^ step as u64);
    }
    let prefix = cfg.prefix_side * cfg.prefix_side;
    let mask = mask::block_causal(prefix, &cfg.patch_nums, &dev)?;
    let diffusion = DiffusionLoss::default();
    let gain = small::vqvae_config().residual_gain;
    let neighbours = if run.input_noise > 0.0 {
        code_neighbours(
            &tok.quantize.embedding.embeddings().detach(),
            NOISE_NEIGHBOURS,
        )?
    } else {
        Vec::new()
    };
    let mut t0 = Instant::now();
    let mut acc = [0f64; 8];
    // Seconds spent in degradations, target tokenization, forward, backward since the last log.
    let mut timing = [0f64; 4];
    while opt.step < run.steps {
        let clock = Instant::now();
        let mut lrs = Vec::with_capacity(run.batch);
        let mut tgts = Vec::with_capacity(run.batch);
        let mut labels = Vec::with_capacity(run.batch);
        for _ in 0..run.batch {
            let p = patches.augmented(rng.random_range(0..patches.len()), &mut rng);
            let hr = random_crop(&p, small::TILE_PX as u32, &mut rng);
            let d = Degradation::random(&mut rng);
            lrs.push(degrade::model_input(&hr, 4, &d, &mut rng));
            let r: f64 = rng.random();
            if r < run.negative_prob {
                tgts.push(degrade::low_quality(&hr, &mut rng));
                labels.push(1u32);
            } else {
                tgts.push(hr);
                labels.push(if r < run.negative_prob + run.label_dropout {
                    1
                } else {
                    0
                });
            }
        }
        let t_degrade = clock.elapsed().as_secs_f64();
        let lr = batch_tensor(&lrs, &dev)?;
        let targets = targets_fed(
            &tok,
            &target_tensor(&batch_tensor(&tgts, &dev)?, &lr, gain)?,
            &cfg.patch_nums,
            |_, ids| corrupt_ids(ids, &neighbours, run.input_noise, &mut rng),
        )?;
        let t_tokens = clock.elapsed().as_secs_f64();
        let batch = Batch {
            lr,
            labels: Tensor::from_vec(labels, run.batch, &dev)?,
            targets,
        };
        let (var, enc) = build()?;
        let l = losses(
            &var,
            &enc,
            &mask,
            &batch,
            &diffusion,
            LossOptions {
                diff_mul: run.diff_mul,
                scale_balanced: run.scale_balanced,
                latent_weight: run.latent_weight,
                frozen_prefix: opt.step < run.freeze_prefix_steps,
            },
            &mut rng,
        )?;
        let t_forward = clock.elapsed().as_secs_f64();
        let grads = l.total.backward()?;
        let t_backward = clock.elapsed().as_secs_f64();
        timing[0] += t_degrade;
        timing[1] += t_tokens - t_degrade;
        timing[2] += t_forward - t_tokens;
        timing[3] += t_backward - t_forward;
        let norm = opt.grad_norm(&grads)?;
        let lr = lr_at(opt.step, run.steps, run.warmup, run.lr, 0.05);
        opt.step(&grads, lr, if norm > 2.0 { 2.0 / norm } else { 1.0 })?;
        for (a, v) in acc.iter_mut().zip([
            l.total.to_scalar::<f32>()? as f64,
            l.ce as f64,
            l.acc_last as f64,
            l.diff_mse as f64,
            l.diff_vb as f64,
            1.0,
            l.acc_coarse as f64,
            l.latent.unwrap_or(0.0) as f64,
        ]) {
            *a += v;
        }
        if opt.step % run.log_every == 0 {
            let n = acc[5];
            let latent = if run.latent_weight > 0.0 {
                format!(" latent {:.4}", acc[7] / n)
            } else {
                String::new()
            };
            println!(
                "transformer step {} loss {:.4} ce {:.4} acc_last {:.3} acc_coarse {:.3}{latent} diff_mse {:.4} diff_vb {:.4} lr {:.2e} |g| {:.2} \
                 {:.2}s/step (degrade {:.2} tokens {:.2} fwd {:.2} bwd {:.2})",
                opt.step,
                acc[0] / n,
                acc[1] / n,
                acc[2] / n,
                acc[6] / n,
                acc[3] / n,
                acc[4] / n,
                lr,
                norm,
                t0.elapsed().as_secs_f64() / acc[5],
                timing[0] / acc[5],
                timing[1] / acc[5],
                timing[2] / acc[5],
                timing[3] / acc[5],
            );
            acc = [0.0; 8];
            timing = [0.0; 4];
            t0 = Instant::now();
        }
        if opt.step % run.save_every == 0 || opt.step == run.steps {
            save(&run.checkpoint, &varmap, &opt)?;
        }
    }
    Ok(())
}
