//! FHIR R4 resources as JSON: what the service layer's messages look like to a hospital system.
//!
//! Ids: a doctor is `Practitioner/{doctor}` and has one `Schedule/{doctor}`; a clinic is
//! `Location/{clinic}`; a slot `DOCTOR@YYYY-MM-DDTHH:MM` is `Slot/DOCTOR-YYYYMMDDHHMM` (FHIR ids
//! allow neither `@` nor `:`); a hold is a `pending` `Appointment/h{n}`, an appointment
//! `Appointment/a{n}`. allot's own facts ride in extensions under [`EXTENSIONS`], documented in
//! `docs/fhir.md`.

use serde::Serialize;
use serde_json::{Value, json};

use crate::proto::v1 as pb;

/// Where allot's extensions are defined.
pub const EXTENSIONS: &str = "https://allot.city/fhir/StructureDefinition";
/// The code system of the schedule's specialty codes (`therapist`, ...).
pub const SPECIALTY_SYSTEM: &str = "https://allot.city/fhir/CodeSystem/specialty";
/// The IHE ITI Scheduling Appointment profile, claimed by every Appointment served.
pub const IHE_APPOINTMENT: &str =
    "https://profiles.ihe.net/ITI/Scheduling/StructureDefinition/ihe-sched-appt";

/// `Slot/{id}` for a slot id of the API.
pub fn slot_fhir_id(slot: &str) -> String {
    match slot.rsplit_once('@') {
        Some((doctor, time)) => {
            let digits: String = time.chars().filter(char::is_ascii_digit).collect();
            format!("{doctor}-{digits}")
        }
        None => slot.to_owned(),
    }
}

/// The API's slot id for a FHIR `Slot` id (what [`slot_fhir_id`] made), if it is one.
pub fn slot_api_id(fhir: &str) -> Option<String> {
    let (doctor, digits) = fhir.rsplit_once('-')?;
    if doctor.is_empty() || digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let d = |a: usize, b: usize| &digits[a..b];
    Some(format!(
        "{doctor}@{}-{}-{}T{}:{}",
        d(0, 4),
        d(4, 6),
        d(6, 8),
        d(8, 10),
        d(10, 12)
    ))
}

fn slot_status(s: i32) -> &'static str {
    match pb::SlotStatus::try_from(s) {
        Ok(pb::SlotStatus::BusyTentative) => "busy-tentative",
        Ok(pb::SlotStatus::Busy) => "busy",
        Ok(pb::SlotStatus::BusyUnavailable) => "busy-unavailable",
        _ => "free",
    }
}

fn appointment_status(s: i32) -> &'static str {
    match pb::AppointmentStatus::try_from(s) {
        Ok(pb::AppointmentStatus::Pending) => "pending",
        Ok(pb::AppointmentStatus::Booked) => "booked",
        Ok(pb::AppointmentStatus::Cancelled) => "cancelled",
        Ok(pb::AppointmentStatus::Noshow) => "noshow",
        Ok(pb::AppointmentStatus::Fulfilled) => "fulfilled",
        _ => "proposed",
    }
}

/// A FHIR appointment status as the API's (none for one allot never has).
pub fn appointment_status_code(code: &str) -> Option<pb::AppointmentStatus> {
    Some(match code {
        "proposed" => pb::AppointmentStatus::Proposed,
        "pending" => pb::AppointmentStatus::Pending,
        "booked" => pb::AppointmentStatus::Booked,
        "cancelled" => pb::AppointmentStatus::Cancelled,
        "noshow" => pb::AppointmentStatus::Noshow,
        "fulfilled" => pb::AppointmentStatus::Fulfilled,
        _ => return None,
    })
}

/// A FHIR slot status as the API's.
pub fn slot_status_code(code: &str) -> Option<pb::SlotStatus> {
    Some(match code {
        "free" => pb::SlotStatus::Free,
        "busy-tentative" => pb::SlotStatus::BusyTentative,
        "busy" => pb::SlotStatus::Busy,
        "busy-unavailable" => pb::SlotStatus::BusyUnavailable,
        _ => return None,
    })
}

fn minutes(slot: &pb::Slot) -> i64 {
    match (&slot.start, &slot.end) {
        (Some(a), Some(b)) => (b.seconds - a.seconds) / 60,
        _ => 0,
    }
}

/// An Appointment (the profile's elements allot fills), typed: `$find` renders thousands a
/// second, and a struct serialises several times faster than a `serde_json::Value` tree.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Appointment {
    resource_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    meta: Meta,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extension: Vec<Extension>,
    pub status: &'static str,
    specialty: [CodeableConcept; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<String>,
    minutes_duration: i64,
    slot: [Reference; 1],
    participant: Vec<Participant>,
}

