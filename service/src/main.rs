//! `allot`: the command-line interface.

use clap::{Parser, Subcommand};

/// allot: a resource-allocation engine for city services.
#[derive(Debug, Parser)]
#[command(name = "allot", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {}
}
