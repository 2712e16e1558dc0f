//! Consistency tests of the training code against the inference modules it trains (independent
//! implementations of the same maths), plus an overfit check.

use candle_core::{DType, Device, IndexOp, Module, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::diffusion::DiffusionLoss;
use super::fast_modules::{FastConEmbedding, FastDecoder, FastEncoder};
use super::optim::{AdamW, AdamWConfig};
use super::tokenizer::{Tokenizer, targets};
use super::transformer::{Batch, LossOptions, forward, losses};
use super::{checkpoint, export, init, mask, small};
use crate::model::config::{VarConfig, VqvaeConfig};
use crate::model::encoder::ConEmbedding;
use crate::model::transformer::KvCache;
use crate::model::var::Var;
use crate::model::vqvae::decoder::Decoder;
use crate::model::vqvae::encoder::Encoder;

pub(super) fn tiny_vqvae() -> VqvaeConfig {
    VqvaeConfig {
        vocab_size: 16,
        cvae: 4,
        ch: 8,
        ch_mult: vec![1, 2],
        num_res_blocks: 1,
        num_phi: 2,
        norm_groups: 8,
        residual_gain: 0,
    }
}

pub(super) fn tiny_var() -> VarConfig {
    VarConfig {
        depth: 2,
        embed_dim: 32,
        num_heads: 2,
        mlp_hidden: 64,
        vocab_size: 16,
        cvae: 4,
        num_classes: 2,
        patch_nums: vec![1, 2, 4],
        encoder_channels: vec![4, 8],
        prefix_side: 4,
        refiner_width: 16,
        refiner_depth: 1,
        refiner_freq_dim: 16,
    }
}

/// Every variable set to N(0, std²), so that no branch is trivially zero or identity.
pub(super) fn randomize(vm: &VarMap, std: f64, seed: u64) -> Result<()> {
    let data = vm
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("lock".into()))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut noise = crate::pipeline::noise::SeededNoise::new(seed);
    use crate::pipeline::Noise;
    for n in names {
        let v = &data[n];
        let vals: Vec<f32> = noise
            .normal(v.elem_count())
            .into_iter()
            .map(|x| x * std as f32)
            .collect();
        v.set(&Tensor::from_vec(vals, v.shape(), v.device())?)?;
    }
    Ok(())
}

/// A batch of two random 8×8 images (labels 0 and 1) tokenized by `tok` for [`tiny_var`].
pub(super) fn tiny_batch(tok: &Tokenizer) -> Result<Batch> {
    let dev = Device::Cpu;
    let img = Tensor::randn(0f32, 0.5, (2, 3, 8, 8), &dev)?;
    Ok(Batch {
        lr: (img.clone() * 0.5)?,
        labels: Tensor::new(&[0u32, 1], &dev)?,
        targets: targets(tok, &img, &tiny_var().patch_nums)?,
    })
}

/// A [`tiny_var`] transformer and its LR encoder on one var map (tensors as the builder made them).
pub(super) fn tiny_model() -> Result<(VarMap, Var, FastConEmbedding)> {
    let cfg = tiny_var();
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let enc = FastConEmbedding::new(&cfg.encoder_channels, cfg.embed_dim, vb.pp("con_embedding"))?;
    let var = Var::new(cfg, vb)?;
    Ok((vm, var, enc))
}

pub(super) fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
}

#[test]
fn training_twins_equal_the_inference_modules() -> Result<()> {
    let dev = Device::Cpu;
    let cfg = tiny_vqvae();
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
    let fe = FastEncoder::new(&cfg, cfg.norm_groups, vb.pp("encoder"))?;
    let fd = FastDecoder::new(&cfg, cfg.norm_groups, vb.pp("decoder"))?;
    let fc = FastConEmbedding::new(&[4, 8, 8], 32, vb.pp("con_embedding"))?;
    randomize(&vm, 0.3, 1)?;
    let enc = Encoder::new(&cfg, vb.pp("encoder"))?;
    let dec = Decoder::new(&cfg, vb.pp("decoder"))?;
    let con = ConEmbedding::new(&[4, 8, 8], 32, vb.pp("con_embedding"))?;
    let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &dev)?;
    assert!(max_diff(&fe.forward(&x)?, &enc.forward(&x)?)? < 1e-4);
    let z = Tensor::randn(0f32, 1.0, (2, 4, 4, 4), &dev)?;
    assert!(max_diff(&fd.forward(&z)?, &dec.forward(&z)?)? < 1e-4);
    let e1 = fc.forward(&x)?;
    assert_eq!(e1.dims(), &[2, 4, 32]);
    assert!(max_diff(&e1, &con.forward(&x)?)? < 1e-4);
    Ok(())
}

