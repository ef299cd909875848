//! The `Appointments` answers as people read them: one line per proposal, an appointment or a
//! hold, the inventory, an absence's effects, and a re-balancing's plan files.

use std::collections::HashMap;
use std::fmt::Write as _;

use allot_engine::appointments::generate::City;
use allot_engine::appointments::{Engine, LocalTime, SnapshotInfo, Zone};
use allot_engine::input::CsvText;
use allot_engine::log::Timestamp;
use serde_json::{Value, json};

use crate::proto::v1 as pb;

/// An instant of the API in the city's local time.
/// A city loaded into a data folder.
pub fn loaded(engine: &Engine) -> String {
    let s = engine.schedule();
    format!(
        "loaded {} clinics, {} districts, {} doctors: {} slots from {} for {} days ({} \
         unavailable)\nschedule {}\n",
        s.clinics.len(),
        s.districts.len(),
        s.doctors.len(),
        s.slot_count(),
        s.first_day,
        s.days,
        engine.counts().busy_unavailable,
        engine.schedule_digest()
    )
}

/// A generated city written into `out`.
pub fn generated(city: &City, absences: usize, requests: usize, out: &std::path::Path) -> String {
    format!(
        "wrote {} districts, {} clinics, {} doctors, {absences} absences and {requests} requests \
         to {}\n",
        city.districts.len(),
        city.clinics.len(),
        city.doctors.len(),
        out.display()
    )
}

/// An inventory snapshot written.
pub fn snapshot(info: &SnapshotInfo) -> String {
    format!(
        "snapshot of the inventory after the log's first {} entries: {} ({} bytes, {} records, \
         sha256 {}, logged as entry {})\n",
        info.covers,
        info.path.display(),
        info.bytes,
        info.records,
        info.digest,
        info.entry
    )
}

pub fn local_time(t: Option<&prost_types::Timestamp>, zone: &Zone) -> LocalTime {
    let micros = t.map_or(0, |t| u64::try_from(t.seconds).unwrap_or(0) * 1_000_000);
    LocalTime::from_timestamp(Timestamp::from_unix_micros(micros), zone)
}

/// The slot of an answer (an absent one reads as empty).
pub fn slot_of(slot: &Option<pb::Slot>) -> pb::Slot {
    slot.clone().unwrap_or_default()
}

/// The local start of a slot: its id is `DOCTOR@YYYY-MM-DDTHH:MM` in the city's time.
pub fn start_of(slot: &pb::Slot) -> &str {
    slot.id.rsplit_once('@').map_or("", |(_, start)| start)
}

/// `CLINIC DOCTOR (SPECIALTY) YYYY-MM-DD HH:MM`.
pub fn describe(slot: &pb::Slot) -> String {
    let (date, clock) = start_of(slot).split_once('T').unwrap_or_default();
    format!(
        "{} {} ({}) {date} {clock}",
        slot.clinic, slot.doctor, slot.specialty
    )
}

/// Proposals, one line each, with the score broken down.
pub fn proposals_text(proposals: &[pb::Proposal]) -> String {
    let mut out = String::new();
    for p in proposals {
        let (slot, sc) = (slot_of(&p.slot), p.score.unwrap_or_default());
        let preferred = if sc.preference > 0.0 {
            format!(" - preferred {:.2}", sc.preference)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{}. {}  {} ({}) {}  score {:.2} = travel {:.2} ({:.1} km) + wait {:.2} ({} d) + load {:.2} ({:.0}% full){preferred}",
            p.rank,
            slot.id,
            slot.clinic,
            slot.district,
            slot.specialty,
            sc.total,
            sc.travel,
            sc.distance_km,
            sc.waiting,
            sc.waiting_days,
            sc.load,
            100.0 * sc.clinic_load,
        );
    }
    out
}

pub fn proposal_json(p: &pb::Proposal) -> Value {
    let (slot, sc) = (slot_of(&p.slot), p.score.unwrap_or_default());
    json!({
        "slot": slot.id,
        "status": "proposed",
        "clinic": slot.clinic,
        "doctor": slot.doctor,
        "start": start_of(&slot),
        "score": {
            "total": sc.total,
            "travel": sc.travel,
            "travel_km": sc.distance_km,
            "wait": sc.waiting,
            "wait_days": sc.waiting_days,
            "load": sc.load,
            "utilisation": sc.clinic_load,
            "preference": sc.preference,
        }
    })
}

/// The fresh proposals a "slot taken" answer carries, as more lines of its error.
pub fn alternatives(status: &tonic::Status) -> Option<String> {
    let taken = crate::server::appointments::slot_taken_detail(status)?;
    let text = proposals_text(&taken.alternatives);
    (!text.is_empty()).then(|| format!(":\n{}", text.trim_end()))
}

