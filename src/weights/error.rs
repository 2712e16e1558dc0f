//! Errors of the weight loader. Every message names the file and, where one is involved, the tensor or
//! dict key, because the person reading it usually has several multi-gigabyte checkpoints lying around.

use std::path::PathBuf;

/// What went wrong while opening, reading or converting weights.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("cannot read {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{file} is not a PyTorch checkpoint (.pth zip) or a safetensors file: {detail}")]
    NotACheckpoint { file: String, detail: String },

    #[error("{file} is truncated (incomplete download or copy?): {detail}")]
    Truncated { file: String, detail: String },

    #[error("{file} is damaged: {detail}")]
    Corrupt { file: String, detail: String },

    /// A dict on the way to the state dict lacks the expected key.
    #[error("{file}: {location} has no key `{key}`; keys there: {available}")]
    MissingDictKey {
        file: String,
        key: String,
        location: String,
        available: String,
    },

    #[error("tensor `{name}` not found in {file}{hint}")]
    MissingTensor {
        name: String,
        file: String,
        hint: String,
    },

    #[error("tensor `{name}` in {file} has shape {found:?}, the model expects {expected:?}")]
    ShapeMismatch {
        name: String,
        file: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },

    #[error("tensor `{name}` in {file} cannot be read: {detail}")]
    Unreadable {
        name: String,
        file: String,
        detail: String,
    },

    #[error("{path}: {detail}")]
    ModelFiles { path: PathBuf, detail: String },

    #[error("cannot write {file}: {detail}")]
    Write { file: String, detail: String },

    #[error(transparent)]
    Candle(candle_core::Error),
}

impl From<candle_core::Error> for WeightsError {
    fn from(err: candle_core::Error) -> Self {
        Self::Candle(without_backtrace(err))
    }
}

/// candle attaches a backtrace to errors when RUST_BACKTRACE is set, and prints it as part of the
/// message; a loader message must stay one readable line.
pub(crate) fn without_backtrace(err: candle_core::Error) -> candle_core::Error {
    match err {
        candle_core::Error::WithBacktrace { inner, .. } => without_backtrace(*inner),
        other => other,
    }
}

impl WeightsError {
    pub(crate) fn io(file: &str, source: std::io::Error) -> Self {
        Self::Io {
            file: file.to_string(),
            source,
        }
    }

    pub(crate) fn unreadable(name: &str, file: &str, detail: impl Into<String>) -> Self {
        Self::Unreadable {
            name: name.to_string(),
            file: file.to_string(),
            detail: detail.into(),
        }
    }
}

/// Model code works in `candle_core::Result`; the message is kept verbatim (no wrapping noise).
impl From<WeightsError> for candle_core::Error {
    fn from(err: WeightsError) -> Self {
        match err {
            WeightsError::Candle(inner) => inner,
            other => candle_core::Error::Msg(other.to_string()),
        }
    }
}

pub type WeightsResult<T> = std::result::Result<T, WeightsError>;

/// Formats at most `max` keys for an error message, saying how many were left out.
pub(crate) fn list_keys<'a>(keys: impl Iterator<Item = &'a str>, max: usize) -> String {
    let all: Vec<&str> = keys.collect();
    if all.is_empty() {
        return "(none)".to_string();
    }
    let shown: Vec<String> = all.iter().take(max).map(|k| format!("`{k}`")).collect();
    let mut out = shown.join(", ");
    if all.len() > max {
        out.push_str(&format!(" … and {} more", all.len() - max));
    }
    out
}
