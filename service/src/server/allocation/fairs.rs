//! The `Fairs` service: the allocation protocol ([`super`]) on the fair domain of the engine
//! (`allot_engine::fair`), and the conversions between its messages and the engine's types.

use allot_engine::allocation::{Holdings, Loaded};
use allot_engine::fair::{self, FairInput, FairTables, Fairs, Mechanism, OPEN, Params, Precedence};
use allot_engine::input::TableBuilder;
use serde::{Deserialize, Serialize};
use tonic::Status;

use super::windows::{
    Arrival, Codes, Totals, WindowKind, Windows, allocation_status, second_factor,
};
use super::{
    AllocationService, RESULT_ROWS_PER_MESSAGE, Served, allocation_api, check_choices, choice_id,
    latest_entry, rank_counts,
};
use crate::proto::v1 as pb;
use crate::proto::v1::fairs_server::Fairs as FairsApi;
use crate::server::state::AppState;
use crate::server::validate::{FieldError, FieldPath, check_id, check_range};

/// Most fairs an applicant may list.
pub const MAX_CHOICES: usize = 20;
/// Most stalls in one pool.
pub const MAX_STALLS: u32 = 100_000;

/// A stall pool as stored in a window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PoolRow {
    pub fair: String,
    pub district: String,
    pub category: String,
    pub stalls: u32,
}

/// An application as stored in a window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplicantRow {
    pub id: String,
    pub category: String,
    pub tier: u32,
    pub lottery: Option<u64>,
    pub choices: Vec<String>,
    /// [`super::windows::code_digest`] of its second factor, when it was given one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// One item of a fair window, as its `ApplicationSubmitted` decision records it: `{"pool":
/// {"fair", "district", "category", "stalls"}}` or `{"applicant": {"id", "category", "tier",
/// "lottery", "choices"}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FairItem {
    Pool(PoolRow),
    Applicant(ApplicantRow),
}

impl WindowKind for Fairs {
    const PARTICIPANT: &'static str = "applicant";
    type Item = FairItem;

    fn key(item: &FairItem) -> String {
        match item {
            FairItem::Pool(p) => format!("pool:{}/{}", p.fair, p.category),
            FairItem::Applicant(a) => format!("applicant:{}", a.id),
        }
    }

    fn kind(item: &FairItem) -> usize {
        match item {
            FairItem::Pool(_) => 0,
            FairItem::Applicant(_) => 1,
        }
    }

    fn key_path(item: &FairItem, at: Arrival) -> FieldPath {
        match item {
            FairItem::Pool(_) => at.path("pools").field("category"),
            FairItem::Applicant(_) => at.path("applicants").field("id"),
        }
    }

    fn code_digest(item: &FairItem) -> Option<&str> {
        match item {
            FairItem::Applicant(a) => a.code.as_deref(),
            FairItem::Pool(_) => None,
        }
    }

    fn input(items: &[&FairItem]) -> Result<FairInput, String> {
        let mut fairs = TableBuilder::new(&["fair", "district", "category", "stalls"]);
        let applicants = items.iter().filter_map(|item| match item {
            FairItem::Applicant(a) => Some(a),
            FairItem::Pool(_) => None,
        });
        let lottery = applicants.clone().all(|a| a.lottery.is_some());
        let mut rows = TableBuilder::new(if lottery {
            &["applicant", "category", "tier", "lottery", "choices"][..]
        } else {
            &["applicant", "category", "tier", "choices"][..]
        });
        for item in items {
            if let FairItem::Pool(p) = item {
                let stalls = p.stalls.to_string();
                fairs.row([&*p.fair, &p.district, &p.category, &stalls]);
            }
        }
        for a in applicants {
            let tier = a.tier.to_string();
            let choices = a.choices.join(";");
            match a.lottery {
                Some(l) if lottery => {
                    let l = l.to_string();
                    rows.row([&*a.id, &a.category, &tier, &l, &choices]);
                }
                _ => rows.row([&*a.id, &a.category, &tier, &choices]),
            }
        }
        let table = |name: &str, rows: TableBuilder| rows.finish(name).map_err(|e| e.to_string());
        fair::read_tables(&table("pools", fairs)?, &table("applicants", rows)?)
            .map(|files| files.input)
            .map_err(|e| e.to_string())
    }
}

/// A validated input as `SubmitApplications` messages: the pools first, then the applications,
/// 10,000 to a message (what the CLI, the console and `allot serve --dev` send); `codes` are the
/// applicants' second factors, by id.
pub fn submissions(
    window: &str,
    input: &FairInput,
    codes: &Codes,
) -> Vec<pb::SubmitFairApplicationsRequest> {
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
        ..Default::default()
    }];
    for chunk in input.applicants.chunks(RESULT_ROWS_PER_MESSAGE) {
        messages.push(pb::SubmitFairApplicationsRequest {
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
                    second_factor: codes.get(&a.id).cloned().unwrap_or_default(),
                })
                .collect(),
            ..Default::default()
        });
    }
    messages
}

