//! Conversion of the two released checkpoints into one safetensors file (`var.*`, `vae.*`).
//!
//! The header is computed from the index alone, then tensors are read, cast and written one at a time, so
//! the peak is one tensor (plus a small cast buffer), not the model. The file appears under its final
//! name only when complete: it is written to a temporary name in the same folder and renamed.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use candle_core::DType;
use half::{bf16, f16};

use super::Weights;
use super::error::{WeightsError, WeightsResult};
use super::host::HostData;
use super::safetensors_file::safetensors_dtype;

/// Which model a tensor belongs to; also its prefix in a converted file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    /// The SR transformer (`VARSR.pth`), prefix `var.`.
    Var,
    /// The VQVAE (`VQVAE.pth`), prefix `vae.`.
    Vae,
}

impl Component {
    /// Prefix without the dot: `"var"` or `"vae"`.
    pub fn prefix(self) -> &'static str {
        match self {
            Component::Var => "var",
            Component::Vae => "vae",
        }
    }
}

/// Default filter: false for training-only tensors that inference never reads (the block-causal mask,
/// level ids, the zero k-bias buffers, codebook hit statistics, and the VQVAE encoder side).
pub fn is_inference_key(component: Component, key: &str) -> bool {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    match component {
        Component::Var => {
            !matches!(key, "attn_bias_for_masking" | "lvl_1L") && leaf != "zero_k_bias"
        }
        Component::Vae => {
            !(key.starts_with("encoder.")
                || key.starts_with("quant_conv.")
                || leaf == "ema_vocab_hit_SV")
        }
    }
}

/// What [`convert`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertSummary {
    /// Number of tensors written.
    pub tensors: usize,
    /// Bytes of tensor data written (the file is this plus the header).
    pub data_bytes: u64,
    /// Names (with prefix) that the filter dropped.
    pub dropped: Vec<String>,
    /// Tensors (with prefix) in which finite values exceeded the f16 range and became ±inf, with how
    /// many; always empty unless converting to f16. Non-empty means this model should not run in f16.
    pub overflowed: Vec<(String, usize)>,
}

/// Writes every tensor of `var` and `vae` for which `keep(component, key)` holds into one safetensors
/// file at `out`, named `var.<key>` / `vae.<key>`, with float tensors cast to `dtype` (F32, F16 or BF16;
/// integer tensors keep their dtype). `metadata` becomes the file's `__metadata__` (put the model config
/// JSON there). Peak memory is about one tensor.
pub fn convert(
    var: &Weights,
    vae: &Weights,
    keep: impl Fn(Component, &str) -> bool,
    out: &Path,
    dtype: DType,
    metadata: HashMap<String, String>,
) -> WeightsResult<ConvertSummary> {
    convert_with_progress(var, vae, keep, out, dtype, metadata, &mut |_, _| {})
}

struct Planned<'a> {
    weights: &'a Weights,
    key: String,
    out_name: String,
    out_dtype: DType,
    shape: Vec<usize>,
    nbytes: u64,
}

/// [`convert`], calling `progress(bytes_done, bytes_total)` after each tensor.
pub fn convert_with_progress(
    var: &Weights,
    vae: &Weights,
    keep: impl Fn(Component, &str) -> bool,
    out: &Path,
    dtype: DType,
    metadata: HashMap<String, String>,
    progress: &mut dyn FnMut(u64, u64),
) -> WeightsResult<ConvertSummary> {
    let out_file = out.display().to_string();
    if !matches!(dtype, DType::F32 | DType::F16 | DType::BF16) {
        return Err(WeightsError::Write {
            file: out_file,
            detail: format!("target dtype must be f32, f16 or bf16, not {dtype:?}"),
        });
    }
    let (plan, dropped) = plan(var, vae, &keep, dtype)?;
    let header = header_bytes(&plan, metadata, &out_file)?;
    let total: u64 = plan.iter().map(|p| p.nbytes).sum();

    let tmp = temp_path(out);
    let mut overflowed = Vec::new();
    let result =
        write_file(&tmp, &header, &plan, total, progress, &mut overflowed).and_then(|()| {
            std::fs::rename(&tmp, out).map_err(|e| WeightsError::Write {
                file: out_file.clone(),
                detail: format!("cannot move the finished file into place: {e}"),
            })
        });
    if result.is_err() {
        // Best effort: the temp file is garbage either way.
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    Ok(ConvertSummary {
        tensors: plan.len(),
        data_bytes: total,
        dropped,
        overflowed,
    })
}

fn plan<'a>(
    var: &'a Weights,
    vae: &'a Weights,
    keep: &impl Fn(Component, &str) -> bool,
    dtype: DType,
) -> WeightsResult<(Vec<Planned<'a>>, Vec<String>)> {
    let mut plan = Vec::new();
    let mut dropped = Vec::new();
    for (component, weights) in [(Component::Var, var), (Component::Vae, vae)] {
        for key in weights.keys() {
            let out_name = format!("{}.{key}", component.prefix());
            if !keep(component, key) {
                dropped.push(out_name);
                continue;
            }
            let meta = weights.meta(key).ok_or_else(|| weights.missing(key))?;
            let (Some(shape), Some(src_dtype), None) = (&meta.shape, meta.dtype, &meta.problem)
            else {
                let detail = meta
                    .problem
                    .clone()
                    .unwrap_or_else(|| "unknown shape or dtype".to_string());
                return Err(WeightsError::unreadable(
                    &weights.full_name(key),
                    weights.source(),
                    detail,
                ));
            };
            let out_dtype = if src_dtype.is_float() {
                dtype
            } else {
                src_dtype
            };
            let nbytes = (shape.iter().product::<usize>() * out_dtype.size_in_bytes()) as u64;
            plan.push(Planned {
                weights,
                key: key.to_string(),
                out_name,
                out_dtype,
                shape: shape.clone(),
                nbytes,
            });
        }
    }
    Ok((plan, dropped))
}

