//! The `Appointments` service on the appointment engine.
//!
//! `FindSlots` reads the inventory without locks and runs inline on the async worker (a query
//! touches a few hundred bytes of memory). Calls that change state use the engine's `begin_…`
//! forms: the decision is queued to the log's group commit while the engine's locks are held, and
//! the handler awaits its durability without occupying a worker thread, so concurrent bookings
//! share fsyncs. `MarkAbsence` and `Rebalance` take every lock or solve a flow, so they run on the
//! blocking pool.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use allot_engine::appointments::inputs::check_request;
use allot_engine::appointments::rebalance::{Outcome, Plan, RebalanceOptions};
use allot_engine::appointments::schedule::{SlotInfo, SlotRef};
use allot_engine::appointments::{
    AppointmentId, AppointmentStatus, AppointmentView, Booking, Engine, Error, FindQuery,
    FindRequest, HoldId, LocalTime, Location, Moved, Only, Pending, Proposal, Request as Referral,
    Result as EngineResult, SlotStatus,
};
use allot_engine::log::Timestamp;
use allot_engine::log::decision::{Attendance, CancelledBy};
use prost::Message as _;
use tonic::{Code, Request, Response, Status};

use super::config::Caller;
use super::listing;
use super::state::AppState;
use super::status::{blocking, log_status};
use super::validate::{FieldError, FieldPath, check_finite, check_id, check_range, required};
use crate::proto::v1 as pb;
use crate::proto::v1::appointments_server::Appointments;

/// Proposals a `FindSlots` without `count` gets.
pub const DEFAULT_COUNT: usize = 5;
/// Most proposals one `FindSlots` may ask for.
pub const MAX_COUNT: u32 = 50;
/// Most referrals one `Rebalance` may carry.
pub const MAX_REFERRALS: usize = 500_000;
const MIN_TTL: Duration = Duration::from_secs(10);
const MAX_TTL: Duration = Duration::from_secs(30 * 60);

/// The Appointments service.
#[derive(Debug, Clone)]
pub struct AppointmentsService {
    state: Arc<AppState>,
}

impl AppointmentsService {
    pub fn new(state: Arc<AppState>) -> Self {
        AppointmentsService { state }
    }

    fn engine(&self) -> Result<&Engine, Status> {
        self.state.appointments.as_ref().ok_or_else(|| {
            Status::failed_precondition(format!(
                "no schedule is loaded in {}: load a city with `allot appointments load`, or \
                 start a fresh data folder with `allot serve --dev`",
                self.state.data_dir.display()
            ))
        })
    }
}

/// The caller a gate put in the request's extensions (its name is the decisions' actor).
pub fn caller<T>(request: &Request<T>) -> Result<Arc<Caller>, Status> {
    request
        .extensions()
        .get::<Arc<Caller>>()
        .cloned()
        .ok_or_else(|| Status::internal("the call has no caller (it did not pass the gate)"))
}

/// An engine time as a protobuf timestamp.
pub fn timestamp(t: Timestamp) -> prost_types::Timestamp {
    let micros = t.unix_micros();
    prost_types::Timestamp {
        seconds: i64::try_from(micros / 1_000_000).unwrap_or(i64::MAX),
        nanos: ((micros % 1_000_000) * 1000) as i32,
    }
}

/// A city's local time (`YYYY-MM-DDTHH:MM`) as a protobuf time, in the loaded schedule's zone
/// (none without a schedule, or for a text that is not one): what the FHIR face and the console
/// read from their requests.
pub fn local_timestamp(state: &AppState, text: &str) -> Option<prost_types::Timestamp> {
    let zone = &state.appointments.as_ref()?.schedule().zone;
    let t = LocalTime::parse(text)?;
    Some(timestamp(t.to_timestamp(zone)))
}

/// A protobuf timestamp as an engine time (at or after 1970, as the engine's times are).
pub fn engine_time(t: &prost_types::Timestamp, path: &FieldPath) -> Result<Timestamp, FieldError> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(FieldError::invalid(
            path,
            format!("nanos {} is outside 0 to 999,999,999", t.nanos),
        ));
    }
    let seconds = u64::try_from(t.seconds)
        .ok()
        .filter(|s| *s < 253_402_300_800)
        .ok_or_else(|| {
            FieldError::invalid(
                path,
                format!("seconds {} is outside 1970 to 9999", t.seconds),
            )
        })?;
    Ok(Timestamp::from_unix_micros(
        seconds * 1_000_000 + (t.nanos / 1000) as u64,
    ))
}

pub(crate) fn local_time(
    engine: &Engine,
    t: &prost_types::Timestamp,
    path: &FieldPath,
) -> Result<LocalTime, FieldError> {
    let t = engine_time(t, path)?;
    Ok(LocalTime::from_timestamp(t, &engine.schedule().zone))
}

fn duration(d: &prost_types::Duration, path: &FieldPath) -> Result<Duration, FieldError> {
    if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
        return Err(FieldError::invalid(path, "must be a positive duration"));
    }
    Ok(Duration::new(d.seconds as u64, d.nanos as u32))
}

fn slot_status(s: SlotStatus) -> pb::SlotStatus {
    match s {
        SlotStatus::Free => pb::SlotStatus::Free,
        SlotStatus::BusyTentative => pb::SlotStatus::BusyTentative,
        SlotStatus::Busy => pb::SlotStatus::Busy,
        SlotStatus::BusyUnavailable => pb::SlotStatus::BusyUnavailable,
    }
}

fn appointment_status(s: AppointmentStatus) -> pb::AppointmentStatus {
    match s {
        AppointmentStatus::Proposed => pb::AppointmentStatus::Proposed,
        AppointmentStatus::Pending => pb::AppointmentStatus::Pending,
        AppointmentStatus::Booked => pb::AppointmentStatus::Booked,
        AppointmentStatus::Cancelled => pb::AppointmentStatus::Cancelled,
        AppointmentStatus::NoShow => pb::AppointmentStatus::Noshow,
        AppointmentStatus::Fulfilled => pb::AppointmentStatus::Fulfilled,
    }
}

