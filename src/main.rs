//! `varsr`: the desktop app without arguments or with image files, headless subcommands otherwise
//! (see `varsr --help`).

use std::process::ExitCode;

use clap::Parser;
use varsr::Workload;
use varsr::cli::{Action, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let workload = match cli.command {
        Some(Command::Train(_)) => Workload::Training,
        _ => Workload::Inference,
    };
    // SAFETY: no other thread exists yet (parsing the arguments starts none).
    unsafe { varsr::init_process(workload) };
    match varsr::cli::run(cli) {
        Action::Exit(code) => code,
        Action::Gui(files) => match varsr::app::run(files) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}