fn header_bytes(
    plan: &[Planned],
    metadata: HashMap<String, String>,
    out_file: &str,
) -> WeightsResult<Vec<u8>> {
    let mut map = serde_json::Map::new();
    let mut metadata = metadata;
    metadata
        .entry("format".to_string())
        .or_insert_with(|| "pt".to_string());
    map.insert(
        "__metadata__".to_string(),
        serde_json::to_value(metadata).map_err(|e| write_err(out_file, e))?,
    );
    let mut offset = 0u64;
    for p in plan {
        let st_dtype = safetensors_dtype(p.out_dtype)
            .ok_or_else(|| write_err(out_file, format!("cannot store dtype {:?}", p.out_dtype)))?;
        let entry = serde_json::json!({
            "dtype": st_dtype,
            "shape": p.shape,
            "data_offsets": [offset, offset + p.nbytes],
        });
        map.insert(p.out_name.clone(), entry);
        offset += p.nbytes;
    }
    let mut header = serde_json::to_vec(&map).map_err(|e| write_err(out_file, e))?;
    // Aligning the data section to 8 bytes lets readers cast in place (what safetensors itself does).
    while (header.len() + 8) % 8 != 0 {
        header.push(b' ');
    }
    Ok(header)
}

fn write_err(file: &str, e: impl std::fmt::Display) -> WeightsError {
    WeightsError::Write {
        file: file.to_string(),
        detail: e.to_string(),
    }
}

fn temp_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

fn write_file(
    tmp: &Path,
    header: &[u8],
    plan: &[Planned],
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
    overflowed: &mut Vec<(String, usize)>,
) -> WeightsResult<()> {
    let tmp_name = tmp.display().to_string();
    let io = |e: std::io::Error| write_err(&tmp_name, e);
    let file = File::create(tmp).map_err(io)?;
    let mut w = BufWriter::with_capacity(1 << 22, file);
    w.write_all(&(header.len() as u64).to_le_bytes())
        .map_err(io)?;
    w.write_all(header).map_err(io)?;
    let mut done = 0u64;
    for p in plan {
        let host = p.weights.read_host(&p.key)?;
        if p.out_dtype == DType::F16 {
            let n = f16_overflows(&host);
            if n > 0 {
                overflowed.push((p.out_name.clone(), n));
            }
        }
        let written = write_cast(&mut w, host, p.out_dtype).map_err(io)?;
        if written != p.nbytes {
            return Err(write_err(
                &tmp_name,
                format!(
                    "tensor `{}` produced {written} bytes, expected {}",
                    p.out_name, p.nbytes
                ),
            ));
        }
        done += written;
        progress(done, total);
    }
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(())
}

/// Finite values that round to ±inf in f16 (magnitude at least 65520, halfway above the largest f16).
fn f16_overflows(host: &HostData) -> usize {
    const LIMIT: f64 = 65520.0;
    let over = |x: f64| x.is_finite() && x.abs() >= LIMIT;
    match host {
        HostData::F32(v) => v.iter().filter(|x| over(**x as f64)).count(),
        HostData::F64(v) => v.iter().filter(|x| over(**x)).count(),
        HostData::BF16(v) => v.iter().filter(|x| over(x.to_f64())).count(),
        _ => 0,
    }
}

