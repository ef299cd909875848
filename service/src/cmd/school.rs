//! `allot school ...`: school enrolment, over the `Schools` API: the shared commands (in
//! [`super::allocation`]) with the school's files, mechanisms, rules and help.

use std::path::{Path, PathBuf};

use allot_engine::allocation::{self as engine, Comparison, Lottery};
use allot_engine::school::{
    self, Mechanism, Params, ReserveOrder, SchoolFiles, SchoolInput, SchoolPaths, Schools,
    TieBreaking,
};
use anyhow::Result;
use clap::{Args, ValueEnum};

use super::allocation::{self as shared, Command, Domain, Help, ParamArgs};
use super::api::RemoteArgs;

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
                  assignment is a decision in the log of --data (or of the server given with \
                  --server)."
)]
pub struct SchoolArgs {
    #[command(subcommand)]
    command: Command<SchoolCli>,
}

pub fn run(args: SchoolArgs, data: &Path, remote: &RemoteArgs) -> Result<()> {
    shared::run(args.command, data, remote)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MechanismArg {
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

impl MechanismArg {
    fn engine(self) -> Mechanism {
        match self {
            MechanismArg::Da => Mechanism::Da,
            MechanismArg::SchoolDa => Mechanism::SchoolDa,
            MechanismArg::Ttc => Mechanism::Ttc,
            MechanismArg::Boston => Mechanism::Boston,
            MechanismArg::Eada => Mechanism::Eada,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TieBreakingArg {
    /// One lottery number per student, used at every school.
    Single,
    /// One lottery number per (student, school), drawn from --beacon.
    Multiple,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReserveOrderArg {
    /// Reserved seats (by class) before the open seats: the reserve takes the best students of
    /// its class, the open seats the best of everybody left.
    ReservedFirst,
    /// Open seats before the reserved ones: the open seats take the best of any class, the
    /// reserve the best of its class left (and stays empty when none are left).
    OpenFirst,
}

/// How lottery numbers break ties, and which seats fill first.
#[derive(Debug, Clone, Copy, Args)]
pub struct Rules {
    /// At schools with reserves, whether reserved or open seats are filled first.
    #[arg(long, value_enum, default_value = "reserved-first")]
    reserve_order: ReserveOrderArg,
    /// How lottery numbers break ties within a priority class.
    #[arg(long, value_enum, default_value = "single")]
    tie_breaking: TieBreakingArg,
}

impl Rules {
    fn tie_breaking(self) -> TieBreaking {
        match self.tie_breaking {
            TieBreakingArg::Single => TieBreaking::Single,
            TieBreakingArg::Multiple => TieBreaking::Multiple,
        }
    }

    fn reserve_order(self) -> ReserveOrder {
        match self.reserve_order {
            ReserveOrderArg::ReservedFirst => ReserveOrder::ReservedFirst,
            ReserveOrderArg::OpenFirst => ReserveOrder::OpenFirst,
        }
    }
}

#[derive(Debug, Args)]
pub struct InputArgs {
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
}

/// The school domain's side of the shared commands.
#[derive(Debug, Clone, Copy)]
pub struct SchoolCli;

impl Domain for SchoolCli {
    type Engine = Schools;
    const WORD: &'static str = "school";
    const OUTCOMES: &'static str = "assignments";
    const PARTICIPANT: &'static str = "STUDENT";
    const ACTOR: &'static str = "enrolment-officer";
    const HELP: Help = Help {
        run: "Submit the applications, close the window, assign the seats, log every \
              assignment, publish the results",
        run_long: "Submit the applications, close the window, assign the seats, log every \
                   assignment, publish the results.\n\n\
                   Writes DIR/assignment.csv (student,school,rank; empty school when \
                   unassigned; in the order of students.csv), DIR/cutoffs.csv (per school: class \
                   and lottery of the last admitted, empty when it has seats left), \
                   DIR/block_cutoffs.csv (with reserves: per seat block) and DIR/summary.json. \
                   DIR must not exist yet; it appears complete or not at all. Bad input: one \
                   error naming file:line: field, nothing written, nothing logged.",
        run_example: "Example:\n  allot school run --schools schools.csv --students students.csv \
                      --priorities priorities.csv --out results/2025",
        explain: "Explain a student's assignment: for each school ranked above the one \
                  received, its cutoff against the student's own priority class and lottery \
                  number there",
        compare: "Compare mechanisms on the same input: assigned, rank table, blocking pairs \
                  and justified envy side by side, once or over N lottery draws (nothing is \
                  logged)",
        compare_example: "Example:\n  allot school compare --schools schools.csv --students \
                          students.csv --priorities priorities.csv --mechanisms da,ttc,boston",
    };

    type Input = InputArgs;
    type Files = SchoolFiles;
    type Mechanism = MechanismArg;
    type Rules = Rules;

    fn read(input: &InputArgs) -> Result<SchoolFiles> {
        Ok(school::read(SchoolPaths {
            schools: &input.schools,
            students: &input.students,
            priorities: &input.priorities,
            reserves: input.reserves.as_deref(),
        })?)
    }

    fn input(files: &SchoolFiles) -> &SchoolInput {
        &files.input
    }

    fn engine_params(params: ParamArgs<Self>) -> Params {
        Params {
            mechanism: params.mechanism.engine(),
            tie_breaking: params.rules.tie_breaking(),
            reserve_order: params.rules.reserve_order(),
        }
    }

    fn drawn(input: &SchoolInput, rules: Rules) -> Option<&'static str> {
        match (input.lottery_given, rules.tie_breaking()) {
            (_, TieBreaking::Multiple) => Some("multiple tie-breaking"),
            (false, _) => Some("the students have no `lottery` column"),
            (true, TieBreaking::Single) => None,
        }
    }

    fn comparison(
        input: &SchoolInput,
        mechanisms: &[MechanismArg],
        rules: Rules,
        lottery: &Lottery,
    ) -> engine::Result<Comparison> {
        let mechanisms: Vec<Mechanism> = mechanisms.iter().map(|m| m.engine()).collect();
        let (tie, order) = (rules.tie_breaking(), rules.reserve_order());
        school::comparison(input, &mechanisms, tie, order, lottery)
    }
}
