//! `Weights` as a candle `VarBuilder` backend.

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;

use super::Weights;

impl SimpleBackend for Weights {
    /// The shape is checked against the file's index before any byte is read, so a wrong model
    /// configuration fails fast with both shapes in the message.
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        Ok(self.tensor_checked(name, s.dims(), dtype, dev)?)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        Ok(self.tensor_as(name, dtype, dev)?)
    }

    /// Answered from the index; candle's own pth backend reads the whole tensor here.
    fn contains_tensor(&self, name: &str) -> bool {
        self.contains(name)
    }
}
