//! Weekend-fair stalls: who trades where.
//!
//! **Input.** `fairs.csv` (`fair,district,category,stalls`) has one row per *stall pool*: the
//! stalls of one category of goods at one fair; category `*` is open to every category.
//! `applicants.csv` (`applicant,category,tier,lottery,choices`): tier 0 local farmer, 1 regional
//! producer, 2 other; `choices` are fair ids separated by `;`, best first; the `lottery` column is
//! optional (lower wins; distinct numbers up to 2^40 - 1). [`read`] checks everything and reports
//! the first problem as `file:line: field: problem`.
//!
//! **Pools as schools.** Every (fair, category) pool is one "school" of the matching core. An
//! applicant's list of fairs expands into a list of pools: at each listed fair, in the order the
//! [`Precedence`] parameter says, its own category's pool and the fair's `*` pool (pools with no
//! stalls are left out). Every pool ranks applicants by the same priority, `(tier, lottery)`, lower
//! first. An applicant gets at most one stall, of its own category or `*`, at a fair it listed.
//!
//! **Precedence** (a documented, configurable parameter): `own-first` (the default) tries the
//! applicant's own category's stalls before the fair's open stalls, keeping open stalls for
//! categories the fair has no pool for; `open-first` tries the open stalls first. It changes who
//! gets the open stalls under `da` and `rsd`; `welfare` gives both pools of a fair the same cost.
//!
//! **Mechanisms** ([`Mechanism`]):
//! - `da`: applicant-proposing deferred acceptance on the pools; stable (no applicant prefers a
//!   pool that has a free stall or holds someone of lower priority) and strategy-proof. Equal to
//!   `../shared/anchors/fair_oracle.py da`.
//! - `welfare`: place as many applicants as possible, tier 0 first, then tier 1, then tier 2,
//!   and among those plans minimise the sum of rank² (rank = the fair's 1-based position in the
//!   applicant's list). A min-cost flow (see [`welfare_network`]): one unit at each applicant,
//!   applicant → pool (rank² + tier · M), applicant → sink (3M: not placed), pool → sink (its
//!   stalls), with M above any possible sum of rank². Placed sets form a transversal matroid, so
//!   weights ordered by tier give the tier-lexicographic optimum and M keeps rank costs second.
//!   Applicants enter the network in priority order, so among equally good plans the lottery
//!   decides, and two applicants of the same tier, category and list are treated alike in
//!   distribution. Not strategy-proof: ranking a popular fair first can cost a stall.
//! - `rsd`: serial dictatorship in (tier, lottery) order: each applicant in turn takes the best
//!   pool on its list with a stall left. With one priority order common to every pool this is
//!   exactly the `da` matching (a known result: in DA with a common priority the best applicant
//!   is never rejected, so DA reduces to serial dictatorship in that order); it is kept so that
//!   planners can see it, and the tests check the equality.
//!
//! **Outputs and decisions** follow [`crate::allocation`]: the placement of an applicant is the
//! fair (logged as the outcome's `assigned`), its rank, and the pool's category (the outcome
//! digest's detail).

mod canonical;
mod compare;
mod explain;
mod publish;
mod read;
mod solve;

pub use compare::{Stats, compare, compare_draws, comparison, stats, stats_with};
pub use explain::explain;
pub use publish::{
    AssignmentRow, CutoffRow, FAIR_TABLES, FairPublisher, FairTables, WaitlistRow, summary,
};
pub use read::{FairFiles, read, read_tables};
pub use solve::{WelfareNetwork, welfare_network};

use allot_solvers::matching::{Market, Seed};

use crate::allocation::{self, Allocation, Error, Placement, Result};
use crate::log::Parameters;
use crate::log::decision::Domain;

/// The pool category open to every category of goods.
pub const OPEN: &str = "*";

/// Priority tiers, best first.
pub const TIERS: [&str; 3] = ["local farmer", "regional producer", "other"];

