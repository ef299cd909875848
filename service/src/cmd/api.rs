//! How a command reaches the API: in this process over the data folder (the default), or a
//! running `allot serve` (`--server URL --token T`, env `ALLOT_SERVER`, `ALLOT_TOKEN`), through
//! one [`Session`]. Either way a command makes the same calls and prints the answers with the
//! same code; in process, errors name a request field by its flag.

use std::path::{Path, PathBuf};

use allot_service::rpc::session::Server;
pub use allot_service::rpc::session::{FieldName as Flag, Folder as Local, Session};
use anyhow::{Result, bail};
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct RemoteArgs {
    /// Ask the allot server at URL (`http://HOST:PORT`, `https://HOST:PORT` for TLS) instead of
    /// working on the data folder. Commands that only work on the folder say so.
    #[arg(long, global = true, env = "ALLOT_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// The bearer token for --server (see `allot token new`).
    #[arg(
        long,
        global = true,
        env = "ALLOT_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// A PEM CA certificate to trust for an https:// server (default: the system's roots).
    #[arg(long, global = true, env = "ALLOT_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// The log's signing key, when it is kept outside the data folder: commands that write the
    /// folder (and `serve`, unless its configuration names one) need it.
    #[arg(
        long,
        global = true,
        env = "ALLOT_SIGNING_KEY_FILE",
        value_name = "FILE"
    )]
    pub signing_key: Option<PathBuf>,
}

impl RemoteArgs {
    /// Fails for a command that works only on the data folder when --server is given.
    pub fn refuse(&self, why: &str) -> Result<()> {
        if self.server.is_some() {
            bail!("{why}: leave out --server (and ALLOT_SERVER)");
        }
        Ok(())
    }
}

/// The server of --server, else the data folder in process, as `local` says; prints what
/// opening the folder noticed.
pub fn open(remote: &RemoteArgs, data: &Path, local: Local<'_>) -> Result<Session> {
    Ok(match &remote.server {
        Some(url) => Session::remote(Server {
            url,
            token: remote.token.as_deref(),
            ca_cert: remote.ca_cert.as_deref(),
        })?,
        None => {
            let key = remote.signing_key.as_deref();
            let key = key.map(allot_service::keys::read_signing_key).transpose()?;
            let local = Local {
                signing_key: key.as_ref(),
                ..local
            };
            let (session, notes) = Session::in_process(data, local)?;
            notes.iter().for_each(|note| eprintln!("{note}"));
            session
        }
    })
}
