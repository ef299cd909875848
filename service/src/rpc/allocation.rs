//! Typed calls of the allocation services (`Fairs`, `Schools`) over any [`ApiChannel`], with the
//! answers in the engine's types: the application set submitted, the window closed, the run
//! made, its results as the engine's tables, its `summary.json`. The CLI's allocation commands
//! are written once over [`AllocationClient`]; a third domain implements it once more.
//!
//! [`ApiChannel`]: super::client::ApiChannel

use allot_engine::allocation::{Allocation, RunInfo, Vacancies};
use allot_engine::fair::{
    self, AssignmentRow, CutoffRow, FairInput, FairTables, Fairs, Stats as FairStats, WaitlistRow,
};
use allot_engine::log::Digest;
use allot_engine::log::decision::{AllocationRun, RunCounts};
use allot_engine::school::{
    self, BlockCutoffRow, InputFigures, SchoolAssignmentRow, SchoolCutoffRow, SchoolInput,
    SchoolTables, Schools, Stats as SchoolStats,
};
use tokio_stream::StreamExt as _;
use tonic::Status;

use super::client::Api;
use crate::proto::v1 as pb;
use crate::render::allocation::RunFigures;
use crate::server::allocation::windows::Codes;
use crate::server::allocation::{fairs, schools};

/// An allocation service's calls. Their futures are not `Send` (rustc cannot prove it through the
/// boxed channel's error type): await them on the caller's thread, as `block_on` does.
#[allow(async_fn_in_trait)]
pub trait AllocationClient: Vacancies {
    /// `RunAllocation`'s request.
    type RunRequest: Send;
    /// The run's figures (`FairRunSummary`).
    type Summary: RunFigures + Default + Send;
    /// The published tables.
    type Tables: Send;

    /// Submits a validated application set to `window`, in one stream.
    async fn submit(api: &Api, window: &str, input: &Self::Input) -> Result<(), Status>;
    async fn close(api: &Api, window: &str) -> Result<pb::ApplicationSetCommitment, Status>;
    async fn run(
        api: &Api,
        request: Self::RunRequest,
    ) -> Result<(pb::RunRecord, Self::Summary), Status>;
    /// A run's results, in canonical order.
    async fn results(api: &Api, run_id: Vec<u8>) -> Result<(Self::Summary, Self::Tables), Status>;
    async fn verify(api: &Api, run_id: Vec<u8>) -> Result<pb::RunVerification, Status>;
    /// The explanation's lines.
    async fn explain(api: &Api, run_id: Vec<u8>, who: String) -> Result<Vec<String>, Status>;
    async fn get_run(api: &Api, run: String) -> Result<pb::RunRecord, Status>;
    async fn status(api: &Api, window: String, id: String)
    -> Result<pb::ApplicationStatus, Status>;
    async fn accept(
        api: &Api,
        run_id: Vec<u8>,
        id: String,
    ) -> Result<pb::AcceptPlaceResponse, Status>;
    async fn withdraw_applications(
        api: &Api,
        window: String,
        ids: Vec<String>,
    ) -> Result<pb::WithdrawApplicationsResponse, Status>;
    /// Participant `id` gives its place back; the logged changes (the withdrawal, then each
    /// re-offer of its vacancy chain).
    async fn give_back(
        api: &Api,
        run_id: Vec<u8>,
        id: String,
    ) -> Result<Vec<pb::PlaceChange>, Status>;

    /// The request to run `window` with `params` (the lottery drawn from `beacon`).
    fn run_request(
        window: &str,
        params: &Self::Params,
        beacon: Option<pb::Beacon>,
    ) -> Self::RunRequest;

    /// `summary.json` of a run.
    fn summary_json(info: &RunInfo, summary: &Self::Summary) -> serde_json::Value;
    fn solve_seconds(summary: &Self::Summary) -> f64;
}

