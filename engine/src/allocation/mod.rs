//! Allocation runs, shared by the fair and school domains: closing an application window, the
//! verifiable lottery seed, logging a run with every outcome, publishing the output folder,
//! re-running a logged run ([`verify()`]), the state rebuilt from the log ([`load`]) and Monte
//! Carlo draws for planners ([`monte_carlo`]).
//!
//! A domain plugs in by implementing [`Allocation`]: its validated input in canonical form, its
//! parameters, and a deterministic `solve`. Everything that touches the log, the blob store and
//! the output folder is here, once.
//!
//! # The run protocol ([`run`])
//!
//! 1. The domain reads and validates its files. Bad input stops here: nothing is written, nothing
//!    is logged (the log is not even opened).
//! 2. The request is checked: lottery numbers come either from the input or from a beacon value,
//!    never both and never neither; the output folder must not exist yet (or be empty).
//! 3. The application set is encoded canonically ([`Allocation::encode`]: sorted by id, so the
//!    file order does not matter) and stored in the [`BlobStore`](crate::blobs::BlobStore); its
//!    SHA-256 is the *set digest*, which is also the run's `input_digest`.
//! 4. **Closing the window**: `ApplicationsClosed { domain, applications, set_digest }` is
//!    appended and durable *before* any lottery number exists: the commitment.
//! 5. When the numbers are drawn: `seed = SHA-256(set_digest || beacon value)` ([`lottery_seed`]),
//!    logged as `SeedDrawn`. Nobody can choose the seed: the set was fixed before the beacon value
//!    was known, and the beacon value is public.
//! 6. The domain solves on the canonical input (so a re-run from the stored blob sees exactly the
//!    same instance).
//! 7. The output files are written into a temporary sibling of the output folder.
//! 8. **One all-or-nothing batch**: one `Outcome` per participant, in canonical (id) order, then
//!    the `AllocationRun` last. Its `outcome_digest` is [`outcome_digest`] of the placements;
//!    outcomes name the run by [`AllocationRun::id`]. Putting the run last lets a reader that
//!    scans back from the end of the log meet a run before its outcomes, which then are exactly
//!    the `counts.participants` entries before it.
//! 9. `summary.json` (with the run's index and id) is added and the folder renamed into place.
//!
//! A crash or an error leaves no output folder (the temporary one is removed) and either the whole
//! run batch or none of it; a window closed (and a seed drawn) without a run is harmless: the
//! next run closes again.
//!
//! # Canonical outcome encoding ([`outcome_digest`])
//!
//! With the log's codec (integers big-endian, strings with a `u32` length, options a `0`/`1`
//! tag): the bytes `allot/outcome/v1`, the domain code (`u8`), the number of participants
//! (`u32`), then per participant in id order: participant `str`, place `Option<str>`, rank
//! `Option<u32>`, detail `Option<str>` (the fair's stall pool category; none for schools).
//!
//! # State rebuilt from the log
//!
//! [`load`] finds a run (the latest of its domain, or one named by index or id prefix), re-runs it
//! from its stored input and logged seed and parameters, checks that the re-run reproduces the
//! logged outcome digest, and collects the `Withdrawn` and `PlaceReOffered` decisions logged
//! about that run since: the domain replays them on the re-run's outcome to get the current
//! assignment.

pub(crate) mod applications;
pub(crate) mod canonical;
mod montecarlo;
mod output;
mod reoffer;
mod state;
mod verify;

pub use montecarlo::{Comparison, Distribution, Lottery, draw_seed, monte_carlo};
pub use output::OutputDir;
pub use reoffer::{Holdings, Vacancies, give_back, waitlist};
pub use state::{
    Change, Loaded, LoggedChange, LoggedRun, change, change_loaded, find_run, load, load_with_log,
};
pub use verify::{Check, Verification, verify, verify_with_log};

use std::path::{Path, PathBuf};
use std::time::Instant;

