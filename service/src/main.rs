//! `allot`: the command-line interface.

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// The server answers small calls by the tens of thousands a second; mimalloc's thread-local
// free lists cost less per request and response than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// allot: a resource-allocation engine for city services.
#[derive(Debug, Parser)]
#[command(name = "allot", version, about, long_about = None)]
struct Cli {
    /// The data folder: the decision log, keys and stored run inputs live here.
    #[arg(
        long,
        global = true,
        env = "ALLOT_DATA",
        default_value = "./allot-data",
        value_name = "DIR"
    )]
    data: PathBuf,

    #[command(flatten)]
    remote: cmd::api::RemoteArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Appointments(cmd::appointments::AppointmentsArgs),
    Audit(cmd::audit::AuditArgs),
    Fair(cmd::fair::FairArgs),
    /// Solve a min-cost flow problem from a DIMACS `.min` file and print the optimal cost as JSON.
    ///
    /// The file has a problem line `p min NODES ARCS`, node lines `n ID SUPPLY` (positive supply
    /// leaves the node, negative arrives; unlisted nodes have 0) and arc lines
    /// `a SRC DST LOW CAP COST`, with node ids from 1; lines starting with `c` are comments.
    ///
    /// Prints, last, one JSON line:
    /// `{"status":"optimal","cost":N,"solve_seconds":S,"nodes":n,"arcs":m}`, where the time covers
    /// the solve only, not reading the file. An infeasible or unbounded problem, or a malformed
    /// file, exits with status 1 and a message on stderr (for a malformed file: the line and the
    /// field).
    Mcf(cmd::mcf::Args),
    School(cmd::school::SchoolArgs),
    Serve(cmd::serve::ServeArgs),
    /// Simulate a planner scenario (what-if variants of a city) many times in parallel and
    /// compare the variants with the baseline: writes DIR/report.json and a self-contained
    /// DIR/report.html with SVG charts.
    Simulate(cmd::simulate::SimulateArgs),
    Store(cmd::store::StoreArgs),
    Token(cmd::token::TokenArgs),
    Witness(cmd::witness::WitnessArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Appointments(args) => cmd::appointments::run(args, &cli.data, &cli.remote),
        Command::Audit(args) => cmd::audit::run(args, &cli.data, &cli.remote),
        Command::Fair(args) => cmd::fair::run(args, &cli.data, &cli.remote),
        Command::Mcf(args) => cmd::mcf::run(&args),
        Command::School(args) => cmd::school::run(args, &cli.data, &cli.remote),
        Command::Serve(args) => cmd::serve::run(args, &cli.data, &cli.remote),
        Command::Simulate(args) => cmd::simulate::run(args),
        Command::Store(args) => cmd::store::run(args, &cli.data, &cli.remote),
        Command::Token(args) => cmd::token::run(args),
        Command::Witness(args) => cmd::witness::run(args, &cli.data),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
