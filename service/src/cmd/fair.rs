//! `allot fair ...`: weekend-fair stall allocation.

use std::path::{Path, PathBuf};

use allot_engine::allocation::{self, RunRequest, load, lottery_seed, set_digest};
use allot_engine::fair::{
    self, FairState, Fairs, Mechanism, Params, Precedence, Stats, explain, withdraw,
};
use allot_solvers::matching::Seed;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};

use allot_engine::fs::DataDir;
use allot_engine::log::decision::Domain;
use allot_engine::log::{Log, LogOptions};
use allot_service::proto::v1 as pb;

use super::allocation::{
    BeaconArgs, Comparison, Progress, print_published, remote_beacon, remote_run_id,
    remote_verification, report,
};
use super::remote::{Remote, RemoteArgs};

#[derive(Debug, Args)]
#[command(
    about = "Weekend-fair stalls: allocate, verify, explain, re-offer given-back stalls, compare",
    long_about = "Weekend-fair stalls: allocate, verify, explain, re-offer given-back stalls, \
                  compare mechanisms.\n\n\
                  fairs.csv: fair,district,category,stalls (one row per stall pool; category '*' \
                  is open to every category).\n\
                  applicants.csv: applicant,category,tier,lottery,choices (tier 0 local farmer, 1 \
                  regional producer, 2 other; choices: fair ids separated by ';', best first; the \
                  lottery column is optional: without it the numbers are drawn from --beacon).\n\n\
                  Every run and every outcome is a decision in the log of --data."
)]
pub struct FairArgs {
    #[command(subcommand)]
    command: FairCommand,
}

#[derive(Debug, Subcommand)]
enum FairCommand {
    /// Close the application window, allocate the stalls, log every outcome, publish the results.
    ///
    /// Writes DIR/assignment.csv (applicant,fair,category,rank; empty fair when not placed; in
    /// the order of applicants.csv), DIR/cutoffs.csv (per pool: tier and lottery of the last
    /// admitted, empty when the pool has stalls left), DIR/waitlist.csv (per pool, in the order
    /// given-back stalls are re-offered) and DIR/summary.json. DIR must not exist yet; it
    /// appears complete or not at all. Bad input: one error naming file:line: field, nothing
    /// written, nothing logged.
    Run(RunArgs),

    /// Re-run a logged run from its stored input, logged seed and parameters; compare the
    /// outcome digest and every logged outcome. RUN: the run entry's index, or hex digits of
    /// its id.
    Verify { run: String },

    /// Explain an applicant's outcome: for each fair ranked above the one received, that pool's
    /// cutoff against the applicant's own tier and lottery number.
    Explain {
        applicant: String,
        /// The run (entry index or id prefix); default: the latest fair run.
        #[arg(long, value_name = "RUN")]
        run: Option<String>,
    },

    /// An applicant gives its stall back: the stall is offered to the next applicant on that
    /// pool's waitlist, whose own stall is then offered on, and so on (each step logged, all in
    /// one batch).
    Withdraw {
        applicant: String,
        /// The run (entry index or id prefix); default: the latest fair run.
        #[arg(long, value_name = "RUN")]
        run: Option<String>,
        /// Who asked (logged as the actor).
        #[arg(long, env = "ALLOT_ACTOR", default_value = "fair-admin")]
        actor: String,
    },

    /// Compare mechanisms on the same input: placed per tier and rank distribution side by
    /// side, once or over N lottery draws (nothing is logged).
    Compare(CompareArgs),

    /// With --server only: close a window of the server (its applications came in through the
    /// API, e.g. the generated `dev-fairs` of `allot serve --dev`) and run it.
    RunWindow(RunWindowArgs),
}

