//! The allocation protocol the `Fairs` and `Schools` services serve: application windows, the
//! run, outcomes, explanations, results, verification and, where a domain re-offers places,
//! withdrawals.
//!
//! Every step is written once here, generic over [`Served`]: an engine domain
//! ([`Allocation`]) with its application windows ([`WindowKind`]) and its messages. A domain
//! module ([`fairs`], [`schools`]) converts messages and nothing else, and its tonic service is
//! one line per method. A third domain (kindergarten places, sports sections) is one more module
//! implementing [`Served`], a field in [`AppState`] for its windows, and a registration in
//! `server/mod.rs`.

pub mod fairs;
pub mod schools;
pub mod windows;

use std::sync::{Arc, RwLock, RwLockReadGuard};

use allot_engine::allocation::{
    self, Beacon, Change, Holdings, Loaded, LoggedChange, LoggedRun, Vacancies, Verification,
    change_loaded, find_run, verify_with_log,
};
use allot_engine::log::Digest;
use tokio_stream::StreamExt as _;
use tonic::{Request, Status, Streaming};

use super::appointments::{caller, timestamp};
use super::state::AppState;
use super::status::blocking;
use super::validate::{FieldError, FieldPath, Locate, check_id};
use crate::proto::v1 as pb;
use windows::{
    Arrival, Step, StepKind, Submission, Totals, WindowKind, Windows, allocation_status,
};

/// Rows per message of a `GetResults` stream.
pub const RESULT_ROWS_PER_MESSAGE: usize = 10_000;

/// An allocation domain as the API serves it: the engine's domain, its windows, and its
/// messages.
pub trait Served: WindowKind + Vacancies + Send + Sync {
    /// The service's name, e.g. `Fairs` (retried calls are remembered per method).
    const RUN_METHOD: &'static str;

    /// One message of a `SubmitApplications` stream.
    type Submit: prost::Message + Default + Send + 'static;
    type Submitted: Send + 'static;
    type RunRequest: prost::Message + Clone + Default + Send + Sync + 'static;
    type RunResponse: prost::Message + Clone + Default + Send + 'static;
    type Outcome: Send + 'static;
    type Explained: Send + 'static;
    type Results: Send + 'static;
    /// The answer to a place given back.
    type Withdrawn: prost::Message + Default + Send + 'static;

    /// The domain's windows in the server's state.
    fn windows(state: &AppState) -> &Windows<Self>;

    /// The window a stream message names (may be empty after the first message), and whether
    /// it asks to amend.
    fn submission_head(message: &Self::Submit) -> (&str, bool);
    /// Checks message `k` of a submission stream and adds its items to `items`.
    fn read_submission(
        message: Self::Submit,
        k: u32,
        items: &mut Vec<(Self::Item, Arrival)>,
    ) -> Result<(), FieldError>;
    fn submitted(window: String, totals: Totals) -> Self::Submitted;

    /// The window, idempotency key and beacon of a run request.
    fn run_fields(request: &Self::RunRequest) -> (&str, &str, Option<&pb::Beacon>);
    /// The run's parameters, checked.
    fn params(request: &Self::RunRequest, at: &FieldPath) -> Result<Self::Params, FieldError>;
    /// The answer to a run just logged.
    fn ran(
        loaded: &Loaded<Self>,
        run: pb::RunRecord,
        log: pb::LogRange,
    ) -> Result<Self::RunResponse, Status>;

    /// Participant `i`'s outcome now.
    fn outcome(loaded: &Loaded<Self>, now: &Holdings, i: u32) -> Self::Outcome;
    fn explain(loaded: &Loaded<Self>, now: &Holdings, i: u32) -> Result<Self::Explained, Status>;
    /// The results as published, in messages of at most [`RESULT_ROWS_PER_MESSAGE`] rows.
    fn results(loaded: &Loaded<Self>, now: &Holdings) -> Result<Vec<Self::Results>, Status>;
    /// The answer, once a place given back and its re-offers are logged: the unit it was given
    /// back in, the outcome of whom it was re-offered to, the entries and the changes.
    fn withdrawn(
        loaded: &Loaded<Self>,
        unit: u32,
        re_offered_to: Option<Self::Outcome>,
        log: pb::LogRange,
        changes: Vec<pb::PlaceChange>,
    ) -> Self::Withdrawn;

    type LookedUp: Send + 'static;
    type Cutoffs: Send + 'static;
    /// A citizen's lookup: the application's `status`, and when the window was run, the latest
    /// run (its record, state and the participant's index). `receipt` proves an entry.
    fn looked_up(
        run: Option<(pb::RunRecord, &Loaded<Self>, &Holdings, u32)>,
        status: pb::ApplicationStatus,
        receipt: &dyn Fn(u64) -> Result<pb::PublicReceipt, Status>,
    ) -> Result<Self::LookedUp, Status>;
    /// A run's cutoffs as published.
    fn published_cutoffs(
        window: String,
        run: pb::RunRecord,
        loaded: &Loaded<Self>,
        now: &Holdings,
    ) -> Self::Cutoffs;
}

