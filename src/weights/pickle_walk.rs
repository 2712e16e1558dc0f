//! Finds a state dict inside a torch `data.pkl`, however deeply the training script nested it, and lists
//! its tensors without touching their storages.
//!
//! Everything else in the pickle (optimizer state, args, epoch counters) is unpickled by candle's VM
//! but never looked at, so odd values there (None, bools, tuples, nested dicts) cannot break loading.

use std::io::Read;
use std::path::Path;

use candle_core::pickle::{Object, Stack, TensorInfo};

use super::error::{WeightsError, WeightsResult, list_keys, without_backtrace};

/// One entry of the state dict that looked like a tensor.
pub(crate) struct PickledTensor {
    pub name: String,
    /// `Err` holds why the entry cannot be read (e.g. a storage type candle does not know, like
    /// `BoolStorage`); it only becomes an error if the model asks for this tensor.
    pub info: Result<TensorInfo, String>,
    /// Shape as pickled, also known for unreadable entries when the rebuild args are sane.
    pub shape: Option<Vec<usize>>,
}

/// Runs the pickle VM over `data.pkl`.
pub(crate) fn unpickle(reader: &mut impl Read, file: &str) -> WeightsResult<Object> {
    let mut reader = std::io::BufReader::new(reader);
    let mut stack = Stack::empty();
    stack.read_loop(&mut reader).map_err(|e| {
        let detail = without_backtrace(e).to_string();
        if detail.contains("failed to fill whole buffer") || detail.contains("UnexpectedEof") {
            WeightsError::Truncated {
                file: file.to_string(),
                detail: format!("data.pkl ends before the pickle is complete ({detail})"),
            }
        } else {
            WeightsError::Corrupt {
                file: file.to_string(),
                detail: format!("cannot unpickle data.pkl: {detail}"),
            }
        }
    })?;
    stack.finalize().map_err(|e| WeightsError::Corrupt {
        file: file.to_string(),
        detail: format!("data.pkl holds no object: {}", without_backtrace(e)),
    })
}

/// Descends `dict_path` from the pickled root and lists the tensors of the dict found there.
/// `dir` is the zip folder holding the storages (`<archive>/data`).
pub(crate) fn state_dict_tensors(
    root: Object,
    dict_path: &[&str],
    file: &str,
    dir: &Path,
) -> WeightsResult<Vec<PickledTensor>> {
    let mut current = root;
    let mut location = String::from("the top-level object");
    for (depth, key) in dict_path.iter().enumerate() {
        let entries = match current {
            Object::Dict(entries) => pickled_order(entries),
            other => {
                return Err(WeightsError::Corrupt {
                    file: file.to_string(),
                    detail: format!(
                        "{location} is {}, not a dict (looking for key `{key}`)",
                        kind(&other)
                    ),
                });
            }
        };
        let mut found = None;
        let mut names = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let name = key_text(&k);
            if found.is_none() && matches!(&k, Object::Unicode(s) if s == key) {
                found = Some(v);
            } else {
                names.push(name);
            }
        }
        current = match found {
            Some(v) => v,
            None => {
                return Err(WeightsError::MissingDictKey {
                    file: file.to_string(),
                    key: key.to_string(),
                    location,
                    available: list_keys(names.iter().map(String::as_str), 20),
                });
            }
        };
        location = format!("`{}`", dict_path[..=depth].join("."));
    }
    let entries = match current {
        Object::Dict(entries) => pickled_order(entries),
        other => {
            return Err(WeightsError::Corrupt {
                file: file.to_string(),
                detail: format!("{location} is {}, not a state dict", kind(&other)),
            });
        }
    };
    let mut tensors = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let Object::Unicode(name) = &key else {
            continue;
        };
        let name = name.clone();
        let shape = pickled_shape(&value);
        let is_tensor = shape.is_some();
        match value.into_tensor_info(key, dir) {
            Ok(Some(info)) => tensors.push(PickledTensor {
                name,
                info: Ok(info),
                shape,
            }),
            // Not a tensor (e.g. the `_metadata` of an OrderedDict state dict).
            Ok(None) => {}
            Err(e) if is_tensor => tensors.push(PickledTensor {
                name,
                info: Err(without_backtrace(e).to_string()),
                shape,
            }),
            Err(_) => {}
        }
    }
    if tensors.is_empty() {
        return Err(WeightsError::Corrupt {
            file: file.to_string(),
            detail: format!("{location} holds no tensors"),
        });
    }
    Ok(tensors)
}

/// Python's pickler writes dict items in batches of 1000 (`SETITEMS`; a lone last item as `SETITEM`) and
/// candle 0.11's VM appends each batch's pairs last-first. Reversing every 1000-chunk restores the saved
/// order exactly for dicts of up to 1000 items (both released state dicts have < 450); beyond that the
/// `_metadata` that BUILD appends to an OrderedDict can shift the chunks, so order is approximate there.
/// The loader tests check the order, so a candle that stops reversing shows up.
fn pickled_order<T>(mut entries: Vec<T>) -> Vec<T> {
    for chunk in entries.chunks_mut(PICKLE_BATCH) {
        chunk.reverse();
    }
    entries
}

const PICKLE_BATCH: usize = 1000;

/// The `size` argument of a `_rebuild_tensor_v2` call, without interpreting the storage.
fn pickled_shape(value: &Object) -> Option<Vec<usize>> {
    let Object::Reduce { callable, args } = value else {
        return None;
    };
    let Object::Class {
        module_name,
        class_name,
    } = callable.as_ref()
    else {
        return None;
    };
    if module_name != "torch._utils" || class_name != "_rebuild_tensor_v2" {
        return None;
    }
    let Object::Tuple(args) = args.as_ref() else {
        return None;
    };
    let Some(Object::Tuple(size)) = args.get(2) else {
        return None;
    };
    size.iter()
        .map(|d| match d {
            Object::Int(v) if *v >= 0 => Some(*v as usize),
            Object::Long(v) if *v >= 0 => usize::try_from(*v).ok(),
            _ => None,
        })
        .collect()
}

fn key_text(key: &Object) -> String {
    match key {
        Object::Unicode(s) => s.clone(),
        Object::Int(i) => i.to_string(),
        Object::Long(i) => i.to_string(),
        other => format!("<{}>", kind(other)),
    }
}

fn kind(obj: &Object) -> &'static str {
    match obj {
        Object::Class { .. } => "a class",
        Object::Int(_) | Object::Long(_) => "an int",
        Object::Float(_) => "a float",
        Object::Unicode(_) => "a string",
        Object::Bool(_) => "a bool",
        Object::None => "None",
        Object::Tuple(_) => "a tuple",
        Object::List(_) => "a list",
        Object::Mark => "a pickle mark",
        Object::Dict(_) => "a dict",
        Object::Reduce { .. } => "an object",
        Object::Build { .. } => "an object",
        Object::PersistentLoad(_) => "a storage reference",
    }
}
