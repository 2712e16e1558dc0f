//! Token choice from guided logits: top-k, then top-p, then a multinomial draw
//! (`sample_with_top_k_top_p_`, models/helpers.py). `top_k = 1` is argmax and draws nothing.

use candle_core::{D, DType, Device, Result, Tensor};

use super::Noise;

/// Chooses one token per row of `logits` `(B, L, V)` (f32); returns `(B, L)` u32.
///
/// Only what the choice needs leaves the device: nothing for argmax, the `top_k` best logits and their
/// ids for top-k sampling, whole rows only when top-k is off.
pub fn sample(logits: &Tensor, top_k: usize, top_p: f32, noise: &mut dyn Noise) -> Result<Tensor> {
    let (b, l, v) = logits.dims3()?;
    if top_k == 1 {
        if logits.device().is_cpu() {
            // First index on ties, as on every backend we test.
            let flat = logits.flatten_all()?.to_vec1::<f32>()?;
            let ids: Vec<u32> = flat.chunks_exact(v).map(argmax).collect();
            return Tensor::from_vec(ids, (b, l), &Device::Cpu);
        }
        return logits.argmax(D::Minus1)?.to_dtype(DType::U32);
    }
    let (values, ids, width) = if top_k > 0 && top_k < v {
        let logits = logits.contiguous()?;
        let order = logits
            .arg_sort_last_dim(false)?
            .narrow(D::Minus1, 0, top_k)?
            .contiguous()?;
        let best = logits.gather(&order, D::Minus1)?;
        (
            best.flatten_all()?.to_vec1::<f32>()?,
            Some(order.flatten_all()?.to_vec1::<u32>()?),
            top_k,
        )
    } else {
        (logits.flatten_all()?.to_vec1::<f32>()?, None, v)
    };
    let uniforms = noise.uniform(b * l);
    let chosen: Vec<u32> = values
        .chunks_exact(width)
        .enumerate()
        .map(|(r, row)| {
            let j = sample_row(row, 0, top_p, uniforms[r]) as usize;
            ids.as_ref().map_or(j as u32, |ids| ids[r * width + j])
        })
        .collect();
    Tensor::from_vec(chosen, (b, l), &Device::Cpu)?.to_device(logits.device())
}

/// Argmax of the guided logits `(1 + t)·c − t·u` for logits `(2B, L, V)` (conditional rows first), in
/// one parallel pass on the CPU without forming the guided tensor: what the composed form plus
/// [`sample`] with `top_k = 1` choose, computed with the same f32 operations. `None` when the fast
/// path does not apply (another device or dtype).
pub fn guided_argmax(logits: &Tensor, t: f64) -> Result<Option<Tensor>> {
    const ROWS_PER_TASK: usize = 64;
    if !crate::ops::cpu::fast_path(&[logits]) {
        return Ok(None);
    }
    let (b2, l, v) = logits.dims3()?;
    let b = b2 / 2;
    if b == 0 || b2 % 2 == 1 || v == 0 {
        candle_core::bail!(
            "guided_argmax: logits {:?} are not two halves",
            logits.dims()
        );
    }
    // `tensor * f64` is candle's affine `x·(m as f32) + 0`, exact in the `+ 0`.
    let (mc, mu) = ((1.0 + t) as f32, t as f32);
    let rows = b * l;
    let mut ids = vec![0u32; rows];
    crate::ops::cpu::with_f32(logits, "guided_argmax", |xs| {
        let (cond, uncond) = xs.split_at(rows * v);
        crate::ops::cpu::for_each_chunk(&mut ids, ROWS_PER_TASK, |i, dst| {
            for (k, id) in dst.iter_mut().enumerate() {
                let r = i * ROWS_PER_TASK + k;
                let (c, u) = (&cond[r * v..][..v], &uncond[r * v..][..v]);
                *id = argmax_of(c.iter().zip(u).map(|(&c, &u)| c * mc - u * mu));
            }
        });
        Ok(())
    })?;
    Ok(Some(Tensor::from_vec(ids, (b, l), &Device::Cpu)?))
}

/// Index of the largest value; the first one on ties (the reference breaks ties at random, and the
/// fixture has none).
pub fn argmax(row: &[f32]) -> u32 {
    argmax_of(row.iter().copied())
}

/// [`argmax`] of values computed on the fly (the guided logits, without storing them).
fn argmax_of(values: impl IntoIterator<Item = f32>) -> u32 {
    let mut values = values.into_iter().enumerate();
    let Some((_, mut best)) = values.next() else {
        return 0;
    };
    let mut at = 0;
    for (i, x) in values {
        if x > best {
            best = x;
            at = i;
        }
    }
    at as u32
}