fn priority(loaded: &Loaded<Fairs>, i: u32) -> pb::FairPriority {
    pb::FairPriority {
        tier: u32::from(loaded.input.applicants[i as usize].tier),
        lottery: loaded.solved.lottery[i as usize],
    }
}

fn priority_of(key: Option<(u32, u64)>) -> Option<pb::FairPriority> {
    key.map(|(tier, lottery)| pb::FairPriority { tier, lottery })
}

/// Every pool's cutoff (canonical order), with its stalls given in `state`.
fn cutoffs(loaded: &Loaded<Fairs>, state: &Holdings) -> Vec<pb::PoolCutoff> {
    let (input, solved) = (&loaded.input, &loaded.solved);
    FairTables::cutoff_rows(input, solved, state, 0..input.pools.len() as u32)
        .into_iter()
        .map(cutoff)
        .collect()
}

fn cutoff(row: fair::CutoffRow) -> pb::PoolCutoff {
    pb::PoolCutoff {
        fair: row.fair,
        category: row.category,
        stalls: row.stalls,
        admitted: row.placed,
        cutoff: priority_of(row.cutoff),
        district: row.district,
    }
}

fn tables(loaded: &Loaded<Fairs>, state: &Holdings) -> FairTables {
    let (input, solved) = (&loaded.input, &loaded.solved);
    let applicants = 0..input.applicants.len() as u32;
    FairTables::of(
        input,
        solved,
        state,
        applicants,
        0..input.pools.len() as u32,
    )
}

fn summary(loaded: &Loaded<Fairs>, state: &Holdings) -> pb::FairRunSummary {
    let (input, solved) = (&loaded.input, &loaded.solved);
    let stats = fair::stats_with(input, solved, &state.position);
    let stalls = input.total_stalls();
    pb::FairRunSummary {
        applicants: input.applicants.len() as u64,
        placed: stats.placed(),
        placed_per_tier: stats.placed_per_tier.to_vec(),
        rank_counts: rank_counts(&stats.rank_counts),
        fill_rate: if stalls == 0 {
            0.0
        } else {
            stats.placed() as f64 / stalls as f64
        },
        solve_seconds: solved.solve_seconds,
        applicants_per_tier: stats.applicants_per_tier.to_vec(),
        stalls,
        unplaced: stats.unplaced,
        rank2_sum: stats.rank2_sum,
    }
}

impl Served for Fairs {
    const RUN_METHOD: &'static str = "Fairs/RunAllocation";
    type Submit = pb::SubmitFairApplicationsRequest;
    type Submitted = pb::SubmitFairApplicationsResponse;
    type RunRequest = pb::RunFairAllocationRequest;
    type RunResponse = pb::RunFairAllocationResponse;
    type Outcome = pb::GetFairOutcomeResponse;
    type Explained = pb::ExplainFairOutcomeResponse;
    type Results = pb::FairResults;
    type Withdrawn = pb::WithdrawFairStallResponse;
    type LookedUp = pb::FairLookUp;
    type Cutoffs = pb::FairCutoffs;

    fn looked_up(
        run: Option<(pb::RunRecord, &Loaded<Self>, &Holdings, u32)>,
        status: pb::ApplicationStatus,
        receipt: &dyn Fn(u64) -> Result<pb::PublicReceipt, Status>,
    ) -> Result<pb::FairLookUp, Status> {
        let Some((record, loaded, now, i)) = run else {
            return Ok(pb::FairLookUp {
                status: Some(status),
                receipt: Some(receipt(0)?),
                ..Default::default()
            });
        };
        let explained = Self::explain(loaded, now, i)?;
        let entry = explained.outcome.as_ref().map_or(0, |o| o.log_index);
        Ok(pb::FairLookUp {
            status: Some(status),
            run: Some(record),
            tier: loaded.input.applicants[i as usize].tier as u32,
            explained: Some(explained),
            receipt: Some(receipt(entry)?),
        })
    }

    fn published_cutoffs(
        window: String,
        run: pb::RunRecord,
        loaded: &Loaded<Self>,
        now: &Holdings,
    ) -> pb::FairCutoffs {
        pb::FairCutoffs {
            window,
            run: Some(run),
            cutoffs: cutoffs(loaded, now),
        }
    }

    fn windows(state: &AppState) -> &Windows<Self> {
        &state.fairs
    }

    fn submission_head(message: &Self::Submit) -> (&str, bool) {
        (&message.window, message.amend)
    }