/// A fair: its id, district and the range of its pools in [`FairInput::pools`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fair {
    pub id: String,
    pub district: String,
    pub pools: std::ops::Range<u32>,
}

/// The stalls of one category (or [`OPEN`]) at one fair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// Index into [`FairInput::fairs`].
    pub fair: u32,
    pub category: String,
    pub stalls: u32,
}

/// One application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applicant {
    pub id: String,
    pub category: String,
    /// 0 local farmer, 1 regional producer, 2 other.
    pub tier: u8,
    /// Present exactly when the input has a lottery column.
    pub lottery: Option<u64>,
    /// Fairs, best first, as indices into [`FairInput::fairs`].
    pub choices: Vec<u32>,
}

/// A validated fair allocation input in canonical order: fairs sorted by id, each fair's pools by
/// category, applicants by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FairInput {
    pub fairs: Vec<Fair>,
    pub pools: Vec<Pool>,
    pub applicants: Vec<Applicant>,
    pub lottery_given: bool,
}

impl FairInput {
    /// The pool of `category` at `fair`, if the fair has one.
    pub fn pool(&self, fair: u32, category: &str) -> Option<u32> {
        let range = self.fairs.get(fair as usize)?.pools.clone();
        range
            .into_iter()
            .find(|&p| self.pools[p as usize].category == category)
    }

    /// The applicant with this id.
    pub fn applicant(&self, id: &str) -> Option<u32> {
        self.applicants
            .binary_search_by(|a| a.id.as_str().cmp(id))
            .ok()
            .map(|i| i as u32)
    }

    pub fn total_stalls(&self) -> u64 {
        self.pools.iter().map(|p| u64::from(p.stalls)).sum()
    }

    /// The fair id of a pool.
    pub fn fair_of(&self, pool: u32) -> &str {
        &self.fairs[self.pools[pool as usize].fair as usize].id
    }
}

/// The order of a fair's own-category pool and its open pool in an applicant's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precedence {
    /// The applicant's own category first, then `*` (the default).
    #[default]
    OwnFirst,
    /// `*` first, then the own category.
    OpenFirst,
}

impl Precedence {
    pub fn name(self) -> &'static str {
        match self {
            Precedence::OwnFirst => "own-first",
            Precedence::OpenFirst => "open-first",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Precedence::OwnFirst, Precedence::OpenFirst]
            .into_iter()
            .find(|p| p.name() == name)
    }
}

/// The fair allocation mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mechanism {
    /// Applicant-proposing deferred acceptance (the default).
    #[default]
    Da,
    /// Most placed per tier, then the least sum of rank².
    Welfare,
    /// Serial dictatorship in (tier, lottery) order.
    Rsd,
}

impl Mechanism {
    pub const ALL: [Mechanism; 3] = [Mechanism::Da, Mechanism::Welfare, Mechanism::Rsd];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Da => "da",
            Mechanism::Welfare => "welfare",
            Mechanism::Rsd => "rsd",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// A fair run's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params {
    pub mechanism: Mechanism,
    pub precedence: Precedence,
}

/// A solved fair allocation.
#[derive(Debug, Clone)]
pub struct FairSolved {
    pub mechanism: Mechanism,
    /// The pools market: one student per applicant (same index), one school per pool.
    pub market: Market,
    /// Per market entry, the 1-based position of its fair in the applicant's list.
    pub entry_rank: Vec<u32>,
    /// Per applicant, the lottery number used (given or drawn).
    pub lottery: Vec<u64>,
    /// Per applicant, the position in its pool list of the pool it got.
    pub position: Vec<Option<u32>>,
    /// Per pool, the priority key (tier, lottery) of the last admitted, when the pool is full.
    pub cutoffs: Vec<Option<u64>>,
    /// The mechanism's own time (after the market or network is built).
    pub solve_seconds: f64,
}

impl FairSolved {
    /// The pool an applicant got.
    pub fn pool_of(&self, applicant: u32) -> Option<u32> {
        let position = self.position[applicant as usize]?;
        Some(self.market.list(applicant)[position as usize])
    }