/// The current assignment: the run's outcome with the changes logged since replayed.
pub fn now<A: Served>(loaded: &Loaded<A>) -> Result<Holdings, Status> {
    Holdings::replay::<A>(&loaded.input, &loaded.solved, &loaded.changes).map_err(allocation_status)
}

/// The place participant `i` holds now, if any.
fn holding<A: Served>(loaded: &Loaded<A>, now: &Holdings, i: u32) -> Option<String> {
    let unit = now.unit_of(A::market(&loaded.solved), i)?;
    Some(A::place_of(&loaded.input, unit).to_owned())
}

/// The entry that gave participant `i` what it holds now: its latest change, or its outcome.
pub fn latest_entry<A: Served>(loaded: &Loaded<A>, i: u32) -> u64 {
    let id = A::participant_id(&loaded.input, i);
    let changed = loaded.changes.iter().rev().find(|c| match &c.change {
        Change::Withdrawn { participant, .. } | Change::ReOffered { participant, .. } => {
            participant == id
        }
    });
    match changed {
        Some(c) => c.index,
        None => loaded
            .run
            .outcome_range()
            .map_or(0, |r| r.start + u64::from(i)),
    }
}

/// A logged change as the API answers it.
fn place_change(c: &LoggedChange) -> pb::PlaceChange {
    let (participant, place, from) = match &c.change {
        Change::Withdrawn { participant, place } => (participant, place, String::new()),
        Change::ReOffered {
            participant,
            place,
            from,
        } => (participant, place, from.clone()),
    };
    pb::PlaceChange {
        log_index: c.index,
        participant: participant.clone(),
        place: place.clone(),
        from,
    }
}

/// Reads a submission stream into a window, all or nothing.
pub async fn submit<A: Served>(
    state: Arc<AppState>,
    mut stream: Streaming<A::Submit>,
    (max_upload_bytes, max_window_items): (usize, u64),
    actor: &str,
) -> Result<A::Submitted, Status> {
    let mut window: Option<(String, FieldPath)> = None;
    let mut how = Submission::Add;
    let mut items = Vec::new();
    let mut uploaded = 0usize;
    let mut k = 0u32;
    while let Some(message) = stream.next().await {
        let message = message?;
        let at = || FieldPath::stream_message(k as usize);
        // Each message is bounded by the decoder; the stream as a whole by this cap, since
        // everything is held until the stream ends.
        uploaded = uploaded.saturating_add(prost::Message::encoded_len(&message));
        if uploaded > max_upload_bytes {
            return Err(FieldError {
                path: at(),
                problem: format!(
                    "the upload exceeds {max_upload_bytes} bytes: send the applications in \
                     several SubmitApplications calls"
                ),
                code: tonic::Code::ResourceExhausted,
            }
            .into());
        }
        let (named, amend) = A::submission_head(&message);
        match &window {
            None => {
                if amend {
                    how = Submission::Amend;
                }
                let path = at().field("window");
                window = Some((check_id(named, &path)?.to_owned(), path));
            }
            Some((w, _)) if !named.is_empty() && named != w => {
                return Err(FieldError::invalid(
                    &at().field("window"),
                    format!("is '{named}', but the first message named window '{w}'"),
                )
                .into());
            }
            Some(_) => {}
        }
        A::read_submission(message, k, &mut items)?;
        k = k.saturating_add(1);
    }
    let Some((window, path)) = window else {
        return Err(FieldError::invalid(
            &FieldPath::stream_message(0),
            "the stream has no message: send at least one naming the window",
        )
        .into());
    };
    read_windows::<A>(&state).await?;
    let windows = A::windows(&state);
    let submission = (items, how);
    let totals = windows.submit(
        &state.log,
        (&window, &path),
        submission,
        actor,
        max_window_items,
    );
    let totals = totals.await?;
    Ok(A::submitted(window, totals))
}

/// Reads the domain's windows from the log on first use, off the async threads (later calls
/// find them read and stay on their thread).
async fn read_windows<A: Served>(state: &Arc<AppState>) -> Result<(), Status> {
    if A::windows(state).is_read() {
        return Ok(());
    }
    let reading = state.clone();
    blocking(move || A::windows(&reading).read(&reading.log)).await
}