/// A slot as a message, with its status now.
pub fn slot(engine: &Engine, slot: SlotRef) -> pb::Slot {
    slot_message(engine, slot, &engine.schedule().slot(slot))
}

/// A slot whose place and time are known as a message, with its status now.
fn slot_message(engine: &Engine, slot: SlotRef, info: &SlotInfo) -> pb::Slot {
    let s = engine.schedule();
    let clinic = &s.clinics[info.clinic.index()];
    let doctor = &s.doctors[info.doctor.index()].id;
    // The id as `Schedule::slot_id` writes it, without looking the slot up again.
    let mut id = String::with_capacity(doctor.len() + 17);
    id.push_str(doctor);
    id.push('@');
    let _ = write!(id, "{}", info.start);
    pb::Slot {
        id,
        // `String::from(&str)` copies; `Box<str>::to_string` would go through `Display`.
        clinic: String::from(&*clinic.id),
        doctor: String::from(&**doctor),
        specialty: s.specialty_code(info.specialty).to_owned(),
        district: String::from(&*s.districts[clinic.district.index()].id),
        start: Some(timestamp(info.start.to_timestamp(&s.zone))),
        end: Some(timestamp(info.end().to_timestamp(&s.zone))),
        status: slot_status(engine.slot_status(slot)) as i32,
    }
}

fn proposal(engine: &Engine, rank: usize, p: &Proposal) -> pb::Proposal {
    let sc = &p.score;
    // The proposal knows its slot's doctor and start: no search of the layout for them.
    let s = engine.schedule();
    let doctor = &s.doctors[p.doctor.index()];
    let info = SlotInfo {
        doctor: p.doctor,
        clinic: p.clinic,
        specialty: doctor.specialty,
        day: s.day_of(p.start).max(0) as u32,
        start: p.start,
        minutes: doctor.minutes,
    };
    pb::Proposal {
        rank: rank as u32,
        slot: Some(slot_message(engine, p.slot, &info)),
        score: Some(pb::Score {
            total: sc.total,
            travel: sc.travel,
            waiting: sc.wait,
            load: sc.load,
            distance_km: sc.travel_km,
            waiting_days: f64::from(sc.wait_days),
            clinic_load: sc.utilisation,
            preference: sc.preference,
        }),
    }
}

fn proposals(engine: &Engine, list: &[Proposal]) -> Vec<pb::Proposal> {
    list.iter()
        .enumerate()
        .map(|(i, p)| proposal(engine, i + 1, p))
        .collect()
}

pub(crate) fn appointment(
    engine: &Engine,
    view: &AppointmentView,
    log_index: u64,
) -> pb::Appointment {
    let (offered_slot, offer_expires) = match view.offered {
        Some((s, t)) => (Some(slot(engine, s)), Some(timestamp(t))),
        None => (None, None),
    };
    pb::Appointment {
        id: view.id.to_string(),
        status: appointment_status(view.status) as i32,
        patient_id: view.patient.clone(),
        slot: Some(slot(engine, view.slot)),
        log_index,
        offered_slot,
        offer_expires,
    }
}

/// The loaded city and its slots by status (what `allot appointments status` prints).
pub fn inventory(engine: &Engine) -> pb::GetInventoryResponse {
    let s = engine.schedule();
    let c = engine.counts();
    let m = engine.memory();
    pb::GetInventoryResponse {
        first_day: s.first_day.to_string(),
        days: s.days,
        utc_offset: s.zone.offset_at(engine.clock().now()),
        time_zone: s.zone.to_string(),
        districts: s.districts.len() as u32,
        clinics: s.clinics.len() as u32,
        doctors: s.doctors.len() as u32,
        specialties: s.specialties.iter().map(|x| x.to_string()).collect(),
        slots: u64::from(s.slot_count()),
        free: c.free,
        busy_tentative: c.busy_tentative,
        busy: c.busy,
        busy_unavailable: c.busy_unavailable,
        memory_bytes: m.total_bytes,
        bytes_per_slot: m.bytes_per_slot,
        log_entries: engine.log().map_or(0, |l| l.size()),
        schedule_digest: engine.schedule_digest().to_string(),
    }
}

/// The appointment `id` as it stands, answering with `log_index`.
fn appointment_now(
    engine: &Engine,
    id: AppointmentId,
    log_index: u64,
) -> Result<pb::Appointment, Status> {
    let view = engine
        .appointment(id)
        .ok_or_else(|| Status::internal(format!("appointment {id} vanished after the call")))?;
    Ok(appointment(engine, &view, log_index))
}

