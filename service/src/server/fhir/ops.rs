//! The IHE operations: ITI-115 `$find`, ITI-116 `$hold`, ITI-117 `$book` (which also cancels,
//! reschedules and accepts a re-offer, as the profile has it).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use tonic::Status;

use super::resources::{self, slot_api_id};
use super::{Answer, Fhir, FhirError, fhir_json, resource_body};
use crate::proto::v1 as pb;

/// `Parameters.parameter.where(name='NAME')`: the FHIRPath of one parameter.
fn param_path(name: &str) -> String {
    format!("Parameters.parameter.where(name='{name}')")
}

/// The parameters of a `Parameters` resource, each name checked against `known` (an unknown
/// one is a 400 naming it) and kept in order.
fn parameters<'a>(body: &'a Value, known: &[&str]) -> Result<Vec<(&'a str, &'a Value)>, FhirError> {
    let Some(list) = body.get("parameter") else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| FhirError::invalid("Parameters.parameter", "must be an array"))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        let name = p.get("name").and_then(Value::as_str).ok_or_else(|| {
            FhirError::invalid(
                &format!("Parameters.parameter[{i}].name"),
                "every parameter needs a name",
            )
        })?;
        if !known.contains(&name) {
            return Err(FhirError::invalid(
                &format!("Parameters.parameter[{i}].name"),
                format!(
                    "unknown parameter '{}' (this operation takes: {})",
                    allot_engine::input::clip(name),
                    known.join(", ")
                ),
            ));
        }
        out.push((name, p));
    }
    Ok(out)
}

/// The one `value[x]` of a parameter, of one of the `kinds` (`valueDateTime`, ...).
fn value<'a>(
    p: &'a Value,
    name: &str,
    kinds: &[&'a str],
) -> Result<(&'a str, &'a Value), FhirError> {
    for kind in kinds {
        if let Some(v) = p.get(*kind) {
            return Ok((kind, v));
        }
    }
    if let Some(resource) = p.get("resource") {
        return Ok(("resource", resource));
    }
    Err(FhirError::invalid(
        &param_path(name),
        format!("give the value as {}", kinds.join(" or ")),
    ))
}

fn string<'a>(v: &'a Value, path: &str) -> Result<&'a str, FhirError> {
    v.as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| FhirError::invalid(path, "must be a non-empty string"))
}

/// The id in a reference `Kind/id` (or `[base]/Kind/id`, or a bare id).
pub(super) fn reference_id<'a>(v: &'a Value, kind: &str, path: &str) -> Result<&'a str, FhirError> {
    let text = match v.get("reference") {
        Some(r) => string(r, &format!("{path}.reference"))?,
        None => string(v, path)?,
    };
    id_of(text, kind).ok_or_else(|| {
        FhirError::invalid(
            path,
            format!("expected a reference to a {kind} ({kind}/ID)"),
        )
    })
}

/// The id of `Kind/id`, `[base]/Kind/id` or `id`.
pub(super) fn id_of<'a>(text: &'a str, kind: &str) -> Option<&'a str> {
    let id = match text.rsplit_once('/') {
        Some((before, id)) => {
            let k = before.rsplit('/').next()?;
            (k == kind).then_some(id)?
        }
        None => text,
    };
    (!id.is_empty()).then_some(id)
}

/// A local time of the city (`YYYY-MM-DDTHH:MM`) as a protobuf time, in the loaded schedule's
/// zone (none without a schedule, or for a time that is not one).
pub(super) fn local_time(fhir: &Fhir, text: &str) -> Option<prost_types::Timestamp> {
    super::super::appointments::local_timestamp(&fhir.state, text)
}

/// A FHIR `dateTime` or `instant` as a protobuf time: with a time it needs a zone; a date alone
/// is that day's midnight in the city's zone.
pub(super) fn date_time(
    fhir: &Fhir,
    text: &str,
    path: &str,
) -> Result<prost_types::Timestamp, FhirError> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(prost_types::Timestamp {
            seconds: t.as_second(),
            nanos: t.subsec_nanosecond(),
        });
    }
    if text.len() == 10
        && let Some(t) = local_time(fhir, &format!("{text}T00:00"))
    {
        return Ok(t);
    }
    Err(FhirError::invalid(
        path,
        format!(
            "'{}' is not a date (YYYY-MM-DD) or a date-time with a zone (2025-03-03T09:30:00+03:00)",
            allot_engine::input::clip(text)
        ),
    ))
}

