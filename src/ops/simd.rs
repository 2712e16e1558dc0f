//! Runtime choice of instruction set for the hand-written CPU kernels.
//!
//! Release builds target baseline x86-64 (SSE2) so that one binary runs everywhere; the loops of
//! [`super::softmax`], [`super::gelu`], [`super::group_norm`] and [`super::winograd`] then vectorise
//! four lanes wide at most. `dispatch!` compiles the kernel a second time inside an
//! `avx2,fma`-enabled function and calls that copy when the processor has the features (checked
//! once; the standard library caches the answer).

/// `dispatch!(expression)`: evaluates the expression compiled for AVX2+FMA when the processor has
/// them, else the baseline build. What it calls must be `#[inline(always)]` so that it is compiled
/// into each copy; the expression itself is wrapped in an `#[inline(always)]` closure (without that,
/// a large one stayed a separate baseline function: the GroupNorm kernel ran without AVX2). LLVM
/// neither reorders nor fuses floating-point operations without being told to, so both copies give
/// the same bits.
macro_rules! dispatch {
    ($e:expr) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2,fma")]
            fn wide<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the processor has the features `wide` is compiled for.
                unsafe {
                    wide(
                        #[inline(always)]
                        || $e,
                    )
                }
            } else {
                $e
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $e
        }
    }};
}

pub(crate) use dispatch;
