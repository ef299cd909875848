//! `allot witness serve`: a c2sp.org/tlog-witness witness for any log in the C2SP formats.

use std::net::SocketAddr;
use std::path::Path;

use allot_service::keys::log_key_arg;
use anyhow::{Result, anyhow};
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
#[command(about = "Run a transparency-log witness (c2sp.org/tlog-witness)")]
pub struct WitnessArgs {
    #[command(subcommand)]
    command: WitnessCommand,
}

#[derive(Debug, Subcommand)]
enum WitnessCommand {
    /// Serve `POST /add-checkpoint`: cosign each checkpoint consistent with the last one cosigned
    /// for its log. Its key (`DATA/witness.key`, made on first start) and its per-log state live
    /// in the data folder (give it its own). Prints `witness KEY` (its verifier key, for logs'
    /// and clients' policies) and `listening on URL`; SIGTERM or SIGINT stops it.
    Serve {
        #[arg(long, default_value = "127.0.0.1:7380", value_name = "ADDR")]
        listen: SocketAddr,
        /// The witness's name, for a new key (e.g. witness.example.org/w1).
        #[arg(long, default_value = "allot.local/witness", value_name = "NAME")]
        name: String,
        /// A log it cosigns for: its verifier key (`NAME+ID+KEY`, the name being the log's
        /// origin), `ORIGIN KEY` for a log whose origin differs from its key's name, or a file
        /// holding either. Repeat for more logs.
        #[arg(long = "log-key", value_name = "KEY|FILE", required = true)]
        log_keys: Vec<String>,
    },
}

pub fn run(args: WitnessArgs, data: &Path) -> Result<()> {
    let WitnessCommand::Serve {
        listen,
        name,
        log_keys,
    } = args.command;
    let keys: Vec<_> = log_keys
        .iter()
        .map(|k| log_key_arg(k))
        .collect::<Result<_, _>>()?;
    allot_service::witness::run(data, &name, &keys, listen).map_err(|e| anyhow!(e))
}