/// Withdraws applications from an open window.
pub async fn withdraw_applications<A: Served>(
    state: Arc<AppState>,
    request: pb::WithdrawApplicationsRequest,
    actor: &str,
) -> Result<pb::WithdrawApplicationsResponse, Status> {
    let at = FieldPath::request();
    let window = check_id(&request.window, &at.field("window"))?;
    let ids = &request.ids;
    if ids.is_empty() || ids.len() > MAX_WITHDRAWALS {
        return Err(FieldError::invalid(
            &at.field("ids"),
            format!("has {} ids; send 1 to {MAX_WITHDRAWALS}", ids.len()),
        )
        .into());
    }
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let path = || at.field("ids").index(i);
        check_id(id, &path)?;
        if !seen.insert(id) {
            return Err(FieldError::invalid(&path(), format!("'{id}' is listed twice")).into());
        }
    }
    read_windows::<A>(&state).await?;
    let windows = A::windows(&state);
    let receipts = windows
        .withdraw(&state.log, (window, &at), ids, actor)
        .await?;
    Ok(pb::WithdrawApplicationsResponse {
        window: window.to_owned(),
        receipts: receipts_of(window, &receipts),
    })
}

/// A participant accepts the place it holds in a run (once: the same place accepted again
/// answers with the first acceptance). Under the domain's lock, so no withdrawal moves the
/// place between reading and logging.
pub async fn accept_place<A: Served>(
    state: Arc<AppState>,
    request: pb::AcceptPlaceRequest,
    actor: &str,
) -> Result<pb::AcceptPlaceResponse, Status> {
    let actor = actor.to_owned();
    blocking(move || {
        let at = FieldPath::request();
        let path = at.field("id");
        let id = check_id(&request.id, &path)?;
        let windows = A::windows(&state);
        let held = windows.loaded(&state.log, &request.run_id, &at.field("run_id"))?;
        windows.changing(|| {
            let loaded = read(&held);
            let i = index_of(&loaded, id, &path)?;
            let now = now(&loaded)?;
            let Some(place) = holding(&loaded, &now, i) else {
                let run = loaded.run.label();
                let problem = format!("'{id}' holds no place in run {run}: nothing to accept");
                return Err(FieldError::failed_precondition(&path, problem).into());
            };
            let log_index = windows.accept(&state.log, &loaded.run, id, &place, &actor)?;
            Ok(pb::AcceptPlaceResponse { place, log_index })
        })
    })
    .await
}

/// Most applications one `WithdrawApplications` call withdraws.
pub const MAX_WITHDRAWALS: usize = 10_000;

/// An application's history in a window.
pub async fn application_status<A: Served>(
    state: Arc<AppState>,
    request: pb::GetApplicationStatusRequest,
) -> Result<pb::ApplicationStatus, Status> {
    blocking(move || {
        let at = FieldPath::request();
        let window = check_id(&request.window, &at.field("window"))?;
        let id = check_id(&request.id, &at.field("id"))?;
        let (key, steps) = A::windows(&state).status(&state.log, (window, &at), id)?;
        Ok(pb::ApplicationStatus {
            window: window.to_owned(),
            key,
            steps: steps.into_iter().map(step).collect(),
        })
    })
    .await
}

fn step(s: Step) -> pb::ApplicationStep {
    use pb::application_step::Kind;
    let kind = match s.kind {
        StepKind::Received => Kind::Received,
        StepKind::Amended => Kind::Amended,
        StepKind::Withdrawn => Kind::Withdrawn,
        StepKind::InClosedSet => Kind::InClosedSet,
        StepKind::Placed => Kind::Placed,
        StepKind::Waitlisted => Kind::Waitlisted,
        StepKind::Offered => Kind::Offered,
        StepKind::GivenBack => Kind::GivenBack,
        StepKind::Accepted => Kind::Accepted,
    };
    pb::ApplicationStep {
        kind: kind.into(),
        log_index: s.index,
        run_id: s.run.map(|r| r.to_vec()).unwrap_or_default(),
        place: s.place.unwrap_or_default(),
        rank: s.rank,
    }
}

/// The receipts of a submission's items.
pub fn receipts(window: &str, totals: &Totals) -> Vec<pb::ApplicationReceipt> {
    receipts_of(window, &totals.receipts)
}

fn receipts_of(window: &str, receipts: &[windows::Receipt]) -> Vec<pb::ApplicationReceipt> {
    receipts
        .iter()
        .map(|r| pb::ApplicationReceipt {
            window: window.to_owned(),
            key: r.key.clone(),
            log_index: r.index,
            leaf_hash: r.leaf_hash.to_vec(),
            checkpoint_size: r.checkpoint_size,
        })
        .collect()
}