#[derive(Debug, Args)]
struct RunWindowArgs {
    /// The server's application window.
    #[arg(long)]
    window: String,
    #[arg(long, value_enum, default_value = "da")]
    mechanism: MechanismArg,
    #[arg(long, value_enum, default_value = "own-first")]
    precedence: PrecedenceArg,
    #[command(flatten)]
    beacon: BeaconArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MechanismArg {
    /// Applicant-proposing deferred acceptance, priority (tier, lottery): stable, strategy-proof.
    Da,
    /// Most applicants placed, tier 0 first, then tier 1, then tier 2; then least sum of rank².
    Welfare,
    /// Serial dictatorship in (tier, lottery) order (the same matching as da).
    Rsd,
}

impl From<MechanismArg> for Mechanism {
    fn from(m: MechanismArg) -> Self {
        match m {
            MechanismArg::Da => Mechanism::Da,
            MechanismArg::Welfare => Mechanism::Welfare,
            MechanismArg::Rsd => Mechanism::Rsd,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PrecedenceArg {
    /// At each fair, the applicant's own category's stalls before the open ('*') stalls.
    OwnFirst,
    /// At each fair, the open ('*') stalls before the applicant's own category's.
    OpenFirst,
}

impl From<PrecedenceArg> for Precedence {
    fn from(p: PrecedenceArg) -> Self {
        match p {
            PrecedenceArg::OwnFirst => Precedence::OwnFirst,
            PrecedenceArg::OpenFirst => Precedence::OpenFirst,
        }
    }
}

#[derive(Debug, Args)]
struct InputArgs {
    /// The stall pools: fair,district,category,stalls.
    #[arg(long, value_name = "FILE")]
    fairs: PathBuf,
    /// The applications: applicant,category,tier,lottery,choices (lottery optional).
    #[arg(long, value_name = "FILE")]
    applicants: PathBuf,
    /// At each fair, whether the applicant's own category's pool or the open pool comes first.
    #[arg(long, value_enum, default_value = "own-first")]
    precedence: PrecedenceArg,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  allot fair run --fairs fairs.csv --applicants applicants.csv \
                        --out results/2025-spring"
)]
struct RunArgs {
    #[command(flatten)]
    input: InputArgs,
    #[arg(long, value_enum, default_value = "da")]
    mechanism: MechanismArg,
    /// The folder to create with the results.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    beacon: BeaconArgs,
    /// Who asked (logged as the actor of every decision).
    #[arg(long, env = "ALLOT_ACTOR", default_value = "fair-admin")]
    actor: String,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  allot fair compare --fairs fairs.csv --applicants applicants.csv \
                        --draws 1000"
)]
struct CompareArgs {
    #[command(flatten)]
    input: InputArgs,
    /// The mechanisms to compare.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "da,welfare,rsd"
    )]
    mechanisms: Vec<MechanismArg>,
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

pub fn run(args: FairArgs, data: &Path, remote: &RemoteArgs) -> Result<()> {
    if !matches!(args.command, FairCommand::Compare(_))
        && let Some(remote) = remote.connect()?
    {
        return run_remote(args.command, &remote);
    }
    match args.command {
        FairCommand::RunWindow(_) => bail!(
            "run-window runs a window of a server: give --server URL --token T (or ALLOT_SERVER \
             and ALLOT_TOKEN)"
        ),
        FairCommand::Run(args) => run_allocation(args, data),
        FairCommand::Verify { run } => {
            report(&allocation::verify::<Fairs>(data, &run).context("verify")?)
        }
        FairCommand::Explain { applicant, run } => {
            let loaded = load::<Fairs>(data, run.as_deref())?;
            let state = FairState::replay(&loaded.input, &loaded.solved, &loaded.changes)?;
            print!("{}", explain(&loaded, &state, &applicant)?);
            Ok(())
        }
        FairCommand::Withdraw {
            applicant,
            run,
            actor,
        } => withdraw_stall(data, &applicant, run.as_deref(), &actor),
        FairCommand::Compare(args) => compare(args),
    }
}

fn run_allocation(args: RunArgs, data: &Path) -> Result<()> {
    let beacon = args.beacon.beacon()?;
    let mut progress = Progress::new();
    let files = fair::read(&args.input.fairs, &args.input.applicants)?;
    let params = Params {
        mechanism: args.mechanism.into(),
        precedence: args.input.precedence.into(),
    };
    // Nothing is opened or written for a request that cannot run.
    let folder = DataDir::new(data);
    allocation::check_run::<Fairs>(&files.input, &params, beacon.as_ref(), &folder, &args.out)?;
    let log = Log::open(&folder, LogOptions::default())?;
    let request = RunRequest {
        log: &log,
        beacon: beacon.as_ref(),
        actor: &args.actor,
        out: &args.out,
    };
    let published = fair::run(&files, &params, &request, &mut |s| progress.stage(s))?;
    progress.finish();
    let info = &published.info;
    let counts = &info.run.counts;
    println!(
        "{}: placed {} of {} applicants on {} stalls ({} lottery), solve {:.4} s",
        params.mechanism.name(),
        counts.assigned,
        counts.participants,
        counts.places,
        if files.input.lottery_given {
            "given"
        } else {
            "drawn"
        },
        info.solve_seconds
    );
    print_published(info, &published.out, "outcomes");
    Ok(())
}

fn withdraw_stall(data: &Path, applicant: &str, run: Option<&str>, actor: &str) -> Result<()> {
    let (_, logged) = allocation::change::<Fairs>(data, run, actor, |loaded| {
        let state = FairState::replay(&loaded.input, &loaded.solved, &loaded.changes)?;
        withdraw(&loaded.input, &loaded.solved, &state, applicant)
    })?;
    for logged in &logged {
        let index = logged.index;
        match &logged.change {
            allocation::Change::Withdrawn { participant, place } => {
                println!("entry {index}: {participant} gave back its stall at {place}")
            }
            allocation::Change::ReOffered {
                participant,
                place,
                from,
            } => {
                println!("entry {index}: the stall at {place} left by {from} goes to {participant}")
            }
        }
    }
    if logged.len() == 1 {
        println!("nobody on the waitlist wanted the stall: it stays free");
    }
    Ok(())
}

fn compare(args: CompareArgs) -> Result<()> {
    let beacon = args.beacon.beacon()?;
    let files = fair::read(&args.input.fairs, &args.input.applicants)?;
    let input = &files.input;
    let precedence: Precedence = args.input.precedence.into();
    let mechanisms: Vec<Mechanism> = args.mechanisms.iter().map(|&m| m.into()).collect();
    let digest = set_digest::<Fairs>(input);
    let base = lottery_seed(&digest, beacon.as_ref().map_or(&[][..], |b| &b.value));
    let columns: Vec<(String, Vec<Stats>)> = match args.draws {
        None => {
            let seed: Option<Seed> = match (&beacon, input.lottery_given) {
                (Some(_), true) => bail!(
                    "the applicants have lottery numbers: --beacon is only used when they are \
                     drawn (or with --draws)"
                ),
                (Some(_), false) => Some(base),
                (None, true) => None,
                (None, false) => bail!(
                    "the applicants have no lottery numbers (no `lottery` column): give \
                     --beacon HEX to draw them, or --draws N"
                ),
            };
            fair::compare(input, &mechanisms, precedence, seed.as_ref())?
                .into_iter()
                .map(|(m, s)| (m.name().to_owned(), vec![s]))
                .collect()
        }
        Some(0) => bail!("--draws: give at least 1"),
        Some(draws) => fair::compare_draws(input, &mechanisms, precedence, &base, draws)?
            .into_iter()
            .map(|(m, s)| (m.name().to_owned(), s))
            .collect(),
    };
    let ranks = max_rank(columns.iter().flat_map(|(_, s)| s));
    Comparison {
        title: format!("{} applicants", input.applicants.len()),
        labels: labels(ranks),
        columns: columns
            .into_iter()
            .map(|(name, runs)| (name, runs.iter().map(|s| values(s, ranks)).collect()))
            .collect(),
        draws: args.draws,
    }
    .print(args.json);
    Ok(())
}

fn max_rank<'a>(stats: impl IntoIterator<Item = &'a Stats>) -> usize {
    stats
        .into_iter()
        .map(|s| s.rank_counts.len())
        .max()
        .unwrap_or(0)
}

