//! Many-to-one matching mechanisms on integer ids: students with strict, possibly incomplete
//! preference lists over schools, schools with capacities and strict priorities.
//!
//! - [`Preferences`] and [`Market`]: the input, validated on construction (ids in range, no
//!   school listed twice, strict priorities), stored as flat arrays: one preference list per
//!   student (CSR offsets + school ids) with a parallel `u64` priority key per entry, lower key =
//!   higher priority at that school ([`priority_key`] builds `class << 40 | lottery`).
//! - Mechanisms, each returning an [`Outcome`] (a feasible [`Matching`] plus one cutoff per
//!   school, whose meaning each mechanism documents): [`deferred_acceptance`] (student-proposing,
//!   the default), [`school_proposing_deferred_acceptance`], [`top_trading_cycles`],
//!   [`immediate_acceptance`] (Boston), [`serial_dictatorship`] and
//!   [`efficiency_adjusted_deferred_acceptance`]; [`Mechanism`] selects one by name.
//! - Verifiers on a [`Matching`]: blocking pairs, justified envy, a Pareto-improvement witness;
//!   feasibility is [`Matching::new`].
//! - Verifiable lotteries ([`single_tie_break`], [`multiple_tie_break`]) from a 32-byte [`Seed`].
//!
//! - Seat reserves ([`Reserves`]): a school as an ordered list of [`SeatBlock`]s, each open or
//!   reserved for some priority classes, filled by sequential processing in the documented
//!   precedence order. [`deferred_acceptance_with_reserves`],
//!   [`school_proposing_deferred_acceptance_with_reserves`] and
//!   [`immediate_acceptance_with_reserves`] respect them and return a [`ReservedOutcome`] with a
//!   cutoff per block; TTC and efficiency-adjusted DA do not support them
//!   ([`Mechanism::run_with_reserves`] says so with [`ReservesUnsupported`]).
//!
//! Extension points for the domains. Stall pools (a fair's own-category pool, then its open
//! pool) are plain schools: the caller expands each listed fair into its pools in precedence
//! order, with the same (tier, lottery) key at every pool, and gets per-pool cutoffs. Seat
//! reserves are a different admission rule for the same student-proposing loop: `da::Admission`
//! is the seam, with the plain top-`capacity` heap (used by [`deferred_acceptance`], untouched by
//! reserves) and the block heaps of [`deferred_acceptance_with_reserves`] as implementations.

mod boston;
mod da;
mod eada;
mod lottery;
mod market;
mod outcome;
mod reserves;
mod rsd;
mod ttc;
mod verify;

pub use boston::{
    ImmediateAcceptance, ReservedImmediateAcceptance, immediate_acceptance,
    immediate_acceptance_with_reserves,
};
pub use da::{
    deferred_acceptance, deferred_acceptance_with_reserves, school_proposing_deferred_acceptance,
    school_proposing_deferred_acceptance_with_reserves,
};
pub use eada::{
    efficiency_adjusted_deferred_acceptance, efficiency_adjusted_deferred_acceptance_by_rounds,
};
pub use lottery::{
    LotteryError, MULTIPLE_TAG, SINGLE_TAG, Seed, multiple_draw, multiple_tie_break, single_draw,
    single_tie_break,
};
pub use market::{
    LOTTERY_BITS, MAX_CLASS, MAX_LOTTERY, Market, MarketError, Preferences, PreferencesBuilder,
    priority_key,
};
pub use outcome::{InfeasibleMatching, Matching, Outcome};
pub use reserves::{
    Eligibility, ReserveError, ReservedOutcome, Reserves, ReservesUnsupported, SeatBlock,
};
pub use rsd::{OrderError, SerialOrder, serial_dictatorship};
pub use ttc::top_trading_cycles;
pub use verify::{Pair, ParetoImprovement};

/// The mechanisms that need nothing but the market (serial dictatorship also needs an order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// Student-proposing deferred acceptance: stable, student-optimal, strategy-proof.
    DeferredAcceptance,
    /// School-proposing deferred acceptance: stable, school-optimal.
    SchoolProposingDeferredAcceptance,
    /// Top trading cycles: Pareto efficient, strategy-proof, not stable.
    TopTradingCycles,
    /// Immediate acceptance (Boston): not strategy-proof.
    ImmediateAcceptance,
    /// Efficiency-adjusted deferred acceptance, all students consenting: Pareto efficient and
    /// weakly better than deferred acceptance for every student.
    EfficiencyAdjustedDeferredAcceptance,
}

impl Mechanism {
    pub const ALL: [Mechanism; 5] = [
        Mechanism::DeferredAcceptance,
        Mechanism::SchoolProposingDeferredAcceptance,
        Mechanism::TopTradingCycles,
        Mechanism::ImmediateAcceptance,
        Mechanism::EfficiencyAdjustedDeferredAcceptance,
    ];

    pub fn run(self, market: &Market) -> Outcome<'_> {
        match self {
            Mechanism::DeferredAcceptance => deferred_acceptance(market),
            Mechanism::SchoolProposingDeferredAcceptance => {
                school_proposing_deferred_acceptance(market)
            }
            Mechanism::TopTradingCycles => top_trading_cycles(market),
            Mechanism::ImmediateAcceptance => immediate_acceptance(market).outcome,
            Mechanism::EfficiencyAdjustedDeferredAcceptance => {
                efficiency_adjusted_deferred_acceptance(market)
            }
        }
    }

    /// Whether [`Mechanism::run_with_reserves`] supports the mechanism.
    pub fn supports_reserves(self) -> bool {
        match self {
            Mechanism::DeferredAcceptance
            | Mechanism::SchoolProposingDeferredAcceptance
            | Mechanism::ImmediateAcceptance => true,
            Mechanism::TopTradingCycles | Mechanism::EfficiencyAdjustedDeferredAcceptance => false,
        }
    }

    /// Runs the mechanism with seat reserves. Top trading cycles and efficiency-adjusted deferred
    /// acceptance have no reserve-respecting version here and fail with [`ReservesUnsupported`],
    /// even when no block is reserved: run them with [`Mechanism::run`] on the market instead.
    pub fn run_with_reserves<'m>(
        self,
        reserves: &'m Reserves<'m>,
    ) -> Result<ReservedOutcome<'m>, ReservesUnsupported> {
        match self {
            Mechanism::DeferredAcceptance => Ok(deferred_acceptance_with_reserves(reserves)),
            Mechanism::SchoolProposingDeferredAcceptance => {
                Ok(school_proposing_deferred_acceptance_with_reserves(reserves))
            }
            Mechanism::ImmediateAcceptance => {
                Ok(immediate_acceptance_with_reserves(reserves).outcome)
            }
            Mechanism::TopTradingCycles | Mechanism::EfficiencyAdjustedDeferredAcceptance => {
                Err(ReservesUnsupported { mechanism: self })
            }
        }
    }
}
