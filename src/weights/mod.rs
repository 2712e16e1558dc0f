//! Weight loading: the released nested `.pth` checkpoints, converted safetensors files (mapped from disk
//! or compiled into the binary), and conversion between them.
//!
//! [`Weights`] is one opened file (or a prefixed view of one). It answers shape and dtype queries from
//! the file's index alone and reads a tensor's bytes only when the model asks for it, so building the
//! model from the 13.7 GB released `VARSR.pth` reads just the 4.4 GB of model weights, never the
//! optimizer state stored beside them. Model code gets a [`candle_nn::VarBuilder`] whose names are the
//! state-dict keys:
//!
//! ```no_run
//! # fn main() -> candle_core::Result<()> {
//! use candle_core::{DType, Device};
//! use varsr::weights::{Weights, VAR_STATE_DICT};
//! let var = Weights::open_pth("VARSR.pth".as_ref(), VAR_STATE_DICT)?;
//! let c = var.shape("word_embed.weight").map(|s| s[0]);
//! let vb = var.var_builder(DType::F32, &Device::Cpu);
//! let proj = vb.pp("blocks").pp(0).pp("attn").pp("proj").get((1536, 1536), "weight")?;
//! # let _ = (c, proj); Ok(()) }
//! ```

mod backend;
mod convert;
mod error;
mod host;
mod model_files;
mod pickle_walk;
mod pth;
mod safetensors_file;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

pub use convert::{Component, ConvertSummary, convert, convert_with_progress, is_inference_key};
pub use error::{WeightsError, WeightsResult};
pub use model_files::{ModelFiles, VAE_FILE_NAME, VAR_FILE_NAME, open_model_files};

/// Dict path of the transformer's state dict in the released `VARSR.pth`.
pub const VAR_STATE_DICT: &[&str] = &["trainer", "var_wo_ddp"];
/// Dict path of the VQVAE's state dict in the released `VQVAE.pth`.
pub const VAE_STATE_DICT: &[&str] = &["trainer", "vae_local"];

/// What is known about one tensor without reading it.
#[derive(Debug, Clone)]
pub(crate) struct TensorMeta {
    shape: Option<Vec<usize>>,
    dtype: Option<DType>,
    /// Why the tensor cannot be read; reported only when someone asks for it.
    problem: Option<String>,
}

impl TensorMeta {
    pub(crate) fn ok(shape: Vec<usize>, dtype: DType) -> Self {
        Self {
            shape: Some(shape),
            dtype: Some(dtype),
            problem: None,
        }
    }

    pub(crate) fn broken(shape: Option<Vec<usize>>, dtype: Option<DType>, problem: String) -> Self {
        Self {
            shape,
            dtype,
            problem: Some(problem),
        }
    }
}

enum Store {
    Pth(pth::PthFile),
    Safetensors(safetensors_file::SafetensorsFile),
}

struct Inner {
    /// Shown in messages: the path, plus the dict path for a `.pth`.
    describe: String,
    store: Store,
    /// Tensor names in file order.
    names: Vec<String>,
    metas: HashMap<String, TensorMeta>,
    metadata: HashMap<String, String>,
    bytes_read: AtomicU64,
}

/// An opened weights file, or a view of the tensors under one prefix of it. Cloning is cheap (shared).
///
/// Names given to its methods are relative to the view's prefix: in a view made with
/// `weights.sub("var")`, `shape("head.weight")` asks for `var.head.weight` in the file.
#[derive(Clone)]
pub struct Weights {
    inner: Arc<Inner>,
    /// Either empty or ending in '.'.
    prefix: String,
}

impl Weights {
    /// Opens a PyTorch zip checkpoint and selects the state dict at `dict_path` (e.g.
    /// [`VAR_STATE_DICT`]; `&[]` when the file is a bare state dict). Reads only the pickle.
    pub fn open_pth(path: &Path, dict_path: &[&str]) -> WeightsResult<Weights> {
        let (file, metas) = pth::open(path, dict_path)?;
        let describe = if dict_path.is_empty() {
            path.display().to_string()
        } else {
            format!("{} [{}]", path.display(), dict_path.join("."))
        };
        Ok(Self::new(describe, Store::Pth(file), metas, HashMap::new()))
    }

    /// Memory-maps a safetensors file. Reads only its header.
    pub fn open_safetensors(path: &Path) -> WeightsResult<Weights> {
        let (file, metas, metadata) = safetensors_file::open(path)?;
        Ok(Self::new(
            path.display().to_string(),
            Store::Safetensors(file),
            metas,
            metadata,
        ))
    }

    /// Safetensors bytes that live for the whole program (e.g. `include_bytes!`); `name` is used in
    /// messages in place of a path.
    pub fn from_static_safetensors(bytes: &'static [u8], name: &str) -> WeightsResult<Weights> {
        let (file, metas, metadata) = safetensors_file::from_static(bytes, name)?;
        Ok(Self::new(
            name.to_string(),
            Store::Safetensors(file),
            metas,
            metadata,
        ))
    }

    fn new(
        describe: String,
        store: Store,
        metas: Vec<(String, TensorMeta)>,
        metadata: HashMap<String, String>,
    ) -> Weights {
        let names = metas.iter().map(|(n, _)| n.clone()).collect();
        Weights {
            inner: Arc::new(Inner {
                describe,
                store,
                names,
                metas: metas.into_iter().collect(),
                metadata,
                bytes_read: AtomicU64::new(0),
            }),
            prefix: String::new(),
        }
    }

