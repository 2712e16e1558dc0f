//! The LR encoder's pretraining: the read-out's layout against the tokenizer's latent, the resumable
//! loop, and the hand-over of its tensors to the transformer run (and only those).

use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::fast_modules::FastConEmbedding;
use super::optim::{AdamW, AdamWConfig};
use super::prefix::{PrefixModel, PrefixRun, load_pretrained, train_prefix};
use super::tests::{max_diff, randomize};
use super::tokenizer::Tokenizer;
use super::{checkpoint, init, small};
use crate::model::var::Var;

/// `predict` puts the read-out of prefix token `y·side + x` at latent cell `(y, x)`: the row-major
/// order in which the encoder emits tokens and in which the tokenizer lays out its latent.
#[test]
fn the_read_out_of_each_prefix_token_lands_on_its_latent_cell() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let vm = VarMap::new();
    let model = PrefixModel::new(&vm, &dev)?;
    randomize(&vm, 0.05, 8)?;
    let lr = Tensor::randn(0f32, 1.0, (2, 3, 64, 64), &dev)?;
    let pred = model.predict(&lr)?;
    let cfg = small::var_config();
    let side = cfg.prefix_side;
    assert_eq!(pred.dims(), &[2, cfg.cvae, side, side]);
    let tokens = model.enc.forward(&lr)?;
    for (b, y, x) in [(0, 0, 0), (0, 3, 11), (1, 15, 2), (1, 7, 15)] {
        let want = model
            .head
            .forward(&tokens.i((b, y * side + x))?.unsqueeze(0)?)?;
        let got = pred.i((b, .., y, x))?.unsqueeze(0)?;
        assert!(max_diff(&got, &want)? < 1e-5, "cell ({y}, {x}) of item {b}");
    }
    Ok(())
}

/// Two steps, then two more resumed from the checkpoint; the encoder moved, and a transformer run
/// takes exactly its `con_embedding.*` tensors and nothing else.
#[test]
fn pretrained_encoder_resumes_and_hands_over_only_its_tensors() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let dir = tempfile::tempdir()?;
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(&photos)?;
    image::RgbImage::from_fn(192, 160, |x, y| {
        image::Rgb([
            (x * 7 % 256) as u8,
            (y * 5 % 256) as u8,
            ((x * y) % 251) as u8,
        ])
    })
    .save(photos.join("a.png"))?;
    let patches = dir.path().join("p.bin");
    super::data::build_patches(
        &photos,
        &patches,
        &dir.path().join("held"),
        small::TILE_PX,
        64,
        0,
        64,
        1,
    )?;
    let tvm = VarMap::new();
    Tokenizer::new(
        small::vqvae_config(),
        VarBuilder::from_varmap(&tvm, DType::F32, &dev),
    )?;
    init::init_vqvae(&tvm, &mut StdRng::seed_from_u64(2))?;
    let tok = dir.path().join("tok.safetensors");
    checkpoint::save(&tok, &tvm, &AdamW::new(&tvm, AdamWConfig::default())?)?;

    let ckpt = dir.path().join("prefix.safetensors");
    let run = |steps| {
        train_prefix(&PrefixRun {
            patches: patches.clone(),
            tokenizer: tok.clone(),
            checkpoint: ckpt.clone(),
            steps,
            batch: 2,
            lr: 1e-3,
            save_every: 100,
            log_every: 1,
            seed: 4,
        })
    };
    run(2)?;
    let first = checkpoint::load_frozen(&ckpt)?;
    run(4)?;
    let all = candle_core::safetensors::load(&ckpt, &dev)?;
    assert_eq!(all["step"].to_vec1::<f64>()?, [4.0]);
    let pretrained = checkpoint::load_frozen(&ckpt)?;
    let moved = pretrained
        .iter()
        .filter(|(k, t)| k.starts_with("con_embedding.") && max_diff(t, &first[*k]).unwrap() > 0.0)
        .count();
    assert!(
        moved >= 6,
        "only {moved} encoder tensors trained on resuming"
    );

    let cfg = small::var_config();
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
    FastConEmbedding::new(&cfg.encoder_channels, cfg.embed_dim, vb.pp("con_embedding"))?;
    Var::new(cfg.clone(), vb)?;
    init::init_var(&vm, &cfg, &mut StdRng::seed_from_u64(3))?;
    let before: Vec<(String, Tensor)> = {
        let data = vm.data().lock().map_err(|_| anyhow::anyhow!("lock"))?;
        data.iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().copy().unwrap()))
            .collect()
    };
    let n = load_pretrained(&ckpt, &vm)?;
    let data = vm.data().lock().map_err(|_| anyhow::anyhow!("lock"))?;
    let mut copied = 0;
    for (k, old) in &before {
        let now = data[k].as_tensor();
        if k.starts_with("con_embedding.") {
            assert_eq!(max_diff(now, &pretrained[k])?, 0.0, "{k} not taken over");
            copied += 1;
        } else {
            assert_eq!(max_diff(now, old)?, 0.0, "{k} changed");
        }
    }
    assert_eq!(n, copied);
    assert!(!data.contains_key(&format!("{}.weight", super::prefix::HEAD)));
    Ok(())
}

