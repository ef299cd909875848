//! The `Schools` service: application windows, runs, outcomes, explanations and verification, on
//! the school domain of the engine (`allot_engine::school`) and the shared run protocol.

use std::collections::HashSet;
use std::sync::Arc;

use allot_engine::allocation::{Loaded, key_parts};
use allot_engine::input::Table;
use allot_engine::school::{self, Mechanism, Params, ReserveOrder, Schools, TieBreaking};
use serde::{Deserialize, Serialize};
use tokio_stream::StreamExt as _;
use tonic::{Request, Response, Status, Streaming};

use super::appointments::caller;
use super::fairs::{beacon, rank_counts, verification, verify_run, window_of};
use super::state::AppState;
use super::status::blocking;
use super::validate::{FieldError, FieldPath, check_id, check_range};
use super::windows::{WindowKind, allocation_status, csv_row};
use crate::proto::v1 as pb;
use crate::proto::v1::schools_server::Schools as SchoolsApi;

/// Most schools a student may list.
pub const MAX_CHOICES: usize = 12;
/// Most seats of one school.
pub const MAX_SEATS: u32 = 100_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchoolRow {
    pub id: String,
    pub capacity: u32,
    /// `(priority class, seats)`.
    pub reserves: Vec<(u32, u32)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StudentRow {
    pub id: String,
    pub lottery: Option<u64>,
    pub choices: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PriorityRow {
    pub school: String,
    pub student: String,
    pub priority: u32,
}

/// What one `SubmitApplications` call adds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SchoolChunk {
    pub schools: Vec<SchoolRow>,
    pub students: Vec<StudentRow>,
    pub priorities: Vec<PriorityRow>,
}

impl WindowKind for Schools {
    const FOLDER: &'static str = "schools";
    type Chunk = SchoolChunk;

    fn keys(chunk: &SchoolChunk) -> Vec<String> {
        let schools = chunk.schools.iter().map(|s| format!("school:{}", s.id));
        let students = chunk.students.iter().map(|s| format!("student:{}", s.id));
        let priorities = chunk
            .priorities
            .iter()
            .map(|p| format!("priority:{}/{}", p.school, p.student));
        schools.chain(students).chain(priorities).collect()
    }

    fn counts(chunk: &SchoolChunk) -> [u64; 3] {
        [
            chunk.schools.len() as u64,
            chunk.students.len() as u64,
            chunk.priorities.len() as u64,
        ]
    }

    fn input(chunks: &[SchoolChunk]) -> Result<school::SchoolInput, String> {
        let mut schools = String::from("school,capacity\n");
        let mut reserves = String::from("school,class,seats\n");
        let mut any_reserve = false;
        let students = chunks.iter().flat_map(|c| &c.students);
        let lottery = students.clone().all(|s| s.lottery.is_some());
        let mut rows = String::from(if lottery {
            "student,lottery,choices\n"
        } else {
            "student,choices\n"
        });
        let mut priorities = String::from("school,student,priority\n");
        for c in chunks {
            for s in &c.schools {
                csv_row(&mut schools, [&*s.id, &s.capacity.to_string()]);
                for (class, seats) in &s.reserves {
                    any_reserve = true;
                    csv_row(
                        &mut reserves,
                        [&*s.id, &class.to_string(), &seats.to_string()],
                    );
                }
            }
            for p in &c.priorities {
                csv_row(
                    &mut priorities,
                    [&*p.school, &p.student, &p.priority.to_string()],
                );
            }
        }
        for s in students {
            let choices = s.choices.join(";");
            match s.lottery {
                Some(l) if lottery => csv_row(&mut rows, [&*s.id, &l.to_string(), &choices]),
                _ => csv_row(&mut rows, [&*s.id, &choices]),
            }
        }
        let table = |name: &str, text: String| {
            Table::from_bytes(name, text.into_bytes()).map_err(|e| e.to_string())
        };
        let reserves = if any_reserve {
            Some(table("reserves", reserves)?)
        } else {
            None
        };
        school::read_tables(
            &table("schools", schools)?,
            &table("students", rows)?,
            &table("priorities", priorities)?,
            reserves.as_ref(),
        )
        .map(|files| files.input)
        .map_err(|e| e.to_string())
    }
}

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

async fn read_submission(
    mut stream: Streaming<pb::SubmitSchoolApplicationsRequest>,
    max_upload_bytes: usize,
) -> Result<(String, FieldPath, SchoolChunk, Vec<(String, FieldPath)>), Status> {
    let mut window: Option<(String, FieldPath)> = None;
    let mut chunk = SchoolChunk::default();
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
        for (j, s) in m.schools.into_iter().enumerate() {
            let path = at.field("schools").index(j);
            let id = choice_id(&s.id, &path.field("id"))?.to_owned();
            check_range(s.capacity, 0, MAX_SEATS, &path.field("capacity"))?;
            let mut classes = HashSet::new();
            let mut reserved = 0u64;
            let mut reserves = Vec::new();
            for (r, reserve) in s.reserves.iter().enumerate() {
                let rpath = path.field("reserves").index(r);
                if !classes.insert(reserve.priority_class) {
                    return Err(FieldError::invalid(
                        &rpath.field("priority_class"),
                        format!("class {} is reserved twice", reserve.priority_class),
                    )
                    .into());
                }
                reserved += u64::from(reserve.seats);
                if reserved > u64::from(s.capacity) {
                    return Err(FieldError::invalid(
                        &rpath.field("seats"),
                        format!("the reserves add up to more than the {} seats", s.capacity),
                    )
                    .into());
                }
                reserves.push((reserve.priority_class, reserve.seats));
            }
            keys.push((format!("school:{id}"), path.field("id")));
            chunk.schools.push(SchoolRow {
                id,
                capacity: s.capacity,
                reserves,
            });
        }
        for (j, s) in m.students.into_iter().enumerate() {
            let path = at.field("students").index(j);
            check_id(&s.id, &path.field("id"))?;
            if s.choices.is_empty() || s.choices.len() > MAX_CHOICES {
                return Err(FieldError::invalid(
                    &path.field("choices"),
                    format!("has {} schools; list 1 to {MAX_CHOICES}", s.choices.len()),
                )
                .into());
            }
            let mut seen = HashSet::new();
            for (c, choice) in s.choices.iter().enumerate() {
                let cpath = path.field("choices").index(c);
                choice_id(choice, &cpath)?;
                if !seen.insert(choice.as_str()) {
                    return Err(
                        FieldError::invalid(&cpath, format!("'{choice}' is listed twice")).into(),
                    );
                }
            }
            keys.push((format!("student:{}", s.id), path.field("id")));
            chunk.students.push(StudentRow {
                id: s.id,
                lottery: s.lottery,
                choices: s.choices,
            });
        }
        for (j, p) in m.priorities.into_iter().enumerate() {
            let path = at.field("priorities").index(j);
            check_id(&p.school, &path.field("school"))?;
            check_id(&p.student, &path.field("student"))?;
            check_range(p.priority, 0, 1000, &path.field("priority"))?;
            keys.push((
                format!("priority:{}/{}", p.school, p.student),
                path.field("student"),
            ));
            chunk.priorities.push(PriorityRow {
                school: p.school,
                student: p.student,
                priority: p.priority,
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

/// The Schools service.
#[derive(Debug, Clone)]
pub struct SchoolsService {
    state: Arc<AppState>,
    max_upload_bytes: usize,
}

impl SchoolsService {
    pub fn new(state: Arc<AppState>) -> Self {
        SchoolsService {
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

fn key(key: u64) -> pb::SchoolPriorityKey {
    let (priority_class, lottery) = key_parts(key);
    pb::SchoolPriorityKey {
        priority_class,
        lottery,
    }
}

fn cutoffs(loaded: &Loaded<Schools>) -> Vec<pb::SchoolCutoff> {
    let (input, solved) = (&loaded.input, &loaded.solved);
    let mut admitted = vec![0u32; input.schools.len()];
    for i in 0..input.students.len() as u32 {
        if let Some(j) = solved.school_of(i) {
            admitted[j as usize] += 1;
        }
    }
    input
        .schools
        .iter()
        .enumerate()
        .map(|(j, s)| pb::SchoolCutoff {
            school: s.id.clone(),
            capacity: s.capacity,
            admitted: admitted[j],
            cutoff: solved.cutoffs[j].map(key),
        })
        .collect()
}

fn outcome(
    loaded: &Loaded<Schools>,
    student: &str,
    path: &FieldPath,
) -> Result<(u32, pb::GetSchoolOutcomeResponse), Status> {
    let i = loaded.input.student(student).ok_or_else(|| {
        FieldError::not_found(
            path,
            format!("no student '{student}' in run {}", loaded.run.label()),
        )
    })?;
    let solved = &loaded.solved;
    let school = solved.school_of(i);
    Ok((
        i,
        pb::GetSchoolOutcomeResponse {
            student: student.to_owned(),
            school: school
                .map(|j| loaded.input.schools[j as usize].id.clone())
                .unwrap_or_default(),
            rank: solved.rank_of(i).unwrap_or(0),
            priority: school.and_then(|j| solved.market.key(i, j)).map(key),
            log_index: loaded
                .run
                .outcome_range()
                .map_or(0, |r| r.start + u64::from(i)),
        },
    ))
}

fn read<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

#[tonic::async_trait]
impl SchoolsApi for SchoolsService {
    async fn submit_applications(
        &self,
        request: Request<Streaming<pb::SubmitSchoolApplicationsRequest>>,
    ) -> Result<Response<pb::SubmitSchoolApplicationsResponse>, Status> {
        let (window, path, chunk, keys) =
            read_submission(request.into_inner(), self.max_upload_bytes).await?;
        let state = self.state.clone();
        let name = window.clone();
        let totals = blocking(move || state.schools.submit(&name, &path, chunk, keys)).await?;
        Ok(Response::new(pb::SubmitSchoolApplicationsResponse {
            window,
            schools_added: totals.added[0],
            students_added: totals.added[1],
            priorities_added: totals.added[2],
            schools_total: totals.total[0],
            students_total: totals.total[1],
            priorities_total: totals.total[2],
        }))
    }

    async fn close_applications(
        &self,
        request: Request<pb::CloseSchoolApplicationsRequest>,
    ) -> Result<Response<pb::CloseSchoolApplicationsResponse>, Status> {
        let caller = caller(&request)?;
        let path = FieldPath::request().field("window");
        let window = window_of(&request.get_ref().window, &path)?;
        let state = self.state.clone();
        let name = window.clone();
        let closed =
            blocking(move || state.schools.close(&state.log, &name, &path, &caller.name)).await?;
        Ok(Response::new(pb::CloseSchoolApplicationsResponse {
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
        request: Request<pb::RunSchoolAllocationRequest>,
    ) -> Result<Response<pb::RunSchoolAllocationResponse>, Status> {
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
                "Schools/RunAllocation",
                &id,
                &request,
                move || async move {
                    let at = FieldPath::request();
                    let path = at.field("window");
                    let window = window_of(&r.window, &path)?;
                    let unknown = |field: &str| -> Status {
                        FieldError::invalid(&at.field(field), "unknown value").into()
                    };
                    let mechanism = match pb::SchoolMechanism::try_from(r.mechanism) {
                        Ok(pb::SchoolMechanism::Unspecified | pb::SchoolMechanism::StudentDa) => {
                            Mechanism::Da
                        }
                        Ok(pb::SchoolMechanism::SchoolDa) => Mechanism::SchoolDa,
                        Ok(pb::SchoolMechanism::Ttc) => Mechanism::Ttc,
                        Ok(pb::SchoolMechanism::ImmediateAcceptance) => Mechanism::Boston,
                        Ok(pb::SchoolMechanism::Eada) => Mechanism::Eada,
                        Err(_) => return Err(unknown("mechanism")),
                    };
                    let tie_breaking = match pb::TieBreaking::try_from(r.tie_breaking) {
                        Ok(pb::TieBreaking::Multiple) => TieBreaking::Multiple,
                        Ok(_) => TieBreaking::Single,
                        Err(_) => return Err(unknown("tie_breaking")),
                    };
                    let reserve_order = match pb::ReserveOrder::try_from(r.reserve_order) {
                        Ok(pb::ReserveOrder::OpenFirst) => ReserveOrder::OpenFirst,
                        Ok(_) => ReserveOrder::ReservedFirst,
                        Err(_) => return Err(unknown("reserve_order")),
                    };
                    let beacon = beacon(r.beacon.as_ref(), &at.field("beacon"))?;
                    let params = Params {
                        mechanism,
                        tie_breaking,
                        reserve_order,
                    };
                    let actor = caller.name.clone();
                    let state = state.clone();
                    blocking(move || {
                        let (logged, loaded) = state.schools.run(
                            &state.log,
                            &window,
                            &path,
                            &params,
                            beacon.as_ref(),
                            &actor,
                        )?;
                        let loaded = read(&loaded);
                        let stats = school::stats(&loaded.input, &loaded.solved)
                            .map_err(allocation_status)?;
                        let info = &logged.info;
                        Ok(pb::RunSchoolAllocationResponse {
                            run_id: info.id.0.to_vec(),
                            input_digest: info.run.input_digest.0.to_vec(),
                            seed: info.run.seed.map(|s| s.0.to_vec()).unwrap_or_default(),
                            outcome_digest: info.run.outcome_digest.0.to_vec(),
                            summary: Some(pb::SchoolRunSummary {
                                students: stats.students,
                                assigned: stats.assigned,
                                unassigned: stats.unassigned,
                                rank_counts: rank_counts(&stats.rank_counts),
                                blocking_pairs: stats.blocking_pairs,
                                justified_envy: stats.justified_envy,
                                solve_seconds: loaded.solved.solve_seconds,
                            }),
                            cutoffs: cutoffs(&loaded),
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
        request: Request<pb::GetSchoolOutcomeRequest>,
    ) -> Result<Response<pb::GetSchoolOutcomeResponse>, Status> {
        let r = request.into_inner();
        let state = self.state.clone();
        let answer = blocking(move || {
            let at = FieldPath::request();
            let student = check_id(&r.student, &at.field("student"))?.to_owned();
            let loaded = state
                .schools
                .loaded(&state.log, &r.run_id, &at.field("run_id"))?;
            let loaded = read(&loaded);
            Ok(outcome(&loaded, &student, &at.field("student"))?.1)
        })
        .await?;
        Ok(Response::new(answer))
    }

    async fn explain(
        &self,
        request: Request<pb::ExplainSchoolOutcomeRequest>,
    ) -> Result<Response<pb::ExplainSchoolOutcomeResponse>, Status> {
        let r = request.into_inner();
        let state = self.state.clone();
        let answer = blocking(move || {
            let at = FieldPath::request();
            let student = check_id(&r.student, &at.field("student"))?.to_owned();
            let loaded = state
                .schools
                .loaded(&state.log, &r.run_id, &at.field("run_id"))?;
            let loaded = read(&loaded);
            let (i, got) = outcome(&loaded, &student, &at.field("student"))?;
            let explanation = school::explain(&loaded, &student).map_err(allocation_status)?;
            let all = cutoffs(&loaded);
            let list = loaded.solved.market.list(i);
            let better = if got.rank == 0 {
                list.len()
            } else {
                got.rank as usize - 1
            };
            let better_choices = list[..better]
                .iter()
                .enumerate()
                .map(|(k, &j)| {
                    let cutoff = all[j as usize].clone();
                    let own = loaded.solved.market.key(i, j).map(key);
                    let reason = match (&cutoff.cutoff, &own) {
                        (Some(c), Some(o)) => format!(
                            "{} filled up to class {}, lottery {}; you are class {}, lottery {}",
                            cutoff.school, c.priority_class, c.lottery, o.priority_class, o.lottery
                        ),
                        _ => format!("{} did not fill", cutoff.school),
                    };
                    pb::SchoolChoiceExplanation {
                        rank: k as u32 + 1,
                        school: cutoff.school.clone(),
                        cutoff: Some(cutoff),
                        own_priority: own,
                        reason,
                    }
                })
                .collect();
            Ok(pb::ExplainSchoolOutcomeResponse {
                outcome: Some(got),
                better_choices,
                lines: explanation.lines,
            })
        })
        .await?;
        Ok(Response::new(answer))
    }

    async fn verify(
        &self,
        request: Request<pb::VerifySchoolRunRequest>,
    ) -> Result<Response<pb::VerifySchoolRunResponse>, Status> {
        let r = request.into_inner();
        let state = self.state.clone();
        let v = blocking(move || verify_run::<Schools>(&state, &r.run_id)).await?;
        Ok(Response::new(pb::VerifySchoolRunResponse {
            verification: Some(verification(&v)),
        }))
    }
}