/// The specialty code of a `valueCoding`, `valueCodeableConcept` or `valueString`.
fn specialty_code<'a>(kind: &str, v: &'a Value, path: &str) -> Result<&'a str, FhirError> {
    let code = match kind {
        "valueString" | "valueCode" => v.as_str(),
        "valueCoding" => v.get("code").and_then(Value::as_str),
        _ => v
            .get("coding")
            .and_then(|c| c.get(0))
            .and_then(|c| c.get("code"))
            .and_then(Value::as_str),
    };
    code.filter(|c| !c.is_empty())
        .ok_or_else(|| FhirError::invalid(path, "give the specialty's code"))
}

/// The patient of a `patient-resource`: id, home (address geolocation) and attached clinic
/// (`managingOrganization`, `Organization/{clinic}`).
fn patient_resource(v: &Value) -> Result<pb::Patient, FhirError> {
    let path = param_path("patient-resource");
    if v.get("resourceType").and_then(Value::as_str) != Some("Patient") {
        return Err(FhirError::invalid(
            &format!("{path}.resource"),
            "expected a Patient",
        ));
    }
    let id = match v.get("id") {
        Some(id) => string(id, &format!("{path}.resource.id"))?.to_owned(),
        None => v
            .get("identifier")
            .and_then(|i| i.get(0))
            .and_then(|i| i.get("value"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                FhirError::invalid(
                    &format!("{path}.resource.id"),
                    "give the patient's id or an identifier",
                )
            })?
            .to_owned(),
    };
    let mut home = None;
    for (i, address) in v
        .get("address")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let geo = address
            .get("extension")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|e| {
                e.get("url").and_then(Value::as_str)
                    == Some("http://hl7.org/fhir/StructureDefinition/geolocation")
            });
        if let Some(geo) = geo {
            let part = |name: &str| {
                geo.get("extension")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|e| e.get("url").and_then(Value::as_str) == Some(name))
                    .and_then(|e| e.get("valueDecimal"))
                    .and_then(Value::as_f64)
            };
            match (part("latitude"), part("longitude")) {
                (Some(lat), Some(lon)) => home = Some(pb::Location { lat, lon }),
                _ => {
                    return Err(FhirError::invalid(
                        &format!("{path}.resource.address[{i}].extension"),
                        "a geolocation needs latitude and longitude (valueDecimal)",
                    ));
                }
            }
            break;
        }
    }
    let attached = match v.get("managingOrganization") {
        Some(r) => reference_id(
            r,
            "Organization",
            &format!("{path}.resource.managingOrganization"),
        )?
        .to_owned(),
        None => String::new(),
    };
    Ok(pb::Patient {
        id,
        home,
        attached_clinic: attached,
    })
}

/// ITI-115 `POST /fhir/Appointment/$find`.
pub(super) async fn find(State(fhir): State<Arc<Fhir>>, headers: HeaderMap, body: Body) -> Answer {
    let body = resource_body(&fhir, &headers, body, "Parameters").await?;
    let params = parameters(
        &body,
        &[
            "start",
            "end",
            "specialty",
            "patient-reference",
            "patient-resource",
            "location-reference",
            "practitioner",
            "_count",
        ],
    )?;
    let mut request = pb::FindSlotsRequest::default();
    let mut patient_ref = None;
    let mut patient = None;
    for (name, p) in params {
        let path = param_path(name);
        match name {
            "start" | "end" => {
                let (_, v) = value(p, name, &["valueDateTime", "valueInstant", "valueDate"])?;
                let t = date_time(&fhir, string(v, &path)?, &path)?;
                match name {
                    "start" => request.window_start = Some(t),
                    _ => request.window_end = Some(t),
                }
            }
            "specialty" => {
                let (kind, v) = value(
                    p,
                    name,
                    &[
                        "valueCoding",
                        "valueCodeableConcept",
                        "valueString",
                        "valueCode",
                    ],
                )?;
                request.specialty = specialty_code(kind, v, &path)?.to_owned();
            }
            "patient-reference" => {
                let (_, v) = value(p, name, &["valueReference"])?;
                patient_ref = Some(reference_id(v, "Patient", &path)?.to_owned());
            }
            "patient-resource" => {
                let (_, v) = value(p, name, &[])?;
                patient = Some(patient_resource(v)?);
            }
            "location-reference" => {
                let (_, v) = value(p, name, &["valueReference"])?;
                request
                    .only_clinics
                    .push(reference_id(v, "Location", &path)?.to_owned());
            }
            "practitioner" => {
                let (_, v) = value(p, name, &["valueReference"])?;
                request
                    .only_doctors
                    .push(reference_id(v, "Practitioner", &path)?.to_owned());
            }
            _ => {
                let (_, v) = value(p, name, &["valueInteger", "valuePositiveInt"])?;
                let n = v
                    .as_u64()
                    .filter(|&n| n <= u64::from(u32::MAX))
                    .ok_or_else(|| FhirError::invalid(&path, "must be a positive integer"))?;
                request.count = n as u32;
            }
        }
    }
    let patient = match (patient, patient_ref) {
        (Some(p), _) => p,
        (None, Some(id)) => pb::Patient {
            id,
            ..Default::default()
        },
        (None, None) => {
            return Err(FhirError::invalid(
                "Parameters.parameter",
                "give patient-resource (with the home's geolocation or the attached clinic) or patient-reference",
            ));
        }
    };
    if patient.home.is_none() && patient.attached_clinic.is_empty() {
        return Err(FhirError::invalid(
            &param_path("patient-resource"),
            "allot ranks slots by the patient's travel: give patient-resource with an address \
             geolocation (http://hl7.org/fhir/StructureDefinition/geolocation) or a \
             managingOrganization (the attached clinic, Organization/CLINIC)",
        ));
    }
    let patient_id = patient.id.clone();
    request.patient = Some(patient);
    let call = fhir.request(&headers, request);
    let found = fhir
        .appointments()
        .find_slots(call)
        .await
        .map_err(|s| FhirError::of_status(&s, &find_element))?
        .into_inner();
    let base = fhir.base(&headers);
    let entries = found
        .proposals
        .iter()
        .map(|p| {
            (
                format!("urn:uuid:{}", uuid()),
                resources::proposal(p, Some(&patient_id)),
            )
        })
        .collect();
    let bundle = resources::searchset(entries, &format!("{base}/Appointment/$find"), None, true);
    Ok(fhir_json(StatusCode::OK, &bundle))
}

