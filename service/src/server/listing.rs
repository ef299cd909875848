//! The appointments' read-only listings: slots, a patient's appointments, doctors and clinics,
//! a page at a time (what FHIR's `Slot`, ITI-118, `Practitioner`, `Schedule` and `Location`
//! searches are faces over). Page tokens are the position to go on from, as a decimal number:
//! opaque to clients, and stable because the schedule's numbering never changes while it is
//! loaded.

use allot_engine::appointments::schedule::{ClinicRef, DoctorRef};
use allot_engine::appointments::time::LocalTime;
use allot_engine::appointments::{AppointmentStatus, Engine, SlotStatus};

use super::appointments::{appointment, local_time, slot};
use super::validate::{FieldError, FieldPath, check_range};
use crate::proto::v1 as pb;

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

fn page_size(size: u32, path: &FieldPath) -> Result<usize, FieldError> {
    match size {
        0 => Ok(DEFAULT_PAGE as usize),
        n => Ok(check_range(n, 1, MAX_PAGE, path)? as usize),
    }
}

fn page_token(token: &str, path: &FieldPath) -> Result<u64, FieldError> {
    if token.is_empty() {
        return Ok(0);
    }
    token.parse().map_err(|_| {
        FieldError::invalid(
            path,
            "not a page token this server gave (pass `next_page_token` as it was)",
        )
    })
}

fn known<T>(found: Option<T>, path: &FieldPath, what: &str, id: &str) -> Result<T, FieldError> {
    found.ok_or_else(|| {
        FieldError::not_found(
            path,
            format!("no {what} '{}'", allot_engine::input::clip(id)),
        )
    })
}

/// An optional id field: `None` when empty, else what it names (NOT_FOUND naming `path`).
fn optional<T>(
    id: &str,
    lookup: impl Fn(&str) -> Option<T>,
    path: &FieldPath,
    what: &str,
) -> Result<Option<T>, FieldError> {
    (!id.is_empty())
        .then(|| known(lookup(id), path, what, id))
        .transpose()
}

/// A repeated id field: what each names (NOT_FOUND naming `path[i]`).
fn each<T>(
    ids: &[String],
    lookup: impl Fn(&str) -> Option<T>,
    path: &FieldPath,
    what: &str,
) -> Result<Vec<T>, FieldError> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| known(lookup(id), &path.index(i), what, id))
        .collect()
}

/// Positions `after..len` that `wanted` accepts: at most `limit`, and the next one if any.
fn page(
    after: u64,
    len: usize,
    limit: usize,
    wanted: impl Fn(u32) -> bool,
) -> (Vec<u32>, Option<u32>) {
    let mut matching = (after..len as u64).map(|i| i as u32).filter(|&i| wanted(i));
    let page = matching.by_ref().take(limit).collect();
    (page, matching.next())
}

fn window(
    engine: &Engine,
    from: Option<&prost_types::Timestamp>,
    until: Option<&prost_types::Timestamp>,
    at: &FieldPath,
) -> Result<(Option<LocalTime>, Option<LocalTime>), FieldError> {
    let from = from
        .map(|t| local_time(engine, t, &at.field("from")))
        .transpose()?;
    let until = until
        .map(|t| local_time(engine, t, &at.field("until")))
        .transpose()?;
    if let (Some(a), Some(b)) = (from, until)
        && b <= a
    {
        return Err(FieldError::invalid(
            &at.field("until"),
            "the window ends before it starts",
        ));
    }
    Ok((from, until))
}

fn slot_status(s: i32, path: &FieldPath) -> Result<SlotStatus, FieldError> {
    match pb::SlotStatus::try_from(s) {
        Ok(pb::SlotStatus::Free) => Ok(SlotStatus::Free),
        Ok(pb::SlotStatus::BusyTentative) => Ok(SlotStatus::BusyTentative),
        Ok(pb::SlotStatus::Busy) => Ok(SlotStatus::Busy),
        Ok(pb::SlotStatus::BusyUnavailable) => Ok(SlotStatus::BusyUnavailable),
        _ => Err(FieldError::invalid(path, format!("no slot status {s}"))),
    }
}

