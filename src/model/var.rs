//! `VAR_RoPE` (models/var.py): the SR transformer with its LR encoder, AdaLN head and diffusion refiner.
//! Field names equal the state-dict keys of `VARSR.pth` → `trainer.var_wo_ddp`.

use candle_core::{DType, Device, IndexOp, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder, embedding, linear};

use super::config::VarConfig;
use super::diffloss::SimpleMlpAdaLn;
use super::encoder::ConEmbedding;
use super::rope::Rope;
use super::transformer::{
    AdaLnBeforeHead, AdaLnBlock, AffineLayerNorm, AttnContext, BlockModulation, KvCache,
};

/// `diffloss`: only its `net` has weights.
pub struct DiffLoss {
    pub net: SimpleMlpAdaLn,
}

pub struct Var {
    pub config: VarConfig,
    pub pos_start: Tensor,
    pub con_embedding: ConEmbedding,
    pub word_embed: Linear,
    pub class_emb: Embedding,
    pub lvl_embed: Embedding,
    pub blocks: Vec<AdaLnBlock>,
    pub head_nm: AdaLnBeforeHead,
    pub head: Linear,
    pub decoder_norm: AffineLayerNorm,
    pub diffloss: DiffLoss,
    pub rope: Rope,
}

/// Everything that depends only on the condition rows, computed once per run.
pub struct Conditioning {
    /// `(2B, C)`: the positive class for the first B rows, the negative class for the rest.
    pub cond: Tensor,
    pub blocks: Vec<BlockModulation>,
    pub head: (Tensor, Tensor),
}

impl Var {
    pub fn new(config: VarConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let c = config.embed_dim;
        let prefix = config.prefix_side * config.prefix_side;
        let blocks = (0..config.depth)
            .map(|i| {
                AdaLnBlock::new(
                    c,
                    config.num_heads,
                    config.mlp_hidden,
                    vb.pp("blocks").pp(i),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let decoder_norm = AffineLayerNorm::new(c, vb.pp("decoder_norm"))?;
        let net = SimpleMlpAdaLn::new(
            config.cvae,
            c,
            config.refiner_width,
            config.refiner_depth,
            config.refiner_freq_dim,
            vb.pp("diffloss").pp("net"),
        )?;
        let rope = Rope::new(
            config.prefix_side,
            &config.patch_nums,
            config.head_dim(),
            vb.device(),
        )?;
        Ok(Self {
            pos_start: vb.get((1, prefix + 1, c), "pos_start")?,
            con_embedding: ConEmbedding::new(&config.encoder_channels, c, vb.pp("con_embedding"))?,
            word_embed: linear(config.cvae, c, vb.pp("word_embed"))?,
            class_emb: embedding(config.num_classes, c, vb.pp("class_emb"))?,
            lvl_embed: embedding(config.patch_nums.len(), c, vb.pp("lvl_embed"))?,
            blocks,
            head_nm: AdaLnBeforeHead::new(c, vb.pp("head_nm"))?,
            head: linear(c, config.vocab_size, vb.pp("head"))?,
            decoder_norm,
            diffloss: DiffLoss { net },
            rope,
            config,
        })
    }

    pub fn device(&self) -> &Device {
        self.pos_start.device()
    }

    pub fn dtype(&self) -> DType {
        self.pos_start.dtype()
    }

    /// Condition rows for `b` images: class 0 (high quality) for the guided branch and the last class
    /// (low quality) for the guidance branch.
    pub fn conditioning(&self, b: usize) -> Result<Conditioning> {
        let neg = (self.config.num_classes - 1) as u32;
        let labels: Vec<u32> = (0..2 * b).map(|i| if i < b { 0 } else { neg }).collect();
        let labels = Tensor::from_vec(labels, 2 * b, self.device())?;
        let cond = self.class_emb.forward(&labels)?;
        let blocks = self
            .blocks
            .iter()
            .map(|blk| blk.modulation(&cond))
            .collect::<Result<Vec<_>>>()?;
        let head = self.head_nm.modulation(&cond)?;
        Ok(Conditioning { cond, blocks, head })
    }

    /// The input of the first step: LR prefix tokens (both branches) then the class token, plus
    /// `pos_start` and level 0. `lr` is `(B, 3, S, S)` in [-1, 1]; returns `(2B, prefix+1, C)`.
    pub fn first_input(&self, lr: &Tensor, cond: &Conditioning) -> Result<Tensor> {
        let e = self.con_embedding.forward(&lr.to_dtype(self.dtype())?)?;
        let e = Tensor::cat(&[&e, &e], 0)?;
        let x = Tensor::cat(&[&e, &cond.cond.unsqueeze(1)?], 1)?;
        let lvl0 = self.lvl_embed.embeddings().i(0)?;
        x.broadcast_add(&self.pos_start)?.broadcast_add(&lvl0)
    }

    /// Input tokens of scale `si` from the area-downsampled accumulated latent `(B, Cvae, pn, pn)`,
    /// duplicated for both branches: `(2B, pn², C)`.
    pub fn scale_input(&self, next: &Tensor, si: usize) -> Result<Tensor> {
        let (b, cv, h, w) = next.dims4()?;
        let t = next
            .to_dtype(self.dtype())?
            .reshape((b, cv, h * w))?
            .transpose(1, 2)?
            // candle 0.11's CPU matmul mishandles this transposed batch layout (huggingface/candle#3744).
            .contiguous()?;
        let x = self
            .word_embed
            .forward(&t)?
            .broadcast_add(&self.lvl_embed.embeddings().i(si)?)?;
        Tensor::cat(&[&x, &x], 0)
    }

    /// Runs all blocks on the tokens at sequence positions `start..start+len`.
    pub fn blocks_forward(
        &self,
        x: &Tensor,
        cond: &Conditioning,
        start: usize,
        caches: &mut [KvCache],
        keep: bool,
    ) -> Result<Tensor> {
        let (cos, sin) = self.rope.slice(start, x.dims()[1])?;
        let mut x = x.clone();
        for ((blk, m), cache) in self.blocks.iter().zip(&cond.blocks).zip(caches.iter_mut()) {
            x = blk.forward(&x, m, &cos, &sin, AttnContext::Cached { cache, keep })?;
        }
        Ok(x)
    }

    /// Logits `(2B, L, V)` in f32.
    pub fn logits(&self, h: &Tensor, cond: &Conditioning) -> Result<Tensor> {
        self.head
            .forward(&self.head_nm.forward(h, &cond.head)?)?
            .to_dtype(DType::F32)
    }

    /// The refiner's condition rows `decoder_norm(h_last + word_embed(emb(idx_last)))`, `(2B·L, C)`, from the
    /// last scale's block output `h` `(2B, L, C)` and the codebook vectors `(B, L, Cvae)` of its tokens.
    pub fn refiner_condition(&self, h: &Tensor, token_vectors: &Tensor) -> Result<Tensor> {
        let d = self
            .word_embed
            .forward(&token_vectors.to_dtype(self.dtype())?)?;
        let d = Tensor::cat(&[&d, &d], 0)?;
        let z = self.decoder_norm.forward(&(h + d)?)?;
        let (b, l, c) = z.dims3()?;
        z.reshape((b * l, c))
    }
}
