//! A "model folder": the two released checkpoints side by side, or one converted safetensors file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use super::convert::Component;
use super::error::{WeightsError, WeightsResult};
use super::{VAE_STATE_DICT, VAR_STATE_DICT, Weights};

/// File name of the released transformer checkpoint.
pub const VAR_FILE_NAME: &str = "VARSR.pth";
/// File name of the released VQVAE checkpoint.
pub const VAE_FILE_NAME: &str = "VQVAE.pth";

/// The weights of both models, however they were shipped.
#[derive(Debug, Clone)]
pub enum ModelFiles {
    /// `VARSR.pth` and `VQVAE.pth` as released (state dicts nested under `trainer`).
    Released { var: Weights, vae: Weights },
    /// One safetensors file with `var.` and `vae.` prefixed tensors (see [`super::convert`]).
    Converted(Weights),
}

/// Opens a folder holding `VARSR.pth` + `VQVAE.pth` (names matched case-insensitively) or a single
/// converted `.safetensors`, or such a `.safetensors` file directly. Reads only indexes, no tensor data.
pub fn open_model_files(path: &Path) -> WeightsResult<ModelFiles> {
    let err = |detail: String| WeightsError::ModelFiles {
        path: path.to_path_buf(),
        detail,
    };
    if path.is_file() {
        let is_pth = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("pth") || e.eq_ignore_ascii_case("pt"));
        if is_pth {
            return Err(err(format!(
                "a released checkpoint needs its partner: give the folder holding both {VAR_FILE_NAME} and \
                 {VAE_FILE_NAME}"
            )));
        }
        return ModelFiles::converted(Weights::open_safetensors(path)?);
    }
    if !path.is_dir() {
        return Err(err("no such file or folder".to_string()));
    }
    let listing =
        std::fs::read_dir(path).map_err(|e| WeightsError::io(&path.display().to_string(), e))?;
    let mut files: Vec<PathBuf> = listing
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let named = |want: &str| {
        files
            .iter()
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().eq_ignore_ascii_case(want))
            })
            .cloned()
    };
    match (named(VAR_FILE_NAME), named(VAE_FILE_NAME)) {
        (Some(var), Some(vae)) => {
            return Ok(ModelFiles::Released {
                var: Weights::open_pth(&var, VAR_STATE_DICT)?,
                vae: Weights::open_pth(&vae, VAE_STATE_DICT)?,
            });
        }
        (Some(_), None) => {
            return Err(err(format!(
                "found {VAR_FILE_NAME} but not {VAE_FILE_NAME} beside it"
            )));
        }
        (None, Some(_)) => {
            return Err(err(format!(
                "found {VAE_FILE_NAME} but not {VAR_FILE_NAME} beside it"
            )));
        }
        (None, None) => {}
    }
    let converted: Vec<&PathBuf> = files
        .iter()
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
        })
        .collect();
    match converted.as_slice() {
        [one] => ModelFiles::converted(Weights::open_safetensors(one)?),
        [] => {
            let names: Vec<String> = files
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            Err(err(format!(
                "looked for {VAR_FILE_NAME} + {VAE_FILE_NAME} or one converted .safetensors file, found {}",
                if names.is_empty() {
                    "an empty folder".to_string()
                } else {
                    names.join(", ")
                }
            )))
        }
        several => Err(err(format!(
            "holds {} .safetensors files ({}); give the path of the one to use",
            several.len(),
            several
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

impl ModelFiles {
    /// A converted model compiled into the binary (`include_bytes!`).
    pub fn from_static(bytes: &'static [u8], name: &str) -> WeightsResult<ModelFiles> {
        ModelFiles::converted(Weights::from_static_safetensors(bytes, name)?)
    }

    /// Checks that a converted file has both parts before calling it a model.
    pub fn converted(weights: Weights) -> WeightsResult<ModelFiles> {
        for component in [Component::Var, Component::Vae] {
            if weights.sub(component.prefix()).keys().next().is_none() {
                return Err(WeightsError::ModelFiles {
                    path: PathBuf::from(weights.source()),
                    detail: format!(
                        "this safetensors file has no `{}.` tensors, so it is not a converted VARSR model",
                        component.prefix()
                    ),
                });
            }
        }
        Ok(ModelFiles::Converted(weights))
    }

    /// The transformer's weights, keys as in its state dict.
    pub fn var(&self) -> Weights {
        self.component(Component::Var)
    }

    /// The VQVAE's weights, keys as in its state dict.
    pub fn vae(&self) -> Weights {
        self.component(Component::Vae)
    }

    pub fn component(&self, component: Component) -> Weights {
        match (self, component) {
            (ModelFiles::Released { var, .. }, Component::Var) => var.clone(),
            (ModelFiles::Released { vae, .. }, Component::Vae) => vae.clone(),
            (ModelFiles::Converted(w), c) => w.sub(c.prefix()),
        }
    }

    pub fn var_builder(&self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        self.var().var_builder(dtype, device)
    }

    pub fn vae_builder(&self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        self.vae().var_builder(dtype, device)
    }

    /// `__metadata__` of a converted file (e.g. the model config JSON); empty for released checkpoints.
    pub fn metadata(&self) -> HashMap<String, String> {
        match self {
            ModelFiles::Released { .. } => HashMap::new(),
            ModelFiles::Converted(w) => w.metadata().clone(),
        }
    }

    /// Where the weights come from, for logs and the UI.
    pub fn describe(&self) -> String {
        match self {
            ModelFiles::Released { var, vae } => format!("{} + {}", var.source(), vae.source()),
            ModelFiles::Converted(w) => w.source().to_string(),
        }
    }
}
