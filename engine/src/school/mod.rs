//! School enrolment: seats by priority, lottery and the students' choices.
//!
//! **Input.** `schools.csv` (`school,capacity`), `students.csv` (`student,lottery,choices`; the
//! lottery column is optional; `choices` are school ids separated by `;`, best first) and
//! `priorities.csv` (`school,student,priority`: class 0 is the highest; a pair not listed has the
//! lowest class, one below the lowest listed anywhere, so class 2 when classes 0 and 1 are used,
//! as in the reference implementations). Optionally `reserves.csv` (`school,class,seats`): seats
//! of a school reserved for students of one priority class there. [`read`] checks everything and
//! reports the first problem as `file:line: field: problem`.
//!
//! **Priority** at a school is `(class, lottery)`, lower first. **Tie-breaking** ([`TieBreaking`]):
//! `single` (the default) gives each student one lottery number used at every school (from the
//! lottery column, or drawn once per student from the verifiable seed); `multiple` draws one
//! number per (student, school) from the seed (it needs the column to be absent).
//!
//! **Mechanisms** ([`Mechanism`]): `da` student-proposing deferred acceptance (the default:
//! stable, student-optimal, strategy-proof), `school-da` school-proposing (stable,
//! school-optimal), `ttc` top trading cycles (Pareto efficient, strategy-proof, not stable),
//! `boston` immediate acceptance (not strategy-proof), `eada` efficiency-adjusted DA (Pareto
//! efficient, weakly better than DA for every student, not strategy-proof).
//!
//! **Seat reserves.** A school with reserves is an ordered list of seat blocks: one block per
//! `reserves.csv` row (its seats, open only to students of that class there), and an open block
//! with the rest of the capacity. Each block takes, among the applicants no earlier block took,
//! the eligible ones with the best priority; reserves are hard (reserved seats nobody eligible
//! takes stay empty). The [`ReserveOrder`] parameter sets the precedence, for every school alike:
//! `reserved-first` (the default) processes the reserved blocks (in increasing class order)
//! before the open block, `open-first` the open block first. The order changes outcomes when a
//! reserve's class has few applicants: open seats taken first go to the best students of any
//! class, the reserve's class included, and what is left of that class may not fill the reserve.
//! Capacity 2, one seat reserved for class 1 and one open, applicants w (class 1) and o (class 2):
//! `reserved-first` admits w to the reserve and o to the open seat; `open-first` gives the open
//! seat to w (class 1 comes first) and leaves the reserved seat empty, turning o away. Where a
//! reserve's class is not also a priority (slot-specific priorities), the order also decides
//! which of its students the reserve helps (Dur, Kominers, Pathak and Sönmez 2018 on Boston's
//! walk zones). `da`, `school-da` and `boston` support reserves; `ttc` and `eada` refuse them.
//!
//! **Outputs and decisions** follow [`crate::allocation`]: a student's placement is the school
//! (the logged outcome's `assigned`) and its rank; there is no detail.

mod canonical;
mod compare;
mod explain;
mod publish;
mod read;
mod solve;

pub use compare::{Stats, compare, compare_draws, comparison, stats, stats_with};
pub use explain::explain;
pub use publish::{
    BlockCutoffRow, InputFigures, SCHOOL_TABLES, SchoolAssignmentRow, SchoolCutoffRow,
    SchoolPublisher, SchoolTables, summary,
};
pub use read::{SchoolFiles, SchoolPaths, read, read_tables};

use allot_solvers::matching::{Market, Seed};

use crate::allocation::{self, Allocation, Error, Placement, Result};
use crate::log::Parameters;
use crate::log::decision::Domain;

/// A school and its seats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct School {
    pub id: String,
    pub capacity: u32,
}

/// One application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Student {
    pub id: String,
    /// Present exactly when the input has a lottery column.
    pub lottery: Option<u64>,
    /// Schools, best first, as indices into [`SchoolInput::schools`].
    pub choices: Vec<u32>,
}

/// A student's priority class at a school.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Priority {
    pub school: u32,
    pub student: u32,
    pub class: u32,
}

/// Seats of a school reserved for one priority class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reserve {
    pub school: u32,
    pub class: u32,
    pub seats: u32,
}

/// A validated school input in canonical order: schools and students sorted by id, priorities by
/// (school, student), reserves by (school, class).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolInput {
    pub schools: Vec<School>,
    pub students: Vec<Student>,
    pub priorities: Vec<Priority>,
    pub reserves: Vec<Reserve>,
    pub lottery_given: bool,
}

