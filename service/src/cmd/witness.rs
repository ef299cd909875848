//! `allot witness serve`: a c2sp.org/tlog-witness witness for any log in the C2SP formats.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use allot_engine::log::VerifierKey;
use allot_engine::witness::Witness;
use anyhow::{Context, Result};
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
    /// in the data folder. Prints `witness KEY` (its verifier key, for logs' and clients'
    /// policies) and `listening on URL`; SIGTERM or SIGINT stops it.
    Serve {
        #[arg(long, default_value = "127.0.0.1:7380", value_name = "ADDR")]
        listen: SocketAddr,
        /// The witness's name, for a new key (e.g. witness.example.org/w1).
        #[arg(long, default_value = "allot.local/witness", value_name = "NAME")]
        name: String,
        /// A log it cosigns for: its verifier key (`NAME+ID+KEY`, the name being the log's
        /// origin) or a file holding one. Repeat for more logs.
        #[arg(long = "log-key", value_name = "KEY|FILE", required = true)]
        log_keys: Vec<String>,
    },
}

/// A verifier key given as its text or as a file holding it.
pub fn verifier_key_arg(arg: &str) -> Result<VerifierKey> {
    let text = match VerifierKey::parse(arg) {
        Ok(key) => return Ok(key),
        Err(_) if Path::new(arg).is_file() => {
            std::fs::read_to_string(arg).with_context(|| format!("reading {arg}"))?
        }
        Err(e) => return Err(e).with_context(|| format!("{arg:?} is neither a key nor a file")),
    };
    VerifierKey::parse(text.trim()).with_context(|| format!("the key in {arg}"))
}

pub fn run(args: WitnessArgs, data: &Path) -> Result<()> {
    let WitnessCommand::Serve {
        listen,
        name,
        log_keys,
    } = args.command;
    super::serve::init_logs(super::serve::LogFormat::Text);
    let keys = log_keys
        .iter()
        .map(|k| verifier_key_arg(k))
        .collect::<Result<Vec<_>>>()?;
    let witness = Arc::new(
        Witness::open(data, &name, &keys)
            .with_context(|| format!("opening the witness in {}", data.display()))?,
    );
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let stop = super::serve::StopSignal::listen()?;
        let (listener, addr) = allot_service::witness::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "witness {}", witness.verifier().to_text())?;
        writeln!(out, "listening on http://{addr}")?;
        out.flush()?;
        drop(out);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let served = tokio::spawn(allot_service::witness::serve(witness, listener, stop_rx));
        stop.received().await;
        let _ = stop_tx.send(true);
        served.await?.context("serving")
    })
}
