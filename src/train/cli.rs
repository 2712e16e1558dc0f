//! `varsr train …` subcommands (clap `Args` + `run` per subcommand). The paths default to the layout
//! of `scripts/train-default-model.sh` under `work-data/`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::loops::{TokenizerRun, TransformerRun, train_tokenizer, train_transformer};
use super::prefix::{PrefixRun, train_prefix};
use super::{data, export, small};

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    #[command(subcommand)]
    pub command: TrainCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum TrainCommand {
    /// Cut the fetched photos into training patches and set aside held-out photos.
    Patches(PatchesArgs),
    /// Train the multi-scale VQVAE (stage 1: small crops; stage 2: full tiles with scale dropout).
    Tokenizer(TokenizerArgs),
    /// Pretrain the LR encoder to predict the tokenizer's latent (optional, before `transformer`).
    Prefix(PrefixArgs),
    /// Train the SR transformer and its diffusion refiner on the frozen tokenizer.
    Transformer(TransformerArgs),
    /// Write the model file the app embeds.
    Export(ExportArgs),
}

pub fn run(args: TrainArgs) -> Result<()> {
    match args.command {
        TrainCommand::Patches(a) => a.run(),
        TrainCommand::Tokenizer(a) => a.run(),
        TrainCommand::Prefix(a) => a.run(),
        TrainCommand::Transformer(a) => a.run(),
        TrainCommand::Export(a) => a.run(),
    }
}

#[derive(Args, Debug, Clone)]
pub struct PatchesArgs {
    #[arg(long, default_value = "work-data/photos")]
    pub photos: PathBuf,
    #[arg(long, default_value = "work-data/patches.bin")]
    pub out: PathBuf,
    /// Where centre crops of the held-out photos go (for `varsr eval`).
    #[arg(long, default_value = "work-data/holdout")]
    pub holdout: PathBuf,
    #[arg(long, default_value_t = small::TILE_PX)]
    pub side: usize,
    #[arg(long, default_value_t = 96)]
    pub stride: usize,
    /// Every n-th photo (sorted by name) is held out.
    #[arg(long, default_value_t = 9)]
    pub holdout_every: usize,
    #[arg(long, default_value_t = 512)]
    pub holdout_px: u32,
}

impl PatchesArgs {
    pub fn run(self) -> Result<()> {
        let (n, held) = data::build_patches(
            &self.photos,
            &self.out,
            &self.holdout,
            self.side,
            self.stride,
            self.holdout_every,
            self.holdout_px,
            7,
        )?;
        println!(
            "{n} patches of {0}×{0} in {1}; {held} photos held out in {2}",
            self.side,
            self.out.display(),
            self.holdout.display()
        );
        Ok(())
    }
}

#[derive(Args, Debug, Clone)]
pub struct TokenizerArgs {
    #[arg(long, default_value = "work-data/patches.bin")]
    pub patches: PathBuf,
    #[arg(long, default_value = "work-data/ckpt/tokenizer.safetensors")]
    pub checkpoint: PathBuf,
    #[arg(long, default_value_t = 3000)]
    pub steps: usize,
    #[arg(long, default_value_t = 2000)]
    pub stage1_steps: usize,
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    #[arg(long, default_value_t = 32)]
    pub crop: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.1)]
    pub scale_dropout: f64,
    #[arg(long, default_value_t = 0.25)]
    pub continuous_prob: f64,
    #[arg(long, default_value_t = 100)]
    pub save_every: usize,
    #[arg(long, default_value_t = 10)]
    pub log_every: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Fine-tune only the decoder (tokens stay as they are; run it beside `train transformer`
    /// with a copy of the tokenizer checkpoint).
    #[arg(long)]
    pub decoder_only: bool,
}

impl TokenizerArgs {
    pub fn run(self) -> Result<()> {
        train_tokenizer(&TokenizerRun {
            patches: self.patches,
            checkpoint: self.checkpoint,
            steps: self.steps,
            stage1_steps: self.stage1_steps,
            batch: self.batch,
            crop: self.crop,
            lr: self.lr,
            scale_dropout: self.scale_dropout,
            continuous_prob: self.continuous_prob,
            save_every: self.save_every,
            log_every: self.log_every,
            seed: self.seed,
            decoder_only: self.decoder_only,
        })
    }
}