impl SchoolInput {
    /// The class of pairs not listed in the priorities: one below the lowest listed class.
    pub fn default_class(&self) -> u32 {
        self.priorities
            .iter()
            .map(|p| p.class.saturating_add(1))
            .max()
            .unwrap_or(0)
    }

    pub fn student(&self, id: &str) -> Option<u32> {
        self.students
            .binary_search_by(|s| s.id.as_str().cmp(id))
            .ok()
            .map(|i| i as u32)
    }

    pub fn total_seats(&self) -> u64 {
        self.schools.iter().map(|s| u64::from(s.capacity)).sum()
    }
}

/// The school mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mechanism {
    /// Student-proposing deferred acceptance (the default).
    #[default]
    Da,
    /// School-proposing deferred acceptance.
    SchoolDa,
    /// Top trading cycles.
    Ttc,
    /// Immediate acceptance (the Boston mechanism).
    Boston,
    /// Efficiency-adjusted deferred acceptance.
    Eada,
}

impl Mechanism {
    pub const ALL: [Mechanism; 5] = [
        Mechanism::Da,
        Mechanism::SchoolDa,
        Mechanism::Ttc,
        Mechanism::Boston,
        Mechanism::Eada,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Da => "da",
            Mechanism::SchoolDa => "school-da",
            Mechanism::Ttc => "ttc",
            Mechanism::Boston => "boston",
            Mechanism::Eada => "eada",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn supports_reserves(self) -> bool {
        matches!(
            self,
            Mechanism::Da | Mechanism::SchoolDa | Mechanism::Boston
        )
    }
}

/// How lottery numbers break ties within a priority class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TieBreaking {
    /// One number per student, the same at every school (the default).
    #[default]
    Single,
    /// One number per (student, school), drawn from the seed.
    Multiple,
}

impl TieBreaking {
    pub fn name(self) -> &'static str {
        match self {
            TieBreaking::Single => "single",
            TieBreaking::Multiple => "multiple",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [TieBreaking::Single, TieBreaking::Multiple]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

/// The precedence of reserved and open seats at a school with reserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReserveOrder {
    /// Reserved blocks (by class), then the open seats (the default).
    #[default]
    ReservedFirst,
    /// The open seats, then the reserved blocks (by class).
    OpenFirst,
}

impl ReserveOrder {
    pub fn name(self) -> &'static str {
        match self {
            ReserveOrder::ReservedFirst => "reserved-first",
            ReserveOrder::OpenFirst => "open-first",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [ReserveOrder::ReservedFirst, ReserveOrder::OpenFirst]
            .into_iter()
            .find(|o| o.name() == name)
    }
}

/// A school run's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params {
    pub mechanism: Mechanism,
    pub tie_breaking: TieBreaking,
    pub reserve_order: ReserveOrder,
}

/// A block of seats of a school with reserves, in precedence order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// `None`: open to every student.
    pub class: Option<u32>,
    pub seats: u32,
}

/// A solved school allocation.
#[derive(Debug, Clone)]
pub struct SchoolSolved {
    pub mechanism: Mechanism,
    /// One student per student (same index), one school per school; each entry's key is
    /// `(class, lottery)` as [`allot_solvers::matching::priority_key`] packs it.
    pub market: Market,
    /// Per student, the position in its list of the school it got.
    pub position: Vec<Option<u32>>,
    /// Per school, the priority key (class, lottery) of the last admitted, when it is full (see
    /// each mechanism's documentation for what "last admitted" means).
    pub cutoffs: Vec<Option<u64>>,
    /// Per school with reserves: its blocks in precedence order and their cutoffs.
    pub blocks: Vec<(u32, Vec<Block>, Vec<Option<u64>>)>,
    /// Immediate acceptance only: per school, the 0-based round it filled.
    pub filled_in_round: Option<Vec<Option<u32>>>,
    /// The mechanism's own time, after the market is built (as the reference's timer).
    pub solve_seconds: f64,
}

impl SchoolSolved {
    pub fn school_of(&self, student: u32) -> Option<u32> {
        let position = self.position[student as usize]?;
        Some(self.market.list(student)[position as usize])
    }

    pub fn rank_of(&self, student: u32) -> Option<u32> {
        Some(self.position[student as usize]? + 1)
    }
}

/// The school domain, for [`crate::allocation`].
#[derive(Debug, Clone, Copy)]
pub struct Schools;

/// A seat given back goes down its school's waitlist ([`allocation::give_back`]); at a school
/// with reserves, to the first student the school's choice function takes with everybody it
/// still holds (a freed reserved seat is never given to a student outside its class).
impl allocation::Vacancies for Schools {
    const PLACE: &'static str = "seat";

    fn market(solved: &SchoolSolved) -> &Market {
        &solved.market
    }

