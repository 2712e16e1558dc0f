//! `varsr`: the desktop app without arguments or with image files, headless subcommands otherwise
//! (see `varsr --help`).

use std::process::ExitCode;

use clap::Parser;
use varsr::cli::{Action, Cli};

fn main() -> ExitCode {
    // SAFETY: no other thread exists yet.
    unsafe { varsr::init_process() };
    match varsr::cli::run(Cli::parse()) {
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
