//! A weight source that invents seeded random tensors of whatever shape the model asks for, so that
//! benchmarks can build the released configuration without a 15 GB download.

use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::Init;
use candle_nn::var_builder::SimpleBackend;

use crate::pipeline::noise::{Noise, SeededNoise};

pub struct RandomInit {
    seed: u64,
}

impl RandomInit {
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }
}

fn name_seed(seed: u64, name: &str) -> u64 {
    name.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

impl SimpleBackend for RandomInit {
    fn get(&self, s: Shape, name: &str, _h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let n = s.elem_count();
        let is_norm_weight = s.rank() == 1 && name.ends_with("weight");
        let values: Vec<f32> = if is_norm_weight {
            vec![1.0; n]
        } else if s.rank() == 1 || name.contains("scale_mul") {
            vec![0.0; n]
        } else {
            // Fan-in scaled so activations keep unit size through deep stacks.
            let fan_in: usize = s.dims()[1..].iter().product();
            let std = 1.0 / (fan_in.max(1) as f32).sqrt();
            SeededNoise::new(name_seed(self.seed, name))
                .normal(n)
                .into_iter()
                .map(|v| v * std)
                .collect()
        };
        Tensor::from_vec(values, s, dev)?.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        candle_core::bail!("random weights need a shape for `{name}`")
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}