/// The status of an engine error; `field` maps the engine's field names to request paths.
pub fn appointment_status_of(
    engine: &Engine,
    e: Error,
    field: &dyn Fn(&str) -> FieldPath,
) -> Status {
    let message = e.to_string();
    let taken = |code: Code, slot_id: String, status: pb::SlotStatus, alternatives: &[Proposal]| {
        let detail = pb::SlotTaken {
            slot_id,
            status: status as i32,
            alternatives: proposals(engine, alternatives),
        };
        with_detail(
            code,
            message.clone(),
            "allot.v1.SlotTaken",
            detail.encode_to_vec(),
        )
    };
    match e {
        Error::BadRequest { field: f, problem } => {
            let path = field(f);
            let code = if problem.starts_with("no ") {
                Code::NotFound
            } else {
                Code::InvalidArgument
            };
            FieldError {
                path,
                problem,
                code,
            }
            .into()
        }
        Error::Input(e) => Status::invalid_argument(e.to_string()),
        Error::SlotTaken {
            slot,
            status,
            alternatives,
        } => {
            let code = match status {
                SlotStatus::Busy | SlotStatus::BusyTentative => Code::Aborted,
                _ => Code::FailedPrecondition,
            };
            taken(code, slot, slot_status(status), &alternatives)
        }
        Error::SlotStarted { slot, alternatives } => {
            let status = slot_status(
                engine
                    .schedule()
                    .parse_slot(&slot)
                    .map_or(SlotStatus::BusyUnavailable, |s| engine.slot_status(s)),
            );
            taken(Code::FailedPrecondition, slot, status, &alternatives)
        }
        Error::HoldExpired {
            slot, alternatives, ..
        } => {
            let status = slot_status(
                engine
                    .schedule()
                    .parse_slot(&slot)
                    .map_or(SlotStatus::Free, |s| engine.slot_status(s)),
            );
            taken(Code::FailedPrecondition, slot, status, &alternatives)
        }
        Error::Overlap { .. } | Error::WrongStatus { .. } | Error::NotLoaded(_) => {
            Status::failed_precondition(message)
        }
        Error::UnknownHold(_) | Error::UnknownAppointment(_) => Status::not_found(message),
        Error::Log(e) => log_status(*e),
        Error::Failed(_) => {
            tracing::error!(error = %message, "the appointment engine stopped");
            Status::unavailable(message)
        }
        Error::NotLeader(_) => Status::unavailable(message),
        _ => {
            tracing::error!(error = %message, "appointment engine error");
            Status::internal(message)
        }
    }
}

/// A status whose `google.rpc.Status` details carry one message of type `type_name`.
fn with_detail(code: Code, message: String, type_name: &str, value: Vec<u8>) -> Status {
    let details = tonic_types::pb::Status {
        code: code as i32,
        message: message.clone(),
        details: vec![prost_types::Any {
            type_url: format!("type.googleapis.com/{type_name}"),
            value,
        }],
    };
    Status::with_details(code, message, details.encode_to_vec().into())
}

/// The `SlotTaken` detail of a status, if it has one (for clients).
pub fn slot_taken_detail(status: &Status) -> Option<pb::SlotTaken> {
    let details = tonic_types::pb::Status::decode(status.details()).ok()?;
    details
        .details
        .iter()
        .find(|any| any.type_url.ends_with("/allot.v1.SlotTaken"))
        .and_then(|any| pb::SlotTaken::decode(any.value.as_slice()).ok())
}

fn at(path: &FieldPath) -> impl Fn(&str) -> FieldPath + '_ {
    move |f| path.field(f)
}

fn slot_ref(engine: &Engine, id: &str, path: &FieldPath) -> Result<SlotRef, FieldError> {
    let id = check_id(id, path)?;
    engine.schedule().parse_slot(id).ok_or_else(|| {
        let s = engine.schedule();
        FieldError::not_found(
            path,
            format!(
                "no slot '{id}' in the schedule (expected DOCTOR@YYYY-MM-DDTHH:MM of a slot from {} \
                 to {})",
                s.first_day,
                s.date(s.days - 1)
            ),
        )
    })
}

fn hold_id(id: &str, path: &FieldPath) -> Result<HoldId, FieldError> {
    check_id(id, path)?.parse().map_err(|()| {
        FieldError::invalid(
            path,
            format!("expected a hold id such as h42, found '{id}'"),
        )
    })
}

fn appointment_id(id: &str, path: &FieldPath) -> Result<AppointmentId, FieldError> {
    check_id(id, path)?.parse().map_err(|()| {
        FieldError::invalid(
            path,
            format!("expected an appointment id such as a17, found '{id}'"),
        )
    })
}

/// The patient's id and where travel is measured from.
struct PatientIn {
    id: String,
    home: Option<Location>,
    attached: Option<String>,
}

/// A patient; `located`: the request ranks slots for him, so his home or attached clinic is
/// required.
fn patient(
    engine: &Engine,
    p: Option<&pb::Patient>,
    path: &FieldPath,
    located: bool,
) -> Result<PatientIn, FieldError> {
    let p = required(p, path)?;
    let id = check_id(&p.id, &path.field("id"))?.to_owned();
    let home = match &p.home {
        Some(home) => {
            let at = path.field("home");
            Some(Location {
                lat: check_finite(home.lat, -90.0, 90.0, &at.field("lat"))?,
                lon: check_finite(home.lon, -180.0, 180.0, &at.field("lon"))?,
            })
        }
        None => None,
    };
    let attached = if p.attached_clinic.is_empty() {
        None
    } else {
        let path = path.field("attached_clinic");
        let clinic = check_id(&p.attached_clinic, &path)?;
        if engine.schedule().clinic(clinic).is_none() {
            return Err(FieldError::not_found(
                &path,
                format!("no clinic '{clinic}'"),
            ));
        }
        Some(clinic.to_owned())
    };
    if located && home.is_none() && attached.is_none() {
        return Err(FieldError::invalid(
            &path.field("home"),
            "give the patient's home location or attached clinic",
        ));
    }
    Ok(PatientIn { id, home, attached })
}

fn log_range(entries: Option<std::ops::Range<u64>>) -> Option<pb::LogRange> {
    entries.map(|r| pb::LogRange {
        start: r.start,
        end: r.end,
    })
}

fn last_index(entries: &Option<std::ops::Range<u64>>) -> u64 {
    entries.as_ref().map_or(0, |r| r.end.saturating_sub(1))
}

