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
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("{op}: not a CPU tensor");
    };
    let Some((a, b)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: tensor not contiguous");
    };
    f(&cpu.as_slice::<f32>()?[a..b])
}

/// `f(index, chunk)` for each `len`-sized chunk of `data` (the last may be shorter), spread over
/// candle's thread count; the calling thread takes the last share, so one share spawns nothing.
pub(crate) fn for_each_chunk<F: Fn(usize, &mut [f32]) + Sync>(data: &mut [f32], len: usize, f: F) {
    let len = len.max(1);
    let count = data.len().div_ceil(len);
    let threads = candle_core::utils::get_num_threads().clamp(1, count.max(1));
    let per = count.div_ceil(threads).max(1);
    let run = |k: usize, part: &mut [f32]| {
        for (i, chunk) in part.chunks_mut(len).enumerate() {
            f(k * per + i, chunk);
        }
    };
    std::thread::scope(|scope| {
        let mut parts = data.chunks_mut(per * len).enumerate();
        let last = parts.next_back();
        for (k, part) in parts {
            let run = &run;
            scope.spawn(move || run(k, part));
        }
        if let Some((k, part)) = last {
            run(k, part);
        }
    });
}

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