/// Closes a window: logs the commitment (or returns the one logged before).
pub async fn close<A: Served, T>(
    state: Arc<AppState>,
    request: &Request<T>,
    window: &str,
) -> Result<pb::ApplicationSetCommitment, Status> {
    let caller = caller(request)?;
    let path = FieldPath::request().field("window");
    let window = check_id(window, &path)?.to_owned();
    let name = window.clone();
    let closed =
        blocking(move || A::windows(&state).close(&state.log, &name, &path, &caller.name)).await?;
    Ok(pb::ApplicationSetCommitment {
        window,
        applications: closed.applications,
        set_digest: closed.set_digest.0.to_vec(),
        log_index: closed.index,
    })
}

/// Runs a mechanism on a closed window, once per `request_id`.
pub async fn run<A: Served>(
    state: Arc<AppState>,
    request: Request<A::RunRequest>,
) -> Result<A::RunResponse, Status> {
    let caller = caller(&request)?;
    let r = request.into_inner();
    let (_, request_id, _) = A::run_fields(&r);
    // What identifies the call, owned: the work may outlive this call (see `replies`).
    let (who, id, request) = (caller.name.clone(), request_id.to_owned(), r.clone());
    let shared = state.clone();
    shared
        .replies
        .once(&who, A::RUN_METHOD, &id, &request, move || async move {
            let at = FieldPath::request();
            let (window, _, beacon) = A::run_fields(&r);
            let path = at.field("window");
            let window = check_id(window, &path)?.to_owned();
            let params = A::params(&r, &at)?;
            let beacon = beacon_of(beacon, &at.field("beacon"))?;
            blocking(move || {
                let windows = A::windows(&state);
                let (logged, held) = windows.run(
                    &state.log,
                    &window,
                    &path,
                    &params,
                    beacon.as_ref(),
                    &caller.name,
                )?;
                let loaded = read(&held);
                let info = &logged.info;
                let run = record(&loaded.run, Some(info.closed_index), info.seed_index);
                let log = pb::LogRange {
                    start: logged.entries.start,
                    end: logged.entries.end,
                };
                A::ran(&loaded, run, log)
            })
            .await
        })
        .await
}

/// Reads a run's current state for participant `participant` (the request field
/// [`Served::PARTICIPANT`]): `f` gets the run, its state now and the participant's index.
pub async fn read_participant<A: Served, T: Send + 'static>(
    state: Arc<AppState>,
    run_id: Vec<u8>,
    participant: String,
    f: impl FnOnce(&Loaded<A>, &Holdings, u32) -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    blocking(move || {
        let at = FieldPath::request();
        let path = at.field(A::PARTICIPANT);
        check_id(&participant, &path)?;
        let held = A::windows(&state).loaded(&state.log, &run_id, &at.field("run_id"))?;
        let loaded = read(&held);
        let i = index_of(&loaded, &participant, &path)?;
        let now = now(&loaded)?;
        f(&loaded, &now, i)
    })
    .await
}

fn index_of<A: Served>(
    loaded: &Loaded<A>,
    participant: &str,
    path: &FieldPath,
) -> Result<u32, Status> {
    A::participant(&loaded.input, participant).ok_or_else(|| {
        FieldError::not_found(
            path,
            format!(
                "no {} '{participant}' in run {}",
                A::PARTICIPANT,
                loaded.run.label()
            ),
        )
        .into()
    })
}

/// One participant's outcome now.
pub async fn outcome<A: Served>(
    state: Arc<AppState>,
    run_id: Vec<u8>,
    participant: String,
) -> Result<A::Outcome, Status> {
    read_participant::<A, _>(state, run_id, participant, |loaded, now, i| {
        Ok(A::outcome(loaded, now, i))
    })
    .await
}

/// Why a participant did not get what it ranked higher.
pub async fn explain<A: Served>(
    state: Arc<AppState>,
    run_id: Vec<u8>,
    participant: String,
) -> Result<A::Explained, Status> {
    read_participant::<A, _>(state, run_id, participant, A::explain).await
}

