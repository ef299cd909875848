//! The commands every allocation domain has, written once over [`Domain`]: run files or a
//! server's window (submit, close, run, fetch the results, publish the folder), results, verify,
//! explain and compare; and the beacon options and the progress display.
//!
//! Every command but `compare` is one implementation against the API ([`Session`]): in process
//! over the data folder, or on a server with `--server`. A domain module (`fair.rs`,
//! `school.rs`) gives its files, parameters, help texts and any commands of its own.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use allot_engine::allocation::{
    self as engine, Allocation, Beacon, Comparison, Lottery, OutputDir, PublishedTables, Vacancies,
    check_lottery, set_digest, window_id,
};
use allot_engine::fs::DataDir;
use allot_service::proto::v1 as pb;
use allot_service::render::allocation::{self as render, RunFigures as _};
use allot_service::rpc::allocation::{AllocationClient, run_info};
use anyhow::{Result, bail};
use clap::{Args, Subcommand, ValueEnum};

use super::api::{self, Flag, Local, RemoteArgs, Session};
use allot_service::progress::Progress;

/// A domain's side of the shared commands: its files, its parameters, its figures and its help
/// (its calls are [`AllocationClient`]'s).
pub trait Domain: Debug + Copy + Sized + 'static {
    type Engine: AllocationClient<Tables: PublishedTables<Files = Self::Files>>;
    /// The command's name: `fair`, `school`.
    const WORD: &'static str;
    /// What its outcome decisions are called: `outcomes`, `assignments`.
    const OUTCOMES: &'static str;
    /// The explained participant's argument: `APPLICANT`, `STUDENT`.
    const PARTICIPANT: &'static str;
    /// The default actor of the decisions a command logs.
    const ACTOR: &'static str;
    const HELP: Help;

    /// The input files' flags.
    type Input: Args + Debug;
    type Files;
    /// The mechanism, as the command line names it.
    type Mechanism: ValueEnum + Copy + Debug + Send + Sync + 'static;
    /// The run's other parameters.
    type Rules: Args + Copy + Debug;

    fn read(input: &Self::Input) -> Result<Self::Files>;
    fn input(files: &Self::Files) -> &Input<Self>;
    fn engine_params(params: ParamArgs<Self>) -> <Self::Engine as Allocation>::Params;

    /// Why the lottery numbers of a comparison are drawn, or `None` when the input has its own.
    fn drawn(input: &Input<Self>, rules: Self::Rules) -> Option<&'static str>;
    /// The mechanisms (all when none is named) side by side under `lottery`.
    fn comparison(
        input: &Input<Self>,
        mechanisms: &[Self::Mechanism],
        rules: Self::Rules,
        lottery: &Lottery,
    ) -> engine::Result<Comparison>;
}

/// The help texts that differ between domains.
pub struct Help {
    pub run: &'static str,
    pub run_long: &'static str,
    pub run_example: &'static str,
    pub explain: &'static str,
    pub compare: &'static str,
    pub compare_example: &'static str,
}

type Input<D> = <<D as Domain>::Engine as Allocation>::Input;
type Tables<D> = <<D as Domain>::Engine as AllocationClient>::Tables;

#[derive(Debug, Subcommand)]
pub enum Command<D: Domain> {
    #[command(about = D::HELP.run, long_about = D::HELP.run_long, after_help = D::HELP.run_example)]
    Run(RunArgs<D>),

    /// Close an application window whose applications came in through the API (e.g. the
    /// generated `dev-fairs` or `dev-schools` of `allot serve --dev`) and run it.
    RunWindow(RunWindowArgs<D>),

    /// Write a run's results (in its current state, after any withdrawals) into a new folder.
    Results {
        /// The run (entry index or id prefix); default: the latest run.
        #[arg(long, value_name = "RUN")]
        run: Option<String>,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },

    /// Re-run a logged run from its stored input, logged seed and parameters; compare the
    /// outcome digest and every logged outcome. RUN: the run entry's index, or hex digits of
    /// its id.
    Verify { run: String },

    #[command(about = D::HELP.explain)]
    Explain {
        #[arg(value_name = D::PARTICIPANT)]
        participant: String,
        /// The run (entry index or id prefix); default: the latest run.
        #[arg(long, value_name = "RUN")]
        run: Option<String>,
    },

    #[command(about = D::HELP.compare, after_help = D::HELP.compare_example)]
    Compare(CompareArgs<D>),

    /// An application's history in a window, each step with its log entry: received, amended,
    /// withdrawn, in the closed set, each run's outcome, places offered and given back.
    Status {
        #[arg(value_name = D::PARTICIPANT)]
        participant: String,
        /// The application window.
        #[arg(long)]
        window: String,
    },

