//! `allot school ...`: school enrolment.

use std::path::{Path, PathBuf};

use allot_engine::allocation::{self, RunRequest, load, lottery_seed, set_digest};
use allot_engine::school::{
    self, Mechanism, Params, ReserveOrder, SchoolPaths, Schools, Stats, TieBreaking, explain,
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
    about = "School enrolment: allocate seats, verify, explain, compare mechanisms",
    long_about = "School enrolment: allocate seats, verify, explain, compare mechanisms.\n\n\
                  schools.csv: school,capacity.\n\
                  students.csv: student,lottery,choices (choices: school ids separated by ';', \
                  best first; the lottery column is optional: without it the numbers are drawn \
                  from --beacon).\n\
                  priorities.csv: school,student,priority (class 0 is the highest; pairs not \
                  listed have the lowest class, one below the lowest listed).\n\
                  reserves.csv (optional): school,class,seats (seats only students of that \
                  priority class there may take).\n\n\
                  Priority at a school is (class, lottery), lower first. Every run and every \
                  assignment is a decision in the log of --data."
)]
pub struct SchoolArgs {
    #[command(subcommand)]
    command: SchoolCommand,
}

#[derive(Debug, Subcommand)]
enum SchoolCommand {
    /// Close the application window, assign the seats, log every assignment, publish the results.
    ///
    /// Writes DIR/assignment.csv (student,school,rank; empty school when unassigned; in the order
    /// of students.csv), DIR/cutoffs.csv (per school: class and lottery of the last admitted,
    /// empty when it has seats left), DIR/block_cutoffs.csv (with reserves: per seat block) and
    /// DIR/summary.json. DIR must not exist yet; it appears complete or not at all. Bad input:
    /// one error naming file:line: field, nothing written, nothing logged.
    Run(RunArgs),

    /// Re-run a logged run from its stored input, logged seed and parameters; compare the
    /// outcome digest and every logged assignment. RUN: the run entry's index, or hex digits of
    /// its id.
    Verify { run: String },

    /// Explain a student's assignment: for each school ranked above the one received, its cutoff
    /// against the student's own priority class and lottery number there.
    Explain {
        student: String,
        /// The run (entry index or id prefix); default: the latest school run.
        #[arg(long, value_name = "RUN")]
        run: Option<String>,
    },

    /// Compare mechanisms on the same input: assigned, rank table, blocking pairs and justified
    /// envy side by side, once or over N lottery draws (nothing is logged).
    Compare(CompareArgs),

    /// With --server only: close a window of the server (its applications came in through the
    /// API, e.g. the generated `dev-schools` of `allot serve --dev`) and run it.
    RunWindow(RunWindowArgs),
}

