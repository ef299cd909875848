//! Runs and their later changes, read back from the log.

use std::ops::Range;

use allot_solvers::matching::Seed;

use super::{Allocation, Error, Result, outcome_digest};
use crate::blobs::BlobStore;
use crate::fs::DataDir;
use crate::log::decision::{AllocationRun, Domain, Outcome, PlaceReOffered, Withdrawn};
use crate::log::{
    Decision, DecisionKind, Digest, Entry, Log, LogOptions, RawEntry, Record, Timestamp,
};

/// A run as logged.
#[derive(Debug, Clone)]
pub struct LoggedRun {
    /// The run entry's index.
    pub index: u64,
    pub id: Digest,
    pub run: AllocationRun,
    pub time: Timestamp,
    pub actor: String,
    /// The application window the run allocated.
    pub window: String,
}

impl LoggedRun {
    /// The indices of the run's outcomes: the entries just before the run entry.
    pub fn outcome_range(&self) -> Option<Range<u64>> {
        let start = self.index.checked_sub(self.run.counts.participants)?;
        Some(start..self.index)
    }

    /// A short name: `#INDEX (id PREFIX)`.
    pub fn label(&self) -> String {
        format!("#{} (id {})", self.index, &hex::encode(self.id.0)[..12])
    }
}

/// A change to a run's outcome logged after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The participant gave its place back.
    Withdrawn { participant: String, place: String },
    /// The place `from` gave up (by withdrawing, or by moving to this offer's place itself)
    /// is offered to `participant`, who takes it and leaves its previous place.
    ReOffered {
        participant: String,
        place: String,
        from: String,
    },
}

/// A change with its log index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedChange {
    pub index: u64,
    pub change: Change,
}

/// A run rebuilt from the log: its stored input, its parameters, the re-run (checked to reproduce
/// the logged outcome digest) and the changes logged about it since.
#[derive(Debug)]
pub struct Loaded<A: Allocation> {
    pub run: LoggedRun,
    pub input: A::Input,
    pub params: A::Params,
    pub seed: Option<Seed>,
    pub solved: A::Solved,
    pub changes: Vec<LoggedChange>,
}

fn as_run(entry: Entry) -> Option<LoggedRun> {
    let Record {
        time,
        actor,
        subject,
        decision,
    } = entry.record;
    match decision {
        Decision::AllocationRun(run) => Some(LoggedRun {
            index: entry.index,
            id: run.id(),
            run,
            time,
            actor,
            window: subject,
        }),
        _ => None,
    }
}

/// Entries read back in chunks, newest first, while `visit` returns `None`.
pub(crate) fn scan_back<T>(
    log: &Log,
    end: u64,
    mut visit: impl FnMut(&RawEntry) -> Result<Option<T>>,
) -> Result<Option<T>> {
    const CHUNK: u64 = 4096;
    let mut hi = end.min(log.size());
    while hi > 0 {
        let lo = hi.saturating_sub(CHUNK);
        let chunk = log.entries(lo..hi)?.collect::<Result<Vec<_>, _>>()?;
        for raw in chunk.iter().rev() {
            if let Some(found) = visit(raw)? {
                return Ok(Some(found));
            }
        }
        hi = lo;
    }
    Ok(None)
}