    /// Accept the place a participant holds in a run (its outcome, or a place re-offered to it):
    /// logged once; accepting it again prints the same entry.
    Accept {
        #[arg(value_name = D::PARTICIPANT)]
        participant: String,
        /// The run (entry index or id prefix); default: the latest run.
        #[arg(long, value_name = "RUN")]
        run: Option<String>,
        /// Who accepts, as the log records it.
        #[arg(long, default_value = D::ACTOR)]
        actor: String,
    },

    /// Withdraw applications from an open window (before it closes); prints a receipt for each.
    WithdrawApplications {
        #[arg(value_name = D::PARTICIPANT, required = true)]
        participants: Vec<String>,
        /// The application window.
        #[arg(long)]
        window: String,
        /// Who withdraws, as the log records it.
        #[arg(long, default_value = D::ACTOR)]
        actor: String,
    },

    /// A participant gives its place back after a run: the place is offered to the next one on
    /// its waitlist (whom a school's reserves admit), whose own place is then offered on, and so
    /// on (each step logged, all in one batch).
    Withdraw {
        #[arg(value_name = D::PARTICIPANT)]
        participant: String,
        /// The run (entry index or id prefix); default: the latest run.
        #[arg(long, value_name = "RUN")]
        run: Option<String>,
        /// Who asked (logged as the actor).
        #[arg(long, env = "ALLOT_ACTOR", default_value = D::ACTOR)]
        actor: String,
    },
}

/// The run's parameters.
#[derive(Debug, Clone, Copy, Args)]
pub struct ParamArgs<D: Domain> {
    #[arg(long, value_enum, default_value = "da")]
    pub mechanism: D::Mechanism,
    #[command(flatten)]
    pub rules: D::Rules,
}

#[derive(Debug, Args)]
pub struct RunArgs<D: Domain> {
    #[command(flatten)]
    input: D::Input,
    #[command(flatten)]
    params: ParamArgs<D>,
    /// The folder to create with the results.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    beacon: BeaconArgs,
    /// Who asked (logged as the actor of every decision).
    #[arg(long, env = "ALLOT_ACTOR", default_value = D::ACTOR)]
    actor: String,
}

#[derive(Debug, Args)]
pub struct RunWindowArgs<D: Domain> {
    /// The application window.
    #[arg(long)]
    window: String,
    #[command(flatten)]
    params: ParamArgs<D>,
    #[command(flatten)]
    beacon: BeaconArgs,
    /// The folder to create with the results (it must not exist yet, or be empty; it appears
    /// complete or not at all).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Who asked (logged as the actor of every decision).
    #[arg(long, env = "ALLOT_ACTOR", default_value = D::ACTOR)]
    actor: String,
}

#[derive(Debug, Args)]
pub struct CompareArgs<D: Domain> {
    #[command(flatten)]
    input: D::Input,
    #[command(flatten)]
    rules: D::Rules,
    /// The mechanisms to compare (default: all; for schools with reserves, the three that
    /// support them).
    #[arg(long, value_enum, value_delimiter = ',')]
    mechanisms: Vec<D::Mechanism>,
    /// Draw N lotteries and report each figure's mean and 5th-95th percentiles. The draws'
    /// seeds derive from SHA-256(set digest || beacon value) (an empty beacon without --beacon).
    #[arg(long, value_name = "N")]
    draws: Option<u64>,
    #[command(flatten)]
    beacon: BeaconArgs,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// The request fields the shared commands send, by the flags or arguments they came from.
const FLAGS: &[Flag] = &[
    ("request.applicant", ""),
    ("request.student", ""),
    ("request.id", ""),
    ("request.ids", ""),
    ("request.run", "--run"),
    ("request.window", "--window"),
    ("request.beacon", "--beacon"),
    ("request.mechanism", "--mechanism"),
];

/// The public randomness beacon, for inputs without lottery numbers.
#[derive(Debug, Clone, clap::Args)]
pub struct BeaconArgs {
    /// The beacon value published after the application window closed, in hex (16 to 512 bytes).
    /// Lottery numbers are drawn from SHA-256(digest of the closed application set || this
    /// value). Required exactly when the input has no `lottery` column.
    #[arg(long, value_name = "HEX")]
    pub beacon: Option<String>,
    /// Who published the beacon value (logged with it).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "manual",
        requires = "beacon"
    )]
    pub beacon_source: String,
    /// The beacon's round or pulse number (logged with it).
    #[arg(long, value_name = "N", default_value_t = 0, requires = "beacon")]
    pub beacon_round: u64,
}