/// A participant gives its place back; the place is re-offered down its waitlist. Once per
/// `request_id`; the domain's lock is held from reading the state until the changes are
/// logged, so two withdrawals never build on the same state.
pub async fn withdraw<A: Served, T>(
    state: Arc<AppState>,
    request: Request<T>,
    fields: impl FnOnce(&T) -> (Vec<u8>, String, String),
    method: &'static str,
) -> Result<A::Withdrawn, Status>
where
    T: prost::Message + Clone + 'static,
{
    let caller = caller(&request)?;
    let r = request.into_inner();
    let (run_id, participant, request_id) = fields(&r);
    let (who, request) = (caller.name.clone(), r);
    let shared = state.clone();
    shared
        .replies
        .once(&who, method, &request_id, &request, move || async move {
            let at = FieldPath::request();
            let path = at.field(A::PARTICIPANT);
            check_id(&participant, &path)?;
            blocking(move || {
                let windows = A::windows(&state);
                let held = windows.loaded(&state.log, &run_id, &at.field("run_id"))?;
                windows.changing(|| {
                    let mut loaded = held.write().unwrap_or_else(|e| e.into_inner());
                    let i = index_of(&loaded, &participant, &path)?;
                    let now = now(&loaded)?;
                    let changes = give_back(&loaded, &now, i, &path)?;
                    let (_, logged) =
                        change_loaded(&state.log, &loaded, &caller.name, |_| Ok(changes))
                            .map_err(allocation_status)?;
                    loaded.changes.extend(logged.iter().cloned());
                    let after = self::now(&loaded)?;
                    let unit = now
                        .unit_of(A::market(&loaded.solved), i)
                        .ok_or_else(|| Status::internal("the participant held no place"))?;
                    let re_offered_to = logged.iter().find_map(|c| match &c.change {
                        Change::ReOffered { participant, .. } => {
                            A::participant(&loaded.input, participant)
                        }
                        Change::Withdrawn { .. } => None,
                    });
                    let log = pb::LogRange {
                        start: logged.first().map_or(0, |c| c.index),
                        end: logged.last().map_or(0, |c| c.index + 1),
                    };
                    Ok(A::withdrawn(
                        &loaded,
                        unit,
                        re_offered_to.map(|j| A::outcome(&loaded, &after, j)),
                        log,
                        logged.iter().map(place_change).collect(),
                    ))
                })
            })
            .await
        })
        .await
}

/// The changes participant `i` giving its place back makes (the withdrawal, then the
/// re-offers), not yet logged; FAILED_PRECONDITION when it holds nothing.
fn give_back<A: Served>(
    loaded: &Loaded<A>,
    now: &Holdings,
    i: u32,
    path: &FieldPath,
) -> Result<Vec<Change>, Status> {
    let id = A::participant_id(&loaded.input, i);
    if now.position[i as usize].is_none() {
        let why = if now.withdrawn[i as usize] {
            format!("'{id}' has already given its {} back", A::PLACE)
        } else {
            format!("'{id}' holds no {}", A::PLACE)
        };
        return Err(FieldError::failed_precondition(path, why).into());
    }
    allocation::give_back::<A>(&loaded.input, &loaded.solved, now, id).map_err(allocation_status)
}

/// Re-runs a logged run from the log and its stored input.
pub async fn verify<A: Served>(
    state: Arc<AppState>,
    run_id: Vec<u8>,
) -> Result<pb::RunVerification, Status> {
    let v = blocking(move || {
        let path = FieldPath::request().field("run_id");
        let id = run_id_of(&run_id, &path)?;
        verify_with_log::<A>(&state.log, &hex::encode(id.0)).map_err(|e| not_found_at(e, &path))
    })
    .await?;
    Ok(verification(&v))
}

/// Finds a run of the domain: the latest, or one named by entry index or id prefix.
pub async fn get_run<A: Served>(
    state: Arc<AppState>,
    run: String,
) -> Result<pb::RunRecord, Status> {
    blocking(move || {
        let path = FieldPath::request().field("run");
        let which = (!run.trim().is_empty()).then_some(run.as_str());
        which.map(|run| check_id(run, &path)).transpose()?;
        let found = find_run(&state.log, A::DOMAIN, which).map_err(|e| not_found_at(e, &path))?;
        Ok(record(&found, None, None))
    })
    .await
}

/// A run's results as published, in its current state.
pub async fn results<A: Served>(
    state: Arc<AppState>,
    run_id: Vec<u8>,
) -> Result<tokio_stream::Iter<std::vec::IntoIter<Result<A::Results, Status>>>, Status> {
    let messages = blocking(move || {
        let path = FieldPath::request().field("run_id");
        let held = A::windows(&state).loaded(&state.log, &run_id, &path)?;
        let loaded = read(&held);
        let now = now(&loaded)?;
        A::results(&loaded, &now)
    })
    .await?;
    Ok(tokio_stream::iter(
        messages.into_iter().map(Ok).collect::<Vec<_>>(),
    ))
}

/// The domain's windows, with their runs' records (read from their entries, not re-run).
pub async fn list_windows<A: Served>(
    state: Arc<AppState>,
) -> Result<pb::ListWindowsResponse, Status> {
    blocking(move || {
        let windows = A::windows(&state).list(&state.log)?;
        let mut listed = Vec::with_capacity(windows.len());
        for (window, counts, closed_index, runs) in windows {
            let runs = runs
                .iter()
                .map(|(index, _)| {
                    let found = find_run(&state.log, A::DOMAIN, Some(&index.to_string()))
                        .map_err(allocation_status)?;
                    Ok(record(&found, closed_index, None))
                })
                .collect::<Result<_, Status>>()?;
            listed.push(pb::WindowSummary {
                window,
                places: counts[0],
                applications: counts[1],
                closed_index,
                runs,
            });
        }
        Ok(pb::ListWindowsResponse { windows: listed })
    })
    .await
}