use allot_solvers::matching::Seed;
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use crate::blobs::BlobStore;
use crate::input::InputError;
use crate::log::codec::Writer;
use crate::log::decision::{
    AllocationRun, ApplicationsClosed, Domain, Outcome, RunCounts, SeedDrawn,
};
use crate::log::{self, Bytes, Digest, Log, Parameters, Record, Timestamp};

/// Why an allocation could not be run, verified, explained or changed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: the file, line and field.
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Log(#[from] log::Error),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A request that cannot be served as asked (no lottery and no beacon, an existing output
    /// folder, an unknown run or participant, ...).
    #[error("{0}")]
    Request(String),
    /// A mechanism cannot run on this input with these parameters.
    #[error("{0}")]
    Unsupported(String),
    /// A stored input blob that is not a canonical input of its domain.
    #[error("stored input {digest}: {problem}")]
    StoredInput { digest: Digest, problem: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.to_owned();
        move |source| Error::Io { what, path, source }
    }
}

/// One participant's result, as published and logged: the place (a fair, a school), the 1-based
/// rank of that place in the participant's list, and a detail inside the place (a fair's stall
/// pool category) that is part of the outcome digest but not of the logged `Outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement<'a> {
    pub participant: &'a str,
    pub place: Option<&'a str>,
    pub rank: Option<u32>,
    pub detail: Option<&'a str>,
}

/// A domain's allocation, as the shared run layer needs it.
pub trait Allocation {
    const DOMAIN: Domain;
    /// The validated input in canonical form: participants sorted by id.
    type Input: Send + Sync;
    type Params: Clone + Send + Sync;
    /// A solved instance: the assignment and whatever the domain publishes and explains with.
    type Solved: Send + Sync;

    /// The canonical bytes of the application set (documented by each domain).
    fn encode(input: &Self::Input) -> Vec<u8>;
    /// The inverse of [`Allocation::encode`]; anything else is an error (never a panic).
    fn decode(bytes: &[u8]) -> Result<Self::Input, String>;
    fn participants(input: &Self::Input) -> usize;
    /// Places to give (stalls, seats).
    fn places(input: &Self::Input) -> u64;
    /// Whether the lottery numbers are drawn from a seed (else the input carries them). An error
    /// when the parameters cannot work with this input (e.g. multiple tie-breaking needs drawn
    /// numbers).
    fn draws_lottery(input: &Self::Input, params: &Self::Params) -> Result<bool>;
    fn mechanism(params: &Self::Params) -> &'static str;
    /// The parameters as logged (everything but the mechanism).
    fn parameters(params: &Self::Params) -> Parameters;
    /// The inverse of [`Allocation::mechanism`] and [`Allocation::parameters`].
    fn params_from(mechanism: &str, parameters: &Parameters) -> Result<Self::Params>;
    /// Solves deterministically. `seed`: draw the lottery numbers from it (ignoring any in the
    /// input); `None`: use the input's numbers.
    fn solve(
        input: &Self::Input,
        params: &Self::Params,
        seed: Option<&Seed>,
    ) -> Result<Self::Solved>;
    /// Participant `i`'s placement (`i` in canonical order, below [`Allocation::participants`]).
    fn placement<'a>(input: &'a Self::Input, solved: &'a Self::Solved, i: u32) -> Placement<'a>;

    /// Every participant's placement, in canonical (id) order.
    fn placements<'a>(input: &'a Self::Input, solved: &'a Self::Solved) -> Vec<Placement<'a>> {
        (0..Self::participants(input) as u32)
            .map(|i| Self::placement(input, solved, i))
            .collect()
    }
}

/// A public randomness beacon's value, published after the application window closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beacon {
    /// Who published it (e.g. `drand/quicknet`, `nist`).
    pub source: String,
    pub round: u64,
    pub value: Vec<u8>,
}

/// The lottery seed of a closed application set: SHA-256(set digest || beacon value).
pub fn lottery_seed(set_digest: &Digest, beacon_value: &[u8]) -> Seed {
    let mut hash = Sha256::new();
    hash.update(set_digest.0);
    hash.update(beacon_value);
    Seed(hash.finalize().into())
}