impl BeaconArgs {
    pub fn beacon(&self) -> Result<Option<Beacon>> {
        let Some(text) = &self.beacon else {
            return Ok(None);
        };
        let text = text.trim();
        let value = match hex::decode(text) {
            Ok(v) if !v.is_empty() => v,
            _ => bail!("--beacon: expected an even number of hex digits, found '{text}'"),
        };
        Ok(Some(Beacon {
            source: self.beacon_source.clone(),
            round: self.beacon_round,
            value,
        }))
    }
}

/// Runs one of the shared commands (or one of the domain's own).
pub fn run<D: Domain>(command: Command<D>, data: &Path, remote: &RemoteArgs) -> Result<()> {
    match command {
        Command::Run(args) => run_files(remote, data, args),
        Command::RunWindow(args) => {
            let beacon = args.beacon.beacon()?;
            if let Some(out) = &args.out {
                check_out(out)?;
            }
            let session = session(remote, data, Local::write(&args.actor))?;
            let progress = Progress::steps(5, "reading the input");
            let run = run_window::<D>(&session, &args.window, args.params, beacon, &progress)?;
            match &args.out {
                Some(out) => publish::<D>(&session, &run, out, |tables| tables),
                None => Ok(()),
            }
        }
        Command::Results { run, out } => {
            let session = session(remote, data, Local::READ)?;
            check_out(&out)?;
            let run = find_run::<D>(&session, run.as_deref())?;
            publish::<D>(&session, &run, &out, |tables| tables)
        }
        Command::Verify { run } => {
            let session = session(remote, data, Local::READ)?;
            verify::<D>(&session, &run)
        }
        Command::Explain { participant, run } => {
            let session = session(remote, data, Local::READ)?;
            let id = find_run::<D>(&session, run.as_deref())?.run_id;
            let lines = session.answer(D::Engine::explain(session.api(), id, participant))?;
            lines.iter().for_each(|line| println!("{line}"));
            Ok(())
        }
        Command::Status {
            participant,
            window,
        } => {
            let session = session(remote, data, Local::READ)?;
            let status = D::Engine::status(session.api(), window, participant);
            print!("{}", render::application_status(&session.answer(status)?));
            Ok(())
        }
        Command::Accept {
            participant,
            run,
            actor,
        } => {
            let session = session(remote, data, Local::write(&actor))?;
            let run = find_run::<D>(&session, run.as_deref())?;
            let accepted =
                D::Engine::accept(session.api(), run.run_id.clone(), participant.clone());
            print!(
                "{}",
                render::accepted(&participant, &run, &session.answer(accepted)?)
            );
            Ok(())
        }
        Command::WithdrawApplications {
            participants,
            window,
            actor,
        } => {
            let session = session(remote, data, Local::write(&actor))?;
            let withdrawn = D::Engine::withdraw_applications(session.api(), window, participants);
            print!("{}", render::receipts(&session.answer(withdrawn)?.receipts));
            Ok(())
        }
        Command::Compare(args) => {
            remote.refuse("compare works on files alone")?;
            let beacon = args.beacon.beacon()?;
            let files = D::read(&args.input)?;
            let input = D::input(&files);
            let lottery = Lottery::choose(
                &set_digest::<D::Engine>(input),
                D::drawn(input, args.rules),
                beacon.as_ref().map(|b| &b.value[..]),
                args.draws,
            )?;
            let comparison = D::comparison(input, &args.mechanisms, args.rules, &lottery)?;
            match args.json {
                true => println!("{}", render::comparison_json(&comparison)),
                false => print!("{}", render::comparison_text(&comparison)),
            }
            Ok(())
        }
        Command::Withdraw {
            participant,
            run,
            actor,
        } => {
            let session = session(remote, data, Local::write(&actor))?;
            let run_id = find_run::<D>(&session, run.as_deref())?.run_id;
            let changes = D::Engine::give_back(session.api(), run_id, participant);
            let place = <D::Engine as Vacancies>::PLACE;
            print!("{}", render::changes(&session.answer(changes)?, place));
            Ok(())
        }
    }
}

/// Opens the session the shared commands use.
pub fn session(remote: &RemoteArgs, data: &Path, local: Local<'_>) -> Result<Session> {
    Ok(api::open(remote, data, local)?.names(FLAGS))
}

