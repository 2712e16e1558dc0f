//! PyTorch zip checkpoints (`torch.save`, format of torch >= 1.6), read lazily.
//!
//! The zip's central directory is parsed once; each requested tensor then costs one seek and one read of
//! exactly the bytes its view spans. Storages of tensors nobody asks for (the AdamW moments that make up
//! two thirds of the released VARSR.pth) are never read.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::DType;
use zip::ZipArchive;

use super::TensorMeta;
use super::error::{WeightsError, WeightsResult, list_keys};
use super::host::{self, HostData, ReadError};
use super::pickle_walk;

/// Where one readable tensor lives.
struct PthTensor {
    dtype: DType,
    dims: Vec<usize>,
    /// In elements.
    stride: Vec<usize>,
    /// In elements, from the start of the storage.
    offset: usize,
    storage: String,
    zip_index: usize,
}

pub(crate) struct PthFile {
    file: String,
    archive: Mutex<ZipArchive<BufReader<File>>>,
    file_len: u64,
    tensors: std::collections::HashMap<String, PthTensor>,
}

/// Opens `path` and lists the tensors of the state dict at `dict_path` (e.g. `["trainer", "var_wo_ddp"]`).
pub(crate) fn open(
    path: &Path,
    dict_path: &[&str],
) -> WeightsResult<(PthFile, Vec<(String, TensorMeta)>)> {
    let file = path.display().to_string();
    let mut handle = File::open(path).map_err(|e| WeightsError::io(&file, e))?;
    let file_len = handle
        .metadata()
        .map_err(|e| WeightsError::io(&file, e))?
        .len();
    check_zip_magic(&mut handle, &file, file_len)?;

    let mut archive = ZipArchive::new(BufReader::new(handle)).map_err(|e| WeightsError::Truncated {
        file: file.clone(),
        detail: format!(
            "it starts like a zip but its central directory cannot be read ({e}); the file has {file_len} bytes"
        ),
    })?;

    let Some(pkl_name) = find_data_pkl(&archive) else {
        let names: Vec<String> = archive
            .file_names()
            .filter_map(Result::ok)
            .map(|n| n.into_owned())
            .collect();
        return Err(WeightsError::NotACheckpoint {
            file,
            detail: format!(
                "the zip holds no data.pkl; entries: {}",
                list_keys(names.iter().map(String::as_str), 12)
            ),
        });
    };
    let dir = PathBuf::from(pkl_name.strip_suffix(".pkl").unwrap_or(&pkl_name));
    let root = {
        let mut entry = archive
            .by_name(&pkl_name)
            .map_err(|e| WeightsError::Corrupt {
                file: file.clone(),
                detail: format!("cannot open {pkl_name}: {e}"),
            })?;
        pickle_walk::unpickle(&mut entry, &file)?
    };
    let pickled = pickle_walk::state_dict_tensors(root, dict_path, &file, &dir)?;

    let mut metas = Vec::with_capacity(pickled.len());
    let mut tensors = std::collections::HashMap::with_capacity(pickled.len());
    for t in pickled {
        let info = match t.info {
            Ok(info) => info,
            Err(reason) => {
                metas.push((t.name, TensorMeta::broken(t.shape, None, reason)));
                continue;
            }
        };
        let dims = info.layout.dims().to_vec();
        let stride = info.layout.stride().to_vec();
        let elem = info.dtype.size_in_bytes();
        let offset = info.layout.start_offset() / elem;
        match check_storage(
            &archive,
            &info.path,
            &dims,
            &stride,
            offset,
            info.storage_size,
            elem,
        ) {
            Ok(zip_index) => {
                metas.push((t.name.clone(), TensorMeta::ok(dims.clone(), info.dtype)));
                tensors.insert(
                    t.name,
                    PthTensor {
                        dtype: info.dtype,
                        dims,
                        stride,
                        offset,
                        storage: info.path,
                        zip_index,
                    },
                );
            }
            Err(reason) => metas.push((
                t.name,
                TensorMeta::broken(Some(dims), Some(info.dtype), reason),
            )),
        }
    }
    Ok((
        PthFile {
            file,
            archive: Mutex::new(archive),
            file_len,
            tensors,
        },
        metas,
    ))
}