/// A run as the engine describes it, from its record (INTERNAL when the record is malformed).
pub fn run_info<A: Allocation>(r: &pb::RunRecord, solve_seconds: f64) -> Result<RunInfo, Status> {
    let digest = |bytes: &[u8], what: &str| super::bytes32(bytes, what).map(Digest);
    let seed = match r.seed.is_empty() {
        true => None,
        false => Some(digest(&r.seed, "seed")?),
    };
    Ok(RunInfo {
        run: AllocationRun {
            domain: A::DOMAIN,
            mechanism: r.mechanism.clone(),
            input_digest: digest(&r.input_digest, "input digest")?,
            parameters: r.parameters.clone(),
            seed,
            outcome_digest: digest(&r.outcome_digest, "outcome digest")?,
            counts: RunCounts {
                participants: r.participants,
                places: r.places,
                assigned: r.assigned,
            },
        },
        id: digest(&r.run_id, "run id")?,
        index: r.log_index,
        closed_index: r.closed_index.unwrap_or_default(),
        seed_index: r.seed_index,
        solve_seconds,
    })
}

/// A rank table from its messages.
fn ranks(counts: &[pb::RankCount]) -> Vec<u64> {
    let mut out = vec![0; counts.iter().map(|c| c.rank as usize).max().unwrap_or(0)];
    for c in counts {
        if let Some(slot) = (c.rank as usize)
            .checked_sub(1)
            .and_then(|r| out.get_mut(r))
        {
            *slot = c.count;
        }
    }
    out
}

/// The calls whose shape every allocation service shares, for a domain's client `$client`
/// (`fairs`, `schools`), the field naming its participant, and its request messages.
macro_rules! shared_calls {
    ($client:ident, $who:ident, $close:ident, $verify:ident, $explain:ident, $give_back:ident) => {
        async fn give_back(
            api: &Api,
            run_id: Vec<u8>,
            $who: String,
        ) -> Result<Vec<pb::PlaceChange>, Status> {
            let request = pb::$give_back {
                run_id,
                $who,
                request_id: String::new(),
            };
            Ok(api.$client().withdraw(request).await?.into_inner().changes)
        }

        async fn close(api: &Api, window: &str) -> Result<pb::ApplicationSetCommitment, Status> {
            let request = pb::$close {
                window: window.to_owned(),
            };
            let closed = api.$client().close_applications(request).await?;
            Ok(closed.into_inner().commitment.unwrap_or_default())
        }

        async fn run(
            api: &Api,
            request: Self::RunRequest,
        ) -> Result<(pb::RunRecord, Self::Summary), Status> {
            let ran = api.$client().run_allocation(request).await?.into_inner();
            Ok((ran.run.unwrap_or_default(), ran.summary.unwrap_or_default()))
        }

        async fn verify(api: &Api, run_id: Vec<u8>) -> Result<pb::RunVerification, Status> {
            let answer = api.$client().verify(pb::$verify { run_id }).await?;
            Ok(answer.into_inner().verification.unwrap_or_default())
        }

        async fn explain(api: &Api, run_id: Vec<u8>, $who: String) -> Result<Vec<String>, Status> {
            let request = pb::$explain { run_id, $who };
            Ok(api.$client().explain(request).await?.into_inner().lines)
        }

        async fn get_run(api: &Api, run: String) -> Result<pb::RunRecord, Status> {
            let request = pb::GetRunRequest { run };
            Ok(api.$client().get_run(request).await?.into_inner())
        }

        async fn status(
            api: &Api,
            window: String,
            id: String,
        ) -> Result<pb::ApplicationStatus, Status> {
            let request = pb::GetApplicationStatusRequest { window, id };
            Ok(api
                .$client()
                .get_application_status(request)
                .await?
                .into_inner())
        }

        async fn accept(
            api: &Api,
            run_id: Vec<u8>,
            id: String,
        ) -> Result<pb::AcceptPlaceResponse, Status> {
            let request = pb::AcceptPlaceRequest { run_id, id };
            Ok(api.$client().accept_place(request).await?.into_inner())
        }

        async fn withdraw_applications(
            api: &Api,
            window: String,
            ids: Vec<String>,
        ) -> Result<pb::WithdrawApplicationsResponse, Status> {
            let request = pb::WithdrawApplicationsRequest { window, ids };
            Ok(api
                .$client()
                .withdraw_applications(request)
                .await?
                .into_inner())
        }
    };
}

