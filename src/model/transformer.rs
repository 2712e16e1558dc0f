//! The AdaLN transformer blocks of VARSR (`AdaLNSelfAttn_RoPE`, `SelfAttention_RoPE`, `FFN`,
//! `AdaLNBeforeHead` in models/basic_var.py).

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder, linear};

use super::rope;
pub use crate::ops::layer_norm::layer_norm;
use crate::ops::layer_norm::layer_norm_modulate;
use crate::ops::qk_rope;

/// `torch.log(torch.tensor(100.)).item()`, the clamp of the learned per-head q multiplier.
const MAX_SCALE_MUL: f64 = 4.605_170_249_938_965;
/// Attention score tensors larger than this many elements are computed a few (sequence, head) pairs
/// at a time. Kept under glibc's largest `mmap` threshold (32 MiB, see [`crate::alloc`]) so that the
/// scores reuse heap memory instead of being faulted in anew for every chunk: with 64 MiB chunks the
/// attention's QKᵀ and PV products took 4.6 s against 3.9 s and its softmax 7.9 s against 2.4 s
/// (released width, depth 4, one thread). Chunks cut across sequences as well as heads: one head of the
/// built-in model's 64 sequences a batch holds 50 MB of scores at the last scale.
const SCORE_CHUNK_ELEMS: usize = 4 << 20;

/// LayerNorm with affine parameters (candle's fused one has no backward pass, and training runs
/// through the same modules: [`layer_norm_modulate`] falls back to differentiable ops for it).
pub struct AffineLayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl AffineLayerNorm {
    pub fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get(dim, "weight")?,
            bias: vb.get(dim, "bias")?,
        })
    }

    /// `(weight, bias)`, for kernels that fold the affine part into a later step.
    pub fn params(&self) -> (&Tensor, &Tensor) {
        (&self.weight, &self.bias)
    }
}

impl Module for AffineLayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        layer_norm_modulate(x, &self.weight, &self.bias)
    }
}

/// `F.normalize(x, dim=-1)`: `x / max(‖x‖, 1e-12)`.
fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let x32 = x.to_dtype(DType::F32)?;
    let norm = x32.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.maximum(1e-12)?;
    x32.broadcast_div(&norm)?.to_dtype(x.dtype())
}

/// Keys and values of earlier scales, appended one scale at a time.
#[derive(Default)]
pub struct KvCache {
    k: Option<Tensor>,
    v: Option<Tensor>,
}