#[derive(Debug, Args)]
struct RunWindowArgs {
    /// The server's application window.
    #[arg(long)]
    window: String,
    #[arg(long, value_enum, default_value = "da")]
    mechanism: MechanismArg,
    #[arg(long, value_enum, default_value = "single")]
    tie_breaking: TieBreakingArg,
    #[arg(long, value_enum, default_value = "reserved-first")]
    reserve_order: ReserveOrderArg,
    #[command(flatten)]
    beacon: BeaconArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MechanismArg {
    /// Student-proposing deferred acceptance: stable, student-optimal, strategy-proof.
    Da,
    /// School-proposing deferred acceptance: stable, school-optimal.
    SchoolDa,
    /// Top trading cycles: Pareto efficient, strategy-proof, not stable.
    Ttc,
    /// Immediate acceptance (Boston): admissions in each round are final; not strategy-proof.
    Boston,
    /// Efficiency-adjusted deferred acceptance: Pareto efficient, weakly better than da.
    Eada,
}

impl From<MechanismArg> for Mechanism {
    fn from(m: MechanismArg) -> Self {
        match m {
            MechanismArg::Da => Mechanism::Da,
            MechanismArg::SchoolDa => Mechanism::SchoolDa,
            MechanismArg::Ttc => Mechanism::Ttc,
            MechanismArg::Boston => Mechanism::Boston,
            MechanismArg::Eada => Mechanism::Eada,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TieBreakingArg {
    /// One lottery number per student, used at every school.
    Single,
    /// One lottery number per (student, school), drawn from --beacon.
    Multiple,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReserveOrderArg {
    /// Reserved seats (by class) before the open seats: the reserve takes the best students of
    /// its class, the open seats the best of everybody left.
    ReservedFirst,
    /// Open seats before the reserved ones: the open seats take the best of any class, the
    /// reserve the best of its class left (and stays empty when none are left).
    OpenFirst,
}

#[derive(Debug, Args)]
struct InputArgs {
    /// The schools: school,capacity.
    #[arg(long, value_name = "FILE")]
    schools: PathBuf,
    /// The applications: student,lottery,choices (lottery optional).
    #[arg(long, value_name = "FILE")]
    students: PathBuf,
    /// The priority classes: school,student,priority.
    #[arg(long, value_name = "FILE")]
    priorities: PathBuf,
    /// Seat reserves: school,class,seats.
    #[arg(long, value_name = "FILE")]
    reserves: Option<PathBuf>,
    /// At schools with reserves, whether reserved or open seats are filled first.
    #[arg(long, value_enum, default_value = "reserved-first")]
    reserve_order: ReserveOrderArg,
    /// How lottery numbers break ties within a priority class.
    #[arg(long, value_enum, default_value = "single")]
    tie_breaking: TieBreakingArg,
}

impl InputArgs {
    fn read(&self) -> Result<school::SchoolFiles> {
        Ok(school::read(SchoolPaths {
            schools: &self.schools,
            students: &self.students,
            priorities: &self.priorities,
            reserves: self.reserves.as_deref(),
        })?)
    }

    fn tie_breaking(&self) -> TieBreaking {
        match self.tie_breaking {
            TieBreakingArg::Single => TieBreaking::Single,
            TieBreakingArg::Multiple => TieBreaking::Multiple,
        }
    }

    fn reserve_order(&self) -> ReserveOrder {
        match self.reserve_order {
            ReserveOrderArg::ReservedFirst => ReserveOrder::ReservedFirst,
            ReserveOrderArg::OpenFirst => ReserveOrder::OpenFirst,
        }
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  allot school run --schools schools.csv --students students.csv \
                        --priorities priorities.csv --out results/2025"
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
    #[arg(long, env = "ALLOT_ACTOR", default_value = "enrolment-officer")]
    actor: String,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  allot school compare --schools schools.csv --students \
                        students.csv --priorities priorities.csv --mechanisms da,ttc,boston"
)]
struct CompareArgs {
    #[command(flatten)]
    input: InputArgs,
    /// The mechanisms to compare (default: all five; with reserves the three that support them).
    #[arg(long, value_enum, value_delimiter = ',')]
    mechanisms: Option<Vec<MechanismArg>>,
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

pub fn run(args: SchoolArgs, data: &Path, remote: &RemoteArgs) -> Result<()> {
    if !matches!(args.command, SchoolCommand::Compare(_))
        && let Some(remote) = remote.connect()?
    {
        return run_remote(args.command, &remote);
    }
    match args.command {
        SchoolCommand::RunWindow(_) => bail!(
            "run-window runs a window of a server: give --server URL --token T (or ALLOT_SERVER \
             and ALLOT_TOKEN)"
        ),
        SchoolCommand::Run(args) => run_allocation(args, data),
        SchoolCommand::Verify { run } => {
            report(&allocation::verify::<Schools>(data, &run).context("verify")?)
        }
        SchoolCommand::Explain { student, run } => {
            let loaded = load::<Schools>(data, run.as_deref())?;
            print!("{}", explain(&loaded, &student)?);
            Ok(())
        }
        SchoolCommand::Compare(args) => compare(args),
    }
}

fn run_allocation(args: RunArgs, data: &Path) -> Result<()> {
    let beacon = args.beacon.beacon()?;
    let mut progress = Progress::new();
    let files = args.input.read()?;
    let params = Params {
        mechanism: args.mechanism.into(),
        tie_breaking: args.input.tie_breaking(),
        reserve_order: args.input.reserve_order(),
    };
    // Nothing is opened or written for a request that cannot run.
    let folder = DataDir::new(data);
    allocation::check_run::<Schools>(&files.input, &params, beacon.as_ref(), &folder, &args.out)?;
    let log = Log::open(&folder, LogOptions::default())?;
    let request = RunRequest {
        log: &log,
        beacon: beacon.as_ref(),
        actor: &args.actor,
        out: &args.out,
    };
    let published = school::run(&files, &params, &request, &mut |s| progress.stage(s))?;
    progress.finish();
    let info = &published.info;
    let counts = &info.run.counts;
    println!(
        "{}: assigned {} of {} students to {} seats ({} lottery, {} tie-breaking), solve {:.4} s",
        params.mechanism.name(),
        counts.assigned,
        counts.participants,
        counts.places,
        if files.input.lottery_given {
            "given"
        } else {
            "drawn"
        },
        params.tie_breaking.name(),
        info.solve_seconds
    );
    print_published(info, &published.out, "assignments");
    Ok(())
}

fn compare(args: CompareArgs) -> Result<()> {
    let beacon = args.beacon.beacon()?;
    let files = args.input.read()?;
    let input = &files.input;
    let mechanisms: Vec<Mechanism> = match &args.mechanisms {
        Some(list) => list.iter().map(|&m| m.into()).collect(),
        None => Mechanism::ALL
            .into_iter()
            .filter(|m| input.reserves.is_empty() || m.supports_reserves())
            .collect(),
    };
    let (tie, order) = (args.input.tie_breaking(), args.input.reserve_order());
    let digest = set_digest::<Schools>(input);
    let base = lottery_seed(&digest, beacon.as_ref().map_or(&[][..], |b| &b.value));
    let columns: Vec<(String, Vec<Stats>)> = match args.draws {
        None => {
            let drawn = !input.lottery_given || tie == TieBreaking::Multiple;
            let seed: Option<Seed> = match (&beacon, drawn) {
                (Some(_), true) => Some(base),
                (None, false) => None,
                (Some(_), false) => bail!(
                    "the students have lottery numbers: --beacon is only used when they are \
                     drawn (or with --draws)"
                ),
                (None, true) => bail!(
                    "the lottery numbers are drawn here (no `lottery` column, or multiple \
                     tie-breaking): give --beacon HEX, or --draws N"
                ),
            };
            school::compare(input, &mechanisms, tie, order, seed.as_ref())?
                .into_iter()
                .map(|(m, s)| (m.name().to_owned(), vec![s]))
                .collect()
        }
        Some(0) => bail!("--draws: give at least 1"),
        Some(draws) => school::compare_draws(input, &mechanisms, tie, order, &base, draws)?
            .into_iter()
            .map(|(m, s)| (m.name().to_owned(), s))
            .collect(),
    };
    let ranks = columns
        .iter()
        .flat_map(|(_, s)| s)
        .map(|s| s.rank_counts.len())
        .max()
        .unwrap_or(0);
    let mut labels = vec!["assigned".to_owned()];
    labels.extend((1..=ranks).map(|r| format!("at choice {r}")));
    labels.extend(
        [
            "unassigned",
            "blocking pairs",
            "justified envy",
            "solve seconds",
        ]
        .map(String::from),
    );
    let values = |s: &Stats| {
        let mut v = vec![s.assigned as f64];
        v.extend((0..ranks).map(|r| s.rank_counts.get(r).copied().unwrap_or(0) as f64));
        v.extend([
            s.unassigned as f64,
            s.blocking_pairs as f64,
            s.justified_envy as f64,
            s.solve_seconds,
        ]);
        v
    };
    Comparison {
        title: format!("{} students", input.students.len()),
        labels,
        columns: columns
            .into_iter()
            .map(|(name, runs)| (name, runs.iter().map(values).collect()))
            .collect(),
        draws: args.draws,
    }
    .print(args.json);
    Ok(())
}

fn mechanism_pb(m: MechanismArg) -> pb::SchoolMechanism {
    match m {
        MechanismArg::Da => pb::SchoolMechanism::StudentDa,
        MechanismArg::SchoolDa => pb::SchoolMechanism::SchoolDa,
        MechanismArg::Ttc => pb::SchoolMechanism::Ttc,
        MechanismArg::Boston => pb::SchoolMechanism::ImmediateAcceptance,
        MechanismArg::Eada => pb::SchoolMechanism::Eada,
    }
}

fn tie_breaking_pb(t: TieBreakingArg) -> pb::TieBreaking {
    match t {
        TieBreakingArg::Single => pb::TieBreaking::Single,
        TieBreakingArg::Multiple => pb::TieBreaking::Multiple,
    }
}

fn reserve_order_pb(o: ReserveOrderArg) -> pb::ReserveOrder {
    match o {
        ReserveOrderArg::ReservedFirst => pb::ReserveOrder::ReservedFirst,
        ReserveOrderArg::OpenFirst => pb::ReserveOrder::OpenFirst,
    }
}

/// The applications of validated files as stream messages (schools and priorities first).
fn submissions(
    window: &str,
    input: &school::SchoolInput,
) -> Vec<pb::SubmitSchoolApplicationsRequest> {
    const PER_MESSAGE: usize = 10_000;
    let schools = input
        .schools
        .iter()
        .enumerate()
        .map(|(j, s)| pb::School {
            id: s.id.clone(),
            capacity: s.capacity,
            reserves: input
                .reserves
                .iter()
                .filter(|r| r.school as usize == j)
                .map(|r| pb::SeatReserve {
                    priority_class: r.class,
                    seats: r.seats,
                })
                .collect(),
        })
        .collect();
    let priorities = input
        .priorities
        .iter()
        .map(|p| pb::SchoolPriority {
            school: input.schools[p.school as usize].id.clone(),
            student: input.students[p.student as usize].id.clone(),
            priority: p.class,
        })
        .collect();
    let mut messages = vec![pb::SubmitSchoolApplicationsRequest {
        window: window.to_owned(),
        schools,
        students: Vec::new(),
        priorities,
    }];
    for chunk in input.students.chunks(PER_MESSAGE) {
        messages.push(pb::SubmitSchoolApplicationsRequest {
            window: String::new(),
            schools: Vec::new(),
            students: chunk
                .iter()
                .map(|st| pb::Student {
                    id: st.id.clone(),
                    lottery: st.lottery,
                    choices: st
                        .choices
                        .iter()
                        .map(|&j| input.schools[j as usize].id.clone())
                        .collect(),
                })
                .collect(),
            priorities: Vec::new(),
        });
    }
    messages
}

fn run_remote(command: SchoolCommand, remote: &Remote) -> Result<()> {
    let mut c = remote.schools();
    match command {
        SchoolCommand::Run(args) => {
            let beacon = args.beacon.beacon()?;
            let files = args.input.read()?;
            let window =
                allocation::window_id(Domain::Schools, &set_digest::<Schools>(&files.input));
            let added = remote.block_on(
                c.submit_applications(tokio_stream::iter(submissions(&window, &files.input))),
            )?;
            println!(
                "submitted {} schools, {} students and {} priorities to window {window}",
                added.get_ref().schools_total,
                added.get_ref().students_total,
                added.get_ref().priorities_total
            );
            run_window(
                remote,
                &window,
                pb::RunSchoolAllocationRequest {
                    window: window.clone(),
                    mechanism: mechanism_pb(args.mechanism) as i32,
                    tie_breaking: tie_breaking_pb(args.input.tie_breaking) as i32,
                    reserve_order: reserve_order_pb(args.input.reserve_order) as i32,
                    beacon: beacon.as_ref().map(remote_beacon),
                    request_id: String::new(),
                },
                Some(&args.out),
            )
        }
        SchoolCommand::RunWindow(args) => {
            let beacon = args.beacon.beacon()?;
            run_window(
                remote,
                &args.window,
                pb::RunSchoolAllocationRequest {
                    window: args.window.clone(),
                    mechanism: mechanism_pb(args.mechanism) as i32,
                    tie_breaking: tie_breaking_pb(args.tie_breaking) as i32,
                    reserve_order: reserve_order_pb(args.reserve_order) as i32,
                    beacon: beacon.as_ref().map(remote_beacon),
                    request_id: String::new(),
                },
                None,
            )
        }
        SchoolCommand::Verify { run } => {
            let run_id = remote_run_id(Some(&run))?;
            let v = remote.block_on(c.verify(pb::VerifySchoolRunRequest { run_id }))?;
            remote_verification(v.into_inner().verification.unwrap_or_default())
        }
        SchoolCommand::Explain { student, run } => {
            let run_id = remote_run_id(run.as_deref())?;
            let e =
                remote.block_on(c.explain(pb::ExplainSchoolOutcomeRequest { run_id, student }))?;
            for line in &e.get_ref().lines {
                println!("{line}");
            }
            Ok(())
        }
        SchoolCommand::Compare(_) => unreachable!("compare runs locally"),
    }
}

/// Closes a server's window and runs it; prints the run (and writes `summary.json` to `out`).
fn run_window(
    remote: &Remote,
    window: &str,
    request: pb::RunSchoolAllocationRequest,
    out: Option<&Path>,
) -> Result<()> {
    let mut c = remote.schools();
    let commitment = remote
        .block_on(c.close_applications(pb::CloseSchoolApplicationsRequest {
            window: window.to_owned(),
        }))?
        .into_inner()
        .commitment
        .unwrap_or_default();
    println!(
        "window {window} closed at entry {}: {} students, set digest {}",
        commitment.log_index,
        commitment.applications,
        hex::encode(&commitment.set_digest)
    );
    let run = remote
        .block_on(c.run_allocation(request))
        .map_err(|e| e.context("run"))?
        .into_inner();
    let summary = run.summary.clone().unwrap_or_default();
    let log = run.log.unwrap_or_default();
    println!(
        "assigned {} of {} students ({} blocking pairs, {} with justified envy), solve {:.4} s",
        summary.assigned,
        summary.students,
        summary.blocking_pairs,
        summary.justified_envy,
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
            "students": summary.students,
            "assigned": summary.assigned,
            "blocking_pairs": summary.blocking_pairs,
            "justified_envy": summary.justified_envy,
            "log": {"start": log.start, "end": log.end},
        });
        std::fs::write(out.join("summary.json"), format!("{json:#}\n"))
            .with_context(|| format!("writing {}", out.join("summary.json").display()))?;
        println!("results in {}", out.display());
    }
    Ok(())
}
