//! Stand-alone driver for the training commands (`varsr-train train …`, `varsr-train eval …`), so that
//! training runs while the main CLI does not route them yet.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "varsr-train",
    about = "Train and evaluate the embedded VARSR Studio model"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Train(varsr::train::cli::TrainArgs),
    Eval(varsr::train::eval::EvalArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Train(a) => varsr::train::cli::run(a),
        Command::Eval(a) => varsr::train::eval::run(a),
    }
}