    fn read_submission(
        m: Self::Submit,
        k: u32,
        items: &mut Vec<(FairItem, Arrival)>,
    ) -> Result<(), FieldError> {
        let arrival = |j: usize| Arrival {
            message: k,
            index: j as u32,
        };
        for (j, p) in m.pools.into_iter().enumerate() {
            let path = |field: &str| arrival(j).path("pools").field(field);
            let fair = choice_id(&p.fair, &|| path("fair"))?.to_owned();
            check_id(&p.district, &|| path("district"))?;
            check_id(&p.category, &|| path("category"))?;
            check_range(p.stalls, 0, MAX_STALLS, &|| path("stalls"))?;
            let pool = PoolRow {
                fair,
                district: p.district,
                category: p.category,
                stalls: p.stalls,
            };
            items.push((FairItem::Pool(pool), arrival(j)));
        }
        for (j, a) in m.applicants.into_iter().enumerate() {
            let path = |field: &str| arrival(j).path("applicants").field(field);
            check_id(&a.id, &|| path("id"))?;
            check_id(&a.category, &|| path("category"))?;
            if a.category == OPEN {
                return Err(FieldError::invalid(
                    &path("category"),
                    "'*' is the open pool, not a category of goods",
                ));
            }
            let tier = a
                .tier
                .ok_or_else(|| FieldError::invalid(&path("tier"), "is required (0, 1 or 2)"))?;
            check_range(tier, 0, 2, &|| path("tier"))?;
            check_choices(&a.choices, MAX_CHOICES, "fairs", &|| path("choices"))?;
            let code = second_factor(&a.id, &a.second_factor, &|| path("second_factor"))?;
            let applicant = ApplicantRow {
                code,
                id: a.id,
                category: a.category,
                tier,
                lottery: a.lottery,
                choices: a.choices,
            };
            items.push((FairItem::Applicant(applicant), arrival(j)));
        }
        Ok(())
    }

    fn submitted(window: String, totals: Totals) -> Self::Submitted {
        pb::SubmitFairApplicationsResponse {
            receipts: super::receipts(&window, &totals),
            window,
            pools_added: totals.added[0],
            applicants_added: totals.added[1],
            pools_total: totals.total[0],
            applicants_total: totals.total[1],
        }
    }

    fn run_fields(r: &Self::RunRequest) -> (&str, &str, Option<&pb::Beacon>) {
        (&r.window, &r.request_id, r.beacon.as_ref())
    }

    fn params(r: &Self::RunRequest, at: &FieldPath) -> Result<Params, FieldError> {
        let mechanism = match pb::FairMechanism::try_from(r.mechanism) {
            Ok(pb::FairMechanism::Da) => Mechanism::Da,
            Ok(pb::FairMechanism::Welfare) => Mechanism::Welfare,
            Ok(pb::FairMechanism::Rsd) => Mechanism::Rsd,
            _ => {
                return Err(FieldError::invalid(
                    &at.field("mechanism"),
                    "is required: FAIR_MECHANISM_DA, _WELFARE or _RSD",
                ));
            }
        };
        let precedence = match pb::PoolPrecedence::try_from(r.precedence) {
            Ok(pb::PoolPrecedence::OpenFirst) => Precedence::OpenFirst,
            Ok(_) => Precedence::OwnFirst,
            Err(_) => {
                return Err(FieldError::invalid(
                    &at.field("precedence"),
                    "unknown value",
                ));
            }
        };
        Ok(Params {
            mechanism,
            precedence,
        })
    }

    fn ran(
        loaded: &Loaded<Self>,
        run: pb::RunRecord,
        log: pb::LogRange,
    ) -> Result<Self::RunResponse, Status> {
        let fresh = Holdings::after_run::<Fairs>(&loaded.solved);
        Ok(pb::RunFairAllocationResponse {
            run_id: run.run_id.clone(),
            input_digest: run.input_digest.clone(),
            seed: run.seed.clone(),
            outcome_digest: run.outcome_digest.clone(),
            summary: Some(summary(loaded, &fresh)),
            cutoffs: cutoffs(loaded, &fresh),
            log: Some(log),
            run: Some(run),
        })
    }

    fn outcome(loaded: &Loaded<Self>, now: &Holdings, i: u32) -> Self::Outcome {
        let (input, solved) = (&loaded.input, &loaded.solved);
        let applicant = &input.applicants[i as usize].id;
        let pool = now.unit_of(&solved.market, i);
        let rank = now.position[i as usize].map_or(0, |at| solved.rank_at(i, at));
        pb::GetFairOutcomeResponse {
            applicant: applicant.clone(),
            fair: pool
                .map(|p| input.fair_of(p).to_owned())
                .unwrap_or_default(),
            category: pool
                .map(|p| input.pools[p as usize].category.clone())
                .unwrap_or_default(),
            rank,
            priority: Some(priority(loaded, i)),
            log_index: latest_entry(loaded, i),
        }
    }

