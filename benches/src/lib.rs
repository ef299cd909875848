//! Shared helpers for allot's criterion benchmarks and side-by-side runners (see `benches/README.md`).

pub mod appointments;

/// The median of `xs` (the upper one of an even count); `xs` must not be empty.
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// LEMON's `NetworkSimplex` on one DIMACS file, through the anchors' runner (`lemon_mcf`, built
/// by `../shared/anchors/setup.sh`).
#[derive(Debug)]
pub struct Lemon(std::path::PathBuf);

impl Lemon {
    /// The runner at `path`, or by default `~/.cache/allot-anchors/lemon_mcf`.
    pub fn new(path: Option<std::path::PathBuf>) -> anyhow::Result<Lemon> {
        use anyhow::Context;
        let path = match path {
            Some(path) => path,
            None => std::path::PathBuf::from(std::env::var("HOME").context("HOME is not set")?)
                .join(".cache/allot-anchors/lemon_mcf"),
        };
        Ok(Lemon(path))
    }

    /// Solves `file`: the optimal cost and LEMON's own solve time in seconds (parsing excluded).
    pub fn solve(&self, file: &std::path::Path) -> anyhow::Result<(i64, f64)> {
        use anyhow::Context;
        let out = std::process::Command::new(&self.0)
            .arg(file)
            .arg("ns")
            .output()
            .with_context(|| format!("running {}", self.0.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let fields: Vec<&str> = text.split_whitespace().collect();
        let (Some(cost), Some(secs)) = (fields.get(1), fields.get(2)) else {
            anyhow::bail!("unexpected output from {}: {text}", self.0.display());
        };
        Ok((cost.parse()?, secs.parse()?))
    }
}

/// A server on an ephemeral loopback port with one token of every role (as `name`), over `log`
/// with `domains`, started on `runtime`: the in-process server of the load generators.
pub fn start_server(
    runtime: &tokio::runtime::Runtime,
    log: std::sync::Arc<allot_engine::log::Log>,
    domains: allot_service::server::Domains,
    (token, name): (&str, &str),
    tweak: impl FnOnce(&mut allot_service::server::ServerConfig),
) -> anyhow::Result<allot_service::server::ServerHandle> {
    start_replica_server(runtime, log, domains, None, (token, name), tweak)
}

/// [`start_server`] for a replica of a PostgreSQL store (`replication`).
pub fn start_replica_server(
    runtime: &tokio::runtime::Runtime,
    log: std::sync::Arc<allot_engine::log::Log>,
    domains: allot_service::server::Domains,
    replication: Option<std::sync::Arc<allot_service::server::replica::Replication>>,
    (token, name): (&str, &str),
    tweak: impl FnOnce(&mut allot_service::server::ServerConfig),
) -> anyhow::Result<allot_service::server::ServerHandle> {
    use allot_service::server::access::Roles;
    use allot_service::server::config::{Caller, ServerConfig};
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse()?,
        ..ServerConfig::default()
    };
    let caller = Caller {
        name: name.into(),
        roles: Roles::ALL,
    };
    config.tokens.insert_token(token, caller);
    tweak(&mut config);
    let started = allot_service::server::start_replica(config, log, domains, replication);
    Ok(runtime.block_on(started)?)
}
pub mod calls;
pub mod latency;
pub mod mcf_gen;
pub mod school_csv;
pub mod witnesses;

pub mod log {
    //! Decision-log fixtures.

    use std::path::Path;

    use allot_engine::log::decision::SlotBooked;
    use allot_engine::log::{Log, LogOptions, Record, Timestamp};

    /// A booking decision whose canonical entry is `size` bytes (at least about 110).
    pub fn record(n: u64, size: usize) -> Record {
        let base = Record::new(
            // Within one day from 2025-03-01, whatever `n` is.
            Timestamp::from_unix_micros(1_740_787_200_000_000 + n % 86_400_000_000),
            "umias",
            format!("patient-{n:012}"),
            SlotBooked {
                slot: format!("clinic-0421/dr-0177/2025-03-01T09:30/{n:012}"),
                appointment: format!("appt-{n:012}"),
                hold: Some(String::new()),
            },
        );
        let short = base.encode(n).map(|b| b.len()).unwrap_or(size);
        let mut record = base;
        if let allot_engine::log::Decision::SlotBooked(b) = &mut record.decision {
            b.hold = Some("h".repeat(size.saturating_sub(short)));
        }
        record
    }

    /// A log of `entries` records of `size` bytes in `dir`, appended in batches (quick to make).
    pub fn fill(dir: &Path, entries: u64, size: usize) -> Log {
        let log = Log::open(dir, LogOptions::default()).expect("open the log");
        let mut next = log.size();
        while next < entries {
            let end = (next + 10_000).min(entries);
            let batch: Vec<Record> = (next..end).map(|n| record(n, size)).collect();
            log.append_batch(&batch).expect("append");
            next = end;
        }
        log
    }
}