fn stats(o: &Outcome) -> pb::RebalanceStats {
    pb::RebalanceStats {
        assigned: o.assigned as u64,
        cost: o.cost,
        max_utilisation: o.max_utilisation,
        utilisation_spread: o.utilisation_spread,
        waiting_days_p50: f64::from(o.p50_wait_days),
        waiting_days_p95: f64::from(o.p95_wait_days),
        mean_travel_km: o.mean_travel_km,
        unassigned: o.unassigned as u64,
        waiting_days_mean: o.mean_wait_days,
        waiting_days_max: o.max_wait_days,
        mean_utilisation: o.mean_utilisation,
    }
}

/// The appointments of a committed plan (per referral, in order) and their decisions.
type Booked<'a> = (&'a [Option<AppointmentId>], Option<std::ops::Range<u64>>);

/// A re-balancing plan of `referrals` as the answer to `Rebalance` (and what `allot appointments
/// rebalance --clinics` prints from its plan on files alone); `booked`: the appointments of a
/// committed plan and their decisions.
fn rebalance_answer(
    engine: &Engine,
    referrals: &[Referral],
    plan: &Plan,
    options: &RebalanceOptions,
    booked: Option<Booked<'_>>,
) -> pb::RebalanceResponse {
    let s = engine.schedule();
    let mut assignments = Vec::new();
    let mut unassigned = Vec::new();
    for (i, (referral, x)) in referrals.iter().zip(&plan.slots).enumerate() {
        let Some(x) = *x else {
            unassigned.push(referral.id.clone());
            continue;
        };
        let info = s.slot(x);
        let home = s.districts[referral.district.index()].centre;
        let clinic = s.clinics[info.clinic.index()].xy;
        let waiting = s.day_of(info.start) - s.day_of(referral.earliest.start());
        assignments.push(pb::Assignment {
            request_id: referral.id.clone(),
            slot: Some(slot(engine, x)),
            appointment_id: (booked.as_ref())
                .and_then(|(b, _)| b.get(i).copied().flatten())
                .map(|a| a.to_string())
                .unwrap_or_default(),
            patient_id: referral.patient.clone(),
            travel_km: f64::from(allot_engine::appointments::schedule::km(home, clinic)),
            waiting_days: u32::try_from(waiting).unwrap_or(0),
        });
    }
    pb::RebalanceResponse {
        assignments,
        unassigned,
        optimised: Some(stats(&plan.optimal)),
        greedy: Some(stats(&plan.greedy)),
        solve_seconds: plan.solve_seconds,
        log: booked.and_then(|(_, entries)| log_range(entries)),
        groups: plan.groups as u64,
        network_nodes: plan.nodes as u64,
        network_arcs: plan.arcs as u64,
        seconds: plan.seconds,
        parameters: Some(pb::RebalanceParameters {
            travel_per_km: options.travel_per_km,
            waiting_per_day: options.wait_per_day,
            load_bands: (options.tiers.iter())
                .map(|&(up_to, points)| pb::LoadBand { up_to, points })
                .collect(),
            nearest_clinics: options.nearest as u32,
            unassigned: options.unassigned,
        }),
    }
}

impl AppointmentsService {
    /// A call that changes one appointment (Cancel, AcceptOffer, RecordAttendance): checks its
    /// `appointment_id`, then, once per `request_id`, starts the change with `act` (which checks
    /// the rest of the request), awaits its durability and answers with what `answer` makes of
    /// its result and the appointment as it stands, its `log_index` the change's decision.
    async fn change_appointment<Req, T, Resp>(
        &self,
        request: Request<Req>,
        method: &'static str,
        ids: impl FnOnce(&Req) -> (String, String),
        act: impl FnOnce(
            &Engine,
            &str,
            AppointmentId,
            &Req,
        ) -> Result<EngineResult<Pending<T>>, FieldError>
        + Send
        + 'static,
        answer: fn(&Engine, T, pb::Appointment) -> Resp,
    ) -> Result<Response<Resp>, Status>
    where
        Req: prost::Message + Clone + 'static,
        T: Unpin + Send + 'static,
        Resp: prost::Message + Default + 'static,
    {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let engine = self.engine()?.clone();
        let (appointment, request_id) = ids(&r);
        // What identifies the call, owned: the work may outlive this call (see `replies`).
        let (who, id, request) = (caller.name.clone(), request_id, r.clone());
        self.state
            .replies
            .once(&who, method, &id, &request, move || async move {
                let at = FieldPath::request();
                let id = appointment_id(&appointment, &at.field("appointment_id"))?;
                let fields = |f: &str| match f {
                    "appointment" => at.field("appointment_id"),
                    other => at.field(other),
                };
                let (done, entries) = act(&engine, &caller.name, id, &r)?
                    .map_err(|e| appointment_status_of(&engine, e, &fields))?
                    .with_entries()
                    .await
                    .map_err(|e| appointment_status_of(&engine, e, &fields))?;
                let now = appointment_now(&engine, id, last_index(&entries))?;
                Ok(answer(&engine, done, now))
            })
            .await
            .map(Response::new)
    }

