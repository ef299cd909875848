//! One API for a command-line tool or a script, blocking: calls made in this process over a data
//! folder ([`Folder`]), or to a running `allot serve`. Either way the caller makes the same calls
//! and reads the same answers; only errors read differently: in process a request field is
//! named by what the caller calls it (a command-line flag: `--slot: ...`), from a server by its
//! request path (`the server answered NOT_FOUND: request.slot_id: ...`).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use allot_engine::appointments::{LocalTime, ManualClock};
use allot_engine::log::{self, Log, LogOptions, OpenReport, Timestamp};
use tonic_types::StatusExt as _;

use super::client::{self, Api, Bearer, ConnectError};
use crate::server::Domains;
use crate::server::local::InProcess;
use crate::server::metrics::code_name;

/// What a session in process needs of the data folder.
#[derive(Debug, Clone, Copy)]
pub struct Folder<'a> {
    /// Take the folder's writer lock (to log decisions); otherwise the folder is read without
    /// it, and works while a server writes.
    pub write: bool,
    /// Who asks: the decisions' actor.
    pub actor: &'a str,
    /// Rebuild the appointment inventory, on a clock stopped at this local time, or at the real
    /// time.
    pub appointments: Option<Option<LocalTime>>,
    /// The log's signing key, when kept outside the data folder.
    pub signing_key: Option<&'a log::SigningKey>,
}

impl<'a> Folder<'a> {
    pub const READ: Folder<'static> = Folder {
        write: false,
        actor: "cli",
        appointments: None,
        signing_key: None,
    };

    /// A session that logs decisions as `actor`.
    pub fn write(actor: &'a str) -> Folder<'a> {
        Folder {
            write: true,
            actor,
            appointments: None,
            signing_key: None,
        }
    }
}