fn find_element(field: &str) -> Option<String> {
    let name = match field.strip_prefix("request.")?.split(['.', '[']).next()? {
        "patient" => match field {
            f if f.starts_with("request.patient.id") => "patient-reference",
            _ => "patient-resource",
        },
        "specialty" => "specialty",
        "window_start" => "start",
        "window_end" => "end",
        "count" => "_count",
        "only_clinics" | "preferred_clinics" => "location-reference",
        "only_doctors" => "practitioner",
        _ => return None,
    };
    Some(param_path(name))
}

/// A random UUID (v4), for the `fullUrl` of a proposal, which has no id of its own.
fn uuid() -> String {
    let b: [u8; 16] = rand::random();
    let x = u128::from_be_bytes(b) & !(0xf000u128 << 64) & !(0xc000u128 << 48);
    let x = x | (0x4000u128 << 64) | (0x8000u128 << 48);
    let h = format!("{x:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The Appointment of an `appointment-resource` parameter, or the id of an
/// `appointment-reference`.
enum Target<'a> {
    Resource(&'a Value),
    Reference(String),
}

fn target<'a>(body: &'a Value) -> Result<Target<'a>, FhirError> {
    let params = parameters(body, &["appointment-resource", "appointment-reference"])?;
    match params.as_slice() {
        [("appointment-resource", p)] => {
            let (_, v) = value(p, "appointment-resource", &[])?;
            if v.get("resourceType").and_then(Value::as_str) != Some("Appointment") {
                return Err(FhirError::invalid(
                    &format!("{}.resource", param_path("appointment-resource")),
                    "expected an Appointment",
                ));
            }
            Ok(Target::Resource(v))
        }
        [("appointment-reference", p)] => {
            let (_, v) = value(p, "appointment-reference", &["valueReference"])?;
            let path = param_path("appointment-reference");
            Ok(Target::Reference(
                reference_id(v, "Appointment", &path)?.to_owned(),
            ))
        }
        _ => Err(FhirError::invalid(
            "Parameters.parameter",
            "give exactly one appointment-resource or appointment-reference",
        )),
    }
}

const RESOURCE: &str = "Parameters.parameter.where(name='appointment-resource').resource";

/// The slot (API id) an Appointment names in `slot[0]`.
fn slot_of(a: &Value) -> Result<String, FhirError> {
    let path = format!("{RESOURCE}.slot[0]");
    let first = a
        .get("slot")
        .and_then(|s| s.get(0))
        .ok_or_else(|| FhirError::invalid(&path, "name the slot (Slot/ID from $find)"))?;
    let id = reference_id(first, "Slot", &path)?;
    slot_api_id(id).ok_or_else(|| {
        FhirError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!(
                "no slot 'Slot/{}' on this server",
                allot_engine::input::clip(id)
            ),
            Some(&path),
        )
    })
}

