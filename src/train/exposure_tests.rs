//! The two departures from VAR's teacher forcing used against exposure bias: inputs fed from near
//! codes instead of the nearest (`targets_fed`, `corrupt_ids`, `code_neighbours`) and the latent
//! loss on the expected code vector (`latent_distance`), each against a plain definition.

use candle_core::{D, DType, Device, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::diffusion::DiffusionLoss;
use super::tests::{max_diff, randomize, tiny_batch, tiny_model, tiny_var, tiny_vqvae};
use super::tokenizer::{Tokenizer, code_neighbours, corrupt_ids, targets, targets_fed};
use super::transformer::{LossOptions, latent_distance, losses};
use super::{init, mask};
use crate::ops::resample::area;

fn tokenizer(seed: u64) -> Result<Tokenizer> {
    let vm = VarMap::new();
    let tok = Tokenizer::new(
        tiny_vqvae(),
        VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
    )?;
    randomize(&vm, 0.5, seed)?;
    // The tokenizer keeps its tensors; the VarMap only had to set them.
    Ok(tok)
}

fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

#[test]
fn code_neighbours_are_the_nearest_other_codes_in_order() -> Result<()> {
    let tok = tokenizer(4)?;
    let e = tok.quantize.embedding.embeddings().clone();
    let rows = e.to_vec2::<f32>()?;
    let near = code_neighbours(&e, 3)?;
    assert_eq!(near.len(), rows.len());
    for (i, n) in near.iter().enumerate() {
        assert_eq!(n.len(), 3);
        assert!(!n.contains(&(i as u32)), "code {i} is its own neighbour");
        let d: Vec<f32> = n
            .iter()
            .map(|&j| sq_dist(&rows[i], &rows[j as usize]))
            .collect();
        assert!(d.windows(2).all(|w| w[0] <= w[1]), "code {i}: {d:?}");
        // No code left out is nearer than the farthest kept.
        for (j, r) in rows.iter().enumerate() {
            if j != i && !n.contains(&(j as u32)) {
                assert!(sq_dist(&rows[i], r) >= d[2], "code {i}: {j} is nearer");
            }
        }
    }
    Ok(())
}

#[test]
fn corrupt_ids_replaces_by_neighbours_at_the_given_rate() -> Result<()> {
    let dev = Device::Cpu;
    let neighbours: Vec<Vec<u32>> = (0..16u32)
        .map(|i| vec![(i + 1) % 16, (i + 2) % 16])
        .collect();
    let v: Vec<u32> = (0..4000).map(|i| (i % 16) as u32).collect();
    let ids = Tensor::from_vec(v.clone(), (4, 1000), &dev)?;
    let mut rng = StdRng::seed_from_u64(1);
    let same = corrupt_ids(&ids, &neighbours, 0.0, &mut rng)?;
    assert_eq!(same.flatten_all()?.to_vec1::<u32>()?, v);
    let all = corrupt_ids(&ids, &neighbours, 1.0, &mut rng)?;
    assert_eq!(all.dims(), &[4, 1000]);
    for (a, b) in v.iter().zip(all.flatten_all()?.to_vec1::<u32>()?) {
        assert!(neighbours[*a as usize].contains(&b), "{a} → {b}");
    }
    let some = corrupt_ids(&ids, &neighbours, 0.3, &mut rng)?.flatten_all()?;
    let changed = v
        .iter()
        .zip(some.to_vec1::<u32>()?)
        .filter(|(a, b)| **a != *b)
        .count();
    // Binomial(4000, 0.3): mean 1200, sd 29.
    assert!((1080..1320).contains(&changed), "{changed} of 4000 changed");
    Ok(())
}

#[test]
fn fed_targets_follow_the_residual_the_fed_tokens_leave() -> Result<()> {
    let tok = tokenizer(6)?;
    let img = Tensor::randn(0f32, 0.5, (2, 3, 8, 8), &Device::Cpu)?;
    let pns = [1, 2, 4];
    // Feeding the nearest ids is plain teacher forcing.
    let plain = targets(&tok, &img, &pns)?;
    let same = targets_fed(&tok, &img, &pns, |_, ids| Ok(ids.clone()))?;
    for (a, b) in plain.idx.iter().zip(&same.idx) {
        assert_eq!(a.to_vec2::<u32>()?, b.to_vec2::<u32>()?);
    }
    // Feed code (id + 1) mod V at the first scale: its target stays the nearest id; the next
    // scale's input is f̂ from the fed code, and its target the nearest code of what that leaves.
    let v = tok.quantize.embedding.embeddings().dims()[0] as u32;
    let mut calls = Vec::new();
    let fed = targets_fed(&tok, &img, &pns, |si, ids| {
        calls.push(si);
        if si > 0 {
            return Ok(ids.clone());
        }
        let shifted: Vec<u32> = ids
            .flatten_all()?
            .to_vec1::<u32>()?
            .iter()
            .map(|i| (i + 1) % v)
            .collect();
        Tensor::from_vec(shifted, ids.shape(), ids.device())
    })?;
    assert_eq!(calls, [0, 1], "the last scale is never fed another code");
    assert_eq!(fed.idx[0].to_vec2::<u32>()?, plain.idx[0].to_vec2::<u32>()?);
    let f = tok.encode(&img)?;
    let wrong = plain.idx[0].affine(1.0, 1.0)?.to_dtype(DType::F32)?;
    let wrong =
        (&wrong - (wrong.ge(v as f64)?.to_dtype(DType::F32)? * v as f64)?)?.to_dtype(DType::U32)?;
    let q = &tok.quantize;
    let (f_hat, next) = q.accumulate(&f.zeros_like()?, &q.lookup_map(&wrong, 1)?, 0, &pns)?;
    let next = next.ok_or_else(|| candle_core::Error::Msg("no next input".into()))?;
    assert!(max_diff(&fed.next[0], &next)? < 1e-6);
    assert!(
        max_diff(&plain.next[0], &next)? > 1e-3,
        "the fed code changed nothing"
    );
    let rest = area(&(&f - &f_hat)?, 2, 2)?;
    assert_eq!(
        fed.idx[1].to_vec2::<u32>()?,
        tok.nearest(&rest)?.to_vec2::<u32>()?
    );
    Ok(())
}

#[test]
fn latent_distance_is_the_distance_of_the_expected_code_vector() -> Result<()> {
    let dev = Device::Cpu;
    let tok = tokenizer(8)?;
    let e = tok.quantize.embedding.embeddings().clone();
    let rows = e.to_vec2::<f32>()?;
    let (n, vocab) = (5, rows.len());
    let logits = Tensor::randn(0f32, 2.0, (n, vocab), &dev)?;
    let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let target = Tensor::new(&[3u32, 0, 15, 7, 3], &dev)?;
    let got = latent_distance(&logp, &target, &e)?.to_vec1::<f32>()?;
    let lv = logits.to_vec2::<f32>()?;
    let tv = target.to_vec1::<u32>()?;
    for i in 0..n {
        let m = lv[i].iter().cloned().fold(f32::MIN, f32::max);
        let w: Vec<f64> = lv[i].iter().map(|&x| ((x - m) as f64).exp()).collect();
        let z: f64 = w.iter().sum();
        let mean: Vec<f32> = (0..rows[0].len())
            .map(|c| {
                (0..vocab)
                    .map(|k| w[k] / z * rows[k][c] as f64)
                    .sum::<f64>() as f32
            })
            .collect();
        let want = sq_dist(&mean, &rows[tv[i] as usize]);
        assert!(
            (got[i] - want).abs() < 1e-4 * (1.0 + want),
            "{i}: {} vs {want}",
            got[i]
        );
    }
    // A certain, right prediction costs nothing.
    let onehot = Tensor::from_vec(
        (0..vocab)
            .map(|k| if k == 9 { 0.0 } else { -1e4f32 })
            .collect(),
        (1, vocab),
        &dev,
    )?;
    let zero = latent_distance(&onehot, &Tensor::new(&[9u32], &dev)?, &e)?.to_vec1::<f32>()?;
    assert!(zero[0] < 1e-8, "{}", zero[0]);
    Ok(())
}

#[test]
fn the_latent_loss_is_added_to_the_total_only_when_weighted() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let tok = tokenizer(10)?;
    let cfg = tiny_var();
    let batch = tiny_batch(&tok)?;
    let (vm, var, enc) = tiny_model()?;
    init::init_var(&vm, &cfg, &mut StdRng::seed_from_u64(1))?;
    let m = mask::block_causal(16, &cfg.patch_nums, &dev)?;
    let dl = DiffusionLoss::default();
    // The same seed: the refiner's noise, and so its loss, is the same in both calls.
    let run = |w: f64| {
        let opts = LossOptions {
            diff_mul: 1,
            scale_balanced: true,
            latent_weight: w,
            frozen_prefix: false,
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
    let (plain, weighted) = (run(0.0)?, run(2.5)?);
    assert_eq!(plain.latent, None, "not computed when not trained on");
    let latent = weighted.latent.expect("computed when weighted");
    assert!(latent > 0.0);
    let added = weighted.total.to_scalar::<f32>()? - plain.total.to_scalar::<f32>()?;
    assert!(
        (added - 2.5 * latent).abs() < 1e-4 * (1.0 + latent),
        "{added} vs 2.5 × {latent}"
    );
    Ok(())
}
