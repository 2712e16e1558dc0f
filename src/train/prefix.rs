//! Pretraining of the LR encoder (`con_embedding`) as a regressor before the transformer sees it: a
//! linear read-out of each prefix token is trained to predict the tokenizer's continuous latent of the
//! detail at that cell. The transformer's cross-entropy reaches the encoder only through attention and
//! a 1024-way softmax, a weak and noisy signal on a CPU budget of a thousand steps; a direct target
//! gives the prefix what the last scale's tokens are a quantisation of from the first step.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder, VarMap};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::data::Patches;
use super::degrade::{self, Degradation};
use super::fast_modules::FastConEmbedding;
use super::loops::{
    batch_tensor, load_tokenizer, random_crop, residual_psnr as psnr, save, target_tensor,
};
use super::optim::{AdamW, AdamWConfig, lr_at};
use super::{checkpoint, small};

/// Name of the read-out, a training-only tensor that the transformer run does not load.
pub const HEAD: &str = "prefix_head";

pub struct PrefixRun {
    pub patches: PathBuf,
    pub tokenizer: PathBuf,
    pub checkpoint: PathBuf,
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub save_every: usize,
    pub log_every: usize,
    pub seed: u64,
}

/// The encoder and its read-out, on `varmap`'s tensors.
pub struct PrefixModel {
    pub enc: FastConEmbedding,
    pub head: Linear,
}

impl PrefixModel {
    pub fn new(varmap: &VarMap, dev: &Device) -> Result<Self> {
        let cfg = small::var_config();
        let vb = VarBuilder::from_varmap(varmap, DType::F32, dev);
        Ok(Self {
            enc: FastConEmbedding::new(
                &cfg.encoder_channels,
                cfg.embed_dim,
                vb.pp("con_embedding"),
            )?,
            head: candle_nn::linear(cfg.embed_dim, cfg.cvae, vb.pp(HEAD))?,
        })
    }

    /// Model inputs `(B, 3, S, S)` → predicted latent `(B, Cvae, S/4, S/4)`, the tokenizer's layout.
    pub fn predict(&self, lr: &Tensor) -> Result<Tensor> {
        let e = self.head.forward(&self.enc.forward(lr)?)?;
        let (b, n, c) = e.dims3()?;
        let side = (n as f64).sqrt() as usize;
        Ok(e.transpose(1, 2)?.reshape((b, c, side, side))?)
    }
}

/// Mean squared value of `x`.
fn ms(x: &Tensor) -> Result<f64> {
    Ok(x.sqr()?.mean_all()?.to_scalar::<f32>()? as f64)
}

pub fn train_prefix(run: &PrefixRun) -> Result<()> {
    let dev = Device::Cpu;
    let patches = Patches::load(&run.patches)?;
    let tok = load_tokenizer(&run.tokenizer, &dev)?;
    let gain = small::vqvae_config().residual_gain;
    let varmap = VarMap::new();
    let model = PrefixModel::new(&varmap, &dev)?;
    let mut rng = StdRng::seed_from_u64(run.seed);
    let mut opt = AdamW::new(
        &varmap,
        AdamWConfig {
            lr: run.lr,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    if run.checkpoint.is_file() {
        let step = checkpoint::load(&run.checkpoint, &varmap, &mut opt)
            .with_context(|| format!("resuming {}", run.checkpoint.display()))?;
        println!(
            "resumed the LR encoder from {} at step {step}",
            run.checkpoint.display()
        );
        rng = StdRng::seed_from_u64(run.seed ^ step as u64);
    }
    let mut t0 = Instant::now();
    // Latent MSE, latent mean square (what predicting zero scores), steps.
    let mut acc = [0f64; 3];
    while opt.step < run.steps {
        let (hrs, lrs): (Vec<_>, Vec<_>) = (0..run.batch)
            .map(|_| {
                let p = patches.augmented(rng.random_range(0..patches.len()), &mut rng);
                let hr = random_crop(&p, small::TILE_PX as u32, &mut rng);
                let d = Degradation::random(&mut rng);
                let lr = degrade::model_input(&hr, 4, &d, &mut rng);
                (hr, lr)
            })
            .unzip();
        let lr = batch_tensor(&lrs, &dev)?;
        let x = target_tensor(&batch_tensor(&hrs, &dev)?, &lr, gain)?;
        let f = tok.encode(&x)?.detach();
        let pred = model.predict(&lr)?;
        let loss = (&pred - &f)?.sqr()?.mean_all()?;
        let grads = loss.backward()?;
        let norm = opt.grad_norm(&grads)?;
        let step_lr = lr_at(opt.step, run.steps, 50, run.lr, 0.05);
        opt.step(&grads, step_lr, if norm > 1.0 { 1.0 / norm } else { 1.0 })?;
        acc[0] += loss.to_scalar::<f32>()? as f64;
        acc[1] += ms(&f)?;
        acc[2] += 1.0;
        if opt.step % run.log_every == 0 {
            let n = acc[2];
            // Decoded on this batch only: what the prediction, the latent itself and no detail
            // (bicubic) score in image units.
            let decoded = |z: &Tensor| -> Result<f64> { ms(&(tok.decode(&z.detach())? - &x)?) };
            println!(
                "prefix step {} mse {:.4} (zero {:.4}) psnr {:.2} dB (latent {:.2}, bicubic {:.2}) lr {:.2e} |g| {:.2} {:.2}s/step",
                opt.step,
                acc[0] / n,
                acc[1] / n,
                psnr(decoded(&pred)?, gain),
                psnr(decoded(&f)?, gain),
                psnr(ms(&x)?, gain),
                step_lr,
                norm,
                t0.elapsed().as_secs_f64() / n,
            );
            acc = [0.0; 3];
            t0 = Instant::now();
        }
        if opt.step % run.save_every == 0 || opt.step == run.steps {
            save(&run.checkpoint, &varmap, &opt)?;
        }
    }
    Ok(())
}

/// Copies the pretrained `con_embedding.*` tensors of a [`train_prefix`] checkpoint into `varmap`.
pub fn load_pretrained(path: &std::path::Path, varmap: &VarMap) -> Result<usize> {
    let all = candle_core::safetensors::load(path, &Device::Cpu)
        .with_context(|| format!("reading {}", path.display()))?;
    checkpoint::load_params_where(&all, varmap, |k| k.starts_with("con_embedding."))
        .with_context(|| format!("the LR encoder in {}", path.display()))
}
