//! `allot`: the command-line interface.

mod cmd;

use clap::{Parser, Subcommand};

/// allot: a resource-allocation engine for city services.
#[derive(Debug, Parser)]
#[command(name = "allot", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Solve a min-cost flow problem from a DIMACS `.min` file and print the optimal cost as JSON.
    Mcf(cmd::mcf::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Mcf(args) => cmd::mcf::run(&args),
    }
}