/// The patient an Appointment names among its participants.
fn patient_of(a: &Value) -> Result<String, FhirError> {
    let path = format!("{RESOURCE}.participant");
    let list = a
        .get("participant")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for p in list {
        // `Patient/ID` only: `id_of` would also take a bare id, which names no resource type.
        if let Some(r) = p
            .get("actor")
            .and_then(|a| a.get("reference"))
            .and_then(Value::as_str)
            && r.contains("Patient/")
            && let Some(id) = id_of(r, "Patient")
        {
            return Ok(id.to_owned());
        }
    }
    Err(FhirError::invalid(
        &path,
        "name the patient (a participant whose actor is Patient/ID)",
    ))
}

fn status_of(a: &Value) -> Result<&str, FhirError> {
    let path = format!("{RESOURCE}.status");
    a.get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| FhirError::invalid(&path, "an Appointment needs a status"))
}

/// The `X-Request-Id` header: the idempotency key of a call that changes state (a retry with
/// the same key and request gets the first answer).
fn request_id(headers: &HeaderMap) -> Result<String, FhirError> {
    match headers.get("x-request-id") {
        None => Ok(String::new()),
        Some(v) => v.to_str().map(str::to_owned).map_err(|_| {
            FhirError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                "X-Request-Id must be ASCII",
                None,
            )
        }),
    }
}

/// What a call's error is to a FHIR client: a 409 with alternatives for a slot taken, else the
/// status mapped, naming the element `element` gives.
fn failed(
    status: &Status,
    patient: Option<&str>,
    element: &dyn Fn(&str) -> Option<String>,
) -> FhirError {
    FhirError::slot_taken(status, patient).unwrap_or_else(|| FhirError::of_status(status, element))
}

/// One Appointment, as IHE answers `$hold` and `$book`: a searchset Bundle holding it.
fn answer(
    fhir: &Fhir,
    headers: &HeaderMap,
    appointment: resources::Appointment,
    status: StatusCode,
) -> Answer {
    let base = fhir.base(headers);
    let id = appointment.id.clone().unwrap_or_default();
    let bundle = resources::searchset(
        vec![(format!("{base}/Appointment/{id}"), appointment)],
        &format!("{base}/Appointment/{id}"),
        None,
        true,
    );
    Ok(fhir_json(status, &bundle))
}

fn hold_element(field: &str) -> Option<String> {
    Some(match field {
        f if f.starts_with("request.slot_id") => format!("{RESOURCE}.slot[0]"),
        f if f.starts_with("request.patient") => format!("{RESOURCE}.participant"),
        f if f.starts_with("request.request_id") => "X-Request-Id".to_owned(),
        _ => return None,
    })
}

/// ITI-116 `POST /fhir/Appointment/$hold`: the proposed Appointment of a `$find` (as
/// `appointment-resource`) held for its patient: a `pending` Appointment whose id is the hold's,
/// with the hold's expiry.
pub(super) async fn hold(State(fhir): State<Arc<Fhir>>, headers: HeaderMap, body: Body) -> Answer {
    let body = resource_body(&fhir, &headers, body, "Parameters").await?;
    let a = match target(&body)? {
        Target::Resource(a) => a,
        Target::Reference(_) => {
            return Err(FhirError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not-supported",
                "a proposal of $find is not stored: send it back as appointment-resource",
                Some(&param_path("appointment-reference")),
            ));
        }
    };
    let slot_id = slot_of(a)?;
    let patient = patient_of(a)?;
    let request = pb::HoldSlotRequest {
        slot_id,
        patient: Some(pb::Patient {
            id: patient.clone(),
            ..Default::default()
        }),
        ttl: None,
        request_id: request_id(&headers)?,
    };
    let held = fhir
        .appointments()
        .hold_slot(fhir.request(&headers, request))
        .await
        .map_err(|s| failed(&s, Some(&patient), &hold_element))?
        .into_inner();
    let hold = held.hold.unwrap_or_default();
    answer(&fhir, &headers, resources::hold(&hold), StatusCode::OK)
}

fn book_element(field: &str) -> Option<String> {
    Some(match field {
        f if f.starts_with("request.hold_id") || f.starts_with("request.appointment_id") => {
            format!("{RESOURCE}.id")
        }
        _ => return hold_element(field),
    })
}

