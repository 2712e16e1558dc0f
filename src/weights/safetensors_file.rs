//! Safetensors weights, either memory-mapped from a file or borrowed from bytes compiled into the binary.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use candle_core::DType;
use safetensors::{Dtype, SafeTensorError, SafeTensors};

use super::TensorMeta;
use super::error::{WeightsError, WeightsResult};
use super::host::{self, HostData, ReadError};

enum Bytes {
    Mmap(memmap2::Mmap),
    Static(&'static [u8]),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mmap(m) => m,
            Bytes::Static(b) => b,
        }
    }
}

struct StTensor {
    dtype: DType,
    dims: Vec<usize>,
    /// Absolute byte range in the file.
    start: usize,
    end: usize,
}

pub(crate) struct SafetensorsFile {
    file: String,
    bytes: Bytes,
    tensors: HashMap<String, StTensor>,
}

pub(crate) type Opened = (
    SafetensorsFile,
    Vec<(String, TensorMeta)>,
    HashMap<String, String>,
);

pub(crate) fn open(path: &Path) -> WeightsResult<Opened> {
    let file = path.display().to_string();
    let handle = File::open(path).map_err(|e| WeightsError::io(&file, e))?;
    // SAFETY: the map is read-only; if another process truncates the file while it is mapped, reads
    // fault (SIGBUS) — the same contract as every mmap-based safetensors loader, accepted here because
    // copying multi-gigabyte files up front would double the memory this loader exists to save.
    let mmap = unsafe { memmap2::MmapOptions::new().map(&handle) }
        .map_err(|e| WeightsError::io(&file, e))?;
    parse(file, Bytes::Mmap(mmap))
}

pub(crate) fn from_static(bytes: &'static [u8], name: &str) -> WeightsResult<Opened> {
    parse(name.to_string(), Bytes::Static(bytes))
}

fn parse(file: String, bytes: Bytes) -> WeightsResult<Opened> {
    let buf = bytes.as_slice();
    let (header_len, meta) =
        SafeTensors::read_metadata(buf).map_err(|e| header_error(&file, buf, e))?;
    let data_start = 8 + header_len;
    let mut infos: Vec<(String, &safetensors::tensor::TensorInfo)> =
        meta.tensors().into_iter().collect();
    infos.sort_by_key(|(_, info)| info.data_offsets.0);

    let mut metas = Vec::with_capacity(infos.len());
    let mut tensors = HashMap::with_capacity(infos.len());
    for (name, info) in infos {
        let dims = info.shape.clone();
        match candle_dtype(info.dtype) {
            Some(dtype) => {
                metas.push((name.clone(), TensorMeta::ok(dims.clone(), dtype)));
                tensors.insert(
                    name,
                    StTensor {
                        dtype,
                        dims,
                        start: data_start + info.data_offsets.0,
                        end: data_start + info.data_offsets.1,
                    },
                );
            }
            None => metas.push((
                name,
                TensorMeta::broken(
                    Some(dims),
                    None,
                    format!("safetensors dtype {:?} is not supported", info.dtype),
                ),
            )),
        }
    }
    let metadata = meta.metadata().clone().unwrap_or_default();
    Ok((
        SafetensorsFile {
            file,
            bytes,
            tensors,
        },
        metas,
        metadata,
    ))
}

fn header_error(file: &str, buf: &[u8], e: SafeTensorError) -> WeightsError {
    let declared = buf
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes);
    let looks_like_json = buf.get(8) == Some(&b'{');
    match e {
        SafeTensorError::HeaderTooSmall => WeightsError::NotACheckpoint {
            file: file.to_string(),
            detail: format!("only {} bytes long", buf.len()),
        },
        SafeTensorError::InvalidHeaderLength if looks_like_json => WeightsError::Truncated {
            file: file.to_string(),
            detail: format!(
                "the header declares {} bytes but the file has only {}",
                declared.unwrap_or(0),
                buf.len()
            ),
        },
        SafeTensorError::MetadataIncompleteBuffer => WeightsError::Truncated {
            file: file.to_string(),
            detail: format!(
                "the header describes more (or less) tensor data than the {} bytes present",
                buf.len()
            ),
        },
        other if !looks_like_json => WeightsError::NotACheckpoint {
            file: file.to_string(),
            detail: format!("no safetensors header ({other})"),
        },
        other => WeightsError::Corrupt {
            file: file.to_string(),
            detail: format!("invalid safetensors header: {other}"),
        },
    }
}

pub(crate) fn candle_dtype(dtype: Dtype) -> Option<DType> {
    let dt = match dtype {
        Dtype::U8 => DType::U8,
        Dtype::U32 => DType::U32,
        Dtype::I64 => DType::I64,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        _ => return None,
    };
    host::is_supported(dt).then_some(dt)
}

pub(crate) fn safetensors_dtype(dtype: DType) -> Option<Dtype> {
    Some(match dtype {
        DType::U8 => Dtype::U8,
        DType::U32 => Dtype::U32,
        DType::I64 => Dtype::I64,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        _ => return None,
    })
}

impl SafetensorsFile {
    pub(crate) fn read(&self, name: &str) -> WeightsResult<(HostData, Vec<usize>, u64)> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| WeightsError::unreadable(name, &self.file, "no such readable tensor"))?;
        let src =
            self.bytes
                .as_slice()
                .get(t.start..t.end)
                .ok_or_else(|| WeightsError::Truncated {
                    file: self.file.clone(),
                    detail: format!("the bytes of tensor `{name}` run past the end of the file"),
                })?;
        let n: usize = t.dims.iter().product();
        if src.len() != n * t.dtype.size_in_bytes() {
            return Err(WeightsError::unreadable(
                name,
                &self.file,
                format!(
                    "it holds {} bytes, its shape {:?} needs {}",
                    src.len(),
                    t.dims,
                    n * t.dtype.size_in_bytes()
                ),
            ));
        }
        let host = host::read_host(t.dtype, n, |dst| {
            dst.copy_from_slice(src);
            Ok::<(), ()>(())
        })
        .map_err(|e| match e {
            ReadError::Io(()) => WeightsError::unreadable(name, &self.file, "copy failed"),
            ReadError::Unsupported(dt) => {
                WeightsError::unreadable(name, &self.file, format!("dtype {dt:?} is not supported"))
            }
        })?;
        self.release_pages(t.start, t.end - t.start);
        Ok((host, t.dims.clone(), src.len() as u64))
    }

    /// Drops the mapped pages of a tensor once it is copied out: they count as resident memory until
    /// the kernel needs them back, so without this, loading a mapped file peaks at twice the weights.
    fn release_pages(&self, start: usize, len: usize) {
        #[cfg(unix)]
        if let Bytes::Mmap(map) = &self.bytes {
            // SAFETY: the map is a read-only, shared mapping of a file. MADV_DONTNEED on it only drops
            // clean cached pages; any later access (including a concurrent reader of the same range)
            // faults the identical bytes back in from the file, so no live reference sees a change.
            // The advice is a hint: a failure changes nothing but memory use.
            let _ = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, len)
            };
        }
        #[cfg(not(unix))]
        let _ = (start, len);
    }
}