/// The digest of the canonical outcome encoding (module docs) of `placements`, which must be in
/// canonical order.
pub fn outcome_digest(domain: Domain, placements: &[Placement<'_>]) -> Digest {
    let mut w = Writer::with_capacity(32 + placements.len() * 24);
    w.bytes(b"allot/outcome/v1");
    w.u8(domain.code());
    w.u32(u32::try_from(placements.len()).unwrap_or(u32::MAX));
    for p in placements {
        w.bytes(p.participant.as_bytes());
        option(&mut w, p.place, |w, s| w.bytes(s.as_bytes()));
        option(&mut w, p.rank, |w, r| w.u32(r));
        option(&mut w, p.detail, |w, s| w.bytes(s.as_bytes()));
    }
    Digest::of(&w.into_bytes())
}

fn option<T>(w: &mut Writer, value: Option<T>, put: impl FnOnce(&mut Writer, T)) {
    match value {
        None => w.u8(0),
        Some(v) => {
            w.u8(1);
            put(w, v);
        }
    }
}

/// The set digest of an input: SHA-256 of its canonical encoding.
pub fn set_digest<A: Allocation>(input: &A::Input) -> Digest {
    Digest::of(&A::encode(input))
}

/// The id of an application window: the domain and the first 16 hex digits of the set digest.
pub fn window_id(domain: Domain, set_digest: &Digest) -> String {
    let hex = hex::encode(set_digest.0);
    format!("{}-window-{}", domain.name().to_lowercase(), &hex[..16])
}

/// An explanation of one participant's outcome, line by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub participant: String,
    pub lines: Vec<String>,
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for line in &self.lines {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// Where a run is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Closing,
    Drawing,
    Solving,
    Writing,
    Logging,
    Publishing,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Closing,
        Stage::Drawing,
        Stage::Solving,
        Stage::Writing,
        Stage::Logging,
        Stage::Publishing,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            Stage::Closing => "closing the application window",
            Stage::Drawing => "drawing the lottery",
            Stage::Solving => "allocating",
            Stage::Writing => "writing the results",
            Stage::Logging => "logging every outcome",
            Stage::Publishing => "publishing",
        }
    }
}

/// What [`run`] needs besides the input.
#[derive(Debug)]
pub struct RunRequest<'a> {
    /// The decision log (open for writing); blobs go to its data folder, and the output folder
    /// is on that folder's file system.
    pub log: &'a Log,
    /// Required exactly when the lottery numbers are drawn.
    pub beacon: Option<&'a Beacon>,
    /// Who asked (logged as every entry's actor).
    pub actor: &'a str,
    /// The output folder to create.
    pub out: &'a Path,
}

/// The logged run, for the domain's summary.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub run: AllocationRun,
    pub id: Digest,
    /// Index of the run entry in the log.
    pub index: u64,
    pub closed_index: u64,
    pub seed_index: Option<u64>,
    /// The mechanism's own time, as the domain measured it.
    pub solve_seconds: f64,
}

impl RunInfo {
    /// The `summary.json` fields every domain publishes: the mechanism and its parameters, where
    /// the lottery numbers came from, the seed, the mechanism's time, the digests and where the
    /// window, the seed and the run are in the log.
    pub fn summary(&self, lottery_given: bool) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;
        let mut out = serde_json::Map::new();
        out.insert("mechanism".into(), json!(self.run.mechanism));
        for (key, value) in &self.run.parameters {
            out.insert(key.clone(), json!(value));
        }
        let fields = [
            (
                "lottery",
                json!(if lottery_given { "given" } else { "drawn" }),
            ),
            ("seed", json!(self.run.seed.map(|s| s.to_string()))),
            ("solve_seconds", json!(self.solve_seconds)),
            ("input_digest", json!(self.run.input_digest.to_string())),
            ("outcome_digest", json!(self.run.outcome_digest.to_string())),
            ("run_index", json!(self.index)),
            ("run_id", json!(self.id.to_string())),
            ("closed_index", json!(self.closed_index)),
            ("seed_index", json!(self.seed_index)),
        ];
        out.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
        out
    }
}

