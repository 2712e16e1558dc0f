//! Plumbing shared by the hand-written CPU kernels: access to a tensor's values, splitting work over
//! candle's threads, and sums that vectorise.

use candle_core::{CpuStorage, DType, Layout, Result, Storage, Tensor};

/// Whether the CPU kernels apply: every tensor f32 on the CPU and none needing gradients (those
/// go through candle's differentiable operations).
pub(crate) fn fast_path(ts: &[&Tensor]) -> bool {
    ts.iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32 && !t.track_op())
}

/// The values of a contiguous f32 storage, as a `CustomOp`'s `cpu_fwd` receives it.
pub(crate) fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("{op}: f32 only");
    };
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("{op}: contiguous input only");
    };
    Ok(&v[a..b])
}

/// `f` applied to the values of an f32 tensor on the CPU (made contiguous first).
pub(crate) fn with_f32<R>(t: &Tensor, op: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    with_f32s(&[t], op, |v| f(v[0]))
}

/// `f` applied to the values of several f32 tensors on the CPU, in the order given.
pub(crate) fn with_f32s<R>(
    ts: &[&Tensor],
    op: &str,
    f: impl FnOnce(&[&[f32]]) -> Result<R>,
) -> Result<R> {
    let ts = ts
        .iter()
        .map(|t| t.contiguous())
        .collect::<Result<Vec<_>>>()?;
    let guards: Vec<_> = ts.iter().map(|t| t.storage_and_layout()).collect();
    let mut values = Vec::with_capacity(guards.len());
    for (storage, layout) in &guards {
        let Storage::Cpu(cpu) = &**storage else {
            candle_core::bail!("{op}: not a CPU tensor");
        };
        let Some((a, b)) = layout.contiguous_offsets() else {
            candle_core::bail!("{op}: tensor not contiguous");
        };
        values.push(&cpu.as_slice::<f32>()?[a..b]);
    }
    f(&values)
}

/// candle's thread count, read once. candle's own `get_num_threads` counts the physical cores by
/// parsing `/proc/cpuinfo` on every call (each matrix product) unless `RAYON_NUM_THREADS` is set:
/// 2 % of a built-in-model upscale went to it. See [`pin_thread_count`].
pub fn num_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| candle_core::utils::get_num_threads().max(1))
}

/// Sets `RAYON_NUM_THREADS` to candle's thread count when the user has not, so that candle stops
/// re-counting cores on each matrix product (the count is the one candle would pick anyway, the
/// physical cores, and rayon's pool, which reads the same variable, gets the same size), and, with
/// `inline_elementwise`, `CANDLE_NUM_THREADS` to 1, which keeps candle's element-wise operations on
/// the calling thread.
///
/// candle runs those on a barrier pool of its own that serves one caller at a time and whose
/// workers spin between operations; tile lanes ([`crate::pipeline::upscale::UpscalePlan::lanes`])
/// each need them inline. The hand-written kernels and the matrix products still use every core
/// through rayon, whose idle threads steal work and otherwise sleep.
///
/// # Safety
/// Changes the environment: call it first thing in `main`, before any other thread exists.
pub unsafe fn pin_thread_count(inline_elementwise: bool) {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = num_threads();
        // SAFETY: the caller guarantees that no other thread reads the environment meanwhile.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
    if inline_elementwise && std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: as above.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
}

/// Tile lanes to run when not told: one per thread when candle's element-wise operations run inline
/// (as [`pin_thread_count`] arranges), else one — lanes would queue for candle's pool, which
/// serves one caller at a time (a library user that kept it, or `CANDLE_NUM_THREADS` set).
pub fn auto_lanes() -> usize {
    if candle_core::utils::barrier_pool().n_workers() == 0 {
        num_threads()
    } else {
        1
    }
}

/// `f(index, chunk)` for each `len`-sized chunk of `data` (the last may be shorter), on rayon's
/// pool: from a tile lane, chunks go to the other cores only when they are idle. Where candle keeps
/// its own element-wise pool ([`auto_lanes`]), on that pool instead: its workers spin between
/// operations, and rayon's threads beside them would fight them for the cores.
pub(crate) fn for_each_chunk<T: Send, F: Fn(usize, &mut [T]) + Sync>(
    data: &mut [T],
    len: usize,
    f: F,
) {
    let len = len.max(1);
    if data.len() <= len || num_threads() == 1 {
        for (i, chunk) in data.chunks_mut(len).enumerate() {
            f(i, chunk);
        }
        return;
    }
    let pool = candle_core::utils::barrier_pool();
    if pool.n_workers() > 0 {
        chunks_on_barrier_pool(pool, data, len, f);
    } else {
        chunks_on_rayon(data, len, f);
    }
}