/// A checkpoint without the encoder is refused with the missing key's name.
#[test]
fn a_checkpoint_without_the_encoder_names_the_missing_key() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let dir = tempfile::tempdir()?;
    let other = VarMap::new();
    other.get(
        4,
        "something.else",
        candle_nn::Init::Const(1.0),
        DType::F32,
        &dev,
    )?;
    let path = dir.path().join("x.safetensors");
    checkpoint::save(&path, &other, &AdamW::new(&other, AdamWConfig::default())?)?;
    let vm = VarMap::new();
    let cfg = small::var_config();
    FastConEmbedding::new(
        &cfg.encoder_channels,
        cfg.embed_dim,
        VarBuilder::from_varmap(&vm, DType::F32, &dev).pp("con_embedding"),
    )?;
    let err = format!("{:#}", load_pretrained(&path, &vm).unwrap_err());
    assert!(err.contains("has no tensor `con_embedding."), "{err}");
    Ok(())
}

/// `frozen_prefix` keeps every gradient from the LR encoder and changes nothing else in the loss.
#[test]
fn a_frozen_prefix_gets_no_gradient() -> anyhow::Result<()> {
    use super::diffusion::DiffusionLoss;
    use super::tests::{tiny_batch, tiny_model, tiny_var, tiny_vqvae};
    use super::transformer::{LossOptions, losses};
    let dev = Device::Cpu;
    let tvm = VarMap::new();
    let tok = Tokenizer::new(
        tiny_vqvae(),
        VarBuilder::from_varmap(&tvm, DType::F32, &dev),
    )?;
    init::init_vqvae(&tvm, &mut StdRng::seed_from_u64(5))?;
    let cfg = tiny_var();
    let batch = tiny_batch(&tok)?;
    let (vm, var, enc) = tiny_model()?;
    randomize(&vm, 0.2, 6)?;
    let m = super::mask::block_causal(16, &cfg.patch_nums, &dev)?;
    let dl = DiffusionLoss::default();
    let run = |frozen_prefix| {
        let opts = LossOptions {
            diff_mul: 1,
            scale_balanced: true,
            latent_weight: 0.0,
            frozen_prefix,
        };
        losses(
            &var,
            &enc,
            &m,
            &batch,
            &dl,
            opts,
            &mut StdRng::seed_from_u64(3),
        )
    };
    let (free, frozen) = (run(false)?, run(true)?);
    assert_eq!(
        free.total.to_scalar::<f32>()?,
        frozen.total.to_scalar::<f32>()?
    );
    let (gf, gz) = (free.total.backward()?, frozen.total.backward()?);
    let data = vm.data().lock().map_err(|_| anyhow::anyhow!("lock"))?;
    let mut checked = 0;
    for (k, v) in data.iter() {
        let has = |g: &candle_core::backprop::GradStore| g.get(v.as_tensor()).is_some();
        if k.starts_with("con_embedding.") {
            assert!(has(&gf), "{k} untrained without freezing");
            assert!(!has(&gz), "{k} got a gradient while frozen");
            checked += 1;
        } else if k.starts_with("blocks.") {
            assert!(has(&gz), "{k} lost its gradient");
        }
    }
    assert!(checked >= 4);
    Ok(())
}