impl KvCache {
    pub fn len(&self) -> usize {
        self.k.as_ref().map_or(0, |k| k.dims()[2])
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn with(&self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        match (&self.k, &self.v) {
            (Some(ck), Some(cv)) => Ok((Tensor::cat(&[ck, k], 2)?, Tensor::cat(&[cv, v], 2)?)),
            _ => Ok((k.clone(), v.clone())),
        }
    }
}

/// How a block's attention sees other positions.
pub enum AttnContext<'a> {
    /// Inference: attend to the cache plus this scale; `keep` stores this scale's k/v for later scales
    /// (the last scale is never attended to again, so it is not kept).
    Cached { cache: &'a mut KvCache, keep: bool },
    /// Training: the whole sequence at once with an additive `(L, L)` mask (0 or −∞).
    Masked(&'a Tensor),
}

pub struct SelfAttention {
    mat_qkv: Linear,
    proj: Linear,
    /// `exp(min(scale_mul_1H11, ln 100))`, `(1, H, 1, 1)`.
    q_scale: Tensor,
    num_heads: usize,
}

impl SelfAttention {
    pub fn new(dim: usize, num_heads: usize, vb: VarBuilder) -> Result<Self> {
        let w = vb.get((3 * dim, dim), "mat_qkv.weight")?;
        let q_bias = vb.get(dim, "q_bias")?;
        let v_bias = vb.get(dim, "v_bias")?;
        // k has no bias (`zero_k_bias` is a zero buffer).
        let bias = Tensor::cat(&[&q_bias, &q_bias.zeros_like()?, &v_bias], 0)?;
        let scale_mul = vb.get((1, num_heads, 1, 1), "scale_mul_1H11")?;
        Ok(Self {
            mat_qkv: Linear::new(w, Some(bias)),
            proj: linear(dim, dim, vb.pp("proj"))?,
            q_scale: scale_mul.minimum(MAX_SCALE_MUL)?.exp()?,
            num_heads,
        })
    }

    pub fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        ctx: AttnContext,
    ) -> Result<Tensor> {
        let (b, l, c) = x.dims3()?;
        let hd = c / self.num_heads;
        let qkv = self.mat_qkv.forward(x)?;
        let (q, k, v) = if qk_rope::applies(&qkv) {
            qk_rope::split_heads(&qkv, self.num_heads, &self.q_scale, cos, sin)?
        } else {
            let qkv = qkv
                .reshape((b, l, 3, self.num_heads, hd))?
                .permute((2, 0, 3, 1, 4))?;
            let q = l2_normalize(&qkv.get(0)?)?.broadcast_mul(&self.q_scale)?;
            let k = l2_normalize(&qkv.get(1)?)?;
            (
                rope::apply(&q, cos, sin)?,
                rope::apply(&k, cos, sin)?,
                qkv.get(2)?.contiguous()?,
            )
        };
        let out = match ctx {
            AttnContext::Cached { cache, keep } => {
                let (ka, va) = cache.with(&k, &v)?;
                let out = attend(&q, &ka, &va, None)?;
                if keep {
                    cache.k = Some(ka);
                    cache.v = Some(va);
                }
                out
            }
            AttnContext::Masked(mask) => attend(&q, &k, &v, Some(mask))?,
        };
        let out = out.transpose(1, 2)?.reshape((b, l, c))?;
        self.proj.forward(&out)
    }
}

/// `softmax(q·kᵀ + mask)·v` with scale 1 (q and k are normalised), a few (sequence, head) pairs at a
/// time when the scores would be large.
fn attend(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    let (b, h, lq, d) = q.dims4()?;
    let lk = k.dims()[2];
    let pairs = b * h;
    let step = (SCORE_CHUNK_ELEMS / (lq * lk).max(1)).clamp(1, pairs);
    let one = |q: &Tensor, k: &Tensor, v: &Tensor| -> Result<Tensor> {
        let mut s = q.contiguous()?.matmul(&k.contiguous()?.t()?)?;
        if let Some(m) = mask {
            s = s.broadcast_add(m)?;
        }
        // The fused softmax has no backward pass; training (the masked path) needs the composed one.
        let p = match mask {
            Some(_) => candle_nn::ops::softmax(&s, D::Minus1)?,
            None => crate::ops::softmax::softmax_last_dim(&s)?,
        };
        p.matmul(&v.contiguous()?)
    };
    if step >= pairs {
        return one(q, k, v);
    }
    let flat = |t: &Tensor| -> Result<Tensor> {
        let (_, _, l, d) = t.dims4()?;
        t.contiguous()?.reshape((pairs, l, d))
    };
    let (q, k, v) = (flat(q)?, flat(k)?, flat(v)?);
    let mut parts = Vec::with_capacity(pairs.div_ceil(step));
    for s in (0..pairs).step_by(step) {
        let n = step.min(pairs - s);
        parts.push(one(
            &q.narrow(0, s, n)?,
            &k.narrow(0, s, n)?,
            &v.narrow(0, s, n)?,
        )?);
    }
    Tensor::cat(&parts, 0)?.reshape((b, h, lq, d))
}

pub struct Ffn {
    fc1: Linear,
    fc2: Linear,
}

impl Ffn {
    pub fn new(dim: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            fc1: linear(dim, hidden, vb.pp("fc1"))?,
            fc2: linear(hidden, dim, vb.pp("fc2"))?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // GELU with the tanh approximation, as `nn.GELU(approximate='tanh')`.
        self.fc2
            .forward(&crate::ops::gelu::gelu_after(&self.fc1, x)?)
    }
}

/// The six modulation vectors of one block for one condition, each `(B, 1, C)`.
pub struct BlockModulation {
    gamma1: Tensor,
    gamma2: Tensor,
    scale1: Tensor,
    scale2: Tensor,
    shift1: Tensor,
    shift2: Tensor,
}

/// `blocks.{i}`: AdaLN self-attention block.
pub struct AdaLnBlock {
    pub attn: SelfAttention,
    pub ffn: Ffn,
    /// `ada_lin` is `Sequential(SiLU, Linear)`; the Linear is index 1.
    ada_lin: Linear,
    dim: usize,
}

impl AdaLnBlock {
    pub fn new(dim: usize, num_heads: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            attn: SelfAttention::new(dim, num_heads, vb.pp("attn"))?,
            ffn: Ffn::new(dim, hidden, vb.pp("ffn"))?,
            ada_lin: linear(dim, 6 * dim, vb.pp("ada_lin").pp(1))?,
            dim,
        })
    }

    /// Modulation for the condition `cond` `(B, C)`, in the published order
    /// (γ1, γ2, scale1, scale2, shift1, shift2).
    pub fn modulation(&self, cond: &Tensor) -> Result<BlockModulation> {
        let b = cond.dims()[0];
        let m = self
            .ada_lin
            .forward(&cond.silu()?)?
            .reshape((b, 1, 6, self.dim))?;
        let part = |i: usize| m.narrow(2, i, 1)?.squeeze(2);
        Ok(BlockModulation {
            gamma1: part(0)?,
            gamma2: part(1)?,
            scale1: (part(2)? + 1.0)?,
            scale2: (part(3)? + 1.0)?,
            shift1: part(4)?,
            shift2: part(5)?,
        })
    }

    pub fn forward(
        &self,
        x: &Tensor,
        m: &BlockModulation,
        cos: &Tensor,
        sin: &Tensor,
        ctx: AttnContext,
    ) -> Result<Tensor> {
        let h = layer_norm_modulate(x, &m.scale1, &m.shift1)?;
        let x = (x + self
            .attn
            .forward(&h, cos, sin, ctx)?
            .broadcast_mul(&m.gamma1)?)?;
        let h = layer_norm_modulate(&x, &m.scale2, &m.shift2)?;
        x + self.ffn.forward(&h)?.broadcast_mul(&m.gamma2)?
    }
}

/// `head_nm`: AdaLN before the output head, chunk order (scale, shift).
pub struct AdaLnBeforeHead {
    ada_lin: Linear,
    dim: usize,
}

impl AdaLnBeforeHead {
    pub fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            ada_lin: linear(dim, 2 * dim, vb.pp("ada_lin").pp(1))?,
            dim,
        })
    }

    /// `(1 + scale, shift)` for the condition `cond` `(B, C)`, each `(B, 1, C)`.
    pub fn modulation(&self, cond: &Tensor) -> Result<(Tensor, Tensor)> {
        let b = cond.dims()[0];
        let m = self
            .ada_lin
            .forward(&cond.silu()?)?
            .reshape((b, 1, 2, self.dim))?;
        Ok((
            (m.narrow(2, 0, 1)?.squeeze(2)? + 1.0)?,
            m.narrow(2, 1, 1)?.squeeze(2)?,
        ))
    }

    pub fn forward(&self, x: &Tensor, modulation: &(Tensor, Tensor)) -> Result<Tensor> {
        layer_norm_modulate(x, &modulation.0, &modulation.1)
    }
}