/// A running server.
#[derive(Debug, Clone, Copy)]
pub struct Server<'a> {
    /// `http://HOST:PORT`, or `https://` for TLS.
    pub url: &'a str,
    pub token: Option<&'a str>,
    /// A PEM CA certificate to trust for https (default: the system's roots).
    pub ca_cert: Option<&'a Path>,
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("reading {}: {source}", path.display())]
    CaCert {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Log(#[from] log::Error),
    #[error(transparent)]
    Appointments(#[from] allot_engine::appointments::Error),
}

impl OpenError {
    /// Whether another process holds the data folder's writer lock.
    pub fn is_locked(&self) -> bool {
        matches!(self, OpenError::Log(log::Error::Locked { .. }))
    }
}

/// A call that failed, as the session's caller reports it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CallError(pub String);

/// A request field's path and what the caller calls it (`""`: a positional argument, whose
/// problem reads without a name).
pub type FieldName = (&'static str, &'static str);

/// The API for one command.
#[allow(missing_debug_implementations)] // the runtime has nothing worth showing
pub struct Session {
    runtime: tokio::runtime::Runtime,
    api: Api,
    /// The service in this process; `None` on a server.
    local: Option<InProcess>,
    names: &'static [FieldName],
    /// What else to say about a failed call (a taken slot's alternatives).
    detail: fn(&tonic::Status) -> Option<String>,
}

impl Session {
    /// A session on a server.
    pub fn remote(server: Server<'_>) -> Result<Session, OpenError> {
        let runtime = runtime()?;
        let ca = match server.ca_cert {
            Some(path) => Some(std::fs::read(path).map_err(|source| OpenError::CaCert {
                path: path.to_owned(),
                source,
            })?),
            None => None,
        };
        let channel = runtime.block_on(client::connect(server.url, ca.as_deref()))?;
        let bearer = Bearer::new(server.token)?;
        Ok(Session::new(
            runtime,
            Api::new(client::over_network(channel, bearer)),
            None,
        ))
    }

    /// A session in this process over the data folder `data`, and what opening it noticed
    /// (a torn tail recovered, derived data rebuilt, warnings) for the caller to show.
    pub fn in_process(
        data: &Path,
        folder: Folder<'_>,
    ) -> Result<(Session, Vec<String>), OpenError> {
        let runtime = runtime()?;
        let log = if folder.write {
            let options = LogOptions {
                signing_key: folder.signing_key.cloned(),
                ..LogOptions::default()
            };
            Log::open(data, options)?
        } else {
            Log::open_read_only(data)?
        };
        let mut notes = open_notes(log.report());
        let log = Arc::new(log);
        let domains = match folder.appointments {
            None => Domains::default(),
            Some(now) => {
                // A clock that does not advance during one command.
                let clock = Arc::new(ManualClock::new(Timestamp::now()));
                let (domains, warnings) = Domains::open_with(&log, clock.clone())?;
                notes.extend(warnings.into_iter().map(|w| format!("warning: {w}")));
                if let (Some(t), Some(engine)) = (now, &domains.appointments) {
                    clock.set(t.to_timestamp(&engine.schedule().zone));
                }
                domains
            }
        };
        let local = InProcess::new(log, domains, folder.actor);
        let api = local.api().clone();
        Ok((Session::new(runtime, api, Some(local)), notes))
    }

    fn new(runtime: tokio::runtime::Runtime, api: Api, local: Option<InProcess>) -> Session {
        Session {
            runtime,
            api,
            local,
            names: &[],
            detail: |_| None,
        }
    }

    /// Names request fields in errors (in process) as the caller calls them.
    pub fn names(mut self, names: &'static [FieldName]) -> Self {
        self.names = names;
        self
    }

    /// Adds what `detail` says about a failed call to its error.
    pub fn detail(mut self, detail: fn(&tonic::Status) -> Option<String>) -> Self {
        self.detail = detail;
        self
    }

    pub fn api(&self) -> &Api {
        &self.api
    }

    /// Whether the calls go to a server.
    pub fn is_remote(&self) -> bool {
        self.local.is_none()
    }

    /// The in-process log (`None` on a server).
    pub fn log(&self) -> Option<&Arc<Log>> {
        self.local.as_ref().map(InProcess::log)
    }

    /// Runs a call to its answer, or its error as the caller reports it.
    pub fn call<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, CallError> {
        self.runtime
            .block_on(call)
            .map(tonic::Response::into_inner)
            .map_err(|status| self.error(status))
    }

    /// Runs calls that answer `Result<T, Status>` (a domain's glue) to their answer or error.
    pub fn answer<T>(
        &self,
        calls: impl Future<Output = Result<T, tonic::Status>>,
    ) -> Result<T, CallError> {
        self.runtime
            .block_on(calls)
            .map_err(|status| self.error(status))
    }

    /// Runs any future (a stream's reading) on the session's runtime.
    pub fn run<T>(&self, work: impl Future<Output = T>) -> T {
        self.runtime.block_on(work)
    }

    /// A failed call as the caller reports it.
    pub fn error(&self, status: tonic::Status) -> CallError {
        let mut text = if self.is_remote() {
            format!(
                "the server answered {}: {}",
                code_name(status.code()),
                status.message()
            )
        } else {
            self.local_message(&status)
        };
        if let Some(more) = (self.detail)(&status) {
            text.push_str(&more);
        }
        CallError(text)
    }

    /// The message with its request field named as the caller calls it.
    fn local_message(&self, status: &tonic::Status) -> String {
        let violation = status
            .get_details_bad_request()
            .and_then(|b| b.field_violations.into_iter().next());
        let Some(v) = violation else {
            return status.message().to_owned();
        };
        let name = (self.names.iter())
            .filter(|(path, _)| v.field.starts_with(path))
            .max_by_key(|(path, _)| path.len());
        match name {
            Some((_, "")) => v.description,
            Some((_, name)) => format!("{name}: {}", v.description),
            None => status.message().to_owned(),
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, OpenError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(OpenError::Runtime)
}

/// What opening a log noticed, one line each (`note: ...`, `warning: ...`): `allot serve` logs
/// them, the CLI prints them.
pub fn open_notes(report: &OpenReport) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(torn) = &report.torn_tail {
        notes.push(format!("note: {torn}"));
    }
    if let Some(why) = &report.derived_rebuilt {
        notes.push(format!(
            "note: derived data rebuilt from the segments: {why}"
        ));
    }
    notes.extend(report.warnings.iter().map(|w| format!("warning: {w}")));
    notes
}