/// A citizen's lookup of their own application: its history and, once the window was run, the
/// latest run's outcome, explanation and cutoffs, with a receipt of the decision. Public: the
/// application's code (where it has one) stands in for a token.
pub async fn look_up<A: Served>(
    state: Arc<AppState>,
    request: pb::LookUpRequest,
) -> Result<A::LookedUp, Status> {
    blocking(move || {
        let at = FieldPath::request();
        let window = check_id(&request.window, &at.field("window"))?;
        let id = check_id(&request.id, &at.field("id"))?;
        let windows = A::windows(&state);
        windows.check_lookup(&state.log, (window, &at), id, &request.code)?;
        let (key, steps) = windows.status(&state.log, (window, &at), id)?;
        let received = steps
            .iter()
            .rev()
            .find(|s| matches!(s.kind, StepKind::Received | StepKind::Amended))
            .map_or(0, |s| s.index);
        let status = pb::ApplicationStatus {
            window: window.to_owned(),
            key,
            steps: steps.into_iter().map(step).collect(),
        };
        let receipt = |index| super::audit::public_receipt(&state, index);
        let latest = windows.latest_run(&state.log, window, &at.field("window"))?;
        let Some(run) = latest else {
            return A::looked_up(None, status, &|_| receipt(received));
        };
        let held = windows.loaded(&state.log, &run, &at.field("window"))?;
        let loaded = read(&held);
        let Some(i) = A::participant(&loaded.input, id) else {
            return A::looked_up(None, status, &|_| receipt(received));
        };
        let now = now(&loaded)?;
        let run = record(&loaded.run, None, None);
        A::looked_up(Some((run, &loaded, &now, i)), status, &receipt)
    })
    .await
}

/// The cutoffs of a window's latest run, as published (public).
pub async fn cutoffs<A: Served>(
    state: Arc<AppState>,
    request: pb::GetCutoffsRequest,
) -> Result<A::Cutoffs, Status> {
    blocking(move || {
        let path = FieldPath::request().field("window");
        let window = check_id(&request.window, &path)?;
        let windows = A::windows(&state);
        let run = windows
            .latest_run(&state.log, window, &path)?
            .ok_or_else(|| {
                FieldError::not_found(
                    &path,
                    format!(
                        "window '{window}' has not been run yet: cutoffs are published with its run"
                    ),
                )
            })?;
        let held = windows.loaded(&state.log, &run, &path)?;
        let loaded = read(&held);
        let now = now(&loaded)?;
        let run = record(&loaded.run, None, None);
        Ok(A::published_cutoffs(window.to_owned(), run, &loaded, &now))
    })
    .await
}

/// A run as a message; `closed` and `seed`: where its window was closed and its seed drawn, when
/// known.
pub fn record(run: &LoggedRun, closed: Option<u64>, seed: Option<u64>) -> pb::RunRecord {
    let r = &run.run;
    pb::RunRecord {
        run_id: run.id.0.to_vec(),
        log_index: run.index,
        window: run.window.clone(),
        mechanism: r.mechanism.clone(),
        parameters: r.parameters.clone(),
        input_digest: r.input_digest.0.to_vec(),
        seed: r.seed.map(|s| s.0.to_vec()).unwrap_or_default(),
        outcome_digest: r.outcome_digest.0.to_vec(),
        participants: r.counts.participants,
        places: r.counts.places,
        assigned: r.counts.assigned,
        time: Some(timestamp(run.time)),
        actor: run.actor.clone(),
        closed_index: closed,
        seed_index: seed,
    }
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
        run: Some(record(&v.run, None, None)),
        results: v
            .checks
            .iter()
            .map(|c| pb::VerificationCheck {
                name: c.name.to_owned(),
                ok: c.ok,
                detail: c.detail.clone(),
            })
            .collect(),
    }
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

/// An id that may appear in a `;`-separated list of choices.
pub fn choice_id<'a>(id: &'a str, path: &impl Locate) -> Result<&'a str, FieldError> {
    let id = check_id(id, path)?;
    if id.contains(';') {
        return Err(FieldError::invalid(
            &path.locate(),
            "contains ';', which separates choices",
        ));
    }
    Ok(id)
}

/// Checks a list of choices: `1..=max` ids, no repeats; `what` names them (`fairs`).
pub fn check_choices(
    choices: &[String],
    max: usize,
    what: &str,
    path: &impl Locate,
) -> Result<(), FieldError> {
    if choices.is_empty() || choices.len() > max {
        return Err(FieldError::invalid(
            &path.locate(),
            format!("has {} {what}; list 1 to {max}", choices.len()),
        ));
    }
    for (c, choice) in choices.iter().enumerate() {
        let at = || path.locate().index(c);
        choice_id(choice, &at)?;
        // Lists are short (at most a few dozen): a scan beats hashing.
        if choices[..c].contains(choice) {
            return Err(FieldError::invalid(
                &at(),
                format!("'{choice}' is listed twice"),
            ));
        }
    }
    Ok(())
}