/// The figures of one allocation, in the order of [`labels`].
fn values(s: &Stats, ranks: usize) -> Vec<f64> {
    let mut v = vec![s.placed() as f64];
    v.extend(s.placed_per_tier.iter().map(|&n| n as f64));
    v.extend((0..ranks).map(|r| s.rank_counts.get(r).copied().unwrap_or(0) as f64));
    v.push(s.unplaced as f64);
    v.push(s.rank2_sum as f64);
    v.push(s.solve_seconds);
    v
}

fn labels(ranks: usize) -> Vec<String> {
    let mut v = vec!["placed".to_owned()];
    v.extend((0..3).map(|t| format!("  tier {t} ({})", fair::TIERS[t])));
    v.extend((1..=ranks).map(|r| format!("at choice {r}")));
    v.push("not placed".into());
    v.push("sum of rank²".into());
    v.push("solve seconds".into());
    v
}

fn mechanism_pb(m: MechanismArg) -> pb::FairMechanism {
    match m {
        MechanismArg::Da => pb::FairMechanism::Da,
        MechanismArg::Welfare => pb::FairMechanism::Welfare,
        MechanismArg::Rsd => pb::FairMechanism::Rsd,
    }
}

fn precedence_pb(p: PrecedenceArg) -> pb::PoolPrecedence {
    match p {
        PrecedenceArg::OwnFirst => pb::PoolPrecedence::OwnCategoryFirst,
        PrecedenceArg::OpenFirst => pb::PoolPrecedence::OpenFirst,
    }
}