#[derive(Debug, Clone, Serialize)]
struct Meta {
    profile: [&'static str; 1],
}

#[derive(Debug, Clone, Serialize)]
struct CodeableConcept {
    coding: [Coding; 1],
}

#[derive(Debug, Clone, Serialize)]
struct Coding {
    system: &'static str,
    code: String,
}

/// A FHIR Reference.
#[derive(Debug, Clone, Serialize)]
pub struct Reference {
    pub reference: String,
}

#[derive(Debug, Clone, Serialize)]
struct Participant {
    actor: Reference,
    status: &'static str,
}

/// An extension with one of the values allot uses, or nested extensions.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Extension {
    url: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extension: Vec<Extension>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_decimal: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_positive_int: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_unsigned_int: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_instant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_reference: Option<Reference>,
}

impl Extension {
    /// allot's extension `name` (under [`EXTENSIONS`]).
    pub fn allot(name: &str) -> Extension {
        Extension {
            url: format!("{EXTENSIONS}/{name}"),
            ..Extension::default()
        }
    }

    /// A nested part of a complex extension.
    fn part(name: &str) -> Extension {
        Extension {
            url: name.to_owned(),
            ..Extension::default()
        }
    }

    /// The extension with a reference value.
    pub fn referring(mut self, reference: String) -> Extension {
        self.value_reference = Some(Reference { reference });
        self
    }
}

fn reference_to(kind: &str, id: &str) -> Reference {
    let mut reference = String::with_capacity(kind.len() + 1 + id.len());
    reference.push_str(kind);
    reference.push('/');
    reference.push_str(id);
    Reference { reference }
}

/// A specialty code as `specialty` is written on Appointment, Slot and Schedule.
fn specialty(code: &str) -> [CodeableConcept; 1] {
    [CodeableConcept {
        coding: [Coding {
            system: SPECIALTY_SYSTEM,
            code: code.to_owned(),
        }],
    }]
}

/// A protobuf time as a FHIR `instant` (UTC).
fn instant_text(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
        .map(|t| t.to_string())
}

/// An appointment at `slot` for `patient` (none: no patient participant) in `status`, with its
/// participants and the slot's time.
fn appointment_at(
    id: Option<&str>,
    status: &'static str,
    slot: &pb::Slot,
    patient: Option<&str>,
) -> Appointment {
    let mut participant = Vec::with_capacity(3);
    if let Some(p) = patient.filter(|p| !p.is_empty()) {
        let answer = if status == "proposed" {
            "needs-action"
        } else {
            "accepted"
        };
        participant.push(Participant {
            actor: reference_to("Patient", p),
            status: answer,
        });
    }
    participant.push(Participant {
        actor: reference_to("Practitioner", &slot.doctor),
        status: "accepted",
    });
    participant.push(Participant {
        actor: reference_to("Location", &slot.clinic),
        status: "accepted",
    });
    Appointment {
        resource_type: "Appointment",
        id: id.map(str::to_owned),
        meta: Meta {
            profile: [IHE_APPOINTMENT],
        },
        extension: Vec::new(),
        status,
        specialty: specialty(&slot.specialty),
        start: instant_text(slot.start.as_ref()),
        end: instant_text(slot.end.as_ref()),
        minutes_duration: minutes(slot),
        slot: [reference_to("Slot", &slot_fhir_id(&slot.id))],
        participant,
    }
}

/// A `$find` proposal: a `proposed` Appointment with the score broken down (extension `score`:
/// `rank`, `total` and its parts, as `FindSlots` gives them).
pub fn proposal(p: &pb::Proposal, patient: Option<&str>) -> Appointment {
    let empty = pb::Slot::default();
    let slot = p.slot.as_ref().unwrap_or(&empty);
    let mut a = appointment_at(None, "proposed", slot, patient);
    let s = p.score.unwrap_or_default();
    let part = |name: &str, v: f64| Extension {
        value_decimal: Some(finite(v)),
        ..Extension::part(name)
    };
    a.extension = vec![Extension {
        extension: vec![
            Extension {
                value_positive_int: Some(p.rank.max(1)),
                ..Extension::part("rank")
            },
            part("total", s.total),
            part("travel", s.travel),
            part("waiting", s.waiting),
            part("load", s.load),
            part("distance-km", s.distance_km),
            part("waiting-days", s.waiting_days),
            part("clinic-load", s.clinic_load),
            part("preference", s.preference),
        ],
        ..Extension::allot("score")
    }];
    a
}

fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

fn instant_extension(name: &str, t: Option<&prost_types::Timestamp>) -> Extension {
    Extension {
        value_instant: instant_text(t),
        ..Extension::allot(name)
    }
}

fn log_index(index: u64) -> Option<Extension> {
    (index > 0).then(|| Extension {
        value_unsigned_int: Some(index),
        ..Extension::allot("log-index")
    })
}

/// A hold as a `pending` Appointment, with its expiry (extension `hold-expires`).
pub fn hold(h: &pb::Hold) -> Appointment {
    let empty = pb::Slot::default();
    let slot = h.slot.as_ref().unwrap_or(&empty);
    let mut a = appointment_at(Some(&h.id), "pending", slot, Some(&h.patient_id));
    a.extension = vec![instant_extension("hold-expires", h.expires.as_ref())];
    a.extension.extend(log_index(h.log_index));
    a
}

