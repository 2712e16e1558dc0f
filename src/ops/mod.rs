//! Tensor operations with the exact numerics of the PyTorch functions the published code calls.

pub mod adaln;
pub mod cpu;
pub mod gelu;
pub mod group_norm;
pub mod layer_norm;
pub mod pointwise;
pub mod qk_rope;
pub mod resample;
pub mod silu;
mod simd;
pub mod softmax;
pub mod winograd;
