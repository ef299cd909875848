//! The `Fairs` service: application windows, runs, outcomes, explanations, withdrawals and
//! verification, on the fair domain of the engine (`allot_engine::fair`) and the shared run
//! protocol (`allot_engine::allocation`).

use std::collections::HashSet;
use std::sync::Arc;

use allot_engine::allocation::{
    Beacon, Change, Loaded, Verification, change_loaded, key_parts, verify_with_log,
};
use allot_engine::fair::{self, FairState, Fairs, Mechanism, OPEN, Params, Precedence};
use allot_engine::input::Table;
use serde::{Deserialize, Serialize};
use tokio_stream::StreamExt as _;
use tonic::{Request, Response, Status, Streaming};

use super::appointments::caller;
use super::state::AppState;
use super::status::blocking;
use super::validate::{FieldError, FieldPath, check_id, check_range};
use super::windows::{WindowKind, allocation_status, csv_row};
use crate::proto::v1 as pb;
use crate::proto::v1::fairs_server::Fairs as FairsApi;

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
}

/// What one `SubmitApplications` call adds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FairChunk {
    pub pools: Vec<PoolRow>,
    pub applicants: Vec<ApplicantRow>,
}

impl WindowKind for Fairs {
    const FOLDER: &'static str = "fairs";
    type Chunk = FairChunk;

    fn keys(chunk: &FairChunk) -> Vec<String> {
        let pools = chunk
            .pools
            .iter()
            .map(|p| format!("pool:{}/{}", p.fair, p.category));
        let applicants = chunk
            .applicants
            .iter()
            .map(|a| format!("applicant:{}", a.id));
        pools.chain(applicants).collect()
    }

    fn counts(chunk: &FairChunk) -> [u64; 3] {
        [chunk.pools.len() as u64, chunk.applicants.len() as u64, 0]
    }

    fn input(chunks: &[FairChunk]) -> Result<fair::FairInput, String> {
        let mut fairs = String::from("fair,district,category,stalls\n");
        let applicants = chunks.iter().flat_map(|c| &c.applicants);
        let lottery = applicants.clone().all(|a| a.lottery.is_some());
        let mut rows = String::from(if lottery {
            "applicant,category,tier,lottery,choices\n"
        } else {
            "applicant,category,tier,choices\n"
        });
        for c in chunks {
            for p in &c.pools {
                let stalls = p.stalls.to_string();
                csv_row(&mut fairs, [&*p.fair, &p.district, &p.category, &stalls]);
            }
        }
        for a in applicants {
            let tier = a.tier.to_string();
            let choices = a.choices.join(";");
            match a.lottery {
                Some(l) if lottery => {
                    let l = l.to_string();
                    csv_row(&mut rows, [&*a.id, &a.category, &tier, &l, &choices]);
                }
                _ => csv_row(&mut rows, [&*a.id, &a.category, &tier, &choices]),
            }
        }
        let fairs = Table::from_bytes("pools", fairs.into_bytes()).map_err(|e| e.to_string())?;
        let rows = Table::from_bytes("applicants", rows.into_bytes()).map_err(|e| e.to_string())?;
        fair::read_tables(&fairs, &rows)
            .map(|files| files.input)
            .map_err(|e| e.to_string())
    }
}

/// A beacon message, checked.
pub fn beacon(b: Option<&pb::Beacon>, path: &FieldPath) -> Result<Option<Beacon>, FieldError> {
    let Some(b) = b else { return Ok(None) };
    if b.source.is_empty() || b.source.len() > 256 {
        return Err(FieldError::invalid(
            &path.field("source"),
            "give the beacon's source, 1 to 256 bytes",
        ));
    }
    if !(16..=512).contains(&b.value.len()) {
        return Err(FieldError::invalid(
            &path.field("value"),
            format!("is {} bytes; a beacon value has 16 to 512", b.value.len()),
        ));
    }
    Ok(Some(Beacon {
        source: b.source.clone(),
        round: b.round,
        value: b.value.clone(),
    }))
}