/// Finds a run of `domain`: the latest one, or the one `which` names: the run entry's index, or
/// a prefix (at least 4 hex digits) of its id. A number that is the index of a run of the domain
/// is read as an index.
pub fn find_run(log: &Log, domain: Domain, which: Option<&str>) -> Result<LoggedRun> {
    // "fair", "school": the domain's name in the singular.
    let what = domain.name().to_lowercase();
    let what = what.trim_end_matches('s');
    let Some(which) = which else {
        let found = scan_back(log, log.size(), |raw| {
            if raw.kind() != Some(DecisionKind::ALLOCATION_RUN) {
                return Ok(None);
            }
            Ok(as_run(raw.decode()?).filter(|r| r.run.domain == domain))
        })?;
        return found.ok_or_else(|| {
            Error::Request(format!(
                "the decision log in {} has no {what} run yet",
                log.dir().display()
            ))
        });
    };
    let which = which.trim();
    if let Ok(index) = which.parse::<u64>()
        && index < log.size()
        && let Some(run) = as_run(log.entry(index)?)
        && run.run.domain == domain
    {
        return Ok(run);
    }
    let prefix = which.to_ascii_lowercase();
    if prefix.len() < 4 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Request(format!(
            "no {what} run is entry {which}; name a run by its entry index or by at least 4 hex \
             digits of its id"
        )));
    }
    let mut found: Vec<LoggedRun> = Vec::new();
    for raw in log.entries(0..log.size())? {
        let raw = raw?;
        if raw.kind() != Some(DecisionKind::ALLOCATION_RUN) {
            continue;
        }
        if let Some(run) = as_run(raw.decode()?)
            && run.run.domain == domain
            && hex::encode(run.id.0).starts_with(&prefix)
        {
            found.push(run);
        }
    }
    // A run logged again with the same content (the same window, parameters and seed) is the
    // same run: its id names the first, which later changes name too.
    let same = found.windows(2).all(|pair| pair[0].id == pair[1].id);
    match found.len() {
        0 => Err(Error::Request(format!(
            "no {what} run has an id starting with {prefix}"
        ))),
        _ if same => Ok(found.remove(0)),
        n => Err(Error::Request(format!(
            "{n} {what} runs have an id starting with {prefix} (entries {}); give more digits",
            found
                .iter()
                .map(|r| r.index.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The run's logged outcomes (participant, outcome), checked to name the run.
pub(crate) fn logged_outcomes(log: &Log, run: &LoggedRun) -> Result<Vec<(String, Outcome)>> {
    let range = run.outcome_range().ok_or_else(|| {
        Error::Request(format!(
            "run {} claims {} outcomes but only {} entries precede it",
            run.label(),
            run.run.counts.participants,
            run.index
        ))
    })?;
    let mut out = Vec::with_capacity(range.clone().count());
    for raw in log.entries(range)? {
        let entry = raw?.decode()?;
        match entry.record.decision {
            Decision::Outcome(o) if o.run == run.id => out.push((entry.record.subject, o)),
            other => {
                return Err(Error::Request(format!(
                    "entry {} before run {} is {} rather than one of its outcomes",
                    entry.index,
                    run.label(),
                    other.name()
                )));
            }
        }
    }
    Ok(out)
}

/// The withdrawals and re-offers logged about `run` after it, in log order.
pub(crate) fn changes(log: &Log, run: &LoggedRun) -> Result<Vec<LoggedChange>> {
    let mut out = Vec::new();
    for raw in log.entries(run.index + 1..log.size())? {
        let raw = raw?;
        let kind = raw.kind();
        if kind != Some(DecisionKind::WITHDRAWN) && kind != Some(DecisionKind::PLACE_RE_OFFERED) {
            continue;
        }
        let entry = raw.decode()?;
        let change = match entry.record.decision {
            Decision::Withdrawn(w) if w.run == run.id && w.domain == run.run.domain => {
                Change::Withdrawn {
                    participant: entry.record.subject,
                    place: w.place,
                }
            }
            Decision::PlaceReOffered(r) if r.run == run.id && r.domain == run.run.domain => {
                Change::ReOffered {
                    participant: entry.record.subject,
                    place: r.place,
                    from: r.from,
                }
            }
            _ => continue,
        };
        out.push(LoggedChange {
            index: entry.index,
            change,
        });
    }
    Ok(out)
}

/// The stored input of a run, checked against its digest and decoded.
pub(crate) fn stored_input<A: Allocation>(log: &Log, run: &AllocationRun) -> Result<A::Input> {
    let bytes = BlobStore::of_log(log).get(&run.input_digest)?;
    A::decode(&bytes).map_err(|problem| Error::StoredInput {
        digest: run.input_digest,
        problem,
    })
}

/// Rebuilds a run's state from the log in `data_dir` (see the module docs). `which`: as for
/// [`find_run`]; `None` is the latest run of the domain.
pub fn load<A: Allocation>(data_dir: impl Into<DataDir>, which: Option<&str>) -> Result<Loaded<A>> {
    let log = Log::open_read_only(data_dir)?;
    load_with_log::<A>(&log, which)
}

/// [`load`] on a log the caller holds open (a server shares one log between its domains).
pub fn load_with_log<A: Allocation>(log: &Log, which: Option<&str>) -> Result<Loaded<A>> {
    let run = find_run(log, A::DOMAIN, which)?;
    let input = stored_input::<A>(log, &run.run)?;
    let params = A::params_from(&run.run.mechanism, &run.run.parameters)?;
    let seed = run.run.seed.map(|d| Seed(d.0));
    let solved = A::solve(&input, &params, seed.as_ref())?;
    let digest = outcome_digest(A::DOMAIN, &A::placements(&input, &solved));
    if digest != run.run.outcome_digest {
        return Err(Error::Request(format!(
            "run {} does not reproduce from its stored input: outcome digest {digest}, logged {}; \
             run `verify` for details",
            run.label(),
            run.run.outcome_digest
        )));
    }
    let changes = changes(log, &run)?;
    Ok(Loaded {
        run,
        input,
        params,
        seed,
        solved,
        changes,
    })
}

/// Changes a run's outcome: loads its state (see [`load`]), asks `decide` for the changes, and
/// logs them as one all-or-nothing batch. The log's writer lock is held from before the state is
/// read until the changes are durable, so two changes never build on the same state (a second
/// process fails with the lock's error instead). Returns the changes with their indices.
pub fn change<A: Allocation>(
    data_dir: impl Into<DataDir>,
    which: Option<&str>,
    actor: &str,
    decide: impl FnOnce(&Loaded<A>) -> Result<Vec<Change>>,
) -> Result<(LoggedRun, Vec<LoggedChange>)> {
    let log = Log::open(data_dir, LogOptions::default())?;
    let loaded = load_with_log::<A>(&log, which)?;
    let out = change_loaded(&log, &loaded, actor, decide)?;
    log.close()?;
    Ok(out)
}

/// [`change`] on a run the caller loaded from a log it holds open, logging to that log. The
/// caller keeps two changes from building on the same state (a server holds a lock per domain
/// from before it loads until this returns).
pub fn change_loaded<A: Allocation>(
    log: &Log,
    loaded: &Loaded<A>,
    actor: &str,
    decide: impl FnOnce(&Loaded<A>) -> Result<Vec<Change>>,
) -> Result<(LoggedRun, Vec<LoggedChange>)> {
    let changes = decide(loaded)?;
    let time = Timestamp::now();
    let run = &loaded.run;
    let domain = run.run.domain;
    let records: Vec<Record> = changes
        .iter()
        .map(|change| match change {
            Change::Withdrawn { participant, place } => Record::new(
                time,
                actor,
                participant,
                Withdrawn {
                    domain,
                    run: run.id,
                    place: place.clone(),
                },
            ),
            Change::ReOffered {
                participant,
                place,
                from,
            } => Record::new(
                time,
                actor,
                participant,
                PlaceReOffered {
                    domain,
                    run: run.id,
                    place: place.clone(),
                    from: from.clone(),
                },
            ),
        })
        .collect();
    let range = log.append_batch(&records)?;
    let logged = range
        .zip(changes)
        .map(|(index, change)| LoggedChange { index, change })
        .collect();
    Ok((loaded.run.clone(), logged))
}