fn appointment_status(s: i32, path: &FieldPath) -> Result<AppointmentStatus, FieldError> {
    match pb::AppointmentStatus::try_from(s) {
        Ok(pb::AppointmentStatus::Proposed) => Ok(AppointmentStatus::Proposed),
        Ok(pb::AppointmentStatus::Pending) => Ok(AppointmentStatus::Pending),
        Ok(pb::AppointmentStatus::Booked) => Ok(AppointmentStatus::Booked),
        Ok(pb::AppointmentStatus::Cancelled) => Ok(AppointmentStatus::Cancelled),
        Ok(pb::AppointmentStatus::Noshow) => Ok(AppointmentStatus::NoShow),
        Ok(pb::AppointmentStatus::Fulfilled) => Ok(AppointmentStatus::Fulfilled),
        _ => Err(FieldError::invalid(
            path,
            format!("no appointment status {s}"),
        )),
    }
}

/// `ListSlots`.
pub fn slots(
    engine: &Engine,
    r: &pb::ListSlotsRequest,
) -> Result<pb::ListSlotsResponse, FieldError> {
    let at = FieldPath::request();
    let s = engine.schedule();
    let doctor = optional(
        &r.doctor_id,
        |x| s.doctor(x),
        &at.field("doctor_id"),
        "doctor",
    )?;
    let clinic = optional(
        &r.clinic_id,
        |x| s.clinic(x),
        &at.field("clinic_id"),
        "clinic",
    )?;
    let specialty = optional(
        &r.specialty,
        |x| s.specialty(x),
        &at.field("specialty"),
        "specialty",
    )?;
    let statuses = r
        .statuses
        .iter()
        .enumerate()
        .map(|(i, &v)| slot_status(v, &at.field("statuses").index(i)))
        .collect::<Result<Vec<_>, _>>()?;
    let window = window(engine, r.from.as_ref(), r.until.as_ref(), &at)?;
    let limit = page_size(r.page_size, &at.field("page_size"))?;
    let after = page_token(&r.page_token, &at.field("page_token"))?;
    let after = u32::try_from(after).unwrap_or(u32::MAX);
    let doctors: Vec<DoctorRef> = (0..s.doctors.len() as u32)
        .map(DoctorRef)
        .filter(|&d| {
            let doc = &s.doctors[d.index()];
            doctor.is_none_or(|x| x == d)
                && clinic.is_none_or(|c| c == doc.clinic)
                && specialty.is_none_or(|k| k == doc.specialty)
        })
        .collect();
    let (found, next) = engine.list_slots(
        &doctors,
        window,
        |status| statuses.is_empty() || statuses.contains(&status),
        after,
        limit,
    );
    Ok(pb::ListSlotsResponse {
        slots: found.into_iter().map(|x| slot(engine, x)).collect(),
        next_page_token: next.map(|n| n.to_string()).unwrap_or_default(),
    })
}

/// `ListAppointments`.
pub fn appointments(
    engine: &Engine,
    r: &pb::ListAppointmentsRequest,
) -> Result<pb::ListAppointmentsResponse, FieldError> {
    let at = FieldPath::request();
    super::validate::check_id(&r.patient_id, &at.field("patient_id"))?;
    let statuses = r
        .statuses
        .iter()
        .enumerate()
        .map(|(i, &v)| appointment_status(v, &at.field("statuses").index(i)))
        .collect::<Result<Vec<_>, _>>()?;
    let (from, until) = window(engine, r.from.as_ref(), r.until.as_ref(), &at)?;
    let limit = page_size(r.page_size, &at.field("page_size"))?;
    let after = page_token(&r.page_token, &at.field("page_token"))?;
    let s = engine.schedule();
    let mut page = Vec::new();
    let mut next = None;
    for view in engine.patient_appointments(&r.patient_id) {
        if view.id.0 < after {
            continue;
        }
        let start = s.slot(view.slot).start;
        if from.is_some_and(|t| start < t) || until.is_some_and(|t| start >= t) {
            continue;
        }
        if !statuses.is_empty() && !statuses.contains(&view.status) {
            continue;
        }
        if page.len() == limit {
            next = Some(view.id.0);
            break;
        }
        page.push(appointment(engine, &view, 0));
    }
    Ok(pb::ListAppointmentsResponse {
        appointments: page,
        next_page_token: next.map(|n| n.to_string()).unwrap_or_default(),
    })
}