#[test]
fn quantizing_codebook_vectors_is_exact_and_nearest_is_the_brute_force_argmin() -> Result<()> {
    let dev = Device::Cpu;
    let vm = VarMap::new();
    let tok = Tokenizer::new(tiny_vqvae(), VarBuilder::from_varmap(&vm, DType::F32, &dev))?;
    randomize(&vm, 1.0, 2)?;
    let table = tok.quantize.embedding.embeddings().to_vec2::<f32>()?;
    // One scale of side 4 (the last scale: no φ, no resampling): a latent made of codebook rows.
    let ids: Vec<u32> = (0..16).map(|i| (i * 7 % 16) as u32).collect();
    let ids_t = Tensor::from_vec(ids.clone(), (1, 16), &dev)?;
    let f = tok.quantize.lookup_map(&ids_t, 4)?;
    let q = tok.quantize(&f, &[4], 1)?;
    assert_eq!(q.idx[0].flatten_all()?.to_vec1::<u32>()?, ids);
    assert!(max_diff(&q.f_hat, &f)? < 1e-6);
    assert!(q.vq_loss.to_scalar::<f32>()? < 1e-10);
    // Random vectors: compare with a plain loop.
    let x = Tensor::randn(0f32, 1.0, (1, 4, 3, 3), &dev)?;
    let got = tok.nearest(&x)?.flatten_all()?.to_vec1::<u32>()?;
    let xv = x.permute((0, 2, 3, 1))?.reshape((9, 4))?.to_vec2::<f32>()?;
    for (i, row) in xv.iter().enumerate() {
        let d = |e: &Vec<f32>| {
            row.iter()
                .zip(e)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
        };
        let best = (0..16)
            .min_by(|&a, &b| d(&table[a]).total_cmp(&d(&table[b])))
            .unwrap_or(0);
        assert_eq!(got[i], best as u32, "row {i}");
    }
    Ok(())
}

#[test]
fn multi_scale_quantization_ends_with_the_last_scale_residual() -> Result<()> {
    // f̂ = f̂_{K−1} + emb(idx_last) exactly, and each teacher-forcing input is the area-pooled f̂.
    let dev = Device::Cpu;
    let vm = VarMap::new();
    let tok = Tokenizer::new(tiny_vqvae(), VarBuilder::from_varmap(&vm, DType::F32, &dev))?;
    randomize(&vm, 0.5, 3)?;
    let f = Tensor::randn(0f32, 1.0, (2, 4, 4, 4), &dev)?;
    let pns = [1, 2, 4];
    let q = tok.quantize(&f, &pns, 3)?;
    let last = tok.quantize.lookup_map(&q.idx[2], 4)?;
    assert!(max_diff(&q.f_hat, &(&q.f_hat_before_last + last)?)? < 1e-5);
    assert_eq!(q.next.len(), 2);
    assert_eq!(q.next[1].dims(), &[2, 4, 4, 4]);
    assert!(
        max_diff(&q.next[1], &q.f_hat_before_last)? < 1e-5,
        "pooling 4→4 is the identity"
    );
    Ok(())
}