impl AllocationClient for Fairs {
    shared_calls!(
        fairs,
        applicant,
        CloseFairApplicationsRequest,
        VerifyFairRunRequest,
        ExplainFairOutcomeRequest,
        WithdrawFairStallRequest
    );

    type RunRequest = pb::RunFairAllocationRequest;
    type Summary = pb::FairRunSummary;
    type Tables = FairTables;

    fn run_request(
        window: &str,
        params: &fair::Params,
        beacon: Option<pb::Beacon>,
    ) -> pb::RunFairAllocationRequest {
        pb::RunFairAllocationRequest {
            window: window.to_owned(),
            mechanism: match params.mechanism {
                fair::Mechanism::Da => pb::FairMechanism::Da,
                fair::Mechanism::Welfare => pb::FairMechanism::Welfare,
                fair::Mechanism::Rsd => pb::FairMechanism::Rsd,
            } as i32,
            beacon,
            precedence: match params.precedence {
                fair::Precedence::OwnFirst => pb::PoolPrecedence::OwnCategoryFirst,
                fair::Precedence::OpenFirst => pb::PoolPrecedence::OpenFirst,
            } as i32,
            request_id: String::new(),
        }
    }

    async fn submit(api: &Api, window: &str, input: &FairInput) -> Result<(), Status> {
        let messages = tokio_stream::iter(fairs::submissions(window, input, &Codes::new()));
        api.fairs().submit_applications(messages).await.map(drop)
    }

    async fn results(
        api: &Api,
        run_id: Vec<u8>,
    ) -> Result<(pb::FairRunSummary, FairTables), Status> {
        let request = pb::GetFairResultsRequest { run_id };
        let mut stream = api.fairs().get_results(request).await?.into_inner();
        let mut parts = Vec::new();
        while let Some(part) = stream.next().await {
            parts.push(part?);
        }
        Ok(fair_tables(parts))
    }

    fn summary_json(info: &RunInfo, s: &pb::FairRunSummary) -> serde_json::Value {
        let tier = |v: &[u64]| std::array::from_fn(|t| v.get(t).copied().unwrap_or(0));
        let stats = FairStats {
            applicants_per_tier: tier(&s.applicants_per_tier),
            placed_per_tier: tier(&s.placed_per_tier),
            rank_counts: ranks(&s.rank_counts),
            unplaced: s.unplaced,
            rank2_sum: s.rank2_sum,
            solve_seconds: s.solve_seconds,
        };
        let given = info.run.seed.is_none();
        fair::summary(info, &stats, s.applicants, s.stalls, given)
    }

    fn solve_seconds(summary: &pb::FairRunSummary) -> f64 {
        summary.solve_seconds
    }
}

/// A fair run's results as `GetResults` streams them, as the engine's tables.
pub fn fair_tables(parts: Vec<pb::FairResults>) -> (pb::FairRunSummary, FairTables) {
    let mut summary = None;
    let mut tables = FairTables::default();
    for part in parts {
        summary = summary.or(part.summary);
        tables
            .assignment
            .extend(part.assignments.into_iter().map(|a| AssignmentRow {
                placed: (!a.fair.is_empty()).then_some((a.fair, a.category, a.rank)),
                applicant: a.applicant,
            }));
        tables
            .cutoffs
            .extend(part.cutoffs.into_iter().map(|c| CutoffRow {
                fair: c.fair,
                district: c.district,
                category: c.category,
                stalls: c.stalls,
                placed: c.admitted,
                cutoff: c.cutoff.map(|k| (k.tier, k.lottery)),
            }));
        tables.waitlist.extend(part.waitlist.into_iter().map(|w| {
            let priority = w.priority.unwrap_or_default();
            WaitlistRow {
                fair: w.fair,
                category: w.category,
                position: w.position,
                applicant: w.applicant,
                tier: priority.tier,
                lottery: priority.lottery,
            }
        }));
    }
    (summary.unwrap_or_default(), tables)
}

impl AllocationClient for Schools {
    shared_calls!(
        schools,
        student,
        CloseSchoolApplicationsRequest,
        VerifySchoolRunRequest,
        ExplainSchoolOutcomeRequest,
        WithdrawSchoolSeatRequest
    );