/// `ListDoctors`.
pub fn doctors(
    engine: &Engine,
    r: &pb::ListDoctorsRequest,
) -> Result<pb::ListDoctorsResponse, FieldError> {
    let at = FieldPath::request();
    let s = engine.schedule();
    let ids = each(&r.ids, |x| s.doctor(x), &at.field("ids"), "doctor")?;
    let clinic = optional(
        &r.clinic_id,
        |x| s.clinic(x),
        &at.field("clinic_id"),
        "clinic",
    )?;
    let specialty = optional(
        &r.specialty,
        |x| s.specialty(x),
        &at.field("specialty"),
        "specialty",
    )?;
    let limit = page_size(r.page_size, &at.field("page_size"))?;
    let after = page_token(&r.page_token, &at.field("page_token"))?;
    let (page, next) = page(after, s.doctors.len(), limit, |i| {
        let doc = &s.doctors[i as usize];
        (ids.is_empty() || ids.contains(&DoctorRef(i)))
            && clinic.is_none_or(|c| c == doc.clinic)
            && specialty.is_none_or(|k| k == doc.specialty)
    });
    Ok(pb::ListDoctorsResponse {
        doctors: page
            .into_iter()
            .map(|d| {
                let doc = &s.doctors[d as usize];
                pb::Doctor {
                    id: doc.id.to_string(),
                    clinic: s.clinics[doc.clinic.index()].id.to_string(),
                    specialty: s.specialty_code(doc.specialty).to_owned(),
                    visit_minutes: u32::from(doc.minutes),
                }
            })
            .collect(),
        next_page_token: next.map(|d| d.to_string()).unwrap_or_default(),
    })
}

/// `ListClinics`.
pub fn clinics(
    engine: &Engine,
    r: &pb::ListClinicsRequest,
) -> Result<pb::ListClinicsResponse, FieldError> {
    let at = FieldPath::request();
    let s = engine.schedule();
    let ids = each(&r.ids, |x| s.clinic(x), &at.field("ids"), "clinic")?;
    let district = optional(
        &r.district,
        |x| s.district(x),
        &at.field("district"),
        "district",
    )?;
    let limit = page_size(r.page_size, &at.field("page_size"))?;
    let after = page_token(&r.page_token, &at.field("page_token"))?;
    let (page, next) = page(after, s.clinics.len(), limit, |i| {
        (ids.is_empty() || ids.contains(&ClinicRef(i)))
            && district.is_none_or(|d| d == s.clinics[i as usize].district)
    });
    Ok(pb::ListClinicsResponse {
        clinics: page
            .into_iter()
            .map(|c| {
                let c = ClinicRef(c);
                let clinic = &s.clinics[c.index()];
                let specialties = (0..s.specialties.len())
                    .filter_map(|k| s.specialty(&s.specialties[k]))
                    .filter(|&k| !s.clinic_doctors(c, k).is_empty())
                    .map(|k| s.specialty_code(k).to_owned())
                    .collect();
                let load = match r.with_load {
                    true => (0..s.days)
                        .map(|day| {
                            let (used, available) = engine.clinic_day_load(c, day);
                            pb::DayLoad { used, available }
                        })
                        .collect(),
                    false => Vec::new(),
                };
                pb::Clinic {
                    load,
                    id: clinic.id.to_string(),
                    district: s.districts[clinic.district.index()].id.to_string(),
                    location: Some(pb::Location {
                        lat: clinic.location.lat,
                        lon: clinic.location.lon,
                    }),
                    specialties,
                }
            })
            .collect(),
        next_page_token: next.map(|c| c.to_string()).unwrap_or_default(),
    })
}