/// A rank table: how many participants got their `r`-th choice (`counts[r - 1]`), keyed `"r"`.
pub fn rank_table(counts: &[u64]) -> serde_json::Value {
    counts
        .iter()
        .enumerate()
        .map(|(r, &n)| ((r + 1).to_string(), serde_json::Value::from(n)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// What a finished run returns.
#[derive(Debug)]
pub struct Published<S> {
    pub solved: S,
    pub info: RunInfo,
    pub out: PathBuf,
}

/// A domain's published tables (the results folder's files but `summary.json`), in canonical
/// order until put in the order of the files they were read from.
pub trait PublishedTables: Sized {
    /// The input files as read.
    type Files;
    fn in_file_order(self, files: &Self::Files) -> Self;
    /// Writes the tables' files into `dir`.
    fn write(&self, dir: &mut OutputDir) -> Result<()>;
}

/// How a domain publishes a solved run: its files, then its summary (which needs the log index).
pub trait Publish<A: Allocation> {
    /// Writes the result files (not `summary.json`) into `dir`.
    fn files(&self, input: &A::Input, solved: &A::Solved, dir: &mut OutputDir) -> Result<()>;
    /// The content of `summary.json`.
    fn summary(
        &self,
        input: &A::Input,
        solved: &A::Solved,
        info: &RunInfo,
    ) -> Result<serde_json::Value>;
    /// The mechanism's own time in seconds.
    fn solve_seconds(&self, solved: &A::Solved) -> f64;
}

/// Checks, before anything is written, that the lottery numbers have exactly one source.
/// Returns whether they are drawn.
pub fn check_lottery<A: Allocation>(
    input: &A::Input,
    params: &A::Params,
    beacon: Option<&Beacon>,
) -> Result<bool> {
    let draws = A::draws_lottery(input, params)?;
    match (draws, beacon) {
        (true, None) => Err(Error::Request(
            "the input has no lottery numbers (no `lottery` column), so they are drawn from a \
             public beacon value published after the window closed: give it with --beacon HEX"
                .into(),
        )),
        (false, Some(_)) => Err(Error::Request(
            "the input has its own lottery numbers (a `lottery` column): a beacon is only used \
             when they are drawn; remove the column or the --beacon option"
                .into(),
        )),
        _ => Ok(draws),
    }
}

/// The checks [`run`] makes before it writes anything (the lottery has exactly one source, the
/// output folder can be created), for a caller that opens the log only for a valid request.
pub fn check_run<A: Allocation>(
    input: &A::Input,
    params: &A::Params,
    beacon: Option<&Beacon>,
    on: &crate::fs::DataDir,
    out: &Path,
) -> Result<()> {
    check_lottery::<A>(input, params, beacon)?;
    OutputDir::check_target(on, out)
}

/// Runs an allocation by the protocol in the module docs and publishes it into `request.out`.
pub fn run<A: Allocation>(
    input: &A::Input,
    params: &A::Params,
    request: &RunRequest<'_>,
    publish: &dyn Publish<A>,
    progress: &mut dyn FnMut(Stage),
) -> Result<Published<A::Solved>> {
    let log = request.log;
    let data_dir = log.data_dir();
    check_lottery::<A>(input, params, request.beacon)?;
    OutputDir::check_target(&data_dir, request.out)?;

    progress(Stage::Closing);
    let set_digest = set_digest::<A>(input);
    let window = window_id(A::DOMAIN, &set_digest);
    let closed = close_with_log::<A>(log, input, request.actor, &window)?;
    let solved = solve_closed::<A>(
        log,
        input,
        params,
        &closed,
        request.beacon,
        request.actor,
        &window,
        progress,
    )?;

    progress(Stage::Writing);
    let mut dir = OutputDir::create(&data_dir, request.out)?;
    publish.files(input, &solved.solved, &mut dir)?;

    progress(Stage::Logging);
    let mut logged = log_run::<A>(log, input, solved)?;
    logged.info.solve_seconds = publish.solve_seconds(&logged.solved);

    progress(Stage::Publishing);
    let summary = publish.summary(input, &logged.solved, &logged.info)?;
    dir.write("summary.json", |w| {
        serde_json::to_writer_pretty(&mut *w, &summary).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    })?;
    let out = dir.commit()?;
    Ok(Published {
        solved: logged.solved,
        info: logged.info,
        out,
    })
}

/// A window closed on a log the caller holds open ([`close_with_log`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed {
    pub set_digest: Digest,
    pub applications: u64,
    /// The `ApplicationsClosed` entry.
    pub index: u64,
}

/// Steps 3 and 4 of the run protocol: stores the canonical set in the blob store of the log's
/// data folder and logs `ApplicationsClosed` with `window` as its subject, durably. A server's
/// windows collect applications over many calls and close on request.
pub fn close_with_log<A: Allocation>(
    log: &Log,
    input: &A::Input,
    actor: &str,
    window: &str,
) -> Result<Closed> {
    let set = A::encode(input);
    let set_digest = BlobStore::of_log(log).put(&set)?;
    let applications = A::participants(input) as u64;
    let index = log.append(&Record::new(
        Timestamp::now(),
        actor,
        window,
        ApplicationsClosed {
            domain: A::DOMAIN,
            applications,
            set_digest,
        },
    ))?;
    Ok(Closed {
        set_digest,
        applications,
        index,
    })
}

/// A run logged by [`run_closed`].
#[derive(Debug)]
pub struct LoggedRunOf<S> {
    pub solved: S,
    pub info: RunInfo,
    /// Every entry the run logged: the seed (when drawn), the outcomes and the run.
    pub entries: std::ops::Range<u64>,
}

/// Steps 5, 6 and 8 of the run protocol on a window closed by [`close_with_log`] (`input` must
/// be the closed set: its digest is checked): draws the seed from `beacon` when the numbers are
/// drawn, solves, and logs every outcome and the run as one batch. Nothing is published to
/// files.
pub fn run_closed<A: Allocation>(
    log: &Log,
    input: &A::Input,
    params: &A::Params,
    closed: &Closed,
    beacon: Option<&Beacon>,
    actor: &str,
    window: &str,
) -> Result<LoggedRunOf<A::Solved>> {
    let solved = solve_closed::<A>(
        log,
        input,
        params,
        closed,
        beacon,
        actor,
        window,
        &mut |_| {},
    )?;
    log_run::<A>(log, input, solved)
}

/// A run solved on a closed window, its seed logged, its outcomes not yet.
struct SolvedRun<'a, S> {
    solved: S,
    run: AllocationRun,
    closed: Closed,
    seed_index: Option<u64>,
    actor: &'a str,
    window: &'a str,
}

/// Steps 5 and 6: draws and logs the seed when the numbers are drawn, and solves.
#[allow(clippy::too_many_arguments)]
fn solve_closed<'a, A: Allocation>(
    log: &Log,
    input: &A::Input,
    params: &A::Params,
    closed: &Closed,
    beacon: Option<&Beacon>,
    actor: &'a str,
    window: &'a str,
    progress: &mut dyn FnMut(Stage),
) -> Result<SolvedRun<'a, A::Solved>> {
    let draws = check_lottery::<A>(input, params, beacon)?;
    let set_digest = set_digest::<A>(input);
    if set_digest != closed.set_digest {
        return Err(Error::Request(format!(
            "the application set has digest {set_digest}, the window was closed with {}",
            closed.set_digest
        )));
    }
    let mut seed = None;
    let mut seed_index = None;
    if let (true, Some(beacon)) = (draws, beacon) {
        progress(Stage::Drawing);
        let drawn = lottery_seed(&set_digest, &beacon.value);
        seed_index = Some(log.append(&Record::new(
            Timestamp::now(),
            actor,
            window,
            SeedDrawn {
                domain: A::DOMAIN,
                commitment: set_digest,
                beacon_source: beacon.source.clone(),
                beacon_round: beacon.round,
                beacon_value: Bytes(beacon.value.clone()),
                seed: Digest(drawn.0),
            },
        ))?);
        seed = Some(drawn);
    }
    progress(Stage::Solving);
    let solved = A::solve(input, params, seed.as_ref())?;
    let placements = A::placements(input, &solved);
    let run = AllocationRun {
        domain: A::DOMAIN,
        mechanism: A::mechanism(params).to_owned(),
        input_digest: set_digest,
        parameters: A::parameters(params),
        seed: seed.map(|s| Digest(s.0)),
        outcome_digest: outcome_digest(A::DOMAIN, &placements),
        counts: RunCounts {
            participants: A::participants(input) as u64,
            places: A::places(input),
            assigned: placements.iter().filter(|p| p.place.is_some()).count() as u64,
        },
    };
    drop(placements);
    Ok(SolvedRun {
        solved,
        run,
        closed: *closed,
        seed_index,
        actor,
        window,
    })
}