    /// Checks a `FindSlots` request and resolves it into the engine's query.
    fn find_query(&self, r: &pb::FindSlotsRequest) -> Result<FindQuery, Status> {
        let engine = self.engine()?;
        let at = FieldPath::request();
        let p = patient(engine, r.patient.as_ref(), &at.field("patient"), true)?;
        let specialty = check_id(&r.specialty, &at.field("specialty"))?;
        if engine.schedule().specialty(specialty).is_none() {
            return Err(FieldError::not_found(
                &at.field("specialty"),
                format!(
                    "no doctors of specialty '{specialty}' (the city has: {})",
                    engine.schedule().specialties.join(", ")
                ),
            )
            .into());
        }
        let count = check_range(r.count, 0, MAX_COUNT, &at.field("count"))?;
        let from = r
            .window_start
            .as_ref()
            .map(|t| local_time(engine, t, &at.field("window_start")))
            .transpose()?;
        let until = r
            .window_end
            .as_ref()
            .map(|t| local_time(engine, t, &at.field("window_end")))
            .transpose()?;
        if let (Some(a), Some(b)) = (from, until)
            && b <= a
        {
            return Err(
                FieldError::invalid(&at.field("window_end"), "is not after window_start").into(),
            );
        }
        let mut preferred = Vec::with_capacity(r.preferred_clinics.len());
        for (i, c) in r.preferred_clinics.iter().enumerate() {
            let path = at.field("preferred_clinics").index(i);
            let c = check_id(c, &path)?;
            if engine.schedule().clinic(c).is_none() {
                return Err(FieldError::not_found(&path, format!("no clinic '{c}'")).into());
            }
            preferred.push(c.to_owned());
        }
        let request = FindRequest {
            patient: Some(p.id),
            specialty: specialty.to_owned(),
            home: p.home,
            attached: p.attached,
            preferred,
            from,
            until,
            count: if count == 0 {
                DEFAULT_COUNT
            } else {
                count as usize
            },
        };
        let mut only = Only::default();
        for (i, c) in r.only_clinics.iter().enumerate() {
            let path = at.field("only_clinics").index(i);
            let found = engine.schedule().clinic(check_id(c, &path)?);
            only.clinics.push(
                found.ok_or_else(|| FieldError::not_found(&path, format!("no clinic '{c}'")))?,
            );
        }
        for (i, d) in r.only_doctors.iter().enumerate() {
            let path = at.field("only_doctors").index(i);
            let found = engine.schedule().doctor(check_id(d, &path)?);
            only.doctors.push(
                found.ok_or_else(|| FieldError::not_found(&path, format!("no doctor '{d}'")))?,
            );
        }
        let query = engine.resolve_find(&request).map_err(|e| {
            appointment_status_of(engine, e, &|f| match f {
                "home" | "attached" | "patient" => at.field("patient").field(match f {
                    "attached" => "attached_clinic",
                    "patient" => "id",
                    other => other,
                }),
                "preferred" => at.field("preferred_clinics"),
                "until" => at.field("window_end"),
                other => at.field(other),
            })
        })?;
        Ok(FindQuery { only, ..query })
    }
}

#[tonic::async_trait]
impl Appointments for AppointmentsService {
    async fn find_slots(
        &self,
        request: Request<pb::FindSlotsRequest>,
    ) -> Result<Response<pb::FindSlotsResponse>, Status> {
        let query = self.find_query(request.get_ref())?;
        let engine = self.engine()?;
        let found = engine
            .find(&query)
            .map_err(|e| appointment_status_of(engine, e, &at(&FieldPath::request())))?;
        Ok(Response::new(pb::FindSlotsResponse {
            proposals: proposals(engine, &found),
        }))
    }

