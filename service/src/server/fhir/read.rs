//! Reads and searches: `Appointment` (by id, and ITI-118 by patient, date and status), `Slot`,
//! `Schedule`, `Practitioner`, `Location`, `_count` pages linked by `next`.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use tonic::Status;

use super::ops::{date_time, id_of, local_time};
use super::resources::{self, slot_api_id};
use super::{Answer, Fhir, FhirError, fhir_json};
use crate::proto::v1 as pb;

/// A search's parameters, each name checked against the ones the resource takes.
struct Query {
    pairs: Vec<(String, String)>,
    raw: String,
}

impl Query {
    fn parse(raw: Option<String>, kind: &str, known: &[&str]) -> Result<Query, FhirError> {
        let raw = raw.unwrap_or_default();
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes())
            .into_owned()
            .collect();
        for (name, _) in &pairs {
            if !known.contains(&name.as_str()) && name != "_page" && name != "_count" {
                return Err(FhirError::invalid(
                    &format!("{kind}?{}", allot_engine::input::clip(name)),
                    format!(
                        "unknown search parameter '{}' (a {kind} search takes: {}, _count)",
                        allot_engine::input::clip(name),
                        known.join(", ")
                    ),
                ));
            }
        }
        Ok(Query { pairs, raw })
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn one<'a>(&'a self, name: &'a str, kind: &str) -> Result<Option<&'a str>, FhirError> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(FhirError::invalid(
                &format!("{kind}?{name}"),
                "give it once",
            ));
        }
        Ok(first)
    }

    /// `_count` (0: the default) and `_page` (the token of the page to go on from).
    fn page(&self, kind: &str) -> Result<(u32, String), FhirError> {
        let count = match self.one("_count", kind)? {
            Some(c) => c
                .parse::<u32>()
                .ok()
                .filter(|&c| (1..=1000).contains(&c))
                .ok_or_else(|| FhirError::invalid(&format!("{kind}?_count"), "give 1 to 1000"))?,
            None => 0,
        };
        Ok((
            count,
            self.one("_page", kind)?.unwrap_or_default().to_owned(),
        ))
    }

    /// The `self` link, and the `next` link for a page token.
    fn links(&self, base: &str, kind: &str, next: &str) -> (String, Option<String>) {
        let this = format!("{base}/{kind}?{}", self.raw);
        let next = (!next.is_empty()).then(|| {
            let mut url = form_urlencoded::Serializer::new(String::new());
            for (n, v) in self.pairs.iter().filter(|(n, _)| n != "_page") {
                url.append_pair(n, v);
            }
            url.append_pair("_page", next);
            format!("{base}/{kind}?{}", url.finish())
        });
        (this, next)
    }
}

/// The searchset of `resources` of `kind` (their ids in `id`).
fn bundle(
    fhir: &Fhir,
    headers: &HeaderMap,
    q: &Query,
    kind: &str,
    resources: Vec<Value>,
    next: &str,
) -> Answer {
    let base = fhir.base(headers);
    let (this, next) = q.links(&base, kind, next);
    let complete = next.is_none() && q.all("_page").next().is_none();
    let entries = resources
        .into_iter()
        .map(|r| {
            let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
            (
                format!("{base}/{}/{id}", r["resourceType"].as_str().unwrap_or(kind)),
                r,
            )
        })
        .collect();
    Ok(fhir_json(
        StatusCode::OK,
        &resources::searchset(entries, &this, next, complete),
    ))
}

/// A search's call failed: the field path of the API names the search parameter.
fn search_failed(
    kind: &'static str,
    params: &'static [(&'static str, &'static str)],
) -> impl Fn(Status) -> FhirError {
    move |s| {
        FhirError::of_status(&s, &|field| {
            let name = field.strip_prefix("request.")?.split(['.', '[']).next()?;
            let paging = [("page_token", "_page"), ("page_size", "_count")];
            params
                .iter()
                .chain(&paging)
                .find(|(api, _)| *api == name)
                .map(|(_, fhir)| format!("{kind}?{fhir}"))
        })
    }
}

/// A read's call failed: NOT_FOUND is the resource's 404.
fn read_failed(kind: &str, id: &str) -> impl Fn(Status) -> FhirError {
    let path = format!("{kind}/{id}");
    move |s| match s.code() {
        tonic::Code::NotFound | tonic::Code::InvalidArgument => FhirError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no {} on this server", allot_engine::input::clip(&path)),
            None,
        ),
        _ => FhirError::of_status(&s, &|_| None),
    }
}