/// An appointment. One re-offered after an absence is `proposed` at the offered slot (extension
/// `offer-expires`, and `replaces-slot` naming the slot the absence took).
pub fn appointment(a: &pb::Appointment) -> Appointment {
    let empty = pb::Slot::default();
    let slot = a.slot.as_ref().unwrap_or(&empty);
    let mut out = match &a.offered_slot {
        Some(offered) => {
            let mut out = appointment_at(Some(&a.id), "proposed", offered, Some(&a.patient_id));
            out.extension = vec![
                instant_extension("offer-expires", a.offer_expires.as_ref()),
                Extension::allot("replaces-slot")
                    .referring(format!("Slot/{}", slot_fhir_id(&slot.id))),
            ];
            out
        }
        None => appointment_at(
            Some(&a.id),
            appointment_status(a.status),
            slot,
            Some(&a.patient_id),
        ),
    };
    out.extension.extend(log_index(a.log_index));
    out
}

/// A slot.
pub fn slot(s: &pb::Slot) -> Value {
    json!({
        "resourceType": "Slot",
        "id": slot_fhir_id(&s.id),
        "schedule": reference_to("Schedule", &s.doctor),
        "status": slot_status(s.status),
        "specialty": specialty(&s.specialty),
        "start": instant_text(s.start.as_ref()),
        "end": instant_text(s.end.as_ref()),
    })
}

/// A doctor's schedule: his and his clinic's.
pub fn schedule(d: &pb::Doctor) -> Value {
    json!({
        "resourceType": "Schedule",
        "id": d.id,
        "active": true,
        "specialty": specialty(&d.specialty),
        "actor": [reference_to("Practitioner", &d.id), reference_to("Location", &d.clinic)],
        "comment": format!("{} minutes per visit", d.visit_minutes),
    })
}

/// A doctor.
pub fn practitioner(d: &pb::Doctor) -> Value {
    json!({
        "resourceType": "Practitioner",
        "id": d.id,
        "active": true,
        "identifier": [{ "system": format!("{EXTENSIONS}/doctor-id"), "value": d.id }],
    })
}

/// A clinic.
pub fn location(c: &pb::Clinic) -> Value {
    let at = c.location.unwrap_or_default();
    json!({
        "resourceType": "Location",
        "id": c.id,
        "status": "active",
        "name": c.id,
        "mode": "instance",
        "address": { "district": c.district },
        "position": { "latitude": at.lat, "longitude": at.lon },
    })
}

/// A searchset Bundle.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle<R> {
    resource_type: &'static str,
    r#type: &'static str,
    /// The number of matches: given only when this page holds all of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<usize>,
    link: Vec<Link>,
    entry: Vec<Entry<R>>,
}

#[derive(Debug, Serialize)]
struct Link {
    relation: &'static str,
    url: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry<R> {
    full_url: String,
    resource: R,
    search: Search,
}

#[derive(Debug, Serialize)]
struct Search {
    mode: &'static str,
}

/// A searchset Bundle of `entries` (each `(fullUrl, resource)`), with its `self` and `next`
/// links; `complete` when these are all the matches (a first page with no next one).
pub fn searchset<R>(
    entries: Vec<(String, R)>,
    self_url: &str,
    next: Option<String>,
    complete: bool,
) -> Bundle<R> {
    let mut link = vec![Link {
        relation: "self",
        url: self_url.to_owned(),
    }];
    if let Some(url) = next {
        link.push(Link {
            relation: "next",
            url,
        });
    }
    Bundle {
        resource_type: "Bundle",
        r#type: "searchset",
        total: complete.then_some(entries.len()),
        link,
        entry: entries
            .into_iter()
            .map(|(full_url, resource)| Entry {
                full_url,
                resource,
                search: Search { mode: "match" },
            })
            .collect(),
    }
}

/// An OperationOutcome of one issue; `expression` is the FHIRPath of the element at fault.
pub fn outcome(severity: &str, code: &str, diagnostics: &str, expression: Option<&str>) -> Value {
    let mut issue = json!({ "severity": severity, "code": code, "diagnostics": diagnostics });
    if let Some(e) = expression {
        issue["expression"] = json!([e]);
    }
    json!({ "resourceType": "OperationOutcome", "issue": [issue] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_ids_go_there_and_back() {
        for id in ["D1@2025-03-03T09:30", "doc-7.x@2030-12-31T23:59"] {
            let fhir = slot_fhir_id(id);
            assert!(
                fhir.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            );
            assert_eq!(slot_api_id(&fhir).as_deref(), Some(id));
        }
        assert_eq!(slot_api_id("D1-2025"), None);
        assert_eq!(slot_api_id("-202503030930"), None);
    }
}
