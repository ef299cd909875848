//! `allot fair ...`: weekend-fair stall allocation, over the `Fairs` API: the shared commands
//! (in [`super::allocation`]) with the fair's files, mechanisms and help.

use std::path::{Path, PathBuf};

use allot_engine::allocation::{self as engine, Comparison, Lottery};
use allot_engine::fair::{self, FairFiles, FairInput, Fairs, Mechanism, Params, Precedence};
use anyhow::Result;
use clap::{Args, ValueEnum};

use super::allocation::{self as shared, Command, Domain, Help, ParamArgs};
use super::api::RemoteArgs;

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
                  Every run and every outcome is a decision in the log of --data (or of the \
                  server given with --server)."
)]
pub struct FairArgs {
    #[command(subcommand)]
    command: Command<FairCli>,
}

pub fn run(args: FairArgs, data: &Path, remote: &RemoteArgs) -> Result<()> {
    shared::run(args.command, data, remote)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MechanismArg {
    /// Applicant-proposing deferred acceptance, priority (tier, lottery): stable, strategy-proof.
    Da,
    /// Most applicants placed, tier 0 first, then tier 1, then tier 2; then least sum of rank².
    Welfare,
    /// Serial dictatorship in (tier, lottery) order (the same matching as da).
    Rsd,
}

impl MechanismArg {
    fn engine(self) -> Mechanism {
        match self {
            MechanismArg::Da => Mechanism::Da,
            MechanismArg::Welfare => Mechanism::Welfare,
            MechanismArg::Rsd => Mechanism::Rsd,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecedenceArg {
    /// At each fair, the applicant's own category's stalls before the open ('*') stalls.
    OwnFirst,
    /// At each fair, the open ('*') stalls before the applicant's own category's.
    OpenFirst,
}

#[derive(Debug, Clone, Copy, Args)]
pub struct Rules {
    /// At each fair, whether the applicant's own category's pool or the open pool comes first.
    #[arg(long, value_enum, default_value = "own-first")]
    precedence: PrecedenceArg,
}

impl Rules {
    fn engine(self) -> Precedence {
        match self.precedence {
            PrecedenceArg::OwnFirst => Precedence::OwnFirst,
            PrecedenceArg::OpenFirst => Precedence::OpenFirst,
        }
    }
}

#[derive(Debug, Args)]
pub struct InputArgs {
    /// The stall pools: fair,district,category,stalls.
    #[arg(long, value_name = "FILE")]
    fairs: PathBuf,
    /// The applications: applicant,category,tier,lottery,choices (lottery optional).
    #[arg(long, value_name = "FILE")]
    applicants: PathBuf,
}

/// The fair domain's side of the shared commands.
#[derive(Debug, Clone, Copy)]
pub struct FairCli;

impl Domain for FairCli {
    type Engine = Fairs;
    const WORD: &'static str = "fair";
    const OUTCOMES: &'static str = "outcomes";
    const PARTICIPANT: &'static str = "APPLICANT";
    const ACTOR: &'static str = "fair-admin";
    const HELP: Help = Help {
        run: "Submit the applications, close the window, allocate the stalls, log every \
              outcome, publish the results",
        run_long: "Submit the applications, close the window, allocate the stalls, log every \
                   outcome, publish the results.\n\n\
                   Writes DIR/assignment.csv (applicant,fair,category,rank; empty fair when not \
                   placed; in the order of applicants.csv), DIR/cutoffs.csv (per pool: tier and \
                   lottery of the last admitted, empty when the pool has stalls left), \
                   DIR/waitlist.csv (per pool, in the order given-back stalls are re-offered) and \
                   DIR/summary.json. DIR must not exist yet; it appears complete or not at all. \
                   Bad input: one error naming file:line: field, nothing written, nothing logged.",
        run_example: "Example:\n  allot fair run --fairs fairs.csv --applicants applicants.csv \
                      --out results/2025-spring",
        explain: "Explain an applicant's outcome: for each fair ranked above the one received, \
                  that pool's cutoff against the applicant's own tier and lottery number",
        compare: "Compare mechanisms on the same input: placed per tier and rank distribution \
                  side by side, once or over N lottery draws (nothing is logged)",
        compare_example: "Example:\n  allot fair compare --fairs fairs.csv --applicants \
                          applicants.csv --draws 1000",
    };

    type Input = InputArgs;
    type Files = FairFiles;
    type Mechanism = MechanismArg;
    type Rules = Rules;

    fn read(input: &InputArgs) -> Result<FairFiles> {
        Ok(fair::read(&input.fairs, &input.applicants)?)
    }

    fn input(files: &FairFiles) -> &FairInput {
        &files.input
    }

    fn engine_params(params: ParamArgs<Self>) -> Params {
        Params {
            mechanism: params.mechanism.engine(),
            precedence: params.rules.engine(),
        }
    }

    fn drawn(input: &FairInput, _: Rules) -> Option<&'static str> {
        (!input.lottery_given).then_some("the applicants have no `lottery` column")
    }

    fn comparison(
        input: &FairInput,
        mechanisms: &[MechanismArg],
        rules: Rules,
        lottery: &Lottery,
    ) -> engine::Result<Comparison> {
        let mechanisms: Vec<Mechanism> = mechanisms.iter().map(|m| m.engine()).collect();
        fair::comparison(input, &mechanisms, rules.engine(), lottery)
    }
}