#[derive(Args, Debug, Clone)]
pub struct PrefixArgs {
    #[arg(long, default_value = "work-data/patches.bin")]
    pub patches: PathBuf,
    #[arg(long, default_value = "work-data/ckpt/tokenizer.safetensors")]
    pub tokenizer: PathBuf,
    #[arg(long, default_value = "work-data/ckpt/prefix.safetensors")]
    pub checkpoint: PathBuf,
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 50)]
    pub save_every: usize,
    #[arg(long, default_value_t = 20)]
    pub log_every: usize,
    #[arg(long, default_value_t = 3)]
    pub seed: u64,
}

impl PrefixArgs {
    pub fn run(self) -> Result<()> {
        train_prefix(&PrefixRun {
            patches: self.patches,
            tokenizer: self.tokenizer,
            checkpoint: self.checkpoint,
            steps: self.steps,
            batch: self.batch,
            lr: self.lr,
            save_every: self.save_every,
            log_every: self.log_every,
            seed: self.seed,
        })
    }
}

#[derive(Args, Debug, Clone)]
pub struct TransformerArgs {
    #[arg(long, default_value = "work-data/patches.bin")]
    pub patches: PathBuf,
    #[arg(long, default_value = "work-data/ckpt/tokenizer.safetensors")]
    pub tokenizer: PathBuf,
    #[arg(long, default_value = "work-data/ckpt/transformer.safetensors")]
    pub checkpoint: PathBuf,
    #[arg(long, default_value_t = 4000)]
    pub steps: usize,
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    #[arg(long, default_value_t = 6e-4)]
    pub lr: f64,
    #[arg(long, default_value_t = 200)]
    pub warmup: usize,
    #[arg(long, default_value_t = 0.2)]
    pub negative_prob: f64,
    #[arg(long, default_value_t = 0.1)]
    pub label_dropout: f64,
    #[arg(long, default_value_t = 2)]
    pub diff_mul: usize,
    #[arg(long, default_value_t = 50)]
    pub save_every: usize,
    #[arg(long, default_value_t = 10)]
    pub log_every: usize,
    #[arg(long, default_value_t = 2)]
    pub seed: u64,
    /// Start from VAR's initialisation only, without the positional attention heads (for
    /// comparisons).
    #[arg(long)]
    pub plain_init: bool,
    /// Weigh every token the same in the cross-entropy (VAR's loss) instead of every scale.
    #[arg(long)]
    pub per_token_ce: bool,
    /// Share of teacher-forced input tokens replaced by one of their 8 nearest codes; later scales
    /// then learn the residual those wrong tokens leave (exposure to the mistakes inference makes).
    #[arg(long, default_value_t = 0.0)]
    pub input_noise: f64,
    /// Weight of the latent loss on the expected code vector (0: cross-entropy only, as VAR).
    #[arg(long, default_value_t = 0.0)]
    pub latent_weight: f64,
    /// Start the LR encoder from a `train prefix` checkpoint (a fresh run only).
    #[arg(long)]
    pub init_prefix: Option<PathBuf>,
    /// Steps during which the LR encoder stays as it starts (no gradient reaches it).
    #[arg(long, default_value_t = 0)]
    pub freeze_prefix_steps: usize,
}

impl TransformerArgs {
    pub fn run(self) -> Result<()> {
        train_transformer(&TransformerRun {
            patches: self.patches,
            tokenizer: self.tokenizer,
            checkpoint: self.checkpoint,
            steps: self.steps,
            batch: self.batch,
            lr: self.lr,
            warmup: self.warmup,
            negative_prob: self.negative_prob,
            label_dropout: self.label_dropout,
            diff_mul: self.diff_mul,
            scale_balanced: !self.per_token_ce,
            save_every: self.save_every,
            log_every: self.log_every,
            seed: self.seed,
            positional_heads: !self.plain_init,
            input_noise: self.input_noise,
            latent_weight: self.latent_weight,
            init_prefix: self.init_prefix,
            freeze_prefix_steps: self.freeze_prefix_steps,
        })
    }
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    #[arg(long, default_value = "work-data/ckpt/tokenizer.safetensors")]
    pub tokenizer: PathBuf,
    #[arg(long, default_value = "work-data/ckpt/transformer.safetensors")]
    pub transformer: PathBuf,
    #[arg(long, default_value = "models/varsr-studio-small.safetensors")]
    pub out: PathBuf,
    #[arg(long, default_value = "VARSR Studio small")]
    pub name: String,
}

impl ExportArgs {
    pub fn run(self) -> Result<()> {
        let bytes = export::export(&self.tokenizer, &self.transformer, &self.out, &self.name)?;
        println!(
            "wrote {} ({:.1} MB)",
            self.out.display(),
            bytes as f64 / 1e6
        );
        Ok(())
    }
}