/// Step 8: one `Outcome` per participant, then the run, as one all-or-nothing batch.
fn log_run<A: Allocation>(
    log: &Log,
    input: &A::Input,
    solved: SolvedRun<'_, A::Solved>,
) -> Result<LoggedRunOf<A::Solved>> {
    let SolvedRun {
        solved,
        run,
        closed,
        seed_index,
        actor,
        window,
    } = solved;
    let id = run.id();
    let time = Timestamp::now();
    // Half a million records at the national size: built on every core.
    let mut batch: Vec<Record> = A::placements(input, &solved)
        .par_iter()
        .map(|p| {
            Record::new(
                time,
                actor,
                p.participant,
                Outcome {
                    run: id,
                    assigned: p.place.map(str::to_owned),
                    rank: p.rank,
                },
            )
        })
        .collect();
    batch.push(Record::new(time, actor, window, run.clone()));
    let logged = log.append_batch(&batch)?;
    // Freeing them takes a tenth of a second at that size: not on the caller's time.
    std::thread::spawn(move || drop(batch));
    let first = seed_index.unwrap_or(logged.start);
    Ok(LoggedRunOf {
        solved,
        info: RunInfo {
            run,
            id,
            index: logged.end - 1,
            closed_index: closed.index,
            seed_index,
            solve_seconds: 0.0,
        },
        entries: first..logged.end,
    })
}