    fn explain(loaded: &Loaded<Self>, now: &Holdings, i: u32) -> Result<Self::Explained, Status> {
        let input = &loaded.input;
        let got = Self::outcome(loaded, now, i);
        let explanation = fair::explain(loaded, now, &got.applicant).map_err(allocation_status)?;
        let all = cutoffs(loaded, now);
        let a = &input.applicants[i as usize];
        let own = priority(loaded, i);
        let better = if got.rank == 0 {
            a.choices.len()
        } else {
            got.rank as usize - 1
        };
        let mut order = [a.category.as_str(), OPEN];
        if loaded.params.precedence == Precedence::OpenFirst {
            order.reverse();
        }
        let better_choices = a.choices[..better]
            .iter()
            .enumerate()
            .map(|(k, &f)| {
                let pools: Vec<pb::PoolCutoff> = order
                    .iter()
                    .filter_map(|c| input.pool(f, c))
                    .map(|p| all[p as usize].clone())
                    .collect();
                let fair_id = input.fairs[f as usize].id.clone();
                let reason = if pools.is_empty() {
                    format!("{fair_id} has no stalls for '{}' goods", a.category)
                } else {
                    pools
                        .iter()
                        .map(|p| match &p.cutoff {
                            Some(c) => format!(
                                "pool {} at {fair_id} filled with tier {} up to lottery {}; \
                                 you are tier {}, lottery {}",
                                p.category, c.tier, c.lottery, own.tier, own.lottery
                            ),
                            None => format!("pool {} at {fair_id} did not fill", p.category),
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                pb::FairChoiceExplanation {
                    rank: k as u32 + 1,
                    fair: fair_id,
                    pools,
                    reason,
                }
            })
            .collect();
        Ok(pb::ExplainFairOutcomeResponse {
            outcome: Some(got),
            better_choices,
            lines: explanation.lines,
        })
    }

    fn withdrawn(
        loaded: &Loaded<Self>,
        pool: u32,
        re_offered_to: Option<pb::GetFairOutcomeResponse>,
        log: pb::LogRange,
        changes: Vec<pb::PlaceChange>,
    ) -> pb::WithdrawFairStallResponse {
        pb::WithdrawFairStallResponse {
            fair: loaded.input.fair_of(pool).to_owned(),
            category: loaded.input.pools[pool as usize].category.clone(),
            re_offered_to,
            log: Some(log),
            changes,
        }
    }

    fn results(loaded: &Loaded<Self>, now: &Holdings) -> Result<Vec<pb::FairResults>, Status> {
        let tables = tables(loaded, now);
        let mut messages = vec![pb::FairResults {
            summary: Some(summary(loaded, now)),
            ..Default::default()
        }];
        for rows in tables.assignment.chunks(RESULT_ROWS_PER_MESSAGE) {
            let assignments = rows.iter().map(|row| {
                let (fair, category, rank) = row.placed.clone().unwrap_or_default();
                pb::FairAssignment {
                    applicant: row.applicant.clone(),
                    fair,
                    category,
                    rank,
                }
            });
            messages.push(pb::FairResults {
                assignments: assignments.collect(),
                ..Default::default()
            });
        }
        for rows in tables.cutoffs.chunks(RESULT_ROWS_PER_MESSAGE) {
            messages.push(pb::FairResults {
                cutoffs: rows.iter().cloned().map(cutoff).collect(),
                ..Default::default()
            });
        }
        for rows in tables.waitlist.chunks(RESULT_ROWS_PER_MESSAGE) {
            let waitlist = rows.iter().map(|row| pb::FairWaitlistEntry {
                fair: row.fair.clone(),
                category: row.category.clone(),
                position: row.position,
                applicant: row.applicant.clone(),
                priority: priority_of(Some((row.tier, row.lottery))),
            });
            messages.push(pb::FairResults {
                waitlist: waitlist.collect(),
                ..Default::default()
            });
        }
        Ok(messages)
    }
}

/// The Fairs service.
pub type FairsService = AllocationService<Fairs>;

allocation_api!(
    FairsApi, Fairs, participant: applicant,
    close: pb::CloseFairApplicationsRequest => pb::CloseFairApplicationsResponse,
    outcome: pb::GetFairOutcomeRequest, explain: pb::ExplainFairOutcomeRequest,
    verify: pb::VerifyFairRunRequest => pb::VerifyFairRunResponse,
    results: pb::GetFairResultsRequest,
    withdraw: pb::WithdrawFairStallRequest, "Fairs/Withdraw"
);