    async fn hold_slot(
        &self,
        request: Request<pb::HoldSlotRequest>,
    ) -> Result<Response<pb::HoldSlotResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        // What identifies the call, owned: the work may outlive this call (see `replies`).
        let (who, id, request) = (caller.name.clone(), r.request_id.clone(), r.clone());
        let engine = self.engine()?.clone();
        let answer = self
            .state
            .replies
            .once(&who, "HoldSlot", &id, &request, move || async move {
                let at = FieldPath::request();
                let slot_ref = slot_ref(&engine, &r.slot_id, &at.field("slot_id"))?;
                let p = patient(&engine, r.patient.as_ref(), &at.field("patient"), false)?;
                let ttl = match &r.ttl {
                    Some(d) => {
                        let path = at.field("ttl");
                        let ttl = duration(d, &path)?;
                        if ttl < MIN_TTL || ttl > MAX_TTL {
                            return Err(FieldError::invalid(
                                &path,
                                "must be 10 seconds to 30 minutes",
                            )
                            .into());
                        }
                        Some(ttl)
                    }
                    None => None,
                };
                let fields = |f: &str| match f {
                    "slot" => at.field("slot_id"),
                    "patient" => at.field("patient").field("id"),
                    other => at.field(other),
                };
                let pending = engine
                    .begin_hold(&caller.name, &p.id, slot_ref, ttl)
                    .map_err(|e| appointment_status_of(&engine, e, &fields))?;
                let (held, entries) = pending
                    .with_entries()
                    .await
                    .map_err(|e| appointment_status_of(&engine, e, &fields))?;
                Ok(pb::HoldSlotResponse {
                    hold: Some(pb::Hold {
                        id: held.hold.to_string(),
                        slot: Some(slot(&engine, held.slot)),
                        patient_id: p.id,
                        expires: Some(timestamp(held.expires)),
                        log_index: last_index(&entries),
                    }),
                })
            })
            .await?;
        Ok(Response::new(answer))
    }

    async fn book(
        &self,
        request: Request<pb::BookRequest>,
    ) -> Result<Response<pb::BookResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        // What identifies the call, owned: the work may outlive this call (see `replies`).
        let (who, id, request) = (caller.name.clone(), r.request_id.clone(), r.clone());
        let engine = self.engine()?.clone();
        let answer = self
            .state
            .replies
            .once(&who, "Book", &id, &request, move || async move {
                let at = FieldPath::request();
                let fields = |f: &str| match f {
                    "slot" => at.field("slot_id"),
                    "hold" => at.field("hold_id"),
                    "patient" => at.field("patient").field("id"),
                    other => at.field(other),
                };
                let pending = match &r.target {
                    Some(pb::book_request::Target::HoldId(h)) => {
                        let path = at.field("hold_id");
                        let hold = hold_id(h, &path)?;
                        if let Some(p) = &r.patient {
                            let id = check_id(&p.id, &at.field("patient").field("id"))?;
                            if let Some(view) = engine.hold_info(hold)
                                && view.patient != id
                            {
                                return Err(FieldError::failed_precondition(
                                    &at.field("patient").field("id"),
                                    format!("hold {hold} is for another patient"),
                                )
                                .into());
                            }
                        }
                        engine.begin_book(&caller.name, Booking::Hold(hold))
                    }
                    Some(pb::book_request::Target::SlotId(s)) => {
                        let slot_ref = slot_ref(&engine, s, &at.field("slot_id"))?;
                        let p = patient(&engine, r.patient.as_ref(), &at.field("patient"), false)?;
                        engine.begin_book(
                            &caller.name,
                            Booking::Slot {
                                patient: &p.id,
                                slot: slot_ref,
                            },
                        )
                    }
                    None => {
                        return Err(FieldError::invalid(
                            &at.field("target"),
                            "give hold_id or slot_id",
                        )
                        .into());
                    }
                }
                .map_err(|e| appointment_status_of(&engine, e, &fields))?;
                let (booked, entries) = pending
                    .with_entries()
                    .await
                    .map_err(|e| appointment_status_of(&engine, e, &fields))?;
                Ok(pb::BookResponse {
                    appointment: Some(appointment_now(
                        &engine,
                        booked.appointment,
                        last_index(&entries),
                    )?),
                })
            })
            .await?;
        Ok(Response::new(answer))
    }

    async fn cancel(
        &self,
        request: Request<pb::CancelRequest>,
    ) -> Result<Response<pb::CancelResponse>, Status> {
        let ids = |r: &pb::CancelRequest| (r.appointment_id.clone(), r.request_id.clone());
        let act = |engine: &Engine, actor: &str, id, r: &pb::CancelRequest| {
            let by = match pb::CancelledBy::try_from(r.cancelled_by) {
                Ok(pb::CancelledBy::Patient) => CancelledBy::Patient,
                Ok(pb::CancelledBy::Clinic) => CancelledBy::Clinic,
                _ => {
                    return Err(FieldError::invalid(
                        &FieldPath::request().field("cancelled_by"),
                        "is required: CANCELLED_BY_PATIENT or CANCELLED_BY_CLINIC",
                    ));
                }
            };
            Ok(engine.begin_cancel(actor, id, by))
        };
        let answer = |_: &Engine, (), appointment| pb::CancelResponse {
            appointment: Some(appointment),
        };
        self.change_appointment(request, "Cancel", ids, act, answer)
            .await
    }

    async fn release_hold(
        &self,
        request: Request<pb::ReleaseHoldRequest>,
    ) -> Result<Response<pb::ReleaseHoldResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        // What identifies the call, owned: the work may outlive this call (see `replies`).
        let (who, id, request) = (caller.name.clone(), r.request_id.clone(), r.clone());
        let engine = self.engine()?.clone();
        let answer = self
            .state
            .replies
            .once(&who, "ReleaseHold", &id, &request, move || async move {
                let at = FieldPath::request();
                let hold = hold_id(&r.hold_id, &at.field("hold_id"))?;
                let fields = |f: &str| match f {
                    "hold" => at.field("hold_id"),
                    other => at.field(other),
                };
                let ((), entries) = engine
                    .begin_release(&caller.name, hold)
                    .map_err(|e| appointment_status_of(&engine, e, &fields))?
                    .with_entries()
                    .await
                    .map_err(|e| appointment_status_of(&engine, e, &fields))?;
                Ok(pb::ReleaseHoldResponse {
                    log_index: last_index(&entries),
                })
            })
            .await?;
        Ok(Response::new(answer))
    }

    async fn accept_offer(
        &self,
        request: Request<pb::AcceptOfferRequest>,
    ) -> Result<Response<pb::AcceptOfferResponse>, Status> {
        let ids = |r: &pb::AcceptOfferRequest| (r.appointment_id.clone(), r.request_id.clone());
        let act = |engine: &Engine, actor: &str, id, _: &pb::AcceptOfferRequest| {
            Ok(engine.begin_accept_offer(actor, id))
        };
        let answer = |engine: &Engine, moved: Moved, appointment| pb::AcceptOfferResponse {
            appointment: Some(appointment),
            previous_slot: Some(slot(engine, moved.from)),
        };
        self.change_appointment(request, "AcceptOffer", ids, act, answer)
            .await
    }

    async fn record_attendance(
        &self,
        request: Request<pb::RecordAttendanceRequest>,
    ) -> Result<Response<pb::RecordAttendanceResponse>, Status> {
        let ids =
            |r: &pb::RecordAttendanceRequest| (r.appointment_id.clone(), r.request_id.clone());
        let act = |engine: &Engine, actor: &str, id, r: &pb::RecordAttendanceRequest| {
            let attendance = match pb::Attendance::try_from(r.attendance) {
                Ok(pb::Attendance::Fulfilled) => Attendance::Fulfilled,
                Ok(pb::Attendance::Noshow) => Attendance::NoShow,
                _ => {
                    return Err(FieldError::invalid(
                        &FieldPath::request().field("attendance"),
                        "is required: ATTENDANCE_FULFILLED or ATTENDANCE_NOSHOW",
                    ));
                }
            };
            Ok(engine.begin_record_attendance(actor, id, attendance))
        };
        let answer = |_: &Engine, (), appointment| pb::RecordAttendanceResponse {
            appointment: Some(appointment),
        };
        self.change_appointment(request, "RecordAttendance", ids, act, answer)
            .await
    }

    async fn reschedule(
        &self,
        request: Request<pb::RescheduleRequest>,
    ) -> Result<Response<pb::RescheduleResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        // What identifies the call, owned: the work may outlive this call (see `replies`).
        let (who, id, request) = (caller.name.clone(), r.request_id.clone(), r.clone());
        let engine = self.engine()?.clone();
        let answer = self
            .state
            .replies
            .once(&who, "Reschedule", &id, &request, move || async move {
                let at = FieldPath::request();
                let id = appointment_id(&r.appointment_id, &at.field("appointment_id"))?;
                let (to, hold) = match &r.target {
                    Some(pb::reschedule_request::Target::HoldId(h)) => {
                        let path = at.field("hold_id");
                        let hold = hold_id(h, &path)?;
                        let view = engine.hold_info(hold).ok_or_else(|| {
                            FieldError::not_found(
                                &path,
                                format!("no hold {hold}: it was never made, or it ended"),
                            )
                        })?;
                        (view.slot, Some(hold))
                    }
                    Some(pb::reschedule_request::Target::SlotId(s)) => {
                        (slot_ref(&engine, s, &at.field("slot_id"))?, None)
                    }
                    None => {
                        return Err(FieldError::invalid(
                            &at.field("target"),
                            "give hold_id or slot_id",
                        )
                        .into());
                    }
                };
                let fields = |f: &str| match f {
                    "appointment" => at.field("appointment_id"),
                    "to" | "slot" => at.field("slot_id"),
                    "hold" => at.field("hold_id"),
                    other => at.field(other),
                };
                let (moved, entries) = engine
                    .begin_reschedule(&caller.name, id, to, hold)
                    .map_err(|e| appointment_status_of(&engine, e, &fields))?
                    .with_entries()
                    .await
                    .map_err(|e| appointment_status_of(&engine, e, &fields))?;
                Ok(pb::RescheduleResponse {
                    appointment: Some(appointment_now(
                        &engine,
                        moved.appointment,
                        last_index(&entries),
                    )?),
                    previous_slot: Some(slot(&engine, moved.from)),
                })
            })
            .await?;
        Ok(Response::new(answer))
    }

    async fn get_appointment(
        &self,
        request: Request<pb::GetAppointmentRequest>,
    ) -> Result<Response<pb::GetAppointmentResponse>, Status> {
        let engine = self.engine()?;
        let path = FieldPath::request().field("appointment_id");
        let id = appointment_id(&request.get_ref().appointment_id, &path)?;
        let view = engine
            .appointment(id)
            .ok_or_else(|| FieldError::not_found(&path, format!("no appointment {id}")))?;
        Ok(Response::new(pb::GetAppointmentResponse {
            appointment: Some(appointment(engine, &view, 0)),
        }))
    }

    async fn get_hold(
        &self,
        request: Request<pb::GetHoldRequest>,
    ) -> Result<Response<pb::GetHoldResponse>, Status> {
        let engine = self.engine()?;
        let path = FieldPath::request().field("hold_id");
        let id = hold_id(&request.get_ref().hold_id, &path)?;
        let view = engine.hold_info(id).ok_or_else(|| {
            FieldError::not_found(
                &path,
                format!(
                    "no hold {id}: it was never made, or it ended (booked, released or expired)"
                ),
            )
        })?;
        Ok(Response::new(pb::GetHoldResponse {
            hold: Some(pb::Hold {
                id: id.to_string(),
                slot: Some(slot(engine, view.slot)),
                patient_id: view.patient,
                expires: Some(timestamp(view.expires)),
                log_index: 0,
            }),
        }))
    }

    async fn list_slots(
        &self,
        request: Request<pb::ListSlotsRequest>,
    ) -> Result<Response<pb::ListSlotsResponse>, Status> {
        let engine = self.engine()?.clone();
        let r = request.into_inner();
        // A page may scan many doctors' days: off the async workers.
        let page = blocking(move || Ok(listing::slots(&engine, &r)?)).await?;
        Ok(Response::new(page))
    }

    async fn list_appointments(
        &self,
        request: Request<pb::ListAppointmentsRequest>,
    ) -> Result<Response<pb::ListAppointmentsResponse>, Status> {
        let engine = self.engine()?.clone();
        let r = request.into_inner();
        let page = blocking(move || Ok(listing::appointments(&engine, &r)?)).await?;
        Ok(Response::new(page))
    }

    async fn list_doctors(
        &self,
        request: Request<pb::ListDoctorsRequest>,
    ) -> Result<Response<pb::ListDoctorsResponse>, Status> {
        let engine = self.engine()?;
        Ok(Response::new(listing::doctors(engine, request.get_ref())?))
    }

    async fn list_clinics(
        &self,
        request: Request<pb::ListClinicsRequest>,
    ) -> Result<Response<pb::ListClinicsResponse>, Status> {
        let engine = self.engine()?;
        Ok(Response::new(listing::clinics(engine, request.get_ref())?))
    }

    async fn get_inventory(
        &self,
        _request: Request<pb::GetInventoryRequest>,
    ) -> Result<Response<pb::GetInventoryResponse>, Status> {
        let engine = self.engine()?.clone();
        // Counting 12 million status bytes takes milliseconds: off the async workers.
        let inventory = blocking(move || Ok(inventory(&engine))).await?;
        Ok(Response::new(inventory))
    }

    async fn mark_absence(
        &self,
        request: Request<pb::MarkAbsenceRequest>,
    ) -> Result<Response<pb::MarkAbsenceResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        // What identifies the call, owned: the work may outlive this call (see `replies`).
        let (who, id, request) = (caller.name.clone(), r.request_id.clone(), r.clone());
        let engine = self.engine()?.clone();
        let answer = self
            .state
            .replies
            .once(&who, "MarkAbsence", &id, &request, move || async move {
                let at = FieldPath::request();
                let doctor_path = at.field("doctor_id");
                let doctor = check_id(&r.doctor_id, &doctor_path)?;
                let doctor = engine.schedule().doctor(doctor).ok_or_else(|| {
                    FieldError::not_found(&doctor_path, format!("no doctor '{doctor}'"))
                })?;
                let from = local_time(
                    &engine,
                    required(r.from.as_ref(), &at.field("from"))?,
                    &at.field("from"),
                )?;
                let until = local_time(
                    &engine,
                    required(r.until.as_ref(), &at.field("until"))?,
                    &at.field("until"),
                )?;
                if until <= from {
                    return Err(FieldError::invalid(&at.field("until"), "is not after from").into());
                }
                let actor = caller.name.clone();
                let worker = engine.clone();
                let (out, entries) = blocking(move || {
                    let fields = |f: &str| match f {
                        "doctor" => FieldPath::request().field("doctor_id"),
                        other => FieldPath::request().field(other),
                    };
                    worker
                        .begin_absence(&actor, doctor, from, until)
                        .and_then(|p| p.wait_entries())
                        .map_err(|e| appointment_status_of(&worker, e, &fields))
                })
                .await?;
                let re_offers = out
                    .reoffered
                    .iter()
                    .map(|r| {
                        let view = engine.appointment(r.appointment);
                        pb::ReOffer {
                            appointment_id: r.appointment.to_string(),
                            patient_id: view
                                .as_ref()
                                .map(|v| v.patient.clone())
                                .unwrap_or_default(),
                            from_slot: engine.slot_id(r.from),
                            offer: Some(proposal(&engine, 1, &r.offer)),
                            expires: view.and_then(|v| v.offered).map(|(_, t)| timestamp(t)),
                        }
                    })
                    .collect::<Vec<_>>();
                Ok(pb::MarkAbsenceResponse {
                    unavailable_slots: out.slots as u32,
                    freed_bookings: (out.reoffered.len() + out.cancelled.len()) as u32,
                    re_offers,
                    cancelled_appointments: out.cancelled.iter().map(ToString::to_string).collect(),
                    log: log_range(entries),
                    ended_holds: out.released.len() as u32,
                })
            })
            .await?;
        Ok(Response::new(answer))
    }

    async fn rebalance(
        &self,
        request: Request<pb::RebalanceRequest>,
    ) -> Result<Response<pb::RebalanceResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        // What identifies the call, owned: the work may outlive this call (see `replies`).
        let (who, id, request) = (caller.name.clone(), r.request_id.clone(), r.clone());
        let engine = self.engine()?.clone();
        let answer = self
            .state
            .replies
            .once(&who, "Rebalance", &id, &request, move || async move {
                let referrals = referrals(&engine, &r)?;
                let actor = caller.name.clone();
                let commit = r.commit;
                let worker = engine.clone();
                let options = rebalance_options(r.nearest_clinics)?;
                let planned = options.clone();
                let (list, plan, booked) = blocking(move || {
                    let options = planned;
                    let field = |f: &str| FieldPath::request().field(f);
                    let plan = worker
                        .plan_rebalance(&referrals, &options)
                        .map_err(|e| appointment_status_of(&worker, e, &field))?;
                    let booked = if commit {
                        let run = format!("rebalance-{}", Timestamp::now().unix_micros());
                        Some(
                            worker
                                .begin_book_plan(&actor, &run, &referrals, &plan, &options)
                                .and_then(|p| p.wait_entries())
                                .map_err(|e| appointment_status_of(&worker, e, &field))?,
                        )
                    } else {
                        None
                    };
                    Ok((referrals, plan, booked))
                })
                .await?;
                let booked = booked
                    .as_ref()
                    .map(|(b, entries)| (b.as_slice(), entries.clone()));
                Ok(rebalance_answer(&engine, &list, &plan, &options, booked))
            })
            .await?;
        Ok(Response::new(answer))
    }
}