/// The applications of validated files as stream messages (the pools first).
fn submissions(window: &str, input: &fair::FairInput) -> Vec<pb::SubmitFairApplicationsRequest> {
    const PER_MESSAGE: usize = 10_000;
    let pools = input
        .pools
        .iter()
        .map(|p| {
            let fair = &input.fairs[p.fair as usize];
            pb::StallPool {
                fair: fair.id.clone(),
                district: fair.district.clone(),
                category: p.category.clone(),
                stalls: p.stalls,
            }
        })
        .collect();
    let mut messages = vec![pb::SubmitFairApplicationsRequest {
        window: window.to_owned(),
        pools,
        applicants: Vec::new(),
    }];
    for chunk in input.applicants.chunks(PER_MESSAGE) {
        messages.push(pb::SubmitFairApplicationsRequest {
            window: String::new(),
            pools: Vec::new(),
            applicants: chunk
                .iter()
                .map(|a| pb::FairApplicant {
                    id: a.id.clone(),
                    category: a.category.clone(),
                    tier: Some(u32::from(a.tier)),
                    lottery: a.lottery,
                    choices: a
                        .choices
                        .iter()
                        .map(|&f| input.fairs[f as usize].id.clone())
                        .collect(),
                })
                .collect(),
        });
    }
    messages
}

