//! Remote mode: the global `--server URL --token T` options (env `ALLOT_SERVER`, `ALLOT_TOKEN`)
//! under which a command asks a running `allot serve` instead of reading the data folder, and
//! prints exactly what it prints locally.
//!
//! A command supports remote mode by taking `Option<&Remote>` and, when it is set, making its
//! calls with a client from here (`remote.block_on(remote.audit().get_entry(...))`), then
//! handing the answer to the same printing code as the local path.

use std::path::PathBuf;

use allot_service::proto::v1::appointments_client::AppointmentsClient;
use allot_service::proto::v1::audit_client::AuditClient;
use allot_service::proto::v1::fairs_client::FairsClient;
use allot_service::proto::v1::schools_client::SchoolsClient;
use allot_service::rpc::client::{self, Authorized, Bearer};
use anyhow::{Context, Result};
use clap::Args;
use tonic::transport::Channel;

#[derive(Debug, Clone, Args)]
pub struct RemoteArgs {
    /// Ask the allot server at URL (`http://HOST:PORT`, `https://HOST:PORT` for TLS) instead of
    /// reading the data folder. Commands that only work on the folder say so.
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
}

impl RemoteArgs {
    /// The connection to use, if `--server` was given.
    pub fn connect(&self) -> Result<Option<Remote>> {
        let Some(url) = &self.server else {
            return Ok(None);
        };
        let ca = match &self.ca_cert {
            Some(path) => {
                Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
            }
            None => None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let channel = runtime.block_on(client::connect(url, ca.as_deref()))?;
        let bearer = Bearer::new(self.token.as_deref())?;
        Ok(Some(Remote {
            runtime,
            channel,
            bearer,
        }))
    }
}

/// A connection to a server.
#[derive(Debug)]
pub struct Remote {
    runtime: tokio::runtime::Runtime,
    channel: Channel,
    bearer: Bearer,
}

impl Remote {
    /// Runs a call (or several) to completion, turning a gRPC error into one line:
    /// `the server answered NOT_FOUND: ...`.
    pub fn block_on<T>(&self, call: impl Future<Output = Result<T, tonic::Status>>) -> Result<T> {
        self.runtime.block_on(call).map_err(status_error)
    }

    /// Runs any future on the connection's runtime (for streams).
    pub fn run<T>(&self, work: impl Future<Output = T>) -> T {
        self.runtime.block_on(work)
    }

    pub fn audit(&self) -> AuditClient<Authorized> {
        client::audit(self.channel.clone(), self.bearer.clone())
    }

    pub fn appointments(&self) -> AppointmentsClient<Authorized> {
        client::appointments(self.channel.clone(), self.bearer.clone())
    }

    pub fn fairs(&self) -> FairsClient<Authorized> {
        client::fairs(self.channel.clone(), self.bearer.clone())
    }

    pub fn schools(&self) -> SchoolsClient<Authorized> {
        client::schools(self.channel.clone(), self.bearer.clone())
    }
}

/// A gRPC status as an error for the CLI.
pub fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(
        "the server answered {}: {}",
        allot_service::server::metrics::code_name(status.code()),
        status.message()
    )
}