fn check_zip_magic(handle: &mut File, file: &str, file_len: u64) -> WeightsResult<()> {
    let mut head = [0u8; 16];
    let n = read_up_to(handle, &mut head).map_err(|e| WeightsError::io(file, e))?;
    handle
        .seek(SeekFrom::Start(0))
        .map_err(|e| WeightsError::io(file, e))?;
    let head = &head[..n];
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(());
    }
    let detail = if file_len == 0 {
        "the file is empty".to_string()
    } else if head.first() == Some(&0x80) {
        "it is a bare pickle (torch < 1.6 legacy format, or pickle.dump); re-save it with a recent \
         torch.save, which writes the zip format"
            .to_string()
    } else if head.len() >= 9 && head[8] == b'{' {
        "it looks like a safetensors file; open it as safetensors".to_string()
    } else {
        format!(
            "it does not start with a zip signature (first bytes {:02x?})",
            head
        )
    };
    Err(WeightsError::NotACheckpoint {
        file: file.to_string(),
        detail,
    })
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// torch names it `<archive>/data.pkl`; the archive folder is the file stem at save time, so match the
/// suffix (the shallowest one, should a checkpoint ever embed another).
fn find_data_pkl<R: Read + Seek>(archive: &ZipArchive<R>) -> Option<String> {
    archive
        .file_names()
        .filter_map(Result::ok)
        .filter(|n| *n == "data.pkl" || n.ends_with("/data.pkl"))
        .min_by_key(|n| n.matches('/').count())
        .map(|n| n.into_owned())
}

/// Checks, from the central directory alone, that the storage exists, is stored uncompressed and holds
/// every byte the view spans. Returns the zip entry index.
fn check_storage<R: Read + Seek>(
    archive: &ZipArchive<R>,
    storage: &str,
    dims: &[usize],
    stride: &[usize],
    offset: usize,
    storage_elems: usize,
    elem: usize,
) -> Result<usize, String> {
    let index = archive
        .index_for_name(storage)
        .ok_or_else(|| format!("its storage `{storage}` is missing from the zip"))?;
    let entry = archive
        .by_index_data(index)
        .map_err(|e| format!("cannot look up storage `{storage}`: {e}"))?;
    if entry.compression() != zip::CompressionMethod::Stored {
        return Err(format!(
            "its storage `{storage}` is compressed ({:?}); torch writes storages uncompressed",
            entry.compression()
        ));
    }
    let span = host::span_elems(dims, stride).ok_or("its shape and strides overflow")?;
    let needed = if span == 0 { 0 } else { offset + span };
    if needed > storage_elems {
        return Err(format!(
            "its view needs elements [{offset}, {needed}) of a storage of {storage_elems} elements"
        ));
    }
    let needed_bytes = (needed as u64) * elem as u64;
    if needed_bytes > entry.size() {
        return Err(format!(
            "its storage `{storage}` holds {} bytes but the tensor needs {needed_bytes}",
            entry.size()
        ));
    }
    Ok(index)
}

impl PthFile {
    /// Reads one tensor's elements (in stored dtype, row-major). Returns the bytes read too.
    pub(crate) fn read(&self, name: &str) -> WeightsResult<(HostData, Vec<usize>, u64)> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| WeightsError::unreadable(name, &self.file, "no such readable tensor"))?;
        let elem = t.dtype.size_in_bytes();
        let span = host::span_elems(&t.dims, &t.stride).ok_or_else(|| {
            WeightsError::unreadable(name, &self.file, "shape and strides overflow")
        })?;
        let start = (t.offset * elem) as u64;
        let nbytes = (span * elem) as u64;

        let mut archive = self
            .archive
            .lock()
            .map_err(|_| WeightsError::unreadable(name, &self.file, "an earlier read panicked"))?;
        let open_err = |e: zip::result::ZipError| {
            WeightsError::unreadable(
                name,
                &self.file,
                format!("cannot open storage `{}`: {e}", t.storage),
            )
        };
        // The raw handle parses the local header and so knows where the bytes start.
        let data_start = archive
            .by_index_raw(t.zip_index)
            .map_err(open_err)?
            .data_start();
        let mut entry = archive.by_index_seek(t.zip_index).map_err(open_err)?;
        if let Some(data_start) = data_start {
            let end = data_start + start + nbytes;
            if end > self.file_len {
                return Err(WeightsError::Truncated {
                    file: self.file.clone(),
                    detail: format!(
                        "tensor `{name}` (storage `{}`) needs bytes up to offset {end}, but the file ends at {}",
                        t.storage, self.file_len
                    ),
                });
            }
        }
        entry
            .seek(SeekFrom::Start(start))
            .map_err(|e| WeightsError::io(&self.file, e))?;
        let host = host::read_host(t.dtype, span, |buf| entry.read_exact(buf)).map_err(|e| match e {
            ReadError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => WeightsError::Truncated {
                file: self.file.clone(),
                detail: format!("the bytes of tensor `{name}` (storage `{}`) run past the end of the file", t.storage),
            },
            ReadError::Io(e) => WeightsError::io(&self.file, e),
            ReadError::Unsupported(dt) => {
                WeightsError::unreadable(name, &self.file, format!("dtype {dt:?} is not supported"))
            }
        })?;
        let host = if host::is_row_major(&t.dims, &t.stride) {
            host
        } else {
            host.gather(&t.dims, &t.stride, 0)
        };
        Ok((host, t.dims.clone(), nbytes))
    }
}
