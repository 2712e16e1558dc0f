//! Convolutions for training. candle's CPU backward of `conv2d` computes the input gradient with a
//! direct `conv_transpose2d` that is ~20× slower than the forward pass; written as an explicit
//! unfold (shifted views stacked on the channel axis) and one matmul, the backward is a matmul plus
//! copies. Same weights, same keys (`weight`, `bias`) and same initialisation as `candle_nn::conv2d`.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

pub struct FastConv {
    weight: Tensor,
    bias: Option<Tensor>,
    k: usize,
    /// Padding before (top/left) and stride.
    pad: usize,
    stride: usize,
    /// Extra zero rows/columns after (bottom/right), as `Downsample` pads.
    pad_after: usize,
}

impl FastConv {
    /// A `k×k` convolution with symmetric `padding` and `stride`, initialised like `candle_nn::conv2d`.
    pub fn new(
        i: usize,
        o: usize,
        k: usize,
        padding: usize,
        stride: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let weight = vb.get_with_hints(
            (o, i, k, k),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?;
        let bound = 1.0 / ((i * k * k) as f64).sqrt();
        let bias = vb.get_with_hints(
            o,
            "bias",
            Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )?;
        Ok(Self {
            weight,
            bias: Some(bias),
            k,
            pad: padding,
            stride,
            pad_after: padding,
        })
    }

    /// `Downsample2x`: zero-pad right and bottom by one, then a stride-2 3×3 convolution.
    pub fn downsample(ch: usize, vb: VarBuilder) -> Result<Self> {
        let mut c = Self::new(ch, ch, 3, 0, 2, vb)?;
        c.pad_after = 1;
        Ok(c)
    }

    fn out_size(&self, n: usize) -> usize {
        (n + self.pad + self.pad_after - self.k) / self.stride + 1
    }
}

impl Module for FastConv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let o = self.weight.dims()[0];
        let (ho, wo) = (self.out_size(h), self.out_size(w));
        let s = self.stride;
        let cols = if self.k == 1 && s == 1 && self.pad == 0 {
            x.clone()
        } else {
            // Enough trailing zeros that every shifted view has s·out rows.
            let need_h = self.k - 1 + s * ho;
            let need_w = self.k - 1 + s * wo;
            let xp = x
                .pad_with_zeros(2, self.pad, need_h.saturating_sub(h + self.pad))?
                .pad_with_zeros(3, self.pad, need_w.saturating_sub(w + self.pad))?;
            let mut views = Vec::with_capacity(self.k * self.k);
            for dy in 0..self.k {
                for dx in 0..self.k {
                    let v = xp.narrow(2, dy, s * ho)?.narrow(3, dx, s * wo)?;
                    let v = if s == 1 {
                        v
                    } else {
                        v.reshape((b, c, ho, s, wo, s))?
                            .narrow(3, 0, 1)?
                            .narrow(5, 0, 1)?
                            .reshape((b, c, ho, wo))?
                    };
                    views.push(v);
                }
            }
            Tensor::cat(&views, 1)?
        };
        let kk = self.k * self.k;
        // Column order is (dy, dx) major, channel minor: permute the kernel to match.
        let wm = self.weight.permute((0, 2, 3, 1))?.reshape((o, kk * c))?;
        let y = wm
            .broadcast_matmul(&cols.reshape((b, kk * c, ho * wo))?)?
            .reshape((b, o, ho, wo))?;
        match &self.bias {
            Some(bias) => y.broadcast_add(&bias.reshape((1, o, 1, 1))?),
            None => Ok(y),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;

    /// Against candle's own convolution (an independent implementation), values and gradients.
    #[test]
    fn matches_candle_conv2d_and_its_gradients() -> Result<()> {
        let dev = Device::Cpu;
        for (k, pad, stride, down) in [
            (3, 1, 1, false),
            (3, 1, 2, false),
            (1, 0, 1, false),
            (3, 0, 2, true),
        ] {
            let vm = VarMap::new();
            let vb = candle_nn::VarBuilder::from_varmap(&vm, DType::F32, &dev);
            let conv = if down {
                FastConv::downsample(3, vb)?
            } else {
                FastConv::new(3, 5, k, pad, stride, vb)?
            };
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 8, 6), &dev)?)?;
            let y = conv.forward(x.as_tensor())?;
            let xr = if down {
                x.as_tensor()
                    .pad_with_zeros(2, 0, 1)?
                    .pad_with_zeros(3, 0, 1)?
            } else {
                x.as_tensor().clone()
            };
            let want = xr.conv2d(&conv.weight, pad, stride, 1, 1)?.broadcast_add(
                &conv
                    .bias
                    .as_ref()
                    .map(|b| b.reshape((1, (), 1, 1)))
                    .transpose()?
                    .unwrap_or(Tensor::zeros(1, DType::F32, &dev)?),
            )?;
            assert_eq!(y.dims(), want.dims(), "k{k} p{pad} s{stride}");
            let diff = (&y - &want)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-4, "k{k} p{pad} s{stride}: {diff}");
            let probe = Tensor::randn(0f32, 1.0, y.dims(), &dev)?;
            let g1 = (&y * &probe)?.sum_all()?.backward()?;
            let g2 = (&want * &probe)?.sum_all()?.backward()?;
            for t in [x.as_tensor(), &conv.weight] {
                let d = (g1.get(t).expect("grad") - g2.get(t).expect("grad"))?
                    .abs()?
                    .max_all()?
                    .to_scalar::<f32>()?;
                assert!(d < 1e-3, "grad k{k} p{pad} s{stride}: {d}");
            }
        }
        Ok(())
    }
}