/// Measures `f`, returning its result and the seconds it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let started = Instant::now();
    let value = f();
    (value, started.elapsed().as_secs_f64())
}

/// Renders a `(class or tier, lottery)` priority key the way the domains print it.
pub fn key_parts(key: u64) -> (u32, u64) {
    use allot_solvers::matching::{LOTTERY_BITS, MAX_LOTTERY};
    ((key >> LOTTERY_BITS) as u32, key & MAX_LOTTERY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_is_sha256_of_digest_and_beacon() {
        let set = Digest([7; 32]);
        let mut expect = Sha256::new();
        expect.update([7u8; 32]);
        expect.update(b"\x01\x02");
        let expect: [u8; 32] = expect.finalize().into();
        assert_eq!(lottery_seed(&set, &[1, 2]).0, expect);
    }

    #[test]
    fn outcome_digest_follows_the_documented_layout() {
        let placements = [
            Placement {
                participant: "a",
                place: Some("F1"),
                rank: Some(2),
                detail: Some("*"),
            },
            Placement {
                participant: "b",
                place: None,
                rank: None,
                detail: None,
            },
        ];
        let mut bytes = Vec::new();
        bytes.extend(b"\x00\x00\x00\x10allot/outcome/v1");
        bytes.push(2); // Fairs
        bytes.extend(2u32.to_be_bytes());
        bytes.extend(
            b"\x00\x00\x00\x01a\x01\x00\x00\x00\x02F1\x01\x00\x00\x00\x02\x01\x00\x00\x00\x01*",
        );
        bytes.extend(b"\x00\x00\x00\x01b\x00\x00\x00");
        assert_eq!(
            outcome_digest(Domain::Fairs, &placements),
            Digest::of(&bytes)
        );
    }
}