/// The masked whole-sequence pass used in training gives the logits of the scale-by-scale inference
/// with the KV cache (the pipeline's path), teacher-forced with the same inputs.
#[test]
fn block_causal_training_pass_equals_cached_inference() -> Result<()> {
    let dev = Device::Cpu;
    let cfg = tiny_var();
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
    let enc = FastConEmbedding::new(&cfg.encoder_channels, cfg.embed_dim, vb.pp("con_embedding"))?;
    Var::new(cfg.clone(), vb.clone())?;
    randomize(&vm, 0.2, 4)?;
    let var = Var::new(cfg.clone(), vb)?;
    let lr = Tensor::randn(0f32, 1.0, (1, 3, 8, 8), &dev)?;
    let next = vec![
        Tensor::randn(0f32, 1.0, (1, 4, 2, 2), &dev)?,
        Tensor::randn(0f32, 1.0, (1, 4, 4, 4), &dev)?,
    ];
    let m = mask::block_causal(16, &cfg.patch_nums, &dev)?;
    let labels = Tensor::new(&[0u32], &dev)?;
    let train = forward(&var, &enc, &m, &lr, &labels, &next, false)?.logits;
    assert_eq!(train.dims(), &[1, 1 + 4 + 16, 16]);

    let cond = var.conditioning(1)?;
    let mut caches: Vec<KvCache> = (0..cfg.depth).map(|_| KvCache::default()).collect();
    let mut x = var.first_input(&lr, &cond)?;
    let mut pos = 0;
    let mut off = 0;
    for (si, &pn) in cfg.patch_nums.iter().enumerate() {
        let l = x.dims()[1];
        let h = var.blocks_forward(&x, &cond, pos, &mut caches, true)?;
        pos += l;
        let h = if si == 0 { h.narrow(1, l - 1, 1)? } else { h };
        let logits = var.logits(&h, &cond)?.i(0..1)?;
        let want = train.narrow(1, off, pn * pn)?;
        assert!(
            max_diff(&logits, &want)? < 1e-3,
            "scale {si}: {}",
            max_diff(&logits, &want)?
        );
        off += pn * pn;
        if si + 1 < cfg.patch_nums.len() {
            x = var.scale_input(&next[si], si + 1)?;
        }
    }
    Ok(())
}

#[test]
fn losses_fall_when_overfitting_one_batch() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(9);
    let tvm = VarMap::new();
    let tok = Tokenizer::new(
        tiny_vqvae(),
        VarBuilder::from_varmap(&tvm, DType::F32, &dev),
    )?;
    init::init_vqvae(&tvm, &mut rng)?;
    let cfg = tiny_var();
    let img = Tensor::randn(0f32, 0.5, (2, 3, 8, 8), &dev)?;
    let tg = targets(&tok, &img, &cfg.patch_nums)?;
    let batch = Batch {
        lr: (img.clone() * 0.5)?,
        labels: Tensor::new(&[0u32, 1], &dev)?,
        targets: tg,
    };
    let vm = VarMap::new();
    let build = || -> Result<(Var, FastConEmbedding)> {
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        let e =
            FastConEmbedding::new(&cfg.encoder_channels, cfg.embed_dim, vb.pp("con_embedding"))?;
        Ok((Var::new(cfg.clone(), vb)?, e))
    };
    build()?;
    init::init_var(&vm, &cfg, &mut rng)?;
    let mut opt = AdamW::new(
        &vm,
        AdamWConfig {
            lr: 3e-3,
            ..Default::default()
        },
    )?;
    let m = mask::block_causal(16, &cfg.patch_nums, &dev)?;
    let dl = DiffusionLoss::default();
    let mut first = None;
    let mut last = 0.0;
    for _ in 0..120 {
        let (var, enc) = build()?;
        let opts = LossOptions {
            diff_mul: 4,
            scale_balanced: true,
            latent_weight: 0.0,
            frozen_prefix: false,
        };
        let l = losses(&var, &enc, &m, &batch, &dl, opts, &mut rng)?;
        let g = l.total.backward()?;
        if first.is_none() {
            // The LR reaches the loss: every tensor of the LR encoder gets a gradient.
            let data = vm.data().lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            let enc_vars: Vec<_> = data
                .iter()
                .filter(|(k, _)| k.starts_with("con_embedding."))
                .collect();
            assert!(!enc_vars.is_empty());
            for (k, v) in enc_vars {
                let gk = g
                    .get(v.as_tensor())
                    .ok_or_else(|| anyhow::anyhow!("no grad {k}"))?;
                let norm = gk.sqr()?.sum_all()?.to_scalar::<f32>()?;
                assert!(norm > 0.0, "zero gradient for {k}");
            }
        }
        opt.step(&g, 3e-3, 1.0)?;
        first.get_or_insert(l.ce);
        last = l.ce;
    }
    let first = first.unwrap_or(0.0);
    assert!(last < 0.3 * first, "cross-entropy {first} → {last}");
    Ok(())
}