/// Writes `host` as little-endian `dtype` (floats are cast; other dtypes are written as stored).
fn write_cast(w: &mut impl Write, host: HostData, dtype: DType) -> std::io::Result<u64> {
    match (host, dtype) {
        (HostData::F32(v), DType::F32) => put(w, &v, |x| x.to_le_bytes()),
        (HostData::F32(v), DType::F16) => put(w, &v, |x| f16::from_f32(x).to_le_bytes()),
        (HostData::F32(v), DType::BF16) => put(w, &v, |x| bf16::from_f32(x).to_le_bytes()),
        (HostData::F16(v), DType::F32) => put(w, &v, |x| x.to_f32().to_le_bytes()),
        (HostData::F16(v), DType::F16) => put(w, &v, |x| x.to_le_bytes()),
        (HostData::F16(v), DType::BF16) => put(w, &v, |x| bf16::from_f32(x.to_f32()).to_le_bytes()),
        (HostData::BF16(v), DType::F32) => put(w, &v, |x| x.to_f32().to_le_bytes()),
        (HostData::BF16(v), DType::F16) => put(w, &v, |x| f16::from_f32(x.to_f32()).to_le_bytes()),
        (HostData::BF16(v), DType::BF16) => put(w, &v, |x| x.to_le_bytes()),
        (HostData::F64(v), DType::F32) => put(w, &v, |x| (x as f32).to_le_bytes()),
        (HostData::F64(v), DType::F16) => put(w, &v, |x| f16::from_f64(x).to_le_bytes()),
        (HostData::F64(v), DType::BF16) => put(w, &v, |x| bf16::from_f64(x).to_le_bytes()),
        (HostData::U8(v), _) => put(w, &v, |x| [x]),
        (HostData::U32(v), _) => put(w, &v, |x| x.to_le_bytes()),
        (HostData::I64(v), _) => put(w, &v, |x| x.to_le_bytes()),
        (_, other) => Err(std::io::Error::other(format!("cannot cast to {other:?}"))),
    }
}

/// Encodes through a small staging buffer so the cast never holds a second full copy of the tensor.
fn put<T: Copy, const N: usize>(
    w: &mut impl Write,
    values: &[T],
    encode: impl Fn(T) -> [u8; N],
) -> std::io::Result<u64> {
    const CHUNK: usize = 1 << 16;
    let mut buf = vec![0u8; CHUNK.min(values.len().max(1)) * N];
    for chunk in values.chunks(CHUNK) {
        let bytes = &mut buf[..chunk.len() * N];
        for (dst, x) in bytes.chunks_exact_mut(N).zip(chunk) {
            dst.copy_from_slice(&encode(*x));
        }
        w.write_all(bytes)?;
    }
    Ok((values.len() * N) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_filter_drops_training_only_keys() {
        use Component::{Vae, Var};
        assert!(!is_inference_key(Var, "attn_bias_for_masking"));
        assert!(!is_inference_key(Var, "lvl_1L"));
        assert!(!is_inference_key(Var, "blocks.3.attn.zero_k_bias"));
        assert!(is_inference_key(Var, "blocks.3.attn.q_bias"));
        assert!(is_inference_key(Var, "con_embedding.conv_in.weight"));
        assert!(!is_inference_key(Vae, "encoder.conv_in.weight"));
        assert!(!is_inference_key(Vae, "quant_conv.weight"));
        assert!(!is_inference_key(Vae, "quantize.ema_vocab_hit_SV"));
        assert!(is_inference_key(Vae, "post_quant_conv.weight"));
        assert!(is_inference_key(Vae, "decoder.conv_in.weight"));
        assert!(is_inference_key(Vae, "quantize.embedding.weight"));
    }

    #[test]
    fn f16_overflow_counts_values_that_become_infinite() {
        let host = HostData::F32(vec![
            65504.0,
            65519.0,
            65520.0,
            -1e6,
            f32::INFINITY,
            f32::NAN,
        ]);
        assert_eq!(f16_overflows(&host), 2);
        // and the cast agrees on which ones become infinite
        let inf = [65519.0f32, 65520.0, -1e6].map(|x| f16::from_f32(x).is_infinite());
        assert_eq!(inf, [false, true, true]);
    }

    #[test]
    fn casts_round_to_nearest() {
        let mut out = Vec::new();
        // 1 + 2^-11 is halfway between two f16 values; ties go to even (1.0).
        let n = write_cast(
            &mut out,
            HostData::F32(vec![1.0 + 2f32.powi(-11), -2.5]),
            DType::F16,
        );
        assert_eq!(n.ok(), Some(4));
        assert_eq!(out, [0x00, 0x3c, 0x00, 0xc1]);
    }
}