/// Checks the referrals of a `Rebalance` request.
/// The most candidate clinics a re-balancing may consider per group of referrals.
pub const MAX_NEAREST_CLINICS: u32 = 256;

fn rebalance_options(nearest: u32) -> Result<RebalanceOptions, Status> {
    let at = FieldPath::request().field("nearest_clinics");
    let defaults = RebalanceOptions::default();
    match nearest {
        0 => Ok(defaults),
        1..=MAX_NEAREST_CLINICS => Ok(RebalanceOptions {
            nearest: nearest as usize,
            ..defaults
        }),
        _ => Err(FieldError::invalid(
            &at,
            format!("is {nearest}; give 1 to {MAX_NEAREST_CLINICS} (0: the default)"),
        )
        .into()),
    }
}

fn referrals(engine: &Engine, r: &pb::RebalanceRequest) -> Result<Vec<Referral>, Status> {
    let at = FieldPath::request().field("requests");
    if r.requests.is_empty() || r.requests.len() > MAX_REFERRALS {
        return Err(FieldError::invalid(
            &at,
            format!(
                "has {} referrals; give 1 to {MAX_REFERRALS}",
                r.requests.len()
            ),
        )
        .into());
    }
    let s = engine.schedule();
    let mut seen = std::collections::HashSet::with_capacity(r.requests.len());
    let mut out = Vec::with_capacity(r.requests.len());
    for (i, q) in r.requests.iter().enumerate() {
        let path = at.index(i);
        let id = check_id(&q.id, &path.field("id"))?;
        if !seen.insert(id) {
            return Err(
                FieldError::invalid(&path.field("id"), format!("'{id}' is given twice")).into(),
            );
        }
        let patient = check_id(&q.patient_id, &path.field("patient_id"))?;
        let district = check_id(&q.district, &path.field("district"))?;
        let specialty = check_id(&q.specialty, &path.field("specialty"))?;
        let referral = check_request(s, id, patient, district, specialty, &q.earliest_day)
            .map_err(|(column, problem)| {
                let field = match column {
                    "earliest" => "earliest_day",
                    other => other,
                };
                let path = path.field(field);
                if problem.starts_with("no ") {
                    FieldError::not_found(&path, problem)
                } else {
                    FieldError::invalid(&path, problem)
                }
            })?;
        out.push(referral);
    }
    Ok(out)
}
