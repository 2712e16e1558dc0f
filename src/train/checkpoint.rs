//! Resumable training state: the parameters, the optimizer moments and the step, in one safetensors
//! file written under a temporary name and renamed, so that a crash never leaves half a checkpoint.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarMap;

use super::optim::AdamW;

/// Writes `p.<name>` for every parameter, the optimizer moments and `step`.
pub fn save(path: &Path, varmap: &VarMap, opt: &AdamW) -> Result<()> {
    let mut all: HashMap<String, Tensor> = opt.state();
    {
        let data = varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("poisoned var map".into()))?;
        for (k, v) in data.iter() {
            all.insert(format!("p.{k}"), v.as_tensor().clone());
        }
    }
    all.insert(
        "step".into(),
        Tensor::new(&[opt.step as f64], &Device::Cpu)?,
    );
    let tmp = path.with_extension("tmp");
    candle_core::safetensors::save(&all, &tmp)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Loads a checkpoint written by [`save`] into `varmap` and `opt`; returns the step.
pub fn load(path: &Path, varmap: &VarMap, opt: &mut AdamW) -> Result<usize> {
    let all = candle_core::safetensors::load(path, &Device::Cpu)?;
    load_params(&all, varmap)?;
    let step = match all.get("step") {
        Some(s) => s
            .to_dtype(DType::F64)?
            .to_vec1::<f64>()?
            .first()
            .copied()
            .unwrap_or(0.0) as usize,
        None => 0,
    };
    opt.load_state(&all, step)?;
    Ok(step)
}

/// Copies `p.<name>` (or plain `<name>`) tensors into the matching variables.
pub fn load_params(all: &HashMap<String, Tensor>, varmap: &VarMap) -> Result<()> {
    load_params_where(all, varmap, |_| true).map(|_| ())
}

/// [`load_params`] for the variables whose name passes `wanted` only; returns how many were set.
pub fn load_params_where(
    all: &HashMap<String, Tensor>,
    varmap: &VarMap,
    wanted: impl Fn(&str) -> bool,
) -> Result<usize> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("poisoned var map".into()))?;
    let mut n = 0;
    for (k, v) in data.iter().filter(|(k, _)| wanted(k)) {
        let t = all.get(&format!("p.{k}")).or_else(|| all.get(k));
        match t {
            Some(t) => v.set(&t.to_dtype(DType::F32)?)?,
            None => candle_core::bail!("checkpoint has no tensor `{k}`"),
        }
        n += 1;
    }
    Ok(n)
}

/// The parameters of a checkpoint as plain tensors (`p.` prefix removed), e.g. a frozen tokenizer.
pub fn load_frozen(path: &Path) -> Result<HashMap<String, Tensor>> {
    let all = candle_core::safetensors::load(path, &Device::Cpu)?;
    Ok(all
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix("p.").map(|n| (n.to_string(), v)))
        .collect())
}
