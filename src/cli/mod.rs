//! The `varsr` command line: no arguments (or image files) opens the desktop app; `upscale`,
//! `convert`, `info`, `parity` and `bench` work headless.

pub mod bar;
pub mod bench;
pub mod convert;
pub mod device;
pub mod image_io;
pub mod info;
pub mod inputs;
pub mod naming;
pub mod parity;
pub mod upscale;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "varsr",
    version,
    about = "VARSR Studio: 4× photo super-resolution with visual autoregressive modelling",
    long_about = "VARSR Studio: 4× photo super-resolution with visual autoregressive modelling (VARSR, ICML 2025).\n\n\
                  Without a subcommand it opens the desktop app (with the given images, if any).\n\
                  `varsr upscale` works from the command line, for scripts and batches.",
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  varsr                       open the desktop app\n  varsr photo.jpg             open the app with a photo\n  \
                  varsr upscale photo.jpg     write photo_varsr_x4.png beside it\n  varsr info model/           show a model's configuration\n  \
                  varsr parity fixtures/      check the inference against the published code's values\n  \
                  varsr bench                 time the released-size model (random weights)"
)]
pub struct Cli {
    /// Images to open in the desktop app.
    #[arg(value_name = "IMAGES")]
    pub files: Vec<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Upscale images and folders of images, writing the results to files.
    Upscale(upscale::UpscaleArgs),
    /// Convert the released checkpoints into one safetensors file.
    Convert(convert::ConvertArgs),
    /// Show a model's configuration.
    Info(info::InfoArgs),
    /// Check the inference against fixtures recorded with the published VARSR code.
    Parity(parity::ParityArgs),
    /// Time upscales with a released-size model of random weights (no download).
    Bench(bench::BenchArgs),
    /// Train the built-in model from scratch (patches, tokenizer, transformer, export).
    Train(crate::train::cli::TrainArgs),
    /// Measure 4× quality (PSNR/SSIM on Y) against bicubic on a folder of high-resolution images.
    Eval(crate::train::eval::EvalArgs),
}

/// What `main` should do after parsing.
pub enum Action {
    /// Open the desktop app with these files.
    Gui(Vec<PathBuf>),
    /// A headless command ran; exit with this status.
    Exit(ExitCode),
}

pub fn run(cli: Cli) -> Action {
    match cli.command {
        None => Action::Gui(cli.files),
        Some(Command::Upscale(a)) => Action::Exit(upscale::run(a)),
        Some(Command::Convert(a)) => Action::Exit(convert::run(a)),
        Some(Command::Info(a)) => Action::Exit(info::run(a)),
        Some(Command::Parity(a)) => Action::Exit(parity::run(a)),
        Some(Command::Bench(a)) => Action::Exit(bench::run(a)),
        Some(Command::Train(a)) => Action::Exit(report(crate::train::cli::run(a))),
        Some(Command::Eval(a)) => Action::Exit(report(crate::train::eval::run(a))),
    }
}

/// Training and evaluation return `anyhow` errors; print them with their causes.
fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn files_without_subcommand_open_the_app() {
        let cli = Cli::try_parse_from(["varsr", "a.png", "b c.jpg"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.files.len(), 2);
    }

    #[test]
    fn scale_conflicts_with_a_target_size() {
        assert!(
            Cli::try_parse_from(["varsr", "upscale", "a.png", "--scale", "3", "--width", "10"])
                .is_err()
        );
        assert!(
            Cli::try_parse_from([
                "varsr", "upscale", "a.png", "--width", "10", "--height", "5"
            ])
            .is_err()
        );
        assert!(Cli::try_parse_from(["varsr", "upscale", "a.png", "--scale", "5"]).is_err());
        assert!(Cli::try_parse_from(["varsr", "upscale", "a.png", "--top-p", "0"]).is_err());
        let ok = Cli::try_parse_from([
            "varsr", "upscale", "a.png", "--width", "10", "--device", "cuda:1",
        ])
        .unwrap();
        let Some(Command::Upscale(a)) = ok.command else {
            panic!()
        };
        assert_eq!(a.width, Some(10));
        assert_eq!(a.device, device::DeviceArg::Cuda(1));
        assert_eq!(a.dtype, device::Precision::F32);
    }

    #[test]
    fn parity_and_bench_take_a_device_and_a_precision() {
        let cli = Cli::try_parse_from([
            "varsr", "parity", "a", "b", "--device", "cuda", "--dtype", "bf16",
        ])
        .unwrap();
        let Some(Command::Parity(p)) = cli.command else {
            panic!()
        };
        assert_eq!(p.dirs.len(), 2);
        assert_eq!(p.dtype, device::Precision::Bf16);
        assert!(Cli::try_parse_from(["varsr", "parity"]).is_err());
        assert!(Cli::try_parse_from(["varsr", "parity", "a", "--dtype", "f8"]).is_err());
        let cli =
            Cli::try_parse_from(["varsr", "bench", "--size", "2048", "--tile", "512"]).unwrap();
        let Some(Command::Bench(b)) = cli.command else {
            panic!()
        };
        assert_eq!((b.size, b.tile, b.runs), (Some(2048), Some(512), 3));
        assert_eq!(b.dtype, device::Precision::F32);
        assert!(Cli::try_parse_from(["varsr", "bench", "--runs", "0"]).is_err());
    }
}