/// ITI-117 `POST /fhir/Appointment/$book`:
/// - `appointment-resource` `pending` with a hold's id (from `$hold`): books the hold;
/// - `appointment-resource` `proposed` or `pending` without an id: books its slot directly;
/// - `appointment-resource` `cancelled` with an appointment's id: cancels it;
/// - `appointment-resource` `booked` with a booked appointment's id and another slot:
///   reschedules it there (the new slot is booked before the old one is let go);
/// - `appointment-reference` to a hold: books it; to an appointment re-offered after an
///   absence (`proposed`): accepts the offer.
pub(super) async fn book(State(fhir): State<Arc<Fhir>>, headers: HeaderMap, body: Body) -> Answer {
    let body = resource_body(&fhir, &headers, body, "Parameters").await?;
    let request_id = request_id(&headers)?;
    let mut api = fhir.appointments();
    let booked = |r: Result<tonic::Response<pb::BookResponse>, Status>, patient: Option<&str>| {
        r.map(|r| r.into_inner().appointment.unwrap_or_default())
            .map_err(|s| failed(&s, patient, &book_element))
    };
    let appointment = match target(&body)? {
        Target::Reference(id) if id.starts_with('h') => {
            let request = pb::BookRequest {
                target: Some(pb::book_request::Target::HoldId(id)),
                patient: None,
                request_id,
            };
            let reference = |_: &str| Some(param_path("appointment-reference"));
            api.book(fhir.request(&headers, request))
                .await
                .map_err(|s| failed(&s, None, &reference))?
                .into_inner()
                .appointment
                .unwrap_or_default()
        }
        Target::Reference(id) => {
            let request = pb::AcceptOfferRequest {
                appointment_id: id,
                request_id,
            };
            api.accept_offer(fhir.request(&headers, request))
                .await
                .map_err(|s| failed(&s, None, &|_| Some(param_path("appointment-reference"))))?
                .into_inner()
                .appointment
                .unwrap_or_default()
        }
        Target::Resource(a) => {
            let id = a.get("id").and_then(Value::as_str).unwrap_or("");
            match (status_of(a)?, id) {
                ("pending", id) if id.starts_with('h') => {
                    let patient = patient_of(a).ok();
                    let request = pb::BookRequest {
                        target: Some(pb::book_request::Target::HoldId(id.to_owned())),
                        patient: patient.clone().map(|id| pb::Patient {
                            id,
                            ..Default::default()
                        }),
                        request_id,
                    };
                    booked(
                        api.book(fhir.request(&headers, request)).await,
                        patient.as_deref(),
                    )?
                }
                ("proposed" | "pending", "") => {
                    let patient = patient_of(a)?;
                    let request = pb::BookRequest {
                        target: Some(pb::book_request::Target::SlotId(slot_of(a)?)),
                        patient: Some(pb::Patient {
                            id: patient.clone(),
                            ..Default::default()
                        }),
                        request_id,
                    };
                    booked(
                        api.book(fhir.request(&headers, request)).await,
                        Some(&patient),
                    )?
                }
                ("cancelled", id) if !id.is_empty() => {
                    let by = match a
                        .get("cancelationReason")
                        .and_then(|r| r.get("coding"))
                        .and_then(|c| c.get(0))
                        .and_then(|c| c.get("code"))
                        .and_then(Value::as_str)
                    {
                        Some("prov" | "maint" | "oth-err") => pb::CancelledBy::Clinic,
                        _ => pb::CancelledBy::Patient,
                    };
                    let request = pb::CancelRequest {
                        appointment_id: id.to_owned(),
                        cancelled_by: by as i32,
                        request_id,
                    };
                    api.cancel(fhir.request(&headers, request))
                        .await
                        .map_err(|s| failed(&s, None, &book_element))?
                        .into_inner()
                        .appointment
                        .unwrap_or_default()
                }
                ("booked", id) if !id.is_empty() => {
                    let request = pb::RescheduleRequest {
                        appointment_id: id.to_owned(),
                        target: Some(pb::reschedule_request::Target::SlotId(slot_of(a)?)),
                        request_id,
                    };
                    let patient = patient_of(a).ok();
                    api.reschedule(fhir.request(&headers, request))
                        .await
                        .map_err(|s| failed(&s, patient.as_deref(), &book_element))?
                        .into_inner()
                        .appointment
                        .unwrap_or_default()
                }
                (status, _) => {
                    return Err(FhirError::invalid(
                        &format!("{RESOURCE}.status"),
                        format!(
                            "$book takes a pending hold (with its id), a proposed appointment (no id), \
                             a cancelled or a booked one (with its id); not '{}'{}",
                            allot_engine::input::clip(status),
                            if id.is_empty() { " without an id" } else { "" }
                        ),
                    ));
                }
            }
        }
    };
    answer(
        &fhir,
        &headers,
        resources::appointment(&appointment),
        StatusCode::OK,
    )
}
