//! Typed host buffers filled straight from file bytes, so a tensor is read into its final allocation
//! (no byte buffer plus typed copy: that would double the transient peak for the largest tensors).

use candle_core::{DType, Device, Tensor};
use half::{bf16, f16};

/// A tensor's elements on the host, in its stored dtype.
pub(crate) enum HostData {
    U8(Vec<u8>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Dtypes this loader can materialise.
pub(crate) fn is_supported(dtype: DType) -> bool {
    matches!(
        dtype,
        DType::U8 | DType::U32 | DType::I64 | DType::F16 | DType::BF16 | DType::F32 | DType::F64
    )
}

/// Allocates `n` zeroed elements of `dtype` and lets `fill` write their little-endian bytes.
pub(crate) fn read_host<E>(
    dtype: DType,
    n: usize,
    fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
) -> Result<HostData, ReadError<E>> {
    // Reading into a plain-integer buffer and mapping with `from_bits` afterwards reuses the allocation
    // (same size and alignment), so this stays one buffer per tensor.
    Ok(match dtype {
        DType::U8 => {
            let mut v = vec![0u8; n];
            fill(&mut v).map_err(ReadError::Io)?;
            HostData::U8(v)
        }
        DType::U32 => {
            let mut v = vec![0u32; n];
            fill(bytemuck::cast_slice_mut(&mut v)).map_err(ReadError::Io)?;
            HostData::U32(v.into_iter().map(u32::from_le).collect())
        }
        DType::I64 => {
            let mut v = vec![0i64; n];
            fill(bytemuck::cast_slice_mut(&mut v)).map_err(ReadError::Io)?;
            HostData::I64(v.into_iter().map(i64::from_le).collect())
        }
        DType::F16 => {
            let mut v = vec![0u16; n];
            fill(bytemuck::cast_slice_mut(&mut v)).map_err(ReadError::Io)?;
            HostData::F16(
                v.into_iter()
                    .map(|b| f16::from_bits(u16::from_le(b)))
                    .collect(),
            )
        }
        DType::BF16 => {
            let mut v = vec![0u16; n];
            fill(bytemuck::cast_slice_mut(&mut v)).map_err(ReadError::Io)?;
            HostData::BF16(
                v.into_iter()
                    .map(|b| bf16::from_bits(u16::from_le(b)))
                    .collect(),
            )
        }
        DType::F32 => {
            let mut v = vec![0u32; n];
            fill(bytemuck::cast_slice_mut(&mut v)).map_err(ReadError::Io)?;
            HostData::F32(
                v.into_iter()
                    .map(|b| f32::from_bits(u32::from_le(b)))
                    .collect(),
            )
        }
        DType::F64 => {
            let mut v = vec![0u64; n];
            fill(bytemuck::cast_slice_mut(&mut v)).map_err(ReadError::Io)?;
            HostData::F64(
                v.into_iter()
                    .map(|b| f64::from_bits(u64::from_le(b)))
                    .collect(),
            )
        }
        other => return Err(ReadError::Unsupported(other)),
    })
}

pub(crate) enum ReadError<E> {
    Io(E),
    Unsupported(DType),
}

impl HostData {
    /// Picks the elements of a strided view out of the storage span that was read (`offset` and
    /// `stride` in elements, relative to the span's start), in row-major order.
    pub(crate) fn gather(self, dims: &[usize], stride: &[usize], offset: usize) -> HostData {
        fn pick<T: Copy>(src: Vec<T>, dims: &[usize], stride: &[usize], offset: usize) -> Vec<T> {
            let n: usize = dims.iter().product();
            let mut out = Vec::with_capacity(n);
            if n == 0 {
                return out;
            }
            let mut index = vec![0usize; dims.len()];
            let mut pos = offset;
            for _ in 0..n {
                out.push(src[pos]);
                // Odometer increment over the multi-index, updating the storage position incrementally.
                for d in (0..dims.len()).rev() {
                    index[d] += 1;
                    pos += stride[d];
                    if index[d] < dims[d] {
                        break;
                    }
                    pos -= stride[d] * dims[d];
                    index[d] = 0;
                }
            }
            out
        }
        match self {
            HostData::U8(v) => HostData::U8(pick(v, dims, stride, offset)),
            HostData::U32(v) => HostData::U32(pick(v, dims, stride, offset)),
            HostData::I64(v) => HostData::I64(pick(v, dims, stride, offset)),
            HostData::F16(v) => HostData::F16(pick(v, dims, stride, offset)),
            HostData::BF16(v) => HostData::BF16(pick(v, dims, stride, offset)),
            HostData::F32(v) => HostData::F32(pick(v, dims, stride, offset)),
            HostData::F64(v) => HostData::F64(pick(v, dims, stride, offset)),
        }
    }

    pub(crate) fn into_tensor(
        self,
        shape: &[usize],
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        match self {
            HostData::U8(v) => Tensor::from_vec(v, shape, device),
            HostData::U32(v) => Tensor::from_vec(v, shape, device),
            HostData::I64(v) => Tensor::from_vec(v, shape, device),
            HostData::F16(v) => Tensor::from_vec(v, shape, device),
            HostData::BF16(v) => Tensor::from_vec(v, shape, device),
            HostData::F32(v) => Tensor::from_vec(v, shape, device),
            HostData::F64(v) => Tensor::from_vec(v, shape, device),
        }
    }
}

/// Number of storage elements a strided view spans, from its first element (0 when it is empty).
pub(crate) fn span_elems(dims: &[usize], stride: &[usize]) -> Option<usize> {
    if dims.contains(&0) {
        return Some(0);
    }
    let mut last = 0usize;
    for (d, s) in dims.iter().zip(stride) {
        last = last.checked_add((d - 1).checked_mul(*s)?)?;
    }
    last.checked_add(1)
}

/// Whether a view is plain row-major (C-contiguous); size-1 dims may carry any stride.
pub(crate) fn is_row_major(dims: &[usize], stride: &[usize]) -> bool {
    let mut expected = 1usize;
    for (d, s) in dims.iter().zip(stride).rev() {
        if *d != 1 && *s != expected {
            return false;
        }
        expected = expected.saturating_mul(*d);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_transposed_view() {
        // storage 0..6 viewed as the transpose of a 2x3 matrix: shape (3, 2), stride (1, 3)
        let host = HostData::F32((0..6).map(|x| x as f32).collect());
        let HostData::F32(out) = host.gather(&[3, 2], &[1, 3], 0) else {
            panic!("dtype changed")
        };
        assert_eq!(out, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    #[test]
    fn gather_with_offset_and_broadcast_stride() {
        let host = HostData::I64((0..10).collect());
        let HostData::I64(out) = host.gather(&[2, 3], &[0, 2], 1) else {
            panic!("dtype changed")
        };
        assert_eq!(out, vec![1, 3, 5, 1, 3, 5]);
    }

    #[test]
    fn span_and_contiguity() {
        assert_eq!(span_elems(&[2, 3], &[3, 1]), Some(6));
        assert_eq!(span_elems(&[3, 2], &[1, 3]), Some(6));
        assert_eq!(span_elems(&[2, 0], &[1, 1]), Some(0));
        assert_eq!(span_elems(&[], &[]), Some(1));
        assert!(is_row_major(&[2, 3], &[3, 1]));
        assert!(is_row_major(&[1, 3], &[7, 1]));
        assert!(!is_row_major(&[3, 2], &[1, 3]));
    }

    #[test]
    fn little_endian_bytes_become_values() {
        let bytes = 1.5f32.to_le_bytes();
        let host = read_host::<()>(DType::F32, 1, |buf| {
            buf.copy_from_slice(&bytes);
            Ok(())
        });
        match host {
            Ok(HostData::F32(v)) => assert_eq!(v, vec![1.5]),
            _ => panic!("expected f32 data"),
        }
    }
}