/// A beacon message, checked.
fn beacon_of(b: Option<&pb::Beacon>, path: &FieldPath) -> Result<Option<Beacon>, FieldError> {
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

/// A run id from a request field.
pub fn run_id_of(run_id: &[u8], path: &FieldPath) -> Result<Digest, FieldError> {
    run_id.try_into().map(Digest).map_err(|_| {
        FieldError::invalid(path, format!("is {} bytes; a run id has 32", run_id.len()))
    })
}

/// A lookup's error: "no such run" is NOT_FOUND at `path`.
fn not_found_at(e: allocation::Error, path: &FieldPath) -> Status {
    match e {
        allocation::Error::Request(m) if m.starts_with("no ") || m.contains(" has no ") => {
            FieldError::not_found(path, m).into()
        }
        allocation::Error::Request(m) => FieldError::invalid(path, m).into(),
        e => allocation_status(e),
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

/// A domain's gRPC service: the generated tonic trait (implemented by [`allocation_api!`]) over
/// the protocol above.
pub struct AllocationService<A> {
    state: Arc<AppState>,
    max_upload_bytes: usize,
    max_window_items: u64,
    domain: std::marker::PhantomData<fn() -> A>,
}

impl<A> std::fmt::Debug for AllocationService<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let limit = self.max_upload_bytes;
        f.debug_struct("AllocationService")
            .field("max_upload_bytes", &limit)
            .finish()
    }
}

impl<A> Clone for AllocationService<A> {
    fn clone(&self) -> Self {
        AllocationService {
            state: self.state.clone(),
            max_upload_bytes: self.max_upload_bytes,
            max_window_items: self.max_window_items,
            domain: std::marker::PhantomData,
        }
    }
}

impl<A> AllocationService<A> {
    pub fn new(state: Arc<AppState>) -> Self {
        AllocationService::with_limits(state, &crate::server::config::Limits::default())
    }

    fn with_limits(state: Arc<AppState>, limits: &crate::server::config::Limits) -> Self {
        AllocationService {
            state,
            max_upload_bytes: limits.max_upload_bytes,
            max_window_items: limits.max_window_items,
            domain: std::marker::PhantomData,
        }
    }

    /// Caps the total size of the messages of one `SubmitApplications` stream
    /// (`max_upload_bytes`) and the items of a window (`max_window_items`).
    pub fn limits(self, limits: &crate::server::config::Limits) -> Self {
        AllocationService::with_limits(self.state, limits)
    }
}

/// The messages of a `GetResults` stream.
pub type ResultStream<A> =
    tokio_stream::Iter<std::vec::IntoIter<Result<<A as Served>::Results, Status>>>;

/// Implements a domain's generated service trait on [`AllocationService`], one call of the
/// protocol per method: the domain, the field naming its participant, and the request (and
/// answer) messages the protocol's associated types do not name.
macro_rules! allocation_api {
    (
        $api:path, $domain:ty, participant: $who:ident,
        close: $close:ty => $closed:ty,
        outcome: $outcome:ty, explain: $explain:ty,
        verify: $verify:ty => $verified:ty,
        results: $results:ty, withdraw: $withdraw:ty, $method:literal
    ) => {
        #[tonic::async_trait]
        impl $api for $crate::server::allocation::AllocationService<$domain> {
            async fn submit_applications(
                &self,
                request: tonic::Request<tonic::Streaming<<$domain as Served>::Submit>>,
            ) -> Result<tonic::Response<<$domain as Served>::Submitted>, tonic::Status> {
                let caller = super::caller(&request)?;
                let (state, stream) = (self.state.clone(), request.into_inner());
                let limits = (self.max_upload_bytes, self.max_window_items);
                let submitted = super::submit::<$domain>(state, stream, limits, &caller.name);
                Ok(tonic::Response::new(submitted.await?))
            }

            async fn withdraw_applications(
                &self,
                request: tonic::Request<pb::WithdrawApplicationsRequest>,
            ) -> Result<tonic::Response<pb::WithdrawApplicationsResponse>, tonic::Status> {
                let caller = super::caller(&request)?;
                let (state, request) = (self.state.clone(), request.into_inner());
                let withdrawn =
                    super::withdraw_applications::<$domain>(state, request, &caller.name);
                Ok(tonic::Response::new(withdrawn.await?))
            }

            async fn get_application_status(
                &self,
                request: tonic::Request<pb::GetApplicationStatusRequest>,
            ) -> Result<tonic::Response<pb::ApplicationStatus>, tonic::Status> {
                let status =
                    super::application_status::<$domain>(self.state.clone(), request.into_inner());
                Ok(tonic::Response::new(status.await?))
            }

            async fn accept_place(
                &self,
                request: tonic::Request<pb::AcceptPlaceRequest>,
            ) -> Result<tonic::Response<pb::AcceptPlaceResponse>, tonic::Status> {
                let caller = super::caller(&request)?;
                let (state, request) = (self.state.clone(), request.into_inner());
                let accepted = super::accept_place::<$domain>(state, request, &caller.name);
                Ok(tonic::Response::new(accepted.await?))
            }

            async fn close_applications(
                &self,
                request: tonic::Request<$close>,
            ) -> Result<tonic::Response<$closed>, tonic::Status> {
                let window = request.get_ref().window.clone();
                let closed = super::close::<$domain, _>(self.state.clone(), &request, &window);
                let mut answer = <$closed>::default();
                answer.commitment = Some(closed.await?);
                Ok(tonic::Response::new(answer))
            }

            async fn run_allocation(
                &self,
                request: tonic::Request<<$domain as Served>::RunRequest>,
            ) -> Result<tonic::Response<<$domain as Served>::RunResponse>, tonic::Status> {
                let ran = super::run::<$domain>(self.state.clone(), request);
                Ok(tonic::Response::new(ran.await?))
            }

            async fn get_outcome(
                &self,
                request: tonic::Request<$outcome>,
            ) -> Result<tonic::Response<<$domain as Served>::Outcome>, tonic::Status> {
                let r = request.into_inner();
                let outcome = super::outcome::<$domain>(self.state.clone(), r.run_id, r.$who);
                Ok(tonic::Response::new(outcome.await?))
            }

            async fn explain(
                &self,
                request: tonic::Request<$explain>,
            ) -> Result<tonic::Response<<$domain as Served>::Explained>, tonic::Status> {
                let r = request.into_inner();
                let explained = super::explain::<$domain>(self.state.clone(), r.run_id, r.$who);
                Ok(tonic::Response::new(explained.await?))
            }

            async fn withdraw(
                &self,
                request: tonic::Request<$withdraw>,
            ) -> Result<tonic::Response<<$domain as Served>::Withdrawn>, tonic::Status> {
                let fields =
                    |r: &$withdraw| (r.run_id.clone(), r.$who.clone(), r.request_id.clone());
                let state = self.state.clone();
                let withdrawn = super::withdraw::<$domain, _>(state, request, fields, $method);
                Ok(tonic::Response::new(withdrawn.await?))
            }

            async fn verify(
                &self,
                request: tonic::Request<$verify>,
            ) -> Result<tonic::Response<$verified>, tonic::Status> {
                let run_id = request.into_inner().run_id;
                let verified = super::verify::<$domain>(self.state.clone(), run_id);
                let mut answer = <$verified>::default();
                answer.verification = Some(verified.await?);
                Ok(tonic::Response::new(answer))
            }

            async fn get_run(
                &self,
                request: tonic::Request<pb::GetRunRequest>,
            ) -> Result<tonic::Response<pb::RunRecord>, tonic::Status> {
                let run = request.into_inner().run;
                let record = super::get_run::<$domain>(self.state.clone(), run);
                Ok(tonic::Response::new(record.await?))
            }

            async fn list_windows(
                &self,
                _request: tonic::Request<pb::ListWindowsRequest>,
            ) -> Result<tonic::Response<pb::ListWindowsResponse>, tonic::Status> {
                let listed = super::list_windows::<$domain>(self.state.clone());
                Ok(tonic::Response::new(listed.await?))
            }

            async fn look_up(
                &self,
                request: tonic::Request<pb::LookUpRequest>,
            ) -> Result<tonic::Response<<$domain as Served>::LookedUp>, tonic::Status> {
                let found = super::look_up::<$domain>(self.state.clone(), request.into_inner());
                Ok(tonic::Response::new(found.await?))
            }

            async fn get_cutoffs(
                &self,
                request: tonic::Request<pb::GetCutoffsRequest>,
            ) -> Result<tonic::Response<<$domain as Served>::Cutoffs>, tonic::Status> {
                let cutoffs = super::cutoffs::<$domain>(self.state.clone(), request.into_inner());
                Ok(tonic::Response::new(cutoffs.await?))
            }

            type GetResultsStream = $crate::server::allocation::ResultStream<$domain>;

            async fn get_results(
                &self,
                request: tonic::Request<$results>,
            ) -> Result<tonic::Response<Self::GetResultsStream>, tonic::Status> {
                let run_id = request.into_inner().run_id;
                let results = super::results::<$domain>(self.state.clone(), run_id);
                Ok(tonic::Response::new(results.await?))
            }
        }
    };
}
use allocation_api;