/// The exported file is what the app loads: keys, metadata, f16 cast, sizes.
#[test]
fn exported_model_loads_in_the_engine() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let dir = tempfile::tempdir()?;
    let mut rng = StdRng::seed_from_u64(5);
    let tvm = VarMap::new();
    Tokenizer::new(
        small::vqvae_config(),
        VarBuilder::from_varmap(&tvm, DType::F32, &dev),
    )?;
    init::init_vqvae(&tvm, &mut rng)?;
    let vm = VarMap::new();
    let cfg = small::var_config();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
    FastConEmbedding::new(&cfg.encoder_channels, cfg.embed_dim, vb.pp("con_embedding"))?;
    Var::new(cfg.clone(), vb)?;
    init::init_var(&vm, &cfg, &mut rng)?;
    let (tp, vp) = (
        dir.path().join("t.safetensors"),
        dir.path().join("v.safetensors"),
    );
    checkpoint::save(&tp, &tvm, &AdamW::new(&tvm, AdamWConfig::default())?)?;
    checkpoint::save(&vp, &vm, &AdamW::new(&vm, AdamWConfig::default())?)?;
    let out = dir.path().join("m.safetensors");
    let bytes = export::export(&tp, &vp, &out, "test")?;
    assert!(bytes < 40_000_000, "{bytes} bytes");
    let engine =
        crate::pipeline::Engine::load(&crate::pipeline::engine::ModelSpec::Path(out), &dev)?;
    assert_eq!(engine.var.config, cfg);
    assert_eq!(engine.vae.config, small::vqvae_config());
    assert_eq!(engine.tile_px(), small::TILE_PX);
    Ok(())
}

/// `--decoder-only` must leave everything the transformer's targets depend on (encoder,
/// `quant_conv`, codebook, φ) bit for bit as it was, and still train the decoder.
#[test]
fn decoder_only_training_freezes_the_tokens() -> anyhow::Result<()> {
    use super::loops::{TokenizerRun, train_tokenizer};
    let dir = tempfile::tempdir()?;
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(&photos)?;
    let img = image::RgbImage::from_fn(192, 128, |x, y| {
        image::Rgb([
            (x * 7 % 256) as u8,
            (y * 5 % 256) as u8,
            ((x * y) % 251) as u8,
        ])
    });
    img.save(photos.join("a.png"))?;
    let patches = dir.path().join("p.bin");
    let side = small::TILE_PX;
    super::data::build_patches(
        &photos,
        &patches,
        &dir.path().join("held"),
        side,
        64,
        0,
        64,
        1,
    )?;
    let ckpt = dir.path().join("tok.safetensors");
    let run = |steps: usize, decoder_only: bool| {
        train_tokenizer(&TokenizerRun {
            patches: patches.clone(),
            checkpoint: ckpt.clone(),
            steps,
            stage1_steps: steps,
            batch: 1,
            crop: 64,
            lr: 1e-3,
            scale_dropout: 0.0,
            continuous_prob: 0.5,
            save_every: 100,
            log_every: 100,
            seed: 3,
            decoder_only,
        })
    };
    run(1, false)?;
    let before = checkpoint::load_frozen(&ckpt)?;
    run(3, true)?;
    let after = checkpoint::load_frozen(&ckpt)?;
    let (mut frozen, mut trained) = (0, 0);
    for (name, t) in &before {
        let d = max_diff(t, &after[name])?;
        if name.starts_with("decoder.") || name.starts_with("post_quant_conv.") {
            trained += usize::from(d > 0.0);
        } else {
            assert_eq!(d, 0.0, "{name} changed in decoder-only training");
            frozen += 1;
        }
    }
    assert!(frozen > 10, "only {frozen} frozen tensors checked");
    assert!(trained > 10, "only {trained} decoder tensors moved");
    Ok(())
}

