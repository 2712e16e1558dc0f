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

/// The training run's initialisation: [`init_var_plain`] plus the positional heads.
pub fn init_var(varmap: &VarMap, cfg: &VarConfig, rng: &mut impl Rng) -> Result<()> {
    init_var_plain(varmap, cfg, rng)?;
    init_positional_heads(varmap, cfg)
}

/// Channel of the residual stream that carries a constant positive marker (see
/// [`init_positional_heads`]).
const MARKER: usize = 0;
/// Value of the marker channel in every level embedding and prefix position.
const MARKER_VALUE: f32 = 4.0;
/// Rotary pairs (per axis) that the positional heads' constant q/k vector occupies: the highest
/// frequencies, whose mixture peaks sharply at zero offset without aliasing over a 16-cell grid.
const POSITIONAL_PAIRS: usize = 4;
/// Initial temperature of the positional heads, `ln 30` (VAR's heads start at `ln 4`).
const POSITIONAL_SCALE_MUL: f32 = 3.401_197_4;

/// The constant head vector of the positional heads: ones on the first channel of the
/// [`POSITIONAL_PAIRS`] highest-frequency rotary pairs of each axis.
fn positional_vector(head_dim: usize) -> Vec<f32> {
    let mut c = vec![0f32; head_dim];
    for m in 0..POSITIONAL_PAIRS {
        c[2 * m] = 1.0;
        c[head_dim / 2 + 2 * m] = 1.0;
    }
    c
}

/// Head 0 of every block starts as a pure position lookup: q is a constant vector `c`, k is `c`
/// times the (always positive) marker channel, so after L2 normalisation and the scale-aligned RoPE
/// `q·k` depends only on the offset between two grid positions and peaks where they coincide. A
/// token of any scale then reads the LR prefix token at its own place from the first step (VAR's
/// random init had not found that alignment after 1000 steps of the first run; side by side, the two
/// inits were level for the first 225 steps). Every other projection ignores the marker channel, so
/// the rest of the network starts as VAR's.
fn init_positional_heads(varmap: &VarMap, cfg: &VarConfig) -> Result<()> {
    let c = cfg.embed_dim;
    let hd = cfg.head_dim();
    let head = positional_vector(hd);
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("poisoned var map".into()))?;
    let update = |name: &str, f: &dyn Fn(&mut [f32], &[usize])| -> Result<()> {
        if let Some(v) = data.get(name) {
            let dims = v.dims().to_vec();
            let mut x = v.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            f(&mut x, &dims);
            v.set(&Tensor::from_vec(x, dims.as_slice(), v.device())?)?;
        }
        Ok(())
    };
    let marker = |x: &mut [f32], dims: &[usize]| {
        let width = dims[dims.len() - 1];
        for row in x.chunks_mut(width) {
            row[MARKER] = MARKER_VALUE;
        }
    };
    update("lvl_embed.weight", &marker)?;
    update("pos_start", &marker)?;
    for b in 0..cfg.depth {
        let p = format!("blocks.{b}.attn");
        update(&format!("{p}.mat_qkv.weight"), &|w, _| {
            for (r, row) in w.chunks_mut(c).enumerate() {
                row[MARKER] = 0.0;
                if r < hd {
                    row.fill(0.0);
                } else if (c..c + hd).contains(&r) {
                    row.fill(0.0);
                    row[MARKER] = head[r - c];
                }
            }
        })?;
        update(&format!("{p}.q_bias"), &|q, _| {
            q[..hd].copy_from_slice(&head)
        })?;
        update(&format!("{p}.scale_mul_1H11"), &|s, _| {
            s[0] = POSITIONAL_SCALE_MUL
        })?;
        update(&format!("blocks.{b}.ffn.fc1.weight"), &|w, _| {
            w.chunks_mut(c).for_each(|row| row[MARKER] = 0.0)
        })?;
    }
    Ok(())
}

/// VAR's initialisation of the transformer, its LR encoder (convolutions keep the Kaiming hint) and
/// the refiner.
pub fn init_var_plain(varmap: &VarMap, cfg: &VarConfig, rng: &mut impl Rng) -> Result<()> {
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