    fn run_position(solved: &SchoolSolved) -> &[Option<u32>] {
        &solved.position
    }

    fn place_of(input: &SchoolInput, school: u32) -> &str {
        &input.schools[school as usize].id
    }

    fn participant(input: &SchoolInput, id: &str) -> Option<u32> {
        input.student(id)
    }

    fn participant_id(input: &SchoolInput, i: u32) -> &str {
        &input.students[i as usize].id
    }

    fn first_taken(
        solved: &SchoolSolved,
        school: u32,
        state: &allocation::Holdings,
        waitlist: &mut dyn Iterator<Item = u32>,
    ) -> Result<Option<u32>> {
        if !solved.blocks.iter().any(|(s, _, _)| *s == school) {
            return Ok(waitlist.next());
        }
        let Some(reserves) = solve::reserves(solved)? else {
            return Ok(waitlist.next());
        };
        let mut offered = state.holders(&solved.market, school);
        for j in waitlist {
            offered.push(j);
            if reserves.chooses_all(school, &offered) {
                return Ok(Some(j));
            }
            offered.pop();
        }
        Ok(None)
    }
}

impl Allocation for Schools {
    const DOMAIN: Domain = Domain::Schools;
    type Input = SchoolInput;
    type Params = Params;
    type Solved = SchoolSolved;

    fn encode(input: &SchoolInput) -> Vec<u8> {
        canonical::encode(input)
    }

    fn decode(bytes: &[u8]) -> Result<SchoolInput, String> {
        canonical::decode(bytes)
    }

    fn participants(input: &SchoolInput) -> usize {
        input.students.len()
    }

    fn places(input: &SchoolInput) -> u64 {
        input.total_seats()
    }

    fn draws_lottery(input: &SchoolInput, params: &Params) -> Result<bool> {
        if !input.reserves.is_empty() && !params.mechanism.supports_reserves() {
            return Err(Error::Unsupported(format!(
                "{} does not support seat reserves (da, school-da and boston do): with reserves a \
                 school has no single priority order to trade or waive with",
                params.mechanism.name()
            )));
        }
        if params.tie_breaking == TieBreaking::Multiple && input.lottery_given {
            return Err(Error::Request(
                "multiple tie-breaking draws one number per (student, school) from a beacon \
                 value; the students' lottery column gives one per student: remove the column, \
                 or use single tie-breaking"
                    .into(),
            ));
        }
        Ok(!input.lottery_given)
    }

    fn mechanism(params: &Params) -> &'static str {
        params.mechanism.name()
    }

    fn parameters(params: &Params) -> Parameters {
        Parameters::from([
            ("reserve_order".into(), params.reserve_order.name().into()),
            ("tie_breaking".into(), params.tie_breaking.name().into()),
        ])
    }

    fn params_from(mechanism: &str, parameters: &Parameters) -> Result<Params> {
        let unknown =
            |what: &str, value: &str| Error::Unsupported(format!("unknown {what} '{value}'"));
        let mut params = Params {
            mechanism: Mechanism::parse(mechanism)
                .ok_or_else(|| unknown("school mechanism", mechanism))?,
            ..Params::default()
        };
        for (key, value) in parameters {
            match key.as_str() {
                "tie_breaking" => {
                    params.tie_breaking =
                        TieBreaking::parse(value).ok_or_else(|| unknown("tie-breaking", value))?
                }
                "reserve_order" => {
                    params.reserve_order =
                        ReserveOrder::parse(value).ok_or_else(|| unknown("reserve order", value))?
                }
                _ => return Err(unknown("school run parameter", key)),
            }
        }
        Ok(params)
    }

    fn solve(input: &SchoolInput, params: &Params, seed: Option<&Seed>) -> Result<SchoolSolved> {
        solve::solve(input, params, seed)
    }

    fn placement<'a>(input: &'a SchoolInput, solved: &'a SchoolSolved, i: u32) -> Placement<'a> {
        Placement {
            participant: &input.students[i as usize].id,
            place: (solved.school_of(i)).map(|j| input.schools[j as usize].id.as_str()),
            rank: solved.rank_of(i),
            detail: None,
        }
    }
}

/// Runs a school allocation by the shared protocol ([`allocation::run`]).
pub fn run(
    files: &SchoolFiles,
    params: &Params,
    request: &allocation::RunRequest<'_>,
    progress: &mut dyn FnMut(allocation::Stage),
) -> Result<allocation::Published<SchoolSolved>> {
    let publisher = SchoolPublisher::new(files);
    allocation::run::<Schools>(&files.input, params, request, &publisher, progress)
}