/// `date=[prefix]value` of ITI-118 or `start=` of a Slot search, narrowing `[from, until)`.
/// A value covers a range: a date its whole day in the city's zone, a date-time its second.
fn narrow(
    fhir: &Fhir,
    value: &str,
    path: &str,
    from: &mut Option<prost_types::Timestamp>,
    until: &mut Option<prost_types::Timestamp>,
) -> Result<(), FhirError> {
    let (prefix, text) = match value.get(..2) {
        Some(p @ ("eq" | "ge" | "gt" | "le" | "lt")) => (p, &value[2..]),
        _ => ("eq", value),
    };
    let low = date_time(fhir, text, path)?;
    let next_day = (text.len() == 10)
        .then(|| text.parse::<jiff::civil::Date>().ok()?.tomorrow().ok())
        .flatten()
        .and_then(|d| local_time(fhir, &format!("{d}T00:00")));
    let high = next_day.unwrap_or(prost_types::Timestamp {
        seconds: low.seconds + 1,
        nanos: low.nanos,
    });
    let key = |t: &prost_types::Timestamp| (t.seconds, t.nanos);
    let mut at_least = |t: prost_types::Timestamp| {
        if from.as_ref().is_none_or(|f| key(&t) > key(f)) {
            *from = Some(t);
        }
    };
    match prefix {
        "eq" | "ge" => at_least(low),
        "gt" => at_least(high),
        _ => {}
    }
    let mut before = |t: prost_types::Timestamp| {
        if until.as_ref().is_none_or(|u| key(u) > key(&t)) {
            *until = Some(t);
        }
    };
    match prefix {
        "eq" | "le" => before(high),
        "lt" => before(low),
        _ => {}
    }
    Ok(())
}

const APPOINTMENT_PARAMS: &[(&str, &str)] = &[
    ("patient_id", "patient"),
    ("from", "date"),
    ("until", "date"),
    ("statuses", "status"),
];

/// ITI-118 `GET /fhir/Appointment?patient=Patient/ID&date=ge2025-03-03&status=booked`.
pub(super) async fn appointments(
    State(fhir): State<Arc<Fhir>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let q = Query::parse(raw, "Appointment", &["patient", "date", "status"])?;
    let patient = q.one("patient", "Appointment")?.ok_or_else(|| {
        FhirError::invalid(
            "Appointment?patient",
            "ITI-118 needs the patient (patient=Patient/ID)",
        )
    })?;
    let patient = id_of(patient, "Patient")
        .ok_or_else(|| FhirError::invalid("Appointment?patient", "expected Patient/ID"))?;
    let mut request = pb::ListAppointmentsRequest {
        patient_id: patient.to_owned(),
        ..Default::default()
    };
    for d in q.all("date") {
        narrow(
            &fhir,
            d,
            "Appointment?date",
            &mut request.from,
            &mut request.until,
        )?;
    }
    for list in q.all("status") {
        for code in list.split(',') {
            let status = resources::appointment_status_code(code).ok_or_else(|| {
                FhirError::invalid(
                    "Appointment?status",
                    format!(
                        "no appointment status '{}'",
                        allot_engine::input::clip(code)
                    ),
                )
            })?;
            request.statuses.push(status as i32);
        }
    }
    (request.page_size, request.page_token) = q.page("Appointment")?;
    let page = fhir
        .appointments()
        .list_appointments(fhir.request(&headers, request))
        .await
        .map_err(search_failed("Appointment", APPOINTMENT_PARAMS))?
        .into_inner();
    let list = page
        .appointments
        .iter()
        .map(|a| serde_json::to_value(resources::appointment(a)).unwrap_or_default())
        .collect();
    bundle(
        &fhir,
        &headers,
        &q,
        "Appointment",
        list,
        &page.next_page_token,
    )
}

/// `GET /fhir/Appointment/{id}`: an appointment, or a hold (`pending`).
pub(super) async fn appointment(
    State(fhir): State<Arc<Fhir>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let mut api = fhir.appointments();
    let resource = if id.starts_with('h') {
        let request = pb::GetHoldRequest {
            hold_id: id.clone(),
        };
        let hold = api
            .get_hold(fhir.request(&headers, request))
            .await
            .map_err(read_failed("Appointment", &id))?;
        resources::hold(&hold.into_inner().hold.unwrap_or_default())
    } else {
        let request = pb::GetAppointmentRequest {
            appointment_id: id.clone(),
        };
        let a = api
            .get_appointment(fhir.request(&headers, request))
            .await
            .map_err(read_failed("Appointment", &id))?;
        resources::appointment(&a.into_inner().appointment.unwrap_or_default())
    };
    Ok(fhir_json(StatusCode::OK, &resource))
}

