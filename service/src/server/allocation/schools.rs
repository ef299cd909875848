//! The `Schools` service: the allocation protocol ([`super`]) on the school domain of the engine
//! (`allot_engine::school`), and the conversions between its messages and the engine's types.

use std::collections::HashSet;

use allot_engine::allocation::{Holdings, Loaded};
use allot_engine::input::TableBuilder;
use allot_engine::school::{
    self, Mechanism, Params, ReserveOrder, SchoolInput, SchoolTables, Schools, TieBreaking,
};
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
use crate::proto::v1::schools_server::Schools as SchoolsApi;
use crate::server::state::AppState;
use crate::server::validate::{FieldError, FieldPath, check_id, check_range};

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
    /// [`super::windows::code_digest`] of its second factor, when it was given one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PriorityRow {
    pub school: String,
    pub student: String,
    pub priority: u32,
}

/// One item of a school window, as its `ApplicationSubmitted` decision records it: `{"school":
/// {"id", "capacity", "reserves"}}`, `{"student": {"id", "lottery", "choices"}}` or
/// `{"priority": {"school", "student", "priority"}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchoolItem {
    School(SchoolRow),
    Student(StudentRow),
    Priority(PriorityRow),
}

impl WindowKind for Schools {
    const PARTICIPANT: &'static str = "student";
    type Item = SchoolItem;

    fn key(item: &SchoolItem) -> String {
        match item {
            SchoolItem::School(s) => format!("school:{}", s.id),
            SchoolItem::Student(s) => format!("student:{}", s.id),
            SchoolItem::Priority(p) => format!("priority:{}/{}", p.school, p.student),
        }
    }

    fn kind(item: &SchoolItem) -> usize {
        match item {
            SchoolItem::School(_) => 0,
            SchoolItem::Student(_) => 1,
            SchoolItem::Priority(_) => 2,
        }
    }

    fn key_path(item: &SchoolItem, at: Arrival) -> FieldPath {
        match item {
            SchoolItem::School(_) => at.path("schools").field("id"),
            SchoolItem::Student(_) => at.path("students").field("id"),
            SchoolItem::Priority(_) => at.path("priorities").field("student"),
        }
    }

    fn code_digest(item: &SchoolItem) -> Option<&str> {
        match item {
            SchoolItem::Student(s) => s.code.as_deref(),
            _ => None,
        }
    }