/// An appointment's status as FHIR's `Appointment.status` code.
pub fn appointment_status(status: i32) -> &'static str {
    match pb::AppointmentStatus::try_from(status) {
        Ok(pb::AppointmentStatus::Proposed) => "proposed",
        Ok(pb::AppointmentStatus::Pending) => "pending",
        Ok(pb::AppointmentStatus::Booked) => "booked",
        Ok(pb::AppointmentStatus::Cancelled) => "cancelled",
        Ok(pb::AppointmentStatus::Noshow) => "noshow",
        Ok(pb::AppointmentStatus::Fulfilled) => "fulfilled",
        _ => "unknown",
    }
}

/// A slot's status as FHIR's `Slot.status` code.
pub fn slot_status(status: i32) -> &'static str {
    match pb::SlotStatus::try_from(status) {
        Ok(pb::SlotStatus::Free) => "free",
        Ok(pb::SlotStatus::BusyTentative) => "busy-tentative",
        Ok(pb::SlotStatus::Busy) => "busy",
        Ok(pb::SlotStatus::BusyUnavailable) => "busy-unavailable",
        _ => "unknown",
    }
}

/// A hold, in text or JSON.
pub fn hold(hold: &pb::Hold, zone: &Zone, as_json: bool) -> String {
    let (slot, expires) = (slot_of(&hold.slot), local_time(hold.expires.as_ref(), zone));
    if as_json {
        let v = json!({"id": hold.id, "status": "pending", "patient": hold.patient_id,
            "slot": slot.id, "expires": expires.to_string()});
        return format!("{v}\n");
    }
    format!(
        "hold         {} (pending)\npatient      {}\nslot         {}  {}\nexpires      {expires}\n",
        hold.id,
        hold.patient_id,
        slot.id,
        describe(&slot)
    )
}

/// An appointment (and the slot re-offered to it, if any), in text or JSON.
pub fn appointment(a: &pb::Appointment, zone: &Zone, as_json: bool) -> String {
    let slot = slot_of(&a.slot);
    let offered =
        (a.offered_slot.as_ref()).map(|s| (s, local_time(a.offer_expires.as_ref(), zone)));
    if as_json {
        let v = json!({
            "id": a.id,
            "status": appointment_status(a.status),
            "patient": a.patient_id,
            "slot": slot.id,
            "slot_status": slot_status(slot.status),
            "offered": offered.map(|(s, expires)| json!({
                "slot": s.id, "expires": expires.to_string()})),
        });
        return format!("{v}\n");
    }
    let mut out = format!(
        "appointment  {} ({})\npatient      {}\nslot         {}  {} (slot {})\n",
        a.id,
        appointment_status(a.status),
        a.patient_id,
        slot.id,
        describe(&slot),
        slot_status(slot.status)
    );
    if let Some((s, expires)) = offered {
        let _ = writeln!(
            out,
            "re-offered   {}  {} until {expires} (accept or cancel)",
            s.id,
            describe(s)
        );
    }
    out
}

/// The loaded city and its slots by status, in text or JSON.
pub fn inventory(i: &pb::GetInventoryResponse, as_json: bool) -> String {
    if as_json {
        let v = json!({
            "first_day": i.first_day,
            "days": i.days,
            "utc_offset": i.utc_offset,
            "districts": i.districts,
            "clinics": i.clinics,
            "doctors": i.doctors,
            "specialties": i.specialties,
            "slots": {"total": i.slots, "free": i.free, "busy-tentative": i.busy_tentative,
                      "busy": i.busy, "busy-unavailable": i.busy_unavailable},
            "memory": {"bytes": i.memory_bytes, "bytes_per_slot": i.bytes_per_slot},
            "log_entries": i.log_entries,
            "schedule": i.schedule_digest,
        });
        return format!("{v}\n");
    }
    format!(
        "horizon      {} for {} days (UTC{})\n\
         city         {} districts, {} clinics, {} doctors ({})\n\
         slots        {} free, {} busy-tentative, {} busy, {} busy-unavailable\n\
         memory       {:.1} MB, {:.2} bytes per slot\n\
         log          {} entries\n\
         schedule     {}\n",
        i.first_day,
        i.days,
        i.utc_offset,
        i.districts,
        i.clinics,
        i.doctors,
        i.specialties.join(", "),
        i.free,
        i.busy_tentative,
        i.busy,
        i.busy_unavailable,
        i.memory_bytes as f64 / 1e6,
        i.bytes_per_slot,
        i.log_entries,
        i.schedule_digest
    )
}

/// What marking a doctor absent did: counts, then each re-offer and each cancellation.
pub fn absence(
    doctor: &str,
    from: LocalTime,
    until: LocalTime,
    out: &pb::MarkAbsenceResponse,
) -> String {
    let mut text = format!(
        "{doctor} absent from {from} until {until}: {} slots unavailable, {} holds ended, {} patients re-offered, {} cancelled\n",
        out.unavailable_slots,
        out.ended_holds,
        out.re_offers.len(),
        out.cancelled_appointments.len()
    );
    for r in &out.re_offers {
        let offer = r.offer.clone().unwrap_or_default();
        let _ = writeln!(
            text,
            "  {}: {} -> offered {} (score {:.2})",
            r.appointment_id,
            r.from_slot,
            slot_of(&offer.slot).id,
            offer.score.unwrap_or_default().total
        );
    }
    for appointment in &out.cancelled_appointments {
        let _ = writeln!(text, "  {appointment}: cancelled, no slot to offer");
    }
    text
}