const SLOT_PARAMS: &[(&str, &str)] = &[
    ("doctor_id", "schedule"),
    ("specialty", "specialty"),
    ("statuses", "status"),
    ("from", "start"),
    ("until", "start"),
];

/// `GET /fhir/Slot?schedule=Schedule/ID&start=ge...&status=free&specialty=CODE`.
pub(super) async fn slots(
    State(fhir): State<Arc<Fhir>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let q = Query::parse(raw, "Slot", &["schedule", "start", "status", "specialty"])?;
    let mut request = pb::ListSlotsRequest::default();
    if let Some(s) = q.one("schedule", "Slot")? {
        request.doctor_id = id_of(s, "Schedule")
            .ok_or_else(|| FhirError::invalid("Slot?schedule", "expected Schedule/ID"))?
            .to_owned();
    }
    if let Some(s) = q.one("specialty", "Slot")? {
        request.specialty = s.rsplit('|').next().unwrap_or(s).to_owned();
    }
    for d in q.all("start") {
        narrow(
            &fhir,
            d,
            "Slot?start",
            &mut request.from,
            &mut request.until,
        )?;
    }
    for list in q.all("status") {
        for code in list.split(',') {
            let status = resources::slot_status_code(code).ok_or_else(|| {
                FhirError::invalid(
                    "Slot?status",
                    format!("no slot status '{}'", allot_engine::input::clip(code)),
                )
            })?;
            request.statuses.push(status as i32);
        }
    }
    (request.page_size, request.page_token) = q.page("Slot")?;
    let page = fhir
        .appointments()
        .list_slots(fhir.request(&headers, request))
        .await
        .map_err(search_failed("Slot", SLOT_PARAMS))?
        .into_inner();
    let list = page.slots.iter().map(resources::slot).collect();
    bundle(&fhir, &headers, &q, "Slot", list, &page.next_page_token)
}

/// `GET /fhir/Slot/{id}`.
pub(super) async fn slot(
    State(fhir): State<Arc<Fhir>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let not_found = || read_failed("Slot", &id)(Status::not_found(""));
    let api_id = slot_api_id(&id).ok_or_else(not_found)?;
    let (doctor, _) = api_id.rsplit_once('@').ok_or_else(not_found)?;
    // The slot's local start: the page of one doctor's slots from there.
    let from = local_time(&fhir, &api_id[doctor.len() + 1..]);
    let request = pb::ListSlotsRequest {
        doctor_id: doctor.to_owned(),
        from,
        page_size: 1,
        ..Default::default()
    };
    let page = fhir
        .appointments()
        .list_slots(fhir.request(&headers, request))
        .await
        .map_err(read_failed("Slot", &id))?
        .into_inner();
    let found = page
        .slots
        .into_iter()
        .find(|s| s.id == api_id)
        .ok_or_else(not_found)?;
    Ok(fhir_json(StatusCode::OK, &resources::slot(&found)))
}

async fn doctors(
    fhir: &Fhir,
    headers: &HeaderMap,
    request: pb::ListDoctorsRequest,
    kind: &'static str,
) -> Result<pb::ListDoctorsResponse, FhirError> {
    const PARAMS: &[(&str, &str)] = &[
        ("ids", "_id"),
        ("clinic_id", "actor"),
        ("specialty", "specialty"),
    ];
    Ok(fhir
        .appointments()
        .list_doctors(fhir.request(headers, request))
        .await
        .map_err(search_failed(kind, PARAMS))?
        .into_inner())
}

fn ids(q: &Query, kind: &str) -> Vec<String> {
    q.all("_id")
        .flat_map(|v| v.split(','))
        .map(|id| id_of(id, kind).unwrap_or(id).to_owned())
        .collect()
}