    /// A view of the tensors named `<prefix>.…`, addressed without the prefix.
    pub fn sub(&self, prefix: &str) -> Weights {
        let prefix = prefix.trim_end_matches('.');
        Weights {
            inner: Arc::clone(&self.inner),
            prefix: if prefix.is_empty() {
                self.prefix.clone()
            } else {
                format!("{}{prefix}.", self.prefix)
            },
        }
    }

    /// The file (and dict path) these weights come from, as shown in messages.
    pub fn source(&self) -> &str {
        &self.inner.describe
    }

    /// The view's prefix including its trailing dot, or "" for the whole file.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn full_name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn meta(&self, name: &str) -> Option<&TensorMeta> {
        if self.prefix.is_empty() {
            self.inner.metas.get(name)
        } else {
            self.inner.metas.get(&self.full_name(name))
        }
    }

    /// Tensor names in file order (relative to the view's prefix), including tensors that cannot be
    /// read (unsupported dtype, damaged storage).
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.inner
            .names
            .iter()
            .filter_map(move |n| n.strip_prefix(self.prefix.as_str()))
    }

    /// Whether a tensor of that name exists (readable or not).
    pub fn contains(&self, name: &str) -> bool {
        self.meta(name).is_some()
    }

    /// Shape of a tensor, from the file's index (never reads data).
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.meta(name).and_then(|m| m.shape.clone())
    }

    /// Stored dtype of a tensor, if it is one this loader can read or at least name.
    pub fn dtype(&self, name: &str) -> Option<DType> {
        self.meta(name).and_then(|m| m.dtype)
    }

    /// `__metadata__` of a safetensors file; empty for a `.pth`.
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.inner.metadata
    }

    /// Tensor bytes read from the file so far, over all views (a diagnostic: proves laziness).
    pub fn bytes_read(&self) -> u64 {
        self.inner.bytes_read.load(Ordering::Relaxed)
    }

    /// Reads a tensor in its stored dtype.
    pub fn tensor(&self, name: &str, device: &Device) -> WeightsResult<Tensor> {
        let (host, dims) = self.read_host_with_dims(name)?;
        Ok(host.into_tensor(&dims, device)?)
    }

    pub(crate) fn read_host(&self, name: &str) -> WeightsResult<host::HostData> {
        Ok(self.read_host_with_dims(name)?.0)
    }

    fn read_host_with_dims(&self, name: &str) -> WeightsResult<(host::HostData, Vec<usize>)> {
        let full = self.full_name(name);
        let Some(meta) = self.inner.metas.get(&full) else {
            return Err(self.missing(name));
        };
        if let Some(problem) = &meta.problem {
            return Err(WeightsError::unreadable(
                &full,
                &self.inner.describe,
                problem.clone(),
            ));
        }
        let (host, dims, nbytes) = match &self.inner.store {
            Store::Pth(f) => f.read(&full)?,
            Store::Safetensors(f) => f.read(&full)?,
        };
        self.inner.bytes_read.fetch_add(nbytes, Ordering::Relaxed);
        Ok((host, dims))
    }

    /// Reads a tensor and casts it to `dtype`.
    pub fn tensor_as(&self, name: &str, dtype: DType, device: &Device) -> WeightsResult<Tensor> {
        let t = self.tensor(name, device)?;
        if t.dtype() == dtype {
            Ok(t)
        } else {
            Ok(t.to_dtype(dtype)?)
        }
    }

    /// Reads a tensor after checking that its shape is `expected`.
    pub fn tensor_checked(
        &self,
        name: &str,
        expected: &[usize],
        dtype: DType,
        device: &Device,
    ) -> WeightsResult<Tensor> {
        let Some(meta) = self.meta(name) else {
            return Err(self.missing(name));
        };
        if let Some(found) = &meta.shape
            && found.as_slice() != expected
        {
            return Err(WeightsError::ShapeMismatch {
                name: self.full_name(name),
                file: self.inner.describe.clone(),
                found: found.clone(),
                expected: expected.to_vec(),
            });
        }
        self.tensor_as(name, dtype, device)
    }

    /// A `VarBuilder` over this view; `vb.pp("blocks").pp(0)…` names are state-dict keys.
    pub fn var_builder(&self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self.clone()), dtype, device.clone())
    }

    fn missing(&self, name: &str) -> WeightsError {
        let full = self.full_name(name);
        let n = self.keys().count();
        let near = self.near_names(name);
        let hint = if near.is_empty() {
            format!(" ({n} tensors there)")
        } else {
            format!(" ({n} tensors there; similar: {})", near.join(", "))
        };
        WeightsError::MissingTensor {
            name: full,
            file: self.inner.describe.clone(),
            hint,
        }
    }

    /// Names sharing the longest dotted prefix with `name`, to point at a renamed or shifted key.
    fn near_names(&self, name: &str) -> Vec<String> {
        let parts: Vec<&str> = name.split('.').collect();
        for keep in (1..parts.len()).rev() {
            let stem = format!("{}.", parts[..keep].join("."));
            let found: Vec<String> = self
                .keys()
                .filter(|k| k.starts_with(&stem))
                .take(4)
                .map(|k| format!("`{}{k}`", self.prefix))
                .collect();
            if !found.is_empty() {
                return found;
            }
        }
        Vec::new()
    }
}

impl std::fmt::Debug for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Weights")
            .field("source", &self.inner.describe)
            .field("prefix", &self.prefix)
            .field("tensors", &self.keys().count())
            .finish()
    }
}
