//! Initial values of the trainable tensors. `VarBuilder::get` creates zeros, which is wrong for norms,
//! embeddings and most of the transformer; these follow VAR's `init_weights` (truncated-normal linears,
//! tiny AdaLN gammas, scaled residual projections, head × 0.02) and MAR's refiner init (zero AdaLN and
//! output layer).

use candle_core::{DType, Result, Tensor};
use candle_nn::VarMap;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::model::config::VarConfig;

fn normal(shape: &[usize], std: f64, rng: &mut impl Rng) -> Vec<f32> {
    let n: usize = shape.iter().product();
    // Truncated at 2σ.
    (0..n)
        .map(|_| {
            loop {
                let v: f64 = StandardNormal.sample(rng);
                if v.abs() <= 2.0 {
                    break (v * std) as f32;
                }
            }
        })
        .collect()
}

fn set(varmap: &VarMap, name: &str, values: Vec<f32>) -> Result<()> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("poisoned var map".into()))?;
    if let Some(v) = data.get(name) {
        let t = Tensor::from_vec(values, v.shape(), v.device())?.to_dtype(DType::F32)?;
        v.set(&t)?;
    }
    Ok(())
}

fn entries(varmap: &VarMap) -> Result<Vec<(String, Vec<usize>)>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("poisoned var map".into()))?;
    let mut v: Vec<(String, Vec<usize>)> = data
        .iter()
        .map(|(k, v)| (k.clone(), v.dims().to_vec()))
        .collect();
    v.sort();
    Ok(v)
}

/// Norm weights to 1 (everything else keeps the builder's hint: Kaiming for convolutions, zeros for
/// biases); the codebook to small random vectors.
pub fn init_vqvae(varmap: &VarMap, rng: &mut impl Rng) -> Result<()> {
    for (name, shape) in entries(varmap)? {
        let n: usize = shape.iter().product();
        if shape.len() == 1 && name.ends_with(".weight") {
            set(varmap, &name, vec![1.0; n])?;
        } else if name.ends_with("quantize.embedding.weight") {
            set(varmap, &name, normal(&shape, 0.5, rng))?;
        }
    }
    Ok(())
}

/// The transformer, its LR encoder (convolutions keep the Kaiming hint) and the refiner.
pub fn init_var(varmap: &VarMap, cfg: &VarConfig, rng: &mut impl Rng) -> Result<()> {
    let c = cfg.embed_dim;
    let std = (1.0 / c as f64 / 3.0).sqrt();
    for (name, shape) in entries(varmap)? {
        let n: usize = shape.iter().product();
        let rank1 = shape.len() == 1;
        if name.starts_with("con_embedding.") {
            continue;
        }
        if name.starts_with("diffloss.") {
            let zero = name.contains("adaLN_modulation") || name.contains("final_layer.linear");
            let v = if rank1 && name.ends_with("in_ln.weight") {
                vec![1.0; n]
            } else if rank1 || zero {
                vec![0.0; n]
            } else if name.contains("time_embed") {
                normal(&shape, 0.02, rng)
            } else {
                // Xavier uniform.
                let bound = (6.0 / (shape[0] + shape[1]) as f64).sqrt() as f32;
                (0..n).map(|_| rng.random_range(-bound..bound)).collect()
            };
            set(varmap, &name, v)?;
            continue;
        }
        let v = if name.ends_with("scale_mul_1H11") {
            vec![4f32.ln(); n]
        } else if name == "decoder_norm.weight" {
            vec![1.0; n]
        } else if rank1 {
            vec![0.0; n]
        } else if name.contains("ada_lin") {
            let mut w = normal(&shape, std, rng);
            if name.starts_with("blocks.") {
                // Rows [0, 2C) are the gammas: start the residual branches almost closed.
                for x in &mut w[..2 * c * shape[1]] {
                    *x *= 1e-5;
                }
                for x in &mut w[2 * c * shape[1]..] {
                    *x *= 0.5;
                }
            } else {
                for x in &mut w {
                    *x *= 0.5;
                }
            }
            w
        } else if name == "head.weight" {
            normal(&shape, std * 0.02, rng)
        } else if name.ends_with("attn.proj.weight") || name.ends_with("ffn.fc2.weight") {
            normal(&shape, std / (2.0 * cfg.depth as f64).sqrt(), rng)
        } else {
            normal(&shape, std, rng)
        };
        set(varmap, &name, v)?;
    }
    Ok(())
}