fn chunks_on_barrier_pool<T: Send, F: Fn(usize, &mut [T]) + Sync>(
    pool: &candle_core::utils::BarrierPool,
    data: &mut [T],
    len: usize,
    f: F,
) {
    let total = data.len();
    let base = SharedMut(data.as_mut_ptr());
    pool.execute_chunked(total.div_ceil(len), |range| {
        for i in range {
            let start = i * len;
            let n = len.min(total - start);
            // SAFETY: each index is handed to exactly one thread, so the chunks are disjoint
            // ranges inside `data`, which outlives the call (`execute_chunked` returns when all
            // chunks are done).
            let chunk = unsafe { std::slice::from_raw_parts_mut(base.get().add(start), n) };
            f(i, chunk);
        }
    });
}

fn chunks_on_rayon<T: Send, F: Fn(usize, &mut [T]) + Sync>(data: &mut [T], len: usize, f: F) {
    use rayon::prelude::*;
    data.par_chunks_mut(len)
        .enumerate()
        .for_each(|(i, chunk)| f(i, chunk));
}

/// `f(first_row, rows)` over blocks of whole rows of `width` values, about `values_per_task` values a
/// block, so that small tensors stay on one thread.
pub(crate) fn for_each_row_block<F: Fn(usize, &mut [f32]) + Sync>(
    out: &mut [f32],
    width: usize,
    values_per_task: usize,
    f: F,
) {
    let width = width.max(1);
    let rows = (values_per_task / width).max(1);
    for_each_chunk(out, rows * width, |i, dst| f(i * rows, dst));
}

/// A pointer to data that threads write in disjoint parts.
struct SharedMut<T>(*mut T);

impl<T> Clone for SharedMut<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SharedMut<T> {}

impl<T> SharedMut<T> {
    fn get(self) -> *mut T {
        self.0
    }
}

// SAFETY: only used for disjoint writes of `Send` values (see `for_each_chunk`).
unsafe impl<T: Send> Send for SharedMut<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SharedMut<T> {}

/// `Σ f(v)` over eight interleaved partial sums, so that the additions vectorise (`T` is the
/// accumulator: f32, or f64 for statistics over whole feature maps).
#[inline(always)]
pub(crate) fn sum8<T>(xs: &[f32], f: impl Fn(f32) -> T) -> T
where
    T: Copy + Default + std::ops::Add<Output = T>,
{
    let mut acc = [T::default(); 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = *a + f(v);
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(T::default(), |s, &v| s + f(v));
    acc.iter().fold(T::default(), |s, &a| s + a) + tail
}

/// The bit patterns of a tensor's f32 values, for tests that a fast form gives the composed one's bits.
#[cfg(test)]
pub(crate) fn bits(t: &Tensor) -> Result<Vec<u32>> {
    Ok(t.flatten_all()?
        .to_vec1::<f32>()?
        .iter()
        .map(|v| v.to_bits())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both pools hand every chunk, with its index, to exactly one call, as a plain loop does.
    #[test]
    fn both_pools_cover_every_chunk_once_with_its_index() {
        let fill = |i: usize, c: &mut [u64]| {
            for (j, v) in c.iter_mut().enumerate() {
                *v += (i * 1000 + j) as u64 + 1;
            }
        };
        for (n, len) in [(1000usize, 7usize), (64, 64), (65, 64), (3, 1)] {
            let mut expect = vec![0u64; n];
            for (i, c) in expect.chunks_mut(len).enumerate() {
                fill(i, c);
            }
            let mut on_rayon = vec![0u64; n];
            chunks_on_rayon(&mut on_rayon, len, fill);
            assert_eq!(on_rayon, expect, "rayon, n {n} len {len}");
            let mut on_barrier = vec![0u64; n];
            chunks_on_barrier_pool(
                candle_core::utils::barrier_pool(),
                &mut on_barrier,
                len,
                fill,
            );
            assert_eq!(on_barrier, expect, "barrier pool, n {n} len {len}");
        }
    }
}