/// The positional heads of the initial transformer: for random token contents, head 0 of every block
/// makes each last-scale token attend most to the LR prefix token at its own grid position (through
/// the model's real RoPE table), as `init::init_positional_heads` promises.
#[test]
fn positional_heads_start_aligned_with_the_prefix() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let cfg = small::var_config();
    let vm = VarMap::new();
    let var = Var::new(cfg.clone(), VarBuilder::from_varmap(&vm, DType::F32, &dev))?;
    init::init_var(&vm, &cfg, &mut StdRng::seed_from_u64(3))?;
    let (c, hd) = (cfg.embed_dim, cfg.head_dim());
    let prefix = cfg.prefix_side * cfg.prefix_side;
    let last = cfg.final_side() * cfg.final_side();
    let total = var.rope.len();
    let lvl = var.lvl_embed.embeddings();
    // Block inputs as the first block sees them: content + level embedding (+ pos_start for the
    // prefix), layer-normalised.
    let content = (Tensor::randn(0f32, 1.0, (1, total, c), &dev)? * 0.3)?;
    let pre = content
        .narrow(1, 0, prefix)?
        .broadcast_add(&var.pos_start.narrow(1, 0, prefix)?)?
        .broadcast_add(&lvl.i(0)?)?;
    let fin = content
        .narrow(1, total - last, last)?
        .broadcast_add(&lvl.i(cfg.patch_nums.len() - 1)?)?;
    let ln = |x: &Tensor| crate::model::transformer::layer_norm(x);
    let data = vm.data().lock().map_err(|_| anyhow::anyhow!("lock"))?;
    for b in 0..cfg.depth {
        let w = data[&format!("blocks.{b}.attn.mat_qkv.weight")]
            .as_tensor()
            .clone();
        let qb = data[&format!("blocks.{b}.attn.q_bias")].as_tensor().clone();
        let head =
            |x: &Tensor, rows: usize, bias: Option<&Tensor>, start: usize| -> Result<Tensor> {
                let mut y = ln(x)?.broadcast_matmul(&w.narrow(0, rows, hd)?.t()?)?;
                if let Some(bias) = bias {
                    y = y.broadcast_add(&bias.narrow(0, 0, hd)?)?;
                }
                let n = y.sqr()?.sum_keepdim(2)?.sqrt()?;
                let y = y.broadcast_div(&n)?.unsqueeze(1)?;
                let (cos, sin) = var.rope.slice(start, x.dims()[1])?;
                crate::model::rope::apply(&y, &cos, &sin)?.squeeze(1)
            };
        let q = head(&fin, 0, Some(&qb), total - last)?;
        let k = head(&pre, c, None, 0)?;
        let best = q.matmul(&k.t()?)?.squeeze(0)?.argmax(1)?.to_vec1::<u32>()?;
        let own: Vec<u32> = (0..last as u32).collect();
        assert_eq!(
            best, own,
            "block {b}: last-scale tokens do not look up their own place"
        );
    }
    Ok(())
}

/// Scale-balanced cross-entropy: the mean of the per-scale means, computed by hand.
#[test]
fn scale_balanced_mean_weighs_every_scale_equally() -> Result<()> {
    let dev = Device::Cpu;
    // Two rows; scales of 1, 2 and 3 tokens.
    let v = [1f32, 2., 4., 3., 5., 7., 0., 2., 2., 1., 1., 4.];
    let nll = Tensor::from_slice(&v, (2, 6), &dev)?;
    let got = super::transformer::scale_balanced_mean(&nll, &[1, 2, 3])?.to_scalar::<f32>()?;
    let row = |r: &[f32]| (r[0] + (r[1] + r[2]) / 2.0 + (r[3] + r[4] + r[5]) / 3.0) / 3.0;
    let want = (row(&v[..6]) + row(&v[6..])) / 2.0;
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    Ok(())
}