/// A re-balancing in one line: optimal against greedy.
pub fn rebalance_line(answer: &pb::RebalanceResponse) -> String {
    let (o, g) = (
        answer.optimised.unwrap_or_default(),
        answer.greedy.unwrap_or_default(),
    );
    format!(
        "{} requests in {} groups: {} assigned, {} unassigned; cost {:.1} (greedy {:.1}); \
         max utilisation {:.1}% (greedy {:.1}%); p95 wait {} days (greedy {}); solved in {:.3} s",
        answer.assignments.len() + answer.unassigned.len(),
        answer.groups,
        o.assigned,
        o.unassigned,
        o.cost,
        g.cost,
        100.0 * o.max_utilisation,
        100.0 * g.max_utilisation,
        o.waiting_days_p95,
        g.waiting_days_p95,
        answer.solve_seconds
    )
}

/// How many of a re-balancing's assignments were booked.
pub fn booked_count(answer: &pb::RebalanceResponse) -> usize {
    let booked = answer.assignments.iter();
    booked.filter(|a| !a.appointment_id.is_empty()).count()
}

/// A re-balancing's `assignment.csv`: one row per referral of `queue`, in its order, with an
/// `appointment` column when the plan was booked.
pub fn plan_csv(
    answer: &pb::RebalanceResponse,
    queue: &[pb::QueuedRequest],
    booked: bool,
    zone: &Zone,
) -> String {
    let mut header = vec![
        "request",
        "patient",
        "clinic",
        "doctor",
        "slot",
        "start",
        "travel_km",
        "wait_days",
    ];
    if booked {
        header.push("appointment");
    }
    let by_request: HashMap<&str, &pb::Assignment> = (answer.assignments.iter())
        .map(|a| (a.request_id.as_str(), a))
        .collect();
    let mut csv = CsvText::new(&header);
    for r in queue {
        let mut row = vec![r.id.clone(), r.patient_id.clone()];
        match by_request.get(r.id.as_str()) {
            Some(a) => {
                let slot = slot_of(&a.slot);
                row.extend([
                    slot.clinic.clone(),
                    slot.doctor.clone(),
                    slot.id.clone(),
                    local_time(slot.start.as_ref(), zone).to_string(),
                    format!("{:.2}", a.travel_km),
                    a.waiting_days.to_string(),
                ]);
                if booked {
                    row.push(a.appointment_id.clone());
                }
            }
            None => row.extend(std::iter::repeat_n(String::new(), header.len() - 2)),
        }
        csv.row(&row);
    }
    csv.finish()
}

/// A re-balancing's `summary.json`: the optimal and greedy outcomes, the network, the
/// parameters and the log range.
pub fn plan_summary(answer: &pb::RebalanceResponse, booked: bool) -> Value {
    let outcome = |o: &Option<pb::RebalanceStats>| {
        let o = o.unwrap_or_default();
        json!({
            "assigned": o.assigned,
            "unassigned": o.unassigned,
            "cost": o.cost,
            "mean_travel_km": o.mean_travel_km,
            "mean_wait_days": o.waiting_days_mean,
            "p50_wait_days": o.waiting_days_p50,
            "p95_wait_days": o.waiting_days_p95,
            "max_wait_days": o.waiting_days_max,
            "max_utilisation": o.max_utilisation,
            "mean_utilisation": o.mean_utilisation,
            "utilisation_spread": o.utilisation_spread,
        })
    };
    let p = answer.parameters.clone().unwrap_or_default();
    let bands: Vec<_> = (p.load_bands.iter())
        .map(|b| json!({"up_to": b.up_to, "points": b.points}))
        .collect();
    json!({
        "requests": answer.assignments.len() + answer.unassigned.len(),
        "groups": answer.groups,
        "network": {"nodes": answer.network_nodes, "arcs": answer.network_arcs},
        "cost": answer.optimised.unwrap_or_default().cost,
        "optimal": outcome(&answer.optimised),
        "greedy": outcome(&answer.greedy),
        "parameters": {
            "travel_per_km": p.travel_per_km,
            "wait_per_day": p.waiting_per_day,
            "tiers": bands,
            "nearest": p.nearest_clinics,
            "unassigned": p.unassigned,
        },
        "booked": booked.then(|| booked_count(answer)),
        "solve_seconds": answer.solve_seconds,
        "seconds": answer.seconds,
        "log": answer.log.as_ref().map(|l| json!({"start": l.start, "end": l.end})),
    })
}
