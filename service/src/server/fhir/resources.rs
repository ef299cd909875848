//! FHIR R4 resources as JSON: what the service layer's messages look like to a hospital system.
//!
//! Ids: a doctor is `Practitioner/{doctor}` and has one `Schedule/{doctor}`; a clinic is
//! `Location/{clinic}`; a slot `DOCTOR@YYYY-MM-DDTHH:MM` is `Slot/DOCTOR-YYYYMMDDHHMM` (FHIR ids
//! allow neither `@` nor `:`); a hold is a `pending` `Appointment/h{n}`, an appointment
//! `Appointment/a{n}`. allot's own facts ride in extensions under [`EXTENSIONS`], documented in
//! `docs/fhir.md`.

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

/// A protobuf time as a FHIR `instant` (UTC).
pub fn instant(t: Option<&prost_types::Timestamp>) -> Value {
    match t.and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok()) {
        Some(t) => Value::String(t.to_string()),
        None => Value::Null,
    }
}

fn reference(kind: &str, id: &str) -> Value {
    json!({ "reference": format!("{kind}/{id}") })
}

fn specialty(code: &str) -> Value {
    json!([{ "coding": [{ "system": SPECIALTY_SYSTEM, "code": code }] }])
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

/// An appointment at `slot` for `patient` (none: no patient participant) in `status`, with its
/// participants and the slot's time.
fn appointment_at(id: Option<&str>, status: &str, slot: &pb::Slot, patient: Option<&str>) -> Value {
    let mut participant = Vec::with_capacity(3);
    if let Some(p) = patient.filter(|p| !p.is_empty()) {
        let answer = if status == "proposed" {
            "needs-action"
        } else {
            "accepted"
        };
        participant.push(json!({ "actor": reference("Patient", p), "status": answer }));
    }
    participant
        .push(json!({ "actor": reference("Practitioner", &slot.doctor), "status": "accepted" }));
    participant.push(json!({ "actor": reference("Location", &slot.clinic), "status": "accepted" }));
    let mut a = json!({
        "resourceType": "Appointment",
        "meta": { "profile": [IHE_APPOINTMENT] },
        "status": status,
        "specialty": specialty(&slot.specialty),
        "start": instant(slot.start.as_ref()),
        "end": instant(slot.end.as_ref()),
        "minutesDuration": minutes(slot),
        "slot": [reference("Slot", &slot_fhir_id(&slot.id))],
        "participant": participant,
    });
    if let Some(id) = id {
        a["id"] = Value::String(id.to_owned());
    }
    a
}

fn extension(name: &str, value_kind: &str, value: Value) -> Value {
    json!({ "url": format!("{EXTENSIONS}/{name}"), value_kind: value })
}

/// A `$find` proposal: a `proposed` Appointment with the score broken down (extension `score`:
/// `rank`, `total` and its parts, as `FindSlots` gives them).
pub fn proposal(p: &pb::Proposal, patient: Option<&str>) -> Value {
    let slot = p.slot.clone().unwrap_or_default();
    let mut a = appointment_at(None, "proposed", &slot, patient);
    let s = p.score.unwrap_or_default();
    let part = |name: &str, v: f64| json!({ "url": name, "valueDecimal": finite(v) });
    a["extension"] = json!([{
        "url": format!("{EXTENSIONS}/score"),
        "extension": [
            { "url": "rank", "valuePositiveInt": p.rank.max(1) },
            part("total", s.total),
            part("travel", s.travel),
            part("waiting", s.waiting),
            part("load", s.load),
            part("distance-km", s.distance_km),
            part("waiting-days", s.waiting_days),
            part("clinic-load", s.clinic_load),
            part("preference", s.preference),
        ],
    }]);
    a
}

fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

/// A hold as a `pending` Appointment, with its expiry (extension `hold-expires`).
pub fn hold(h: &pb::Hold) -> Value {
    let slot = h.slot.clone().unwrap_or_default();
    let mut a = appointment_at(Some(&h.id), "pending", &slot, Some(&h.patient_id));
    let mut ext = vec![extension(
        "hold-expires",
        "valueInstant",
        instant(h.expires.as_ref()),
    )];
    if h.log_index > 0 {
        ext.push(extension(
            "log-index",
            "valueUnsignedInt",
            json!(h.log_index),
        ));
    }
    a["extension"] = Value::Array(ext);
    a
}

/// An appointment. One re-offered after an absence is `proposed` at the offered slot (extension
/// `offer-expires`, and `replaces-slot` naming the slot the absence took).
pub fn appointment(a: &pb::Appointment) -> Value {
    let slot = a.slot.clone().unwrap_or_default();
    let mut ext = Vec::new();
    let mut out = match &a.offered_slot {
        Some(offered) => {
            ext.push(extension(
                "offer-expires",
                "valueInstant",
                instant(a.offer_expires.as_ref()),
            ));
            ext.push(extension(
                "replaces-slot",
                "valueReference",
                reference("Slot", &slot_fhir_id(&slot.id)),
            ));
            appointment_at(Some(&a.id), "proposed", offered, Some(&a.patient_id))
        }
        None => appointment_at(
            Some(&a.id),
            appointment_status(a.status),
            &slot,
            Some(&a.patient_id),
        ),
    };
    if a.log_index > 0 {
        ext.push(extension(
            "log-index",
            "valueUnsignedInt",
            json!(a.log_index),
        ));
    }
    if !ext.is_empty() {
        out["extension"] = Value::Array(ext);
    }
    out
}

/// A slot.
pub fn slot(s: &pb::Slot) -> Value {
    json!({
        "resourceType": "Slot",
        "id": slot_fhir_id(&s.id),
        "schedule": reference("Schedule", &s.doctor),
        "status": slot_status(s.status),
        "specialty": specialty(&s.specialty),
        "start": instant(s.start.as_ref()),
        "end": instant(s.end.as_ref()),
    })
}

/// A doctor's schedule: his and his clinic's.
pub fn schedule(d: &pb::Doctor) -> Value {
    json!({
        "resourceType": "Schedule",
        "id": d.id,
        "active": true,
        "specialty": specialty(&d.specialty),
        "actor": [reference("Practitioner", &d.id), reference("Location", &d.clinic)],
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

/// A searchset Bundle of `resources` (each `(fullUrl, resource)`), with its `self` and `next`
/// links.
pub fn searchset(entries: Vec<(String, Value)>, self_url: &str, next: Option<String>) -> Value {
    let mut link = vec![json!({ "relation": "self", "url": self_url })];
    if let Some(next) = next {
        link.push(json!({ "relation": "next", "url": next }));
    }
    let entry: Vec<Value> = entries
        .into_iter()
        .map(|(url, resource)| {
            json!({ "fullUrl": url, "resource": resource, "search": { "mode": "match" } })
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entry.len(),
        "link": link,
        "entry": entry,
    })
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
