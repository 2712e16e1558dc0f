//! AdamW whose moments can be saved and restored, so that training resumes exactly where it stopped
//! (candle's `AdamW` keeps its state private). Also global-norm gradient clipping.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var};
use candle_nn::VarMap;

#[derive(Clone, Debug)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.05,
        }
    }
}

struct Slot {
    name: String,
    var: Var,
    m: Var,
    v: Var,
    decay: bool,
}

pub struct AdamW {
    slots: Vec<Slot>,
    pub step: usize,
    pub config: AdamWConfig,
}

impl AdamW {
    /// All variables of `varmap`; weight decay only on matrices and kernels (not on biases, norms,
    /// embeddings' 1-D tensors).
    pub fn new(varmap: &VarMap, config: AdamWConfig) -> Result<Self> {
        let data = varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("poisoned var map".into()))?;
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        let mut slots = Vec::with_capacity(names.len());
        for name in names {
            let var = data[name].clone();
            let zeros = Tensor::zeros(var.shape(), DType::F32, var.device())?;
            slots.push(Slot {
                name: name.clone(),
                decay: var.rank() >= 2 && !name.contains("embed") && name != "pos_start",
                m: Var::from_tensor(&zeros)?,
                v: Var::from_tensor(&zeros)?,
                var,
            });
        }
        Ok(Self {
            slots,
            step: 0,
            config,
        })
    }

    /// Global L2 norm of the gradients.
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut total = 0f64;
        for s in &self.slots {
            if let Some(g) = grads.get(s.var.as_tensor()) {
                total += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
            }
        }
        Ok(total.sqrt())
    }

    /// One update at learning rate `lr`, gradients scaled by `grad_scale` (for clipping).
    pub fn step(&mut self, grads: &GradStore, lr: f64, grad_scale: f64) -> Result<()> {
        self.step += 1;
        let c = &self.config;
        let t = self.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        for s in &self.slots {
            let Some(g) = grads.get(s.var.as_tensor()) else {
                continue;
            };
            let g = (g * grad_scale)?;
            let m = ((s.m.as_tensor() * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            let v = ((s.v.as_tensor() * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let update = ((&m / bc1)? / ((&v / bc2)?.sqrt()? + c.eps)?)?;
            let mut w = s.var.as_tensor().clone();
            if s.decay {
                w = (w * (1.0 - lr * c.weight_decay))?;
            }
            s.var.set(&(w - (update * lr)?)?)?;
            s.m.set(&m)?;
            s.v.set(&v)?;
        }
        Ok(())
    }

    /// The moments as named tensors (`m.<name>`, `v.<name>`), for a checkpoint.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for s in &self.slots {
            out.insert(format!("m.{}", s.name), s.m.as_tensor().clone());
            out.insert(format!("v.{}", s.name), s.v.as_tensor().clone());
        }
        out
    }

    /// Restores moments saved by [`Self::state`]; missing ones stay zero.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, step: usize) -> Result<()> {
        for s in &self.slots {
            if let Some(m) = state.get(&format!("m.{}", s.name)) {
                s.m.set(m)?;
            }
            if let Some(v) = state.get(&format!("v.{}", s.name)) {
                s.v.set(v)?;
            }
        }
        self.step = step;
        Ok(())
    }
}

/// Linear warm-up then cosine decay to `final_frac · peak`.
pub fn lr_at(step: usize, total: usize, warmup: usize, peak: f64, final_frac: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let p = ((step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64).min(1.0);
    let cos = 0.5 * (1.0 + (std::f64::consts::PI * p).cos());
    peak * (final_frac + (1.0 - final_frac) * cos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn first_adam_step_moves_by_lr_against_the_gradient_sign() -> Result<()> {
        // Bias-corrected Adam's first step is lr·g/|g| (up to eps), whatever the gradient's size.
        let vm = VarMap::new();
        let dev = Device::Cpu;
        let w = vm.get((1, 2), "w", candle_nn::Init::Const(1.0), DType::F32, &dev)?;
        let mut opt = AdamW::new(
            &vm,
            AdamWConfig {
                weight_decay: 0.0,
                ..Default::default()
            },
        )?;
        let loss = (w.broadcast_mul(&Tensor::new(&[[3f32, -0.01]], &dev)?)?).sum_all()?;
        let grads = loss.backward()?;
        opt.step(&grads, 0.1, 1.0)?;
        let got = w.to_vec2::<f32>()?;
        assert!(
            (got[0][0] - 0.9).abs() < 1e-5 && (got[0][1] - 1.1).abs() < 1e-4,
            "{got:?}"
        );
        Ok(())
    }

    #[test]
    fn schedule_warms_up_then_decays() {
        assert!((lr_at(0, 100, 10, 1.0, 0.1) - 0.1).abs() < 1e-12);
        assert!((lr_at(10, 100, 10, 1.0, 0.1) - 1.0).abs() < 1e-12);
        assert!((lr_at(100, 100, 10, 1.0, 0.1) - 0.1).abs() < 1e-12);
    }
}