/// A verification as a message.
pub fn verification(v: &Verification) -> pb::RunVerification {
    let check = |name: &str| v.checks.iter().any(|c| c.name == name && c.ok);
    let logged = v.run.run.outcome_digest.0.to_vec();
    pb::RunVerification {
        ok: v.ok(),
        input_digest_matches: check("input"),
        seed_matches: v.run.run.seed.is_none() || check("seed"),
        recomputed_outcome_digest: if check("outcome digest") {
            logged.clone()
        } else {
            Vec::new()
        },
        logged_outcome_digest: logged,
        log_index: v.run.index,
        detail: v
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect::<Vec<_>>()
            .join("; "),
        checks: v
            .checks
            .iter()
            .map(|c| {
                let verdict = if c.ok { "ok" } else { "FAILED" };
                format!("{}: {verdict}: {}", c.name, c.detail)
            })
            .collect(),
    }
}

/// A window id from a request field.
pub fn window_of(window: &str, path: &FieldPath) -> Result<String, FieldError> {
    Ok(check_id(window, path)?.to_owned())
}

/// An id that may appear in a `;`-separated list of choices.
fn choice_id<'a>(id: &'a str, path: &FieldPath) -> Result<&'a str, FieldError> {
    let id = check_id(id, path)?;
    if id.contains(';') {
        return Err(FieldError::invalid(
            path,
            "contains ';', which separates choices",
        ));
    }
    Ok(id)
}

/// Reads a client stream of submissions: the window, the merged chunk and its unique keys.
async fn read_submission(
    mut stream: Streaming<pb::SubmitFairApplicationsRequest>,
    max_upload_bytes: usize,
) -> Result<(String, FieldPath, FairChunk, Vec<(String, FieldPath)>), Status> {
    let mut window: Option<(String, FieldPath)> = None;
    let mut chunk = FairChunk::default();
    let mut keys = Vec::new();
    let mut k = 0;
    let mut uploaded = 0usize;
    while let Some(message) = stream.next().await {
        let m = message?;
        let at = FieldPath::stream_message(k);
        // Each message is bounded by the decoder; the stream as a whole by this cap, since
        // everything is held until the stream ends.
        uploaded = uploaded.saturating_add(prost::Message::encoded_len(&m));
        if uploaded > max_upload_bytes {
            return Err(FieldError {
                path: at,
                problem: format!(
                    "the upload exceeds {max_upload_bytes} bytes: send the applications in \
                     several SubmitApplications calls"
                ),
                code: tonic::Code::ResourceExhausted,
            }
            .into());
        }
        match &window {
            None => {
                let path = at.field("window");
                window = Some((window_of(&m.window, &path)?, path));
            }
            Some((w, _)) if !m.window.is_empty() && m.window != *w => {
                return Err(FieldError::invalid(
                    &at.field("window"),
                    format!(
                        "is '{}', but the first message named window '{w}'",
                        m.window
                    ),
                )
                .into());
            }
            Some(_) => {}
        }
        for (j, p) in m.pools.into_iter().enumerate() {
            let path = at.field("pools").index(j);
            let fair = choice_id(&p.fair, &path.field("fair"))?.to_owned();
            check_id(&p.district, &path.field("district"))?;
            check_id(&p.category, &path.field("category"))?;
            check_range(p.stalls, 0, MAX_STALLS, &path.field("stalls"))?;
            keys.push((
                format!("pool:{fair}/{}", p.category),
                path.field("category"),
            ));
            chunk.pools.push(PoolRow {
                fair,
                district: p.district,
                category: p.category,
                stalls: p.stalls,
            });
        }
        for (j, a) in m.applicants.into_iter().enumerate() {
            let path = at.field("applicants").index(j);
            check_id(&a.id, &path.field("id"))?;
            check_id(&a.category, &path.field("category"))?;
            if a.category == OPEN {
                return Err(FieldError::invalid(
                    &path.field("category"),
                    "'*' is the open pool, not a category of goods",
                )
                .into());
            }
            let tier = a.tier.ok_or_else(|| {
                FieldError::invalid(&path.field("tier"), "is required (0, 1 or 2)")
            })?;
            check_range(tier, 0, 2, &path.field("tier"))?;
            if a.choices.is_empty() || a.choices.len() > MAX_CHOICES {
                return Err(FieldError::invalid(
                    &path.field("choices"),
                    format!("has {} fairs; list 1 to {MAX_CHOICES}", a.choices.len()),
                )
                .into());
            }
            let mut seen = HashSet::new();
            for (c, choice) in a.choices.iter().enumerate() {
                let cpath = path.field("choices").index(c);
                choice_id(choice, &cpath)?;
                if !seen.insert(choice.as_str()) {
                    return Err(
                        FieldError::invalid(&cpath, format!("'{choice}' is listed twice")).into(),
                    );
                }
            }
            keys.push((format!("applicant:{}", a.id), path.field("id")));
            chunk.applicants.push(ApplicantRow {
                id: a.id,
                category: a.category,
                tier,
                lottery: a.lottery,
                choices: a.choices,
            });
        }
        k += 1;
    }
    let Some((window, path)) = window else {
        return Err(FieldError::invalid(
            &FieldPath::stream_message(0),
            "the stream has no message: send at least one naming the window",
        )
        .into());
    };
    Ok((window, path, chunk, keys))
}