    /// The 1-based rank of the fair at `position` of the applicant's pool list.
    pub fn rank_at(&self, applicant: u32, position: u32) -> u32 {
        let offset = self.market.preferences().offsets()[applicant as usize];
        self.entry_rank[(offset + position) as usize]
    }

    /// The 1-based rank of the fair the applicant got.
    pub fn rank_of(&self, applicant: u32) -> Option<u32> {
        Some(self.rank_at(applicant, self.position[applicant as usize]?))
    }
}

/// The fair domain, for [`crate::allocation`].
#[derive(Debug, Clone, Copy)]
pub struct Fairs;

/// A stall given back goes down its pool's waitlist ([`allocation::give_back`]).
impl allocation::Vacancies for Fairs {
    const PLACE: &'static str = "stall";

    fn market(solved: &FairSolved) -> &Market {
        &solved.market
    }

    fn run_position(solved: &FairSolved) -> &[Option<u32>] {
        &solved.position
    }

    fn place_of(input: &FairInput, pool: u32) -> &str {
        input.fair_of(pool)
    }

    fn participant(input: &FairInput, id: &str) -> Option<u32> {
        input.applicant(id)
    }

    fn participant_id(input: &FairInput, i: u32) -> &str {
        &input.applicants[i as usize].id
    }
}

impl Allocation for Fairs {
    const DOMAIN: Domain = Domain::Fairs;
    type Input = FairInput;
    type Params = Params;
    type Solved = FairSolved;

    fn encode(input: &FairInput) -> Vec<u8> {
        canonical::encode(input)
    }

    fn decode(bytes: &[u8]) -> Result<FairInput, String> {
        canonical::decode(bytes)
    }

    fn participants(input: &FairInput) -> usize {
        input.applicants.len()
    }

    fn places(input: &FairInput) -> u64 {
        input.total_stalls()
    }

    fn draws_lottery(input: &FairInput, _: &Params) -> Result<bool> {
        Ok(!input.lottery_given)
    }

    fn mechanism(params: &Params) -> &'static str {
        params.mechanism.name()
    }

    fn parameters(params: &Params) -> Parameters {
        Parameters::from([("precedence".into(), params.precedence.name().into())])
    }

    fn params_from(mechanism: &str, parameters: &Parameters) -> Result<Params> {
        let mechanism = Mechanism::parse(mechanism)
            .ok_or_else(|| Error::Unsupported(format!("unknown fair mechanism '{mechanism}'")))?;
        let mut precedence = Precedence::default();
        for (key, value) in parameters {
            match key.as_str() {
                "precedence" => {
                    precedence = Precedence::parse(value).ok_or_else(|| {
                        Error::Unsupported(format!("unknown pool precedence '{value}'"))
                    })?
                }
                _ => {
                    return Err(Error::Unsupported(format!(
                        "unknown fair run parameter '{key}'"
                    )));
                }
            }
        }
        Ok(Params {
            mechanism,
            precedence,
        })
    }

    fn solve(input: &FairInput, params: &Params, seed: Option<&Seed>) -> Result<FairSolved> {
        solve::solve(input, params, seed)
    }

    fn placement<'a>(input: &'a FairInput, solved: &'a FairSolved, i: u32) -> Placement<'a> {
        let pool = solved.pool_of(i);
        Placement {
            participant: &input.applicants[i as usize].id,
            place: pool.map(|p| input.fair_of(p)),
            rank: solved.rank_of(i),
            detail: pool.map(|p| input.pools[p as usize].category.as_str()),
        }
    }
}

/// Runs a fair allocation by the shared protocol ([`allocation::run`]).
pub fn run(
    files: &FairFiles,
    params: &Params,
    request: &allocation::RunRequest<'_>,
    progress: &mut dyn FnMut(allocation::Stage),
) -> Result<allocation::Published<FairSolved>> {
    let publisher = FairPublisher::new(files);
    allocation::run::<Fairs>(&files.input, params, request, &publisher, progress)
}