/// Probabilities after the top-k and top-p filters, in the reference's order of operations.
pub fn filtered_probs(row: &[f32], top_k: usize, top_p: f32) -> Vec<f64> {
    let mut logits: Vec<f64> = row.iter().map(|&x| x as f64).collect();
    if top_k > 0 && top_k < logits.len() {
        let mut sorted = logits.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let kth = sorted[top_k - 1];
        for x in logits.iter_mut() {
            if *x < kth {
                *x = f64::NEG_INFINITY;
            }
        }
    }
    let softmax = |l: &[f64]| {
        let m = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = l.iter().map(|x| (x - m).exp()).collect();
        let s: f64 = e.iter().sum();
        e.into_iter().map(|x| x / s).collect::<Vec<_>>()
    };
    if top_p > 0.0 {
        let p = softmax(&logits);
        let mut order: Vec<usize> = (0..p.len()).collect();
        order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
        let mut cum = 0.0;
        let threshold = 1.0 - top_p as f64;
        for (rank, &i) in order.iter().enumerate() {
            cum += p[i];
            // The largest entry is always kept.
            if cum <= threshold && rank + 1 < order.len() {
                logits[i] = f64::NEG_INFINITY;
            }
        }
    }
    softmax(&logits)
}

fn sample_row(row: &[f32], top_k: usize, top_p: f32, u: f32) -> u32 {
    let p = filtered_probs(row, top_k, top_p);
    let mut acc = 0.0;
    let target = u as f64;
    let mut last_nonzero = 0;
    for (i, &pi) in p.iter().enumerate() {
        if pi > 0.0 {
            last_nonzero = i;
            acc += pi;
            if target < acc {
                return i as u32;
            }
        }
    }
    last_nonzero as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::SeededNoise;
    use candle_core::IndexOp;

    /// The one-pass guided argmax picks what the composed guidance and `sample(top_k = 1)` pick,
    /// ties included (logits rounded to a coarse grid make many).
    #[test]
    fn guided_argmax_matches_the_composed_choice() -> Result<()> {
        let dev = Device::Cpu;
        for (b, l, v, t) in [(3, 70, 1024, 4.5), (2, 5, 37, 0.0), (1, 300, 16, 12.0)] {
            let logits = (Tensor::randn(0f32, 2f32, (2 * b, l, v), &dev)? * 4.0)?.round()?;
            let guided = ((logits.i(0..b)? * (1.0 + t))? - (logits.i(b..2 * b)? * t)?)?;
            let mut noise = SeededNoise::new(1);
            let want = sample(&guided, 1, 0.75, &mut noise)?.to_vec2::<u32>()?;
            let got = guided_argmax(&logits, t)?.expect("the CPU path");
            assert_eq!(got.to_vec2::<u32>()?, want, "{b}×{l}×{v} t {t}");
        }
        Ok(())
    }

    #[test]
    fn top_k_one_is_argmax() -> Result<()> {
        let logits = Tensor::new(
            &[[[0.1f32, 3.0, 2.9, -1.0], [5.0, 1.0, 0.0, 4.99]]],
            &Device::Cpu,
        )?;
        let ids = sample(&logits, 1, 0.75, &mut SeededNoise::new(0))?.to_vec2::<u32>()?;
        assert_eq!(ids, vec![vec![1, 0]]);
        Ok(())
    }

    #[test]
    fn top_k_and_top_p_filters_keep_the_expected_support() {
        // softmax of ln(p) is p: probabilities 0.5, 0.3, 0.15, 0.05.
        let row: Vec<f32> = [0.5f32, 0.3, 0.15, 0.05].iter().map(|p| p.ln()).collect();
        let p = filtered_probs(&row, 3, 1.0);
        assert_eq!(p[3], 0.0);
        assert!((p[0] - 0.5 / 0.95).abs() < 1e-6);
        // top_p 0.75: ascending cumsum 0.05, 0.20, 0.50, 1.0 ≤ 0.25 removes the two smallest.
        let p = filtered_probs(&row, 0, 0.75);
        assert_eq!((p[2], p[3]), (0.0, 0.0));
        assert!((p[0] - 0.625).abs() < 1e-6 && (p[1] - 0.375).abs() < 1e-6);
    }

    #[test]
    fn top_k_sampling_draws_only_among_the_k_best() -> Result<()> {
        let row: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let mut best: Vec<usize> = (0..50).collect();
        best.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        let logits = Tensor::from_vec(row.repeat(200), (4, 50, 50), &Device::Cpu)?;
        let ids = sample(&logits, 3, 1.0, &mut SeededNoise::new(5))?
            .flatten_all()?
            .to_vec1::<u32>()?;
        let mut seen = std::collections::BTreeSet::new();
        for id in ids {
            assert!(
                best[..3].contains(&(id as usize)),
                "{id} is not among the 3 best"
            );
            seen.insert(id);
        }
        assert_eq!(seen.len(), 3, "200 draws should hit all three candidates");
        Ok(())
    }

    #[test]
    fn multinomial_frequencies_follow_the_probabilities() {
        let row: Vec<f32> = [0.6f32, 0.3, 0.1].iter().map(|p| p.ln()).collect();
        let mut noise = SeededNoise::new(11);
        let n = 20_000;
        let mut counts = [0usize; 3];
        for u in noise.uniform(n) {
            counts[sample_row(&row, 0, 1.0, u) as usize] += 1;
        }
        for (c, p) in counts.iter().zip([0.6, 0.3, 0.1]) {
            assert!((*c as f64 / n as f64 - p).abs() < 0.015, "{counts:?}");
        }
    }
}