    type RunRequest = pb::RunSchoolAllocationRequest;
    type Summary = pb::SchoolRunSummary;
    type Tables = SchoolTables;

    fn run_request(
        window: &str,
        params: &school::Params,
        beacon: Option<pb::Beacon>,
    ) -> pb::RunSchoolAllocationRequest {
        use school::{Mechanism, ReserveOrder, TieBreaking};
        pb::RunSchoolAllocationRequest {
            window: window.to_owned(),
            mechanism: match params.mechanism {
                Mechanism::Da => pb::SchoolMechanism::StudentDa,
                Mechanism::SchoolDa => pb::SchoolMechanism::SchoolDa,
                Mechanism::Ttc => pb::SchoolMechanism::Ttc,
                Mechanism::Boston => pb::SchoolMechanism::ImmediateAcceptance,
                Mechanism::Eada => pb::SchoolMechanism::Eada,
            } as i32,
            tie_breaking: match params.tie_breaking {
                TieBreaking::Single => pb::TieBreaking::Single,
                TieBreaking::Multiple => pb::TieBreaking::Multiple,
            } as i32,
            reserve_order: match params.reserve_order {
                ReserveOrder::ReservedFirst => pb::ReserveOrder::ReservedFirst,
                ReserveOrder::OpenFirst => pb::ReserveOrder::OpenFirst,
            } as i32,
            beacon,
            request_id: String::new(),
        }
    }

    async fn submit(api: &Api, window: &str, input: &SchoolInput) -> Result<(), Status> {
        let messages = tokio_stream::iter(schools::submissions(window, input, &Codes::new()));
        api.schools().submit_applications(messages).await.map(drop)
    }

    async fn results(
        api: &Api,
        run_id: Vec<u8>,
    ) -> Result<(pb::SchoolRunSummary, SchoolTables), Status> {
        let request = pb::GetSchoolResultsRequest { run_id };
        let mut stream = api.schools().get_results(request).await?.into_inner();
        let mut parts = Vec::new();
        while let Some(part) = stream.next().await {
            parts.push(part?);
        }
        Ok(school_tables(parts))
    }

    fn summary_json(info: &RunInfo, s: &pb::SchoolRunSummary) -> serde_json::Value {
        let stats = SchoolStats {
            students: s.students,
            assigned: s.assigned,
            unassigned: s.unassigned,
            rank_counts: ranks(&s.rank_counts),
            blocking_pairs: s.blocking_pairs,
            justified_envy: s.justified_envy,
            solve_seconds: s.solve_seconds,
        };
        let figures = InputFigures {
            schools: s.schools,
            seats: s.seats,
            reserves: s.reserves,
            lottery_given: info.run.seed.is_none(),
        };
        school::summary(info, &stats, figures)
    }

    fn solve_seconds(summary: &pb::SchoolRunSummary) -> f64 {
        summary.solve_seconds
    }
}

/// A school run's results as `GetResults` streams them, as the engine's tables.
pub fn school_tables(parts: Vec<pb::SchoolResults>) -> (pb::SchoolRunSummary, SchoolTables) {
    let mut summary = None;
    let mut tables = SchoolTables::default();
    let key = |k: Option<pb::SchoolPriorityKey>| k.map(|k| (k.priority_class, k.lottery));
    for part in parts {
        summary = summary.or(part.summary);
        tables
            .assignment
            .extend(part.assignments.into_iter().map(|a| SchoolAssignmentRow {
                assigned: (!a.school.is_empty()).then_some((a.school, a.rank)),
                student: a.student,
            }));
        tables
            .cutoffs
            .extend(part.cutoffs.into_iter().map(|c| SchoolCutoffRow {
                school: c.school,
                capacity: c.capacity,
                assigned: c.admitted,
                cutoff: key(c.cutoff),
            }));
        tables
            .blocks
            .extend(part.block_cutoffs.into_iter().map(|b| BlockCutoffRow {
                school: b.school,
                block: b.block,
                class: b.priority_class,
                seats: b.seats,
                cutoff: key(b.cutoff),
            }));
    }
    (summary.unwrap_or_default(), tables)
}