/// The Fairs service.
#[derive(Debug, Clone)]
pub struct FairsService {
    state: Arc<AppState>,
    max_upload_bytes: usize,
}

impl FairsService {
    pub fn new(state: Arc<AppState>) -> Self {
        FairsService {
            state,
            max_upload_bytes: crate::server::config::Limits::default().max_upload_bytes,
        }
    }

    /// Caps the total size of the messages of one `SubmitApplications` stream.
    pub fn max_upload_bytes(mut self, bytes: usize) -> Self {
        self.max_upload_bytes = bytes;
        self
    }
}

fn priority(loaded: &Loaded<Fairs>, i: u32) -> pb::FairPriority {
    pb::FairPriority {
        tier: u32::from(loaded.input.applicants[i as usize].tier),
        lottery: loaded.solved.lottery[i as usize],
    }
}

/// Every pool's cutoff, with its stalls given in the current state.
fn cutoffs(loaded: &Loaded<Fairs>, state: &FairState) -> Vec<pb::PoolCutoff> {
    let (input, solved) = (&loaded.input, &loaded.solved);
    let mut admitted = vec![0u32; input.pools.len()];
    for i in 0..input.applicants.len() as u32 {
        if let Some(p) = state.pool_of(solved, i) {
            admitted[p as usize] += 1;
        }
    }
    input
        .pools
        .iter()
        .enumerate()
        .map(|(p, _)| pool_cutoff(loaded, p as u32, admitted[p]))
        .collect()
}

fn pool_cutoff(loaded: &Loaded<Fairs>, p: u32, admitted: u32) -> pb::PoolCutoff {
    let pool = &loaded.input.pools[p as usize];
    pb::PoolCutoff {
        fair: loaded.input.fair_of(p).to_owned(),
        category: pool.category.clone(),
        stalls: pool.stalls,
        admitted,
        cutoff: loaded.solved.cutoffs[p as usize].map(|key| {
            let (tier, lottery) = key_parts(key);
            pb::FairPriority { tier, lottery }
        }),
    }
}