fn run_remote(command: FairCommand, remote: &Remote) -> Result<()> {
    let mut c = remote.fairs();
    match command {
        FairCommand::Run(args) => {
            let beacon = args.beacon.beacon()?;
            let files = fair::read(&args.input.fairs, &args.input.applicants)?;
            let window = allocation::window_id(Domain::Fairs, &set_digest::<Fairs>(&files.input));
            let added = remote.block_on(
                c.submit_applications(tokio_stream::iter(submissions(&window, &files.input))),
            )?;
            println!(
                "submitted {} pools and {} applications to window {window}",
                added.get_ref().pools_total,
                added.get_ref().applicants_total
            );
            run_window(
                remote,
                &window,
                mechanism_pb(args.mechanism),
                precedence_pb(args.input.precedence),
                beacon.as_ref(),
                Some(&args.out),
            )
        }
        FairCommand::RunWindow(args) => {
            let beacon = args.beacon.beacon()?;
            run_window(
                remote,
                &args.window,
                mechanism_pb(args.mechanism),
                precedence_pb(args.precedence),
                beacon.as_ref(),
                None,
            )
        }
        FairCommand::Verify { run } => {
            let run_id = remote_run_id(Some(&run))?;
            let v = remote.block_on(c.verify(pb::VerifyFairRunRequest { run_id }))?;
            remote_verification(v.into_inner().verification.unwrap_or_default())
        }
        FairCommand::Explain { applicant, run } => {
            let run_id = remote_run_id(run.as_deref())?;
            let e =
                remote.block_on(c.explain(pb::ExplainFairOutcomeRequest { run_id, applicant }))?;
            for line in &e.get_ref().lines {
                println!("{line}");
            }
            Ok(())
        }
        FairCommand::Withdraw { applicant, run, .. } => {
            let run_id = remote_run_id(run.as_deref())?;
            let w = remote
                .block_on(c.withdraw(pb::WithdrawFairStallRequest {
                    run_id,
                    applicant: applicant.clone(),
                    request_id: String::new(),
                }))?
                .into_inner();
            let log = w.log.unwrap_or_default();
            println!(
                "entries {}..{}: {applicant} gave back its stall at {} ({})",
                log.start, log.end, w.fair, w.category
            );
            match w.re_offered_to {
                Some(o) => println!(
                    "the stall goes to {} (now at {}, rank {})",
                    o.applicant, o.fair, o.rank
                ),
                None => println!("nobody on the waitlist wanted the stall: it stays free"),
            }
            Ok(())
        }
        FairCommand::Compare(_) => unreachable!("compare runs locally"),
    }
}

/// Closes a server's window and runs it; prints the run (and writes `summary.json` to `out`).
fn run_window(
    remote: &Remote,
    window: &str,
    mechanism: pb::FairMechanism,
    precedence: pb::PoolPrecedence,
    beacon: Option<&allocation::Beacon>,
    out: Option<&Path>,
) -> Result<()> {
    let mut c = remote.fairs();
    let commitment = remote
        .block_on(c.close_applications(pb::CloseFairApplicationsRequest {
            window: window.to_owned(),
        }))?
        .into_inner()
        .commitment
        .unwrap_or_default();
    println!(
        "window {window} closed at entry {}: {} applications, set digest {}",
        commitment.log_index,
        commitment.applications,
        hex::encode(&commitment.set_digest)
    );
    let run = remote
        .block_on(c.run_allocation(pb::RunFairAllocationRequest {
            window: window.to_owned(),
            mechanism: mechanism as i32,
            beacon: beacon.map(remote_beacon),
            precedence: precedence as i32,
            request_id: String::new(),
        }))
        .map_err(|e| e.context("run"))?
        .into_inner();
    let summary = run.summary.clone().unwrap_or_default();
    let log = run.log.unwrap_or_default();
    println!(
        "placed {} of {} applicants (fill rate {:.1}%), solve {:.4} s",
        summary.placed,
        summary.applicants,
        100.0 * summary.fill_rate,
        summary.solve_seconds
    );
    println!(
        "logged: entries {}..{}; run id {}",
        log.start,
        log.end,
        hex::encode(&run.run_id)
    );
    if let Some(out) = out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let json = serde_json::json!({
            "window": window,
            "run_id": hex::encode(&run.run_id),
            "input_digest": hex::encode(&run.input_digest),
            "seed": hex::encode(&run.seed),
            "outcome_digest": hex::encode(&run.outcome_digest),
            "applicants": summary.applicants,
            "placed": summary.placed,
            "placed_per_tier": summary.placed_per_tier,
            "fill_rate": summary.fill_rate,
            "log": {"start": log.start, "end": log.end},
        });
        std::fs::write(out.join("summary.json"), format!("{json:#}\n"))
            .with_context(|| format!("writing {}", out.join("summary.json").display()))?;
        println!("results in {}", out.display());
    }
    Ok(())
}