    fn input(items: &[&SchoolItem]) -> Result<SchoolInput, String> {
        let mut schools = TableBuilder::new(&["school", "capacity"]);
        let mut reserves = TableBuilder::new(&["school", "class", "seats"]);
        let mut any_reserve = false;
        let students = items.iter().filter_map(|item| match item {
            SchoolItem::Student(s) => Some(s),
            _ => None,
        });
        let lottery = students.clone().all(|s| s.lottery.is_some());
        let mut rows = TableBuilder::new(if lottery {
            &["student", "lottery", "choices"][..]
        } else {
            &["student", "choices"][..]
        });
        let mut priorities = TableBuilder::new(&["school", "student", "priority"]);
        for item in items {
            match item {
                SchoolItem::School(s) => {
                    schools.row([&*s.id, &s.capacity.to_string()]);
                    for (class, seats) in &s.reserves {
                        any_reserve = true;
                        reserves.row([&*s.id, &class.to_string(), &seats.to_string()]);
                    }
                }
                SchoolItem::Priority(p) => {
                    priorities.row([&*p.school, &p.student, &p.priority.to_string()]);
                }
                SchoolItem::Student(_) => {}
            }
        }
        for s in students {
            let choices = s.choices.join(";");
            match s.lottery {
                Some(l) if lottery => rows.row([&*s.id, &l.to_string(), &choices]),
                _ => rows.row([&*s.id, &choices]),
            }
        }
        let table = |name: &str, rows: TableBuilder| rows.finish(name).map_err(|e| e.to_string());
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

/// A validated input as `SubmitApplications` messages: the schools, then the students and the
/// priorities, 10,000 to a message (what the CLI and `allot serve --dev` send).
pub fn submissions(
    window: &str,
    input: &SchoolInput,
    codes: &Codes,
) -> Vec<pb::SubmitSchoolApplicationsRequest> {
    let schools = input
        .schools
        .iter()
        .enumerate()
        .map(|(j, s)| pb::School {
            id: s.id.clone(),
            capacity: s.capacity,
            reserves: input
                .reserves
                .iter()
                .filter(|r| r.school as usize == j)
                .map(|r| pb::SeatReserve {
                    priority_class: r.class,
                    seats: r.seats,
                })
                .collect(),
        })
        .collect();
    let mut messages = vec![pb::SubmitSchoolApplicationsRequest {
        window: window.to_owned(),
        schools,
        ..Default::default()
    }];
    for chunk in input.students.chunks(RESULT_ROWS_PER_MESSAGE) {
        let students = chunk.iter().map(|st| pb::Student {
            id: st.id.clone(),
            lottery: st.lottery,
            choices: st
                .choices
                .iter()
                .map(|&j| input.schools[j as usize].id.clone())
                .collect(),
            second_factor: codes.get(&st.id).cloned().unwrap_or_default(),
        });
        messages.push(pb::SubmitSchoolApplicationsRequest {
            students: students.collect(),
            ..Default::default()
        });
    }
    for chunk in input.priorities.chunks(RESULT_ROWS_PER_MESSAGE) {
        let priorities = chunk.iter().map(|p| pb::SchoolPriority {
            school: input.schools[p.school as usize].id.clone(),
            student: input.students[p.student as usize].id.clone(),
            priority: p.class,
        });
        messages.push(pb::SubmitSchoolApplicationsRequest {
            priorities: priorities.collect(),
            ..Default::default()
        });
    }
    messages
}

fn key(key: Option<(u32, u64)>) -> Option<pb::SchoolPriorityKey> {
    key.map(|(priority_class, lottery)| pb::SchoolPriorityKey {
        priority_class,
        lottery,
    })
}

fn tables(loaded: &Loaded<Schools>, now: &Holdings) -> SchoolTables {
    let (input, solved) = (&loaded.input, &loaded.solved);
    let students = 0..input.students.len() as u32;
    let schools = 0..input.schools.len() as u32;
    SchoolTables::of(input, solved, &now.position, students, schools)
}

fn cutoff(row: school::SchoolCutoffRow) -> pb::SchoolCutoff {
    pb::SchoolCutoff {
        school: row.school,
        capacity: row.capacity,
        admitted: row.assigned,
        cutoff: key(row.cutoff),
    }
}

fn cutoffs(loaded: &Loaded<Schools>, now: &Holdings) -> Vec<pb::SchoolCutoff> {
    tables(loaded, now)
        .cutoffs
        .into_iter()
        .map(cutoff)
        .collect()
}

fn summary(loaded: &Loaded<Schools>, now: &Holdings) -> Result<pb::SchoolRunSummary, Status> {
    let (input, solved) = (&loaded.input, &loaded.solved);
    let gave_back: Vec<u32> = (0..input.students.len() as u32)
        .filter(|&i| now.withdrawn[i as usize])
        .collect();
    let stats =
        school::stats_with(input, solved, &now.position, &gave_back).map_err(allocation_status)?;
    let figures = school::InputFigures::of(input);
    Ok(pb::SchoolRunSummary {
        students: stats.students,
        assigned: stats.assigned,
        unassigned: stats.unassigned,
        rank_counts: rank_counts(&stats.rank_counts),
        blocking_pairs: stats.blocking_pairs,
        justified_envy: stats.justified_envy,
        solve_seconds: solved.solve_seconds,
        schools: figures.schools,
        seats: figures.seats,
        reserves: figures.reserves,
    })
}

impl Served for Schools {
    const RUN_METHOD: &'static str = "Schools/RunAllocation";
    type Submit = pb::SubmitSchoolApplicationsRequest;
    type Submitted = pb::SubmitSchoolApplicationsResponse;
    type RunRequest = pb::RunSchoolAllocationRequest;
    type RunResponse = pb::RunSchoolAllocationResponse;
    type Outcome = pb::GetSchoolOutcomeResponse;
    type Explained = pb::ExplainSchoolOutcomeResponse;
    type Results = pb::SchoolResults;
    type Withdrawn = pb::WithdrawSchoolSeatResponse;
    type LookedUp = pb::SchoolLookUp;
    type Cutoffs = pb::SchoolCutoffs;

    fn looked_up(
        run: Option<(pb::RunRecord, &Loaded<Self>, &Holdings, u32)>,
        status: pb::ApplicationStatus,
        receipt: &dyn Fn(u64) -> Result<pb::PublicReceipt, Status>,
    ) -> Result<pb::SchoolLookUp, Status> {
        let Some((record, loaded, now, i)) = run else {
            return Ok(pb::SchoolLookUp {
                status: Some(status),
                receipt: Some(receipt(0)?),
                ..Default::default()
            });
        };
        let explained = Self::explain(loaded, now, i)?;
        let entry = explained.outcome.as_ref().map_or(0, |o| o.log_index);
        Ok(pb::SchoolLookUp {
            status: Some(status),
            run: Some(record),
            explained: Some(explained),
            receipt: Some(receipt(entry)?),
        })
    }

    fn published_cutoffs(
        window: String,
        run: pb::RunRecord,
        loaded: &Loaded<Self>,
        now: &Holdings,
    ) -> pb::SchoolCutoffs {
        pb::SchoolCutoffs {
            window,
            run: Some(run),
            cutoffs: cutoffs(loaded, now),
        }
    }

    fn windows(state: &AppState) -> &Windows<Self> {
        &state.schools
    }

    fn submission_head(message: &Self::Submit) -> (&str, bool) {
        (&message.window, message.amend)
    }

    fn read_submission(
        m: Self::Submit,
        k: u32,
        items: &mut Vec<(SchoolItem, Arrival)>,
    ) -> Result<(), FieldError> {
        let arrival = |j: usize| Arrival {
            message: k,
            index: j as u32,
        };
        for (j, s) in m.schools.into_iter().enumerate() {
            let path = |field: &str| arrival(j).path("schools").field(field);
            let id = choice_id(&s.id, &|| path("id"))?.to_owned();
            check_range(s.capacity, 0, MAX_SEATS, &|| path("capacity"))?;
            let mut classes = HashSet::new();
            let mut reserved = 0u64;
            let mut reserves = Vec::new();
            for (r, reserve) in s.reserves.iter().enumerate() {
                let rpath = |field: &str| path("reserves").index(r).field(field);
                if !classes.insert(reserve.priority_class) {
                    return Err(FieldError::invalid(
                        &rpath("priority_class"),
                        format!("class {} is reserved twice", reserve.priority_class),
                    ));
                }
                reserved += u64::from(reserve.seats);
                if reserved > u64::from(s.capacity) {
                    return Err(FieldError::invalid(
                        &rpath("seats"),
                        format!("the reserves add up to more than the {} seats", s.capacity),
                    ));
                }
                reserves.push((reserve.priority_class, reserve.seats));
            }
            let school = SchoolRow {
                id,
                capacity: s.capacity,
                reserves,
            };
            items.push((SchoolItem::School(school), arrival(j)));
        }
        for (j, s) in m.students.into_iter().enumerate() {
            let path = |field: &str| arrival(j).path("students").field(field);
            check_id(&s.id, &|| path("id"))?;
            check_choices(&s.choices, MAX_CHOICES, "schools", &|| path("choices"))?;
            let code = second_factor(&s.id, &s.second_factor, &|| path("second_factor"))?;
            let student = StudentRow {
                code,
                id: s.id,
                lottery: s.lottery,
                choices: s.choices,
            };
            items.push((SchoolItem::Student(student), arrival(j)));
        }
        for (j, p) in m.priorities.into_iter().enumerate() {
            let path = |field: &str| arrival(j).path("priorities").field(field);
            check_id(&p.school, &|| path("school"))?;
            check_id(&p.student, &|| path("student"))?;
            check_range(p.priority, 0, 1000, &|| path("priority"))?;
            let priority = PriorityRow {
                school: p.school,
                student: p.student,
                priority: p.priority,
            };
            items.push((SchoolItem::Priority(priority), arrival(j)));
        }
        Ok(())
    }

    fn submitted(window: String, totals: Totals) -> Self::Submitted {
        pb::SubmitSchoolApplicationsResponse {
            receipts: super::receipts(&window, &totals),
            window,
            schools_added: totals.added[0],
            students_added: totals.added[1],
            priorities_added: totals.added[2],
            schools_total: totals.total[0],
            students_total: totals.total[1],
            priorities_total: totals.total[2],
        }
    }

    fn run_fields(r: &Self::RunRequest) -> (&str, &str, Option<&pb::Beacon>) {
        (&r.window, &r.request_id, r.beacon.as_ref())
    }

    fn params(r: &Self::RunRequest, at: &FieldPath) -> Result<Params, FieldError> {
        let unknown = |field: &str| FieldError::invalid(&at.field(field), "unknown value");
        let mechanism = match pb::SchoolMechanism::try_from(r.mechanism) {
            Ok(pb::SchoolMechanism::Unspecified | pb::SchoolMechanism::StudentDa) => Mechanism::Da,
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
        Ok(Params {
            mechanism,
            tie_breaking,
            reserve_order,
        })
    }

    fn ran(
        loaded: &Loaded<Self>,
        run: pb::RunRecord,
        log: pb::LogRange,
    ) -> Result<Self::RunResponse, Status> {
        let fresh = Holdings::after_run::<Schools>(&loaded.solved);
        Ok(pb::RunSchoolAllocationResponse {
            run_id: run.run_id.clone(),
            input_digest: run.input_digest.clone(),
            seed: run.seed.clone(),
            outcome_digest: run.outcome_digest.clone(),
            summary: Some(summary(loaded, &fresh)?),
            cutoffs: cutoffs(loaded, &fresh),
            log: Some(log),
            run: Some(run),
        })
    }

    fn outcome(loaded: &Loaded<Self>, now: &Holdings, i: u32) -> Self::Outcome {
        let solved = &loaded.solved;
        let school = now.unit_of(&solved.market, i);
        let priority = school.and_then(|j| solved.market.key(i, j));
        pb::GetSchoolOutcomeResponse {
            student: loaded.input.students[i as usize].id.clone(),
            school: school
                .map(|j| loaded.input.schools[j as usize].id.clone())
                .unwrap_or_default(),
            rank: now.position[i as usize].map_or(0, |at| at + 1),
            priority: key(priority.map(allot_engine::allocation::key_parts)),
            log_index: latest_entry(loaded, i),
        }
    }

    fn explain(loaded: &Loaded<Self>, now: &Holdings, i: u32) -> Result<Self::Explained, Status> {
        let got = Self::outcome(loaded, now, i);
        let explanation = school::explain(loaded, now, &got.student).map_err(allocation_status)?;
        let all = cutoffs(loaded, now);
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
                let own = loaded.solved.market.key(i, j);
                let own = key(own.map(allot_engine::allocation::key_parts));
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
    }

    fn withdrawn(
        loaded: &Loaded<Self>,
        school: u32,
        re_offered_to: Option<pb::GetSchoolOutcomeResponse>,
        log: pb::LogRange,
        changes: Vec<pb::PlaceChange>,
    ) -> pb::WithdrawSchoolSeatResponse {
        pb::WithdrawSchoolSeatResponse {
            school: loaded.input.schools[school as usize].id.clone(),
            re_offered_to,
            log: Some(log),
            changes,
        }
    }

    fn results(loaded: &Loaded<Self>, now: &Holdings) -> Result<Vec<pb::SchoolResults>, Status> {
        let tables = tables(loaded, now);
        let mut messages = vec![pb::SchoolResults {
            summary: Some(summary(loaded, now)?),
            ..Default::default()
        }];
        for rows in tables.assignment.chunks(RESULT_ROWS_PER_MESSAGE) {
            let assignments = rows.iter().map(|row| {
                let (school, rank) = row.assigned.clone().unwrap_or_default();
                pb::SchoolAssignment {
                    student: row.student.clone(),
                    school,
                    rank,
                }
            });
            messages.push(pb::SchoolResults {
                assignments: assignments.collect(),
                ..Default::default()
            });
        }
        for rows in tables.cutoffs.chunks(RESULT_ROWS_PER_MESSAGE) {
            messages.push(pb::SchoolResults {
                cutoffs: rows.iter().cloned().map(cutoff).collect(),
                ..Default::default()
            });
        }
        for rows in tables.blocks.chunks(RESULT_ROWS_PER_MESSAGE) {
            let blocks = rows.iter().map(|row| pb::BlockCutoff {
                school: row.school.clone(),
                block: row.block,
                priority_class: row.class,
                seats: row.seats,
                cutoff: key(row.cutoff),
            });
            messages.push(pb::SchoolResults {
                block_cutoffs: blocks.collect(),
                ..Default::default()
            });
        }
        Ok(messages)
    }
}

/// The Schools service.
pub type SchoolsService = AllocationService<Schools>;

allocation_api!(
    SchoolsApi, Schools, participant: student,
    close: pb::CloseSchoolApplicationsRequest => pb::CloseSchoolApplicationsResponse,
    outcome: pb::GetSchoolOutcomeRequest, explain: pb::ExplainSchoolOutcomeRequest,
    verify: pb::VerifySchoolRunRequest => pb::VerifySchoolRunResponse,
    results: pb::GetSchoolResultsRequest,
    withdraw: pb::WithdrawSchoolSeatRequest, "Schools/Withdraw"
);