/// One applicant's outcome in the current state.
fn outcome(
    loaded: &Loaded<Fairs>,
    state: &FairState,
    applicant: &str,
    path: &FieldPath,
) -> Result<(u32, pb::GetFairOutcomeResponse), Status> {
    let i = loaded.input.applicant(applicant).ok_or_else(|| {
        FieldError::not_found(
            path,
            format!("no applicant '{applicant}' in run {}", loaded.run.label()),
        )
    })?;
    let solved = &loaded.solved;
    let pool = state.pool_of(solved, i);
    let rank = state.position[i as usize].map_or(0, |pos| solved.rank_at(i, pos));
    let log_index = loaded
        .changes
        .iter()
        .rev()
        .find(|c| match &c.change {
            Change::Withdrawn { participant, .. } | Change::ReOffered { participant, .. } => {
                participant == applicant
            }
        })
        .map_or_else(
            || {
                loaded
                    .run
                    .outcome_range()
                    .map_or(0, |r| r.start + u64::from(i))
            },
            |c| c.index,
        );
    Ok((
        i,
        pb::GetFairOutcomeResponse {
            applicant: applicant.to_owned(),
            fair: pool
                .map(|p| loaded.input.fair_of(p).to_owned())
                .unwrap_or_default(),
            category: pool
                .map(|p| loaded.input.pools[p as usize].category.clone())
                .unwrap_or_default(),
            rank: if pool.is_some() { rank } else { 0 },
            priority: Some(priority(loaded, i)),
            log_index,
        },
    ))
}

fn current(loaded: &Loaded<Fairs>) -> Result<FairState, Status> {
    FairState::replay(&loaded.input, &loaded.solved, &loaded.changes).map_err(allocation_status)
}

fn read<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

#[tonic::async_trait]
impl FairsApi for FairsService {
    async fn submit_applications(
        &self,
        request: Request<Streaming<pb::SubmitFairApplicationsRequest>>,
    ) -> Result<Response<pb::SubmitFairApplicationsResponse>, Status> {
        let (window, path, chunk, keys) =
            read_submission(request.into_inner(), self.max_upload_bytes).await?;
        let state = self.state.clone();
        let name = window.clone();
        let totals = blocking(move || state.fairs.submit(&name, &path, chunk, keys)).await?;
        Ok(Response::new(pb::SubmitFairApplicationsResponse {
            window,
            pools_added: totals.added[0],
            applicants_added: totals.added[1],
            pools_total: totals.total[0],
            applicants_total: totals.total[1],
        }))
    }

    async fn close_applications(
        &self,
        request: Request<pb::CloseFairApplicationsRequest>,
    ) -> Result<Response<pb::CloseFairApplicationsResponse>, Status> {
        let caller = caller(&request)?;
        let path = FieldPath::request().field("window");
        let window = window_of(&request.get_ref().window, &path)?;
        let state = self.state.clone();
        let name = window.clone();
        let closed =
            blocking(move || state.fairs.close(&state.log, &name, &path, &caller.name)).await?;
        Ok(Response::new(pb::CloseFairApplicationsResponse {
            commitment: Some(pb::ApplicationSetCommitment {
                window,
                applications: closed.applications,
                set_digest: closed.set_digest.0.to_vec(),
                log_index: closed.index,
            }),
        }))
    }