/// `run` on files: checks everything before anything is sent, submits the applications to the
/// window the set's digest names (once: a window closed before is run again), closes it, runs
/// it and publishes the results into `out`.
fn run_files<D: Domain>(remote: &RemoteArgs, data: &Path, args: RunArgs<D>) -> Result<()> {
    let (params, out) = (args.params, &args.out);
    let beacon = args.beacon.beacon()?;
    let progress = Progress::steps(5, "reading the input");
    let files = D::read(&args.input)?;
    let input = D::input(&files);
    // Nothing is opened, sent or written for a request that cannot run.
    check_lottery::<D::Engine>(input, &D::engine_params(params), beacon.as_ref())?;
    check_out(out)?;
    let digest = set_digest::<D::Engine>(input);
    let window = window_id(<D::Engine as Allocation>::DOMAIN, &digest);
    let session = session(remote, data, Local::write(&args.actor))?;
    progress.step("submitting the applications");
    let closed = match session.run(D::Engine::close(session.api(), &window)) {
        Ok(closed) => closed,
        Err(status) if status.code() == tonic::Code::NotFound => {
            session.answer(D::Engine::submit(session.api(), &window, input))?;
            progress.step("closing the application window");
            session.answer(D::Engine::close(session.api(), &window))?
        }
        Err(status) => return Err(session.error(status).into()),
    };
    if closed.set_digest != digest.0 {
        bail!(
            "window {window} holds another application set (digest {}); its applications were \
             not all submitted",
            hex::encode(&closed.set_digest)
        );
    }
    let run = run_window::<D>(&session, &window, params, beacon, &progress)?;
    progress.step("publishing the results");
    publish::<D>(&session, &run, out, |tables| tables.in_file_order(&files))
}

/// Closes a window and runs it; prints the run.
fn run_window<D: Domain>(
    session: &Session,
    window: &str,
    params: ParamArgs<D>,
    beacon: Option<Beacon>,
    progress: &Progress,
) -> Result<pb::RunRecord> {
    let api = session.api();
    progress.step("closing the application window");
    let closed = session.answer(D::Engine::close(api, window))?;
    print!("{}", render::closed(window, &closed));
    progress.step("allocating and logging every outcome");
    let beacon = beacon.map(|b| pb::Beacon {
        source: b.source,
        round: b.round,
        value: b.value,
    });
    let request = D::Engine::run_request(window, &D::engine_params(params), beacon);
    let (run, summary) = session.answer(D::Engine::run(api, request))?;
    println!("{}", summary.figures(&run));
    print!(
        "{}",
        render::logged_run(&run, closed.log_index, D::OUTCOMES)
    );
    Ok(run)
}

/// Fetches a run's results and writes them, with `summary.json`, into a new folder `out`;
/// `order` puts the tables (canonical as they come) in the order to write.
fn publish<D: Domain>(
    session: &Session,
    run: &pb::RunRecord,
    out: &Path,
    order: impl FnOnce(Tables<D>) -> Tables<D>,
) -> Result<()> {
    let results = D::Engine::results(session.api(), run.run_id.clone());
    let (summary, tables) = session.answer(results)?;
    let tables = order(tables);
    let info = run_info::<D::Engine>(run, D::Engine::solve_seconds(&summary))
        .map_err(|status| session.error(status))?;
    let mut json = D::Engine::summary_json(&info, &summary);
    if run.closed_index.is_none()
        && let Some(fields) = json.as_object_mut()
    {
        // Not known to `GetRun`: left out rather than guessed.
        fields.remove("closed_index");
        fields.remove("seed_index");
    }
    let folder = session
        .log()
        .map_or_else(|| DataDir::new(Path::new(".")), |log| log.data_dir());
    let mut dir = OutputDir::create(&folder, out)?;
    tables.write(&mut dir)?;
    dir.write("summary.json", |w| {
        serde_json::to_writer_pretty(&mut *w, &json).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    })?;
    let out = dir.commit()?;
    println!("results in {}", out.display());
    Ok(())
}

/// The run named on the command line: an entry index, an id prefix, or the latest.
pub fn find_run<D: Domain>(session: &Session, run: Option<&str>) -> Result<pb::RunRecord> {
    let run = run.unwrap_or_default().to_owned();
    Ok(session.answer(D::Engine::get_run(session.api(), run))?)
}

/// Fails, before anything is sent, when `out` cannot be created.
fn check_out(out: &Path) -> Result<()> {
    Ok(OutputDir::check_target(&DataDir::new(Path::new(".")), out)?)
}

/// `verify`: re-runs a logged run; fails when a check failed.
fn verify<D: Domain>(session: &Session, run: &str) -> Result<()> {
    let run = find_run::<D>(session, Some(run))?;
    let v = session.answer(D::Engine::verify(session.api(), run.run_id.clone()))?;
    print!("{}", render::verification(D::WORD, &run, &v));
    let label = render::run_label(&run);
    let failed = v.results.iter().filter(|c| !c.ok).count();
    if failed > 0 || !v.ok {
        bail!("run {label} does not verify: {failed} check(s) failed");
    }
    println!("run {label} verifies");
    Ok(())
}