/// `GET /fhir/Schedule?actor=Practitioner/ID|Location/ID&specialty=CODE&_id=ID`.
pub(super) async fn schedules(
    State(fhir): State<Arc<Fhir>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let q = Query::parse(raw, "Schedule", &["_id", "actor", "specialty"])?;
    let mut request = pb::ListDoctorsRequest {
        ids: ids(&q, "Schedule"),
        ..Default::default()
    };
    for actor in q.all("actor") {
        match (
            id_of(actor, "Practitioner").filter(|_| actor.contains("Practitioner/")),
            id_of(actor, "Location").filter(|_| actor.contains("Location/")),
        ) {
            (Some(d), _) => request.ids.push(d.to_owned()),
            (_, Some(c)) => request.clinic_id = c.to_owned(),
            _ => {
                return Err(FhirError::invalid(
                    "Schedule?actor",
                    "expected Practitioner/ID or Location/ID",
                ));
            }
        }
    }
    if let Some(s) = q.one("specialty", "Schedule")? {
        request.specialty = s.rsplit('|').next().unwrap_or(s).to_owned();
    }
    (request.page_size, request.page_token) = q.page("Schedule")?;
    let page = doctors(&fhir, &headers, request, "Schedule").await?;
    let list = page.doctors.iter().map(resources::schedule).collect();
    bundle(&fhir, &headers, &q, "Schedule", list, &page.next_page_token)
}

async fn one_doctor(
    fhir: &Fhir,
    headers: &HeaderMap,
    kind: &'static str,
    id: &str,
) -> Result<pb::Doctor, FhirError> {
    let request = pb::ListDoctorsRequest {
        ids: vec![id.to_owned()],
        ..Default::default()
    };
    let page = fhir
        .appointments()
        .list_doctors(fhir.request(headers, request))
        .await
        .map_err(read_failed(kind, id))?
        .into_inner();
    page.doctors
        .into_iter()
        .next()
        .ok_or_else(|| read_failed(kind, id)(Status::not_found("")))
}

/// `GET /fhir/Schedule/{id}`.
pub(super) async fn schedule(
    State(fhir): State<Arc<Fhir>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let d = one_doctor(&fhir, &headers, "Schedule", &id).await?;
    Ok(fhir_json(StatusCode::OK, &resources::schedule(&d)))
}

/// `GET /fhir/Practitioner?_id=ID`.
pub(super) async fn practitioners(
    State(fhir): State<Arc<Fhir>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let q = Query::parse(raw, "Practitioner", &["_id"])?;
    let mut request = pb::ListDoctorsRequest {
        ids: ids(&q, "Practitioner"),
        ..Default::default()
    };
    (request.page_size, request.page_token) = q.page("Practitioner")?;
    let page = doctors(&fhir, &headers, request, "Practitioner").await?;
    let list = page.doctors.iter().map(resources::practitioner).collect();
    bundle(
        &fhir,
        &headers,
        &q,
        "Practitioner",
        list,
        &page.next_page_token,
    )
}

/// `GET /fhir/Practitioner/{id}`.
pub(super) async fn practitioner(
    State(fhir): State<Arc<Fhir>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let d = one_doctor(&fhir, &headers, "Practitioner", &id).await?;
    Ok(fhir_json(StatusCode::OK, &resources::practitioner(&d)))
}

/// `GET /fhir/Location?_id=ID`.
pub(super) async fn locations(
    State(fhir): State<Arc<Fhir>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    const PARAMS: &[(&str, &str)] = &[("ids", "_id")];
    let q = Query::parse(raw, "Location", &["_id"])?;
    let mut request = pb::ListClinicsRequest {
        ids: ids(&q, "Location"),
        ..Default::default()
    };
    (request.page_size, request.page_token) = q.page("Location")?;
    let page = fhir
        .appointments()
        .list_clinics(fhir.request(&headers, request))
        .await
        .map_err(search_failed("Location", PARAMS))?
        .into_inner();
    let list = page.clinics.iter().map(resources::location).collect();
    bundle(&fhir, &headers, &q, "Location", list, &page.next_page_token)
}

/// `GET /fhir/Location/{id}`.
pub(super) async fn location(
    State(fhir): State<Arc<Fhir>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let request = pb::ListClinicsRequest {
        ids: vec![id.clone()],
        ..Default::default()
    };
    let page = fhir
        .appointments()
        .list_clinics(fhir.request(&headers, request))
        .await
        .map_err(read_failed("Location", &id))?
        .into_inner();
    let c = page
        .clinics
        .into_iter()
        .next()
        .ok_or_else(|| read_failed("Location", &id)(Status::not_found("")))?;
    Ok(fhir_json(StatusCode::OK, &resources::location(&c)))
}