    async fn run_allocation(
        &self,
        request: Request<pb::RunFairAllocationRequest>,
    ) -> Result<Response<pb::RunFairAllocationResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        // What identifies the call, owned: the work may outlive this call (see `replies`).
        let (who, id, request) = (caller.name.clone(), r.request_id.clone(), r.clone());
        let state = self.state.clone();
        let answer = self
            .state
            .replies
            .once(
                &who,
                "Fairs/RunAllocation",
                &id,
                &request,
                move || async move {
                    let at = FieldPath::request();
                    let path = at.field("window");
                    let window = window_of(&r.window, &path)?;
                    let mechanism = match pb::FairMechanism::try_from(r.mechanism) {
                        Ok(pb::FairMechanism::Da) => Mechanism::Da,
                        Ok(pb::FairMechanism::Welfare) => Mechanism::Welfare,
                        Ok(pb::FairMechanism::Rsd) => Mechanism::Rsd,
                        _ => {
                            return Err(FieldError::invalid(
                                &at.field("mechanism"),
                                "is required: FAIR_MECHANISM_DA, _WELFARE or _RSD",
                            )
                            .into());
                        }
                    };
                    let precedence = match pb::PoolPrecedence::try_from(r.precedence) {
                        Ok(pb::PoolPrecedence::OpenFirst) => Precedence::OpenFirst,
                        Ok(_) => Precedence::OwnFirst,
                        Err(_) => {
                            return Err(FieldError::invalid(
                                &at.field("precedence"),
                                "unknown value",
                            )
                            .into());
                        }
                    };
                    let beacon = beacon(r.beacon.as_ref(), &at.field("beacon"))?;
                    let params = Params {
                        mechanism,
                        precedence,
                    };
                    let actor = caller.name.clone();
                    let state = state.clone();
                    blocking(move || {
                        let (logged, loaded) = state.fairs.run(
                            &state.log,
                            &window,
                            &path,
                            &params,
                            beacon.as_ref(),
                            &actor,
                        )?;
                        let loaded = read(&loaded);
                        let fresh = FairState::new(&loaded.solved);
                        let stats = fair::stats(&loaded.input, &loaded.solved);
                        let info = &logged.info;
                        let stalls = loaded.input.total_stalls();
                        Ok(pb::RunFairAllocationResponse {
                            run_id: info.id.0.to_vec(),
                            input_digest: info.run.input_digest.0.to_vec(),
                            seed: info.run.seed.map(|s| s.0.to_vec()).unwrap_or_default(),
                            outcome_digest: info.run.outcome_digest.0.to_vec(),
                            summary: Some(pb::FairRunSummary {
                                applicants: loaded.input.applicants.len() as u64,
                                placed: stats.placed(),
                                placed_per_tier: stats.placed_per_tier.to_vec(),
                                rank_counts: rank_counts(&stats.rank_counts),
                                fill_rate: if stalls == 0 {
                                    0.0
                                } else {
                                    stats.placed() as f64 / stalls as f64
                                },
                                solve_seconds: loaded.solved.solve_seconds,
                            }),
                            cutoffs: cutoffs(&loaded, &fresh),
                            log: Some(pb::LogRange {
                                start: logged.entries.start,
                                end: logged.entries.end,
                            }),
                        })
                    })
                    .await
                },
            )
            .await?;
        Ok(Response::new(answer))
    }

    async fn get_outcome(
        &self,
        request: Request<pb::GetFairOutcomeRequest>,
    ) -> Result<Response<pb::GetFairOutcomeResponse>, Status> {
        let r = request.into_inner();
        let state = self.state.clone();
        let answer = blocking(move || {
            let at = FieldPath::request();
            let applicant = check_id(&r.applicant, &at.field("applicant"))?.to_owned();
            let loaded = state
                .fairs
                .loaded(&state.log, &r.run_id, &at.field("run_id"))?;
            let loaded = read(&loaded);
            let now = current(&loaded)?;
            Ok(outcome(&loaded, &now, &applicant, &at.field("applicant"))?.1)
        })
        .await?;
        Ok(Response::new(answer))
    }

    async fn explain(
        &self,
        request: Request<pb::ExplainFairOutcomeRequest>,
    ) -> Result<Response<pb::ExplainFairOutcomeResponse>, Status> {
        let r = request.into_inner();
        let state = self.state.clone();
        let answer = blocking(move || {
            let at = FieldPath::request();
            let applicant = check_id(&r.applicant, &at.field("applicant"))?.to_owned();
            let loaded = state
                .fairs
                .loaded(&state.log, &r.run_id, &at.field("run_id"))?;
            let loaded = read(&loaded);
            let now = current(&loaded)?;
            let (i, got) = outcome(&loaded, &now, &applicant, &at.field("applicant"))?;
            let explanation =
                fair::explain(&loaded, &now, &applicant).map_err(allocation_status)?;
            let all = cutoffs(&loaded, &now);
            let a = &loaded.input.applicants[i as usize];
            let own = priority(&loaded, i);
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
                        .filter_map(|c| loaded.input.pool(f, c))
                        .map(|p| all[p as usize].clone())
                        .collect();
                    let fair_id = loaded.input.fairs[f as usize].id.clone();
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
        })
        .await?;
        Ok(Response::new(answer))
    }

    async fn withdraw(
        &self,
        request: Request<pb::WithdrawFairStallRequest>,
    ) -> Result<Response<pb::WithdrawFairStallResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        // What identifies the call, owned: the work may outlive this call (see `replies`).
        let (who, id, request) = (caller.name.clone(), r.request_id.clone(), r.clone());
        let state = self.state.clone();
        let answer = self
            .state
            .replies
            .once(&who, "Fairs/Withdraw", &id, &request, move || async move {
                let at = FieldPath::request();
                let applicant = check_id(&r.applicant, &at.field("applicant"))?.to_owned();
                let run_id = r.run_id.clone();
                let actor = caller.name.clone();
                let state = state.clone();
                blocking(move || {
                    let loaded = state
                        .fairs
                        .loaded(&state.log, &run_id, &at.field("run_id"))?;
                    state.fairs.changing(|| {
                        let mut loaded = loaded.write().unwrap_or_else(|e| e.into_inner());
                        let now = current(&loaded)?;
                        let path = at.field("applicant");
                        let (i, _) = outcome(&loaded, &now, &applicant, &path)?;
                        let freed = now.pool_of(&loaded.solved, i).ok_or_else(|| {
                            FieldError::failed_precondition(
                                &path,
                                if now.withdrawn[i as usize] {
                                    format!("'{applicant}' has already given its stall back")
                                } else {
                                    format!("'{applicant}' holds no stall")
                                },
                            )
                        })?;
                        let changes =
                            fair::withdraw(&loaded.input, &loaded.solved, &now, &applicant)
                                .map_err(allocation_status)?;
                        let (_, logged) =
                            change_loaded(&state.log, &loaded, &actor, |_| Ok(changes))
                                .map_err(allocation_status)?;
                        loaded.changes.extend(logged.iter().cloned());
                        let after = current(&loaded)?;
                        let re_offered_to = logged.iter().find_map(|c| match &c.change {
                            Change::ReOffered { participant, .. } => Some(participant.clone()),
                            Change::Withdrawn { .. } => None,
                        });
                        let re_offered_to = match re_offered_to {
                            Some(who) => Some(outcome(&loaded, &after, &who, &path)?.1),
                            None => None,
                        };
                        Ok(pb::WithdrawFairStallResponse {
                            fair: loaded.input.fair_of(freed).to_owned(),
                            category: loaded.input.pools[freed as usize].category.clone(),
                            re_offered_to,
                            log: Some(pb::LogRange {
                                start: logged.first().map_or(0, |c| c.index),
                                end: logged.last().map_or(0, |c| c.index + 1),
                            }),
                        })
                    })
                })
                .await
            })
            .await?;
        Ok(Response::new(answer))
    }

    async fn verify(
        &self,
        request: Request<pb::VerifyFairRunRequest>,
    ) -> Result<Response<pb::VerifyFairRunResponse>, Status> {
        let r = request.into_inner();
        let state = self.state.clone();
        let v = blocking(move || verify_run::<Fairs>(&state, &r.run_id)).await?;
        Ok(Response::new(pb::VerifyFairRunResponse {
            verification: Some(verification(&v)),
        }))
    }
}

/// Re-runs the run `run_id` names from the log (any domain).
pub fn verify_run<A: allot_engine::allocation::Allocation>(
    state: &AppState,
    run_id: &[u8],
) -> Result<Verification, Status> {
    let path = FieldPath::request().field("run_id");
    if run_id.len() != 32 {
        return Err(FieldError::invalid(
            &path,
            format!("is {} bytes; a run id has 32", run_id.len()),
        )
        .into());
    }
    verify_with_log::<A>(&state.log, &hex::encode(run_id)).map_err(|e| match e {
        allot_engine::allocation::Error::Request(m) if m.starts_with("no ") => {
            FieldError::not_found(&path, m).into()
        }
        e => allocation_status(e),
    })
}

/// A rank table as messages.
pub fn rank_counts(counts: &[u64]) -> Vec<pb::RankCount> {
    counts
        .iter()
        .enumerate()
        .map(|(r, &count)| pb::RankCount {
            rank: r as u32 + 1,
            count,
        })
        .collect()
}
