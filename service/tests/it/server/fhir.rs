//! The FHIR face over real HTTP: IHE `$find` -> `$hold` -> `$book` -> ITI-118 -> cancel, the race
//! for one slot, absences and re-offers, searches paged by `next` links, and a table of bad
//! requests. Every answer is validated by an independent FHIR implementation (Python
//! `fhir.resources`, R4B models) at the end of each test, and checked against the gRPC API and
//! the engine's schedule (what the FHIR face must agree with, being a face over them).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use allot_service::proto::v1 as pb;
use allot_service::server::access::Role;
use serde_json::{Value, json};

use super::Harness;

/// A FHIR client that keeps every JSON answer for the validator.
#[derive(Clone)]
struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Client {
    fn new(h: &Harness, token: &str) -> Client {
        Client {
            base: h.fhir_url.clone().expect("the FHIR face is served"),
            token: token.to_owned(),
            http: allot_service::witness::http_client(std::time::Duration::from_secs(60)).unwrap(),
            seen: Arc::default(),
        }
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/fhir+json"),
            "{status} {text}"
        );
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        self.seen.lock().unwrap().push(text);
        (status, headers, body)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}/{path}", self.base)
        };
        let (s, _, b) = self.send(self.http.get(url).bearer_auth(&self.token)).await;
        (s, b)
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let request = self
            .http
            .post(format!("{}/{path}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/fhir+json")
            .body(body.to_string());
        let (s, _, b) = self.send(request).await;
        (s, b)
    }

    /// `$hold` or `$book` (`op`) of one `appointment-resource`.
    async fn with_appointment(&self, op: &str, appointment: &Value) -> (u16, Value) {
        let body = with_resource("appointment-resource", appointment);
        self.post(&format!("Appointment/${op}"), &body).await
    }

    /// Every answer so far, validated by `fhir.resources`.
    fn validate(&self, test: &str) {
        let Some(python) = allot_testkit::fhir_python(test) else {
            return;
        };
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fhir/validate.py");
        let mut child = std::process::Command::new(python)
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let lines = self.seen.lock().unwrap().join("\n");
        let count = self.seen.lock().unwrap().len();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), lines.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "fhir.resources refused an answer:\n{text}"
        );
        assert_eq!(text.trim(), format!("OK {count}"));
    }
}

fn served(c: &mut allot_service::server::ServerConfig) {
    c.fhir_listen = Some("127.0.0.1:0".parse().unwrap());
}

fn patient_resource(id: &str, lat: f64, lon: f64) -> Value {
    json!({
        "resourceType": "Patient",
        "id": id,
        "address": [{ "extension": [{
            "url": "http://hl7.org/fhir/StructureDefinition/geolocation",
            "extension": [
                { "url": "latitude", "valueDecimal": lat },
                { "url": "longitude", "valueDecimal": lon },
            ],
        }] }],
    })
}

fn find_body(patient: &str, count: u32) -> Value {
    json!({
        "resourceType": "Parameters",
        "parameter": [
            { "name": "specialty", "valueCoding": { "system": "https://allot.city/fhir/CodeSystem/specialty", "code": "therapist" } },
            { "name": "patient-resource", "resource": patient_resource(patient, 55.75, 37.62) },
            { "name": "_count", "valueInteger": count },
        ],
    })
}

fn with_resource(name: &str, resource: &Value) -> Value {
    json!({ "resourceType": "Parameters", "parameter": [{ "name": name, "resource": resource }] })
}

fn entries(bundle: &Value) -> Vec<Value> {
    assert_eq!(bundle["resourceType"], "Bundle", "{bundle}");
    assert_eq!(bundle["type"], "searchset");
    bundle["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["resource"].clone())
        .collect()
}

fn score(a: &Value, part: &str) -> f64 {
    let ext = a["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"].as_str().unwrap().ends_with("/score"))
        .unwrap();
    let p = ext["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == part)
        .unwrap();
    p["valueDecimal"]
        .as_f64()
        .or(p["valuePositiveInt"].as_f64())
        .unwrap()
}

fn slot_ref(a: &Value) -> String {
    a["slot"][0]["reference"].as_str().unwrap().to_owned()
}

/// `$find` -> `$hold` -> `$book` -> ITI-118 finds it -> cancel, each step checked against the
/// gRPC API; then the slot is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_hold_book_find_cancel() {
    let h = Harness::city_with(0.02, served).await;
    let fhir = Client::new(&h, h.token(Role::ClinicSystem));
    let mut grpc = h.clinic().await;

    let (status, meta) = fhir.get("metadata").await;
    assert_eq!(status, 200);
    assert_eq!(meta["resourceType"], "CapabilityStatement");
    let ops: BTreeSet<&str> = meta["rest"][0]["resource"][0]["operation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(ops, BTreeSet::from(["find", "hold", "book"]));

    // $find: best first, the same proposals as FindSlots for the same patient.
    let (status, bundle) = fhir.post("Appointment/$find", &find_body("P1", 5)).await;
    assert_eq!(status, 200, "{bundle}");
    let proposals = entries(&bundle);
    assert_eq!(proposals.len(), 5);
    let grpc_found = grpc
        .find_slots(pb::FindSlotsRequest {
            patient: Some(pb::Patient {
                id: "P1".into(),
                home: Some(pb::Location {
                    lat: 55.75,
                    lon: 37.62,
                }),
                ..Default::default()
            }),
            specialty: "therapist".into(),
            count: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for (i, (a, p)) in proposals.iter().zip(&grpc_found.proposals).enumerate() {
        assert_eq!(a["status"], "proposed");
        assert_eq!(score(a, "rank") as usize, i + 1);
        let slot = p.slot.as_ref().unwrap();
        let (doctor, time) = slot.id.rsplit_once('@').unwrap();
        let digits: String = time.chars().filter(char::is_ascii_digit).collect();
        assert_eq!(slot_ref(a), format!("Slot/{doctor}-{digits}"));
        assert!((score(a, "total") - p.score.unwrap().total).abs() < 1e-9);
        let parts = ["travel", "waiting", "load"]
            .iter()
            .map(|k| score(a, k))
            .sum::<f64>()
            - score(a, "preference");
        assert!(
            (parts - score(a, "total")).abs() < 1e-6,
            "the parts add up to the total: {a}"
        );
        let actors: Vec<&str> = a["participant"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["actor"]["reference"].as_str().unwrap())
            .collect();
        assert_eq!(
            actors,
            vec![
                "Patient/P1".to_owned(),
                format!("Practitioner/{}", slot.doctor),
                format!("Location/{}", slot.clinic)
            ]
        );
    }
    let totals: Vec<f64> = proposals.iter().map(|a| score(a, "total")).collect();
    assert!(
        totals.windows(2).all(|w| w[0] <= w[1]),
        "best first: {totals:?}"
    );
    // Only one practitioner's slots, or one location's, when asked.
    for (param, actor) in [("practitioner", 1), ("location-reference", 2)] {
        let mut body = find_body("P1", 5);
        let wanted = proposals[4]["participant"][actor]["actor"].clone();
        body["parameter"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "name": param, "valueReference": wanted }));
        let (status, only) = fhir.post("Appointment/$find", &body).await;
        assert_eq!(status, 200, "{only}");
        let only = entries(&only);
        assert!(!only.is_empty());
        assert!(
            only.iter()
                .all(|a| a["participant"][actor]["actor"] == wanted),
            "{param}"
        );
    }

    // $hold the best: a pending Appointment with the hold's id and expiry; the slot is tentative.
    let (status, held) = fhir.with_appointment("hold", &proposals[0]).await;
    assert_eq!(status, 200, "{held}");
    let pending = entries(&held).remove(0);
    assert_eq!(pending["status"], "pending");
    let hold_id = pending["id"].as_str().unwrap().to_owned();
    let grpc_hold = grpc
        .get_hold(pb::GetHoldRequest {
            hold_id: hold_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .hold
        .unwrap();
    let expires = pending["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"].as_str().unwrap().ends_with("/hold-expires"))
        .unwrap();
    let t: jiff::Timestamp = expires["valueInstant"].as_str().unwrap().parse().unwrap();
    assert_eq!(t.as_second(), grpc_hold.expires.unwrap().seconds);
    let slot_path = slot_ref(&pending);
    let (_, slot) = fhir.get(&slot_path).await;
    assert_eq!(slot["status"], "busy-tentative", "{slot}");
    let (_, read) = fhir.get(&format!("Appointment/{hold_id}")).await;
    assert_eq!(read["status"], "pending");

    // $book the hold: booked, and the decision's log index given.
    let (status, booked) = fhir.with_appointment("book", &pending).await;
    assert_eq!(status, 200, "{booked}");
    let appointment = entries(&booked).remove(0);
    assert_eq!(appointment["status"], "booked");
    let id = appointment["id"].as_str().unwrap().to_owned();
    let grpc_view = grpc
        .get_appointment(pb::GetAppointmentRequest {
            appointment_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .appointment
        .unwrap();
    assert_eq!(grpc_view.status, pb::AppointmentStatus::Booked as i32);
    assert_eq!(slot_ref(&appointment), slot_path);
    let (_, slot) = fhir.get(&slot_path).await;
    assert_eq!(slot["status"], "busy");

    // ITI-118 finds it (by patient, by date and status), and nothing for another patient.
    let start = appointment["start"].as_str().unwrap();
    let day = &start[..10];
    let (status, found) = fhir
        .get(&format!(
            "Appointment?patient=Patient/P1&status=booked&date=ge{day}"
        ))
        .await;
    assert_eq!(status, 200, "{found}");
    let found = entries(&found);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], id.as_str());
    let (_, none) = fhir.get("Appointment?patient=Patient/P2").await;
    assert!(entries(&none).is_empty());
    let (_, before) = fhir
        .get(&format!("Appointment?patient=P1&date=lt{day}"))
        .await;
    assert!(entries(&before).is_empty(), "the window excludes it");

    // Cancel ($book with the appointment cancelled): the slot is free again.
    let mut cancel = appointment.clone();
    cancel["status"] = json!("cancelled");
    let (status, cancelled) = fhir.with_appointment("book", &cancel).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(entries(&cancelled)[0]["status"], "cancelled");
    let (_, slot) = fhir.get(&slot_path).await;
    assert_eq!(slot["status"], "free");
    let (_, found) = fhir
        .get("Appointment?patient=Patient/P1&status=cancelled")
        .await;
    assert_eq!(entries(&found).len(), 1);
    fhir.validate("find_hold_book_find_cancel");
}

/// Many clients book the same slot at once: exactly one wins; every other gets 409 with fresh
/// proposals (free slots, not the one taken) in the OperationOutcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_race_for_one_slot_has_one_winner() {
    let h = Harness::city_with(0.02, served).await;
    let fhir = Client::new(&h, h.token(Role::ClinicSystem));
    let (_, bundle) = fhir.post("Appointment/$find", &find_body("R0", 1)).await;
    let proposal = entries(&bundle).remove(0);
    let taken = slot_ref(&proposal);
    let racers: Vec<_> = (0..24)
        .map(|i| {
            let (fhir, mut a) = (fhir.clone(), proposal.clone());
            a["participant"][0]["actor"]["reference"] = json!(format!("Patient/R{i}"));
            tokio::spawn(async move { fhir.with_appointment("book", &a).await })
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        let (status, body) = racer.await.unwrap();
        match status {
            200 => winners += 1,
            409 => {
                assert_eq!(body["resourceType"], "OperationOutcome");
                assert_eq!(body["issue"][0]["code"], "conflict");
                let alternatives = body["contained"].as_array().expect("fresh proposals");
                assert!(!alternatives.is_empty());
                let refs = body["issue"][0]["extension"].as_array().unwrap();
                assert_eq!(refs.len(), alternatives.len());
                for a in alternatives {
                    assert_eq!(a["status"], "proposed");
                    assert_ne!(slot_ref(a), taken);
                    let (_, slot) = fhir.get(&slot_ref(a)).await;
                    assert_eq!(slot["status"], "free");
                }
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(winners, 1);
    let (_, slot) = fhir.get(&taken).await;
    assert_eq!(slot["status"], "busy");
    fhir.validate("the_race_for_one_slot_has_one_winner");
}

/// A doctor's absence: his slot is `busy-unavailable` in a Slot search, the displaced patient's
/// appointment is `proposed` at the offered slot, and `$book` of its reference accepts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absences_and_re_offers_are_visible() {
    let h = Harness::city_with(0.02, served).await;
    let fhir = Client::new(&h, h.token(Role::ClinicSystem));
    let mut grpc = h.clinic().await;
    let (_, bundle) = fhir.post("Appointment/$find", &find_body("A1", 1)).await;
    let mut proposal = entries(&bundle).remove(0);
    proposal["status"] = json!("proposed");
    let (status, booked) = fhir.with_appointment("book", &proposal).await;
    assert_eq!(status, 200, "{booked}");
    let appointment = entries(&booked).remove(0);
    let id = appointment["id"].as_str().unwrap();
    let doctor = appointment["participant"][1]["actor"]["reference"]
        .as_str()
        .unwrap()
        .trim_start_matches("Practitioner/")
        .to_owned();
    let start: jiff::Timestamp = appointment["start"].as_str().unwrap().parse().unwrap();
    let end: jiff::Timestamp = appointment["end"].as_str().unwrap().parse().unwrap();
    let ts = |t: jiff::Timestamp| prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: 0,
    };
    let absence = grpc
        .mark_absence(pb::MarkAbsenceRequest {
            doctor_id: doctor.clone(),
            from: Some(ts(start)),
            until: Some(ts(end)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(absence.re_offers.len(), 1);
    let offer = absence.re_offers[0]
        .offer
        .as_ref()
        .unwrap()
        .slot
        .as_ref()
        .unwrap()
        .clone();

    let (_, slots) = fhir
        .get(&format!(
            "Slot?schedule=Schedule/{doctor}&status=busy-unavailable"
        ))
        .await;
    let unavailable = entries(&slots);
    assert_eq!(unavailable.len(), 1);
    assert_eq!(
        format!("Slot/{}", unavailable[0]["id"].as_str().unwrap()),
        slot_ref(&appointment)
    );

    let (_, offered) = fhir.get(&format!("Appointment/{id}")).await;
    assert_eq!(offered["status"], "proposed");
    assert_eq!(
        offered["participant"][1]["actor"]["reference"],
        format!("Practitioner/{}", offer.doctor)
    );
    let replaces = offered["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"].as_str().unwrap().ends_with("/replaces-slot"))
        .unwrap();
    assert_eq!(
        replaces["valueReference"]["reference"].as_str().unwrap(),
        slot_ref(&appointment)
    );

    let accept = json!({ "resourceType": "Parameters", "parameter": [{ "name": "appointment-reference", "valueReference": { "reference": format!("Appointment/{id}") } }] });
    let (status, accepted) = fhir.post("Appointment/$book", &accept).await;
    assert_eq!(status, 200, "{accepted}");
    let accepted = entries(&accepted).remove(0);
    assert_eq!(accepted["status"], "booked");
    assert_eq!(slot_ref(&accepted), slot_ref(&offered));
    fhir.validate("absences_and_re_offers_are_visible");
}

/// Searches page with `_count` and `next` links: following them gives every slot of a doctor
/// exactly once, as many as the schedule has; Practitioner, Schedule and Location read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_page_through_next_links() {
    let h = Harness::city_with(0.02, served).await;
    let fhir = Client::new(&h, h.token(Role::ClinicSystem));
    let (_, practitioners) = fhir.get("Practitioner?_count=3").await;
    let doctor = entries(&practitioners)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let expected = {
        let s = h.schedule();
        s.doctor_slots(s.doctor(&doctor).unwrap()).len()
    };
    let mut next = Some(format!("Slot?schedule=Schedule/{doctor}&_count=37"));
    let mut seen = BTreeSet::new();
    let mut pages = 0;
    while let Some(url) = next.take() {
        let (status, page) = fhir.get(&url).await;
        assert_eq!(status, 200, "{page}");
        for slot in entries(&page) {
            assert_eq!(slot["schedule"]["reference"], format!("Schedule/{doctor}"));
            assert!(
                seen.insert(slot["id"].as_str().unwrap().to_owned()),
                "a slot twice"
            );
        }
        next = page["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().unwrap().to_owned());
        pages += 1;
    }
    assert_eq!(seen.len(), expected);
    assert_eq!(pages, expected.div_ceil(37));

    let (status, schedule) = fhir.get(&format!("Schedule/{doctor}")).await;
    assert_eq!(status, 200);
    let location = schedule["actor"][1]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, loc) = fhir.get(&location).await;
    assert_eq!(status, 200, "{loc}");
    assert_eq!(loc["resourceType"], "Location");
    let (_, at_clinic) = fhir
        .get(&format!("Schedule?actor={location}&_count=1000"))
        .await;
    assert!(
        entries(&at_clinic)
            .iter()
            .any(|s| s["id"] == doctor.as_str())
    );
    let (status, _) = fhir.get(&format!("Practitioner/{doctor}")).await;
    assert_eq!(status, 200);
    let (_, locations) = fhir.get("Location?_count=2").await;
    assert_eq!(entries(&locations).len(), 2);
    fhir.validate("searches_page_through_next_links");
}

/// Bad requests: each the right status and an OperationOutcome naming the element; none
/// changes anything or logs anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_an_outcome_naming_the_element() {
    let h = Harness::city_with(0.02, served).await;
    let fhir = Client::new(&h, h.token(Role::ClinicSystem));
    let before = h.log.size();
    let ok = find_body("B1", 2);
    let with_param = |name: &str, value: Value| {
        let mut body = ok.clone();
        let mut p = value;
        p["name"] = json!(name);
        body["parameter"].as_array_mut().unwrap().push(p);
        body
    };
    let big = json!({ "resourceType": "Parameters", "parameter": [{ "name": "x", "valueString": "x".repeat(10 << 20) }] });
    let (_, found) = fhir.post("Appointment/$find", &ok).await;
    let proposal = entries(&found).remove(0);
    let mut no_slot = proposal.clone();
    no_slot["slot"] = json!([{ "reference": "Slot/NOPE-202501010900" }]);
    let mut no_patient = proposal.clone();
    no_patient["participant"] =
        json!([{ "actor": { "reference": "Location/x" }, "status": "accepted" }]);
    let mut fulfilled = proposal.clone();
    fulfilled["status"] = json!("fulfilled");

    // (what, path, body as text, status, the expression's start or "" for none)
    let table: Vec<(&str, &str, String, u16, &str)> = vec![
        ("malformed JSON", "Appointment/$find", "{\"resourceType\": ".into(), 400, "Parameters"),
        ("not a resource", "Appointment/$find", "[1, 2]".into(), 400, "Parameters.resourceType"),
        ("wrong resourceType", "Appointment/$find", json!({ "resourceType": "Patient" }).to_string(), 400, "Parameters.resourceType"),
        ("unknown parameter", "Appointment/$find", with_param("colour", json!({ "valueString": "red" })).to_string(), 400, "Parameters.parameter[3].name"),
        ("bad date", "Appointment/$find", with_param("start", json!({ "valueDateTime": "2025-13-45" })).to_string(), 400, "Parameters.parameter.where(name='start')"),
        ("date-time without zone", "Appointment/$find", with_param("start", json!({ "valueDateTime": "2025-03-03T09:00:00" })).to_string(), 400, "Parameters.parameter.where(name='start')"),
        ("end before start", "Appointment/$find", { let mut b = with_param("start", json!({ "valueDateTime": "2030-01-02T00:00:00Z" })); b["parameter"].as_array_mut().unwrap().push(json!({ "name": "end", "valueDateTime": "2030-01-01T00:00:00Z" })); b.to_string() }, 400, "Parameters.parameter.where(name='end')"),
        ("unknown specialty", "Appointment/$find", with_param("specialty", json!({ "valueCoding": { "code": "astrologer" } })).to_string(), 404, "Parameters.parameter.where(name='specialty')"),
        ("count out of range", "Appointment/$find", with_param("_count", json!({ "valueInteger": 100000 })).to_string(), 400, "Parameters.parameter.where(name='_count')"),
        ("unknown practitioner", "Appointment/$find", with_param("practitioner", json!({ "valueReference": { "reference": "Practitioner/nobody" } })).to_string(), 404, "Parameters.parameter.where(name='practitioner')"),
        ("10 MB body", "Appointment/$find", big.to_string(), 413, "Parameters"),
        ("hold of an unknown slot", "Appointment/$hold", with_resource("appointment-resource", &no_slot).to_string(), 404, "Parameters.parameter.where(name='appointment-resource').resource.slot[0]"),
        ("hold without a patient", "Appointment/$hold", with_resource("appointment-resource", &no_patient).to_string(), 400, "Parameters.parameter.where(name='appointment-resource').resource.participant"),
        ("book in a status $book does not take", "Appointment/$book", with_resource("appointment-resource", &fulfilled).to_string(), 400, "Parameters.parameter.where(name='appointment-resource').resource.status"),
        ("book a hold that never was", "Appointment/$book", json!({ "resourceType": "Parameters", "parameter": [{ "name": "appointment-reference", "valueReference": { "reference": "Appointment/h999999" } }] }).to_string(), 404, "Parameters.parameter.where(name='appointment-reference')"),
        ("hold by reference to a proposal", "Appointment/$hold", json!({ "resourceType": "Parameters", "parameter": [{ "name": "appointment-reference", "valueReference": { "reference": "Appointment/x1" } }] }).to_string(), 422, "Parameters.parameter.where(name='appointment-reference')"),
        ("two targets", "Appointment/$book", json!({ "resourceType": "Parameters", "parameter": [{ "name": "appointment-reference", "valueReference": { "reference": "Appointment/h1" } }, { "name": "appointment-reference", "valueReference": { "reference": "Appointment/h2" } }] }).to_string(), 400, "Parameters.parameter"),
    ];
    for (what, path, body, status, expression) in &table {
        let request = fhir
            .http
            .post(format!("{}/{path}", fhir.base))
            .bearer_auth(&fhir.token)
            .header("content-type", "application/fhir+json")
            .body(body.clone());
        let (got, _, outcome) = fhir.send(request).await;
        check(what, got, &outcome, *status, expression);
    }
    // Searches and reads.
    for (what, path, status, expression) in [
        (
            "unknown search parameter",
            "Slot?colour=red",
            400,
            "Slot?colour",
        ),
        (
            "bad slot status",
            "Slot?status=sleeping",
            400,
            "Slot?status",
        ),
        ("bad _count", "Slot?_count=0", 400, "Slot?_count"),
        ("bad page token", "Slot?_page=xyz", 400, "Slot?_page"),
        (
            "ITI-118 without a patient",
            "Appointment?status=booked",
            400,
            "Appointment?patient",
        ),
        (
            "unknown schedule",
            "Slot?schedule=Schedule/nobody",
            404,
            "Slot?schedule",
        ),
        ("unknown appointment", "Appointment/a424242", 404, ""),
        ("unknown location", "Location/nowhere", 404, ""),
        ("unknown resource type", "Patient/1", 404, ""),
    ] {
        let (got, outcome) = fhir.get(path).await;
        check(what, got, &outcome, status, expression);
    }
    // Wrong media type, no token, a token of another role.
    let request = fhir
        .http
        .post(format!("{}/Appointment/$find", fhir.base))
        .bearer_auth(&fhir.token)
        .header("content-type", "text/plain")
        .body(ok.to_string());
    let (got, _, outcome) = fhir.send(request).await;
    check("text/plain", got, &outcome, 415, "");
    let (got, headers, outcome) = fhir
        .send(fhir.http.get(format!("{}/Slot", fhir.base)))
        .await;
    check("no token", got, &outcome, 401, "");
    assert!(headers.get("www-authenticate").is_some());
    let auditor = Client::new(&h, h.token(Role::Auditor));
    let (got, outcome) = auditor.post("Appointment/$find", &ok).await;
    check("another role's token", got, &outcome, 403, "");
    assert_eq!(h.log.size(), before, "a bad request logged something");
    fhir.validate("bad_requests_get_an_outcome_naming_the_element");
    auditor.validate("bad_requests_get_an_outcome_naming_the_element");
}

fn check(what: &str, status: u16, outcome: &Value, expected: u16, expression: &str) {
    assert_eq!(status, expected, "{what}: {outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{what}");
    let issue = &outcome["issue"][0];
    assert_eq!(issue["severity"], "error", "{what}");
    assert!(
        !issue["diagnostics"].as_str().unwrap_or("").is_empty(),
        "{what}: {outcome}"
    );
    if !expression.is_empty() {
        let got = issue["expression"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no expression in {outcome}"));
        assert!(
            got.starts_with(expression),
            "{what}: expression {got}, expected {expression}"
        );
    }
}

/// Reschedule (`$book` of the booked appointment with another slot), an idempotent retry with
/// `X-Request-Id` and the same key with another request (412), and a change the appointment's
/// state does not allow (422).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reschedule_retries_and_business_rules() {
    let h = Harness::city_with(0.02, served).await;
    let fhir = Client::new(&h, h.token(Role::ClinicSystem));
    let (_, found) = fhir.post("Appointment/$find", &find_body("S1", 3)).await;
    let proposals = entries(&found);
    let book = with_resource("appointment-resource", &proposals[0]);
    let keyed = |body: &Value, key: &str| {
        fhir.http
            .post(format!("{}/Appointment/$book", fhir.base))
            .bearer_auth(&fhir.token)
            .header("content-type", "application/fhir+json")
            .header("x-request-id", key)
            .body(body.to_string())
    };
    let (status, _, first) = fhir.send(keyed(&book, "k-1")).await;
    assert_eq!(status, 200, "{first}");
    let size = h.log.size();
    let (status, _, again) = fhir.send(keyed(&book, "k-1")).await;
    assert_eq!(status, 200, "a retry gets the first answer: {again}");
    assert_eq!(entries(&again)[0]["id"], entries(&first)[0]["id"]);
    assert_eq!(h.log.size(), size, "a retry decides nothing");
    let other = with_resource("appointment-resource", &proposals[2]);
    let (status, _, reused) = fhir.send(keyed(&other, "k-1")).await;
    check("the same key for another request", status, &reused, 412, "");

    // Reschedule to the second proposal's slot: the old slot is free, the new one busy.
    let mut moved = entries(&first).remove(0);
    let old_slot = slot_ref(&moved);
    moved["slot"] = proposals[1]["slot"].clone();
    let (status, answer) = fhir.with_appointment("book", &moved).await;
    assert_eq!(status, 200, "{answer}");
    let answer = entries(&answer).remove(0);
    assert_eq!(answer["status"], "booked");
    assert_eq!(answer["id"], moved["id"]);
    assert_eq!(slot_ref(&answer), slot_ref(&proposals[1]));
    assert_eq!(fhir.get(&old_slot).await.1["status"], "free");
    assert_eq!(fhir.get(&slot_ref(&proposals[1])).await.1["status"], "busy");

    // Cancelled twice: the second is a business rule (422), and logs nothing.
    let mut cancel = answer.clone();
    cancel["status"] = json!("cancelled");
    let (status, _) = fhir.with_appointment("book", &cancel).await;
    assert_eq!(status, 200);
    let size = h.log.size();
    let (status, twice) = fhir.with_appointment("book", &cancel).await;
    check("cancelled twice", status, &twice, 422, "");
    assert_eq!(h.log.size(), size);
    fhir.validate("reschedule_retries_and_business_rules");
}

/// The FHIR face shares the gRPC server's gate: with its one permit held by a gRPC stream, a
/// `$find` is shed at once with 429 and `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shedding_is_429_with_retry_after() {
    let h = Harness::city_with(0.02, |c| {
        served(c);
        c.limits.max_concurrent_calls = 1;
    })
    .await;
    let fhir = Client::new(&h, h.token(Role::ClinicSystem));
    let mut stream = h
        .auditor()
        .await
        .stream_entries(allot_service::proto::v1::StreamEntriesRequest {
            follow: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().unwrap();
    let request = fhir
        .http
        .post(format!("{}/Appointment/$find", fhir.base))
        .bearer_auth(&fhir.token)
        .header("content-type", "application/fhir+json")
        .body(find_body("T1", 1).to_string());
    let (status, headers, outcome) = fhir.send(request).await;
    check("shed", status, &outcome, 429, "");
    assert_eq!(outcome["issue"][0]["code"], "throttled");
    assert_eq!(headers.get("retry-after").unwrap(), "1");
    drop(stream);
    fhir.validate("shedding_is_429_with_retry_after");
}

/// Under the server's TLS identity the FHIR face speaks HTTPS with the same certificate, and
/// refuses plain HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_as_for_grpc() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = cert.cert.pem();
    let identity = allot_service::server::config::TlsIdentity {
        cert_pem: cert_pem.clone().into_bytes(),
        key_pem: cert.signing_key.serialize_pem().into_bytes(),
    };
    let h = Harness::city_with(0.02, |c| {
        served(c);
        c.tls = Some(identity);
    })
    .await;
    let base = h.fhir_url.clone().unwrap();
    assert!(base.starts_with("https://127.0.0.1:"));
    let base = base.replace("127.0.0.1", "localhost");
    let _ = allot_service::witness::http_client(std::time::Duration::from_secs(5));
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let answer = trusting
        .get(format!("{base}/metadata"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let found = trusting
        .post(format!("{base}/Appointment/$find"))
        .bearer_auth(h.token(Role::ClinicSystem))
        .header("content-type", "application/fhir+json")
        .body(find_body("L1", 1).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(found.status(), 200);
    let plain = base.replace("https://", "http://");
    assert!(
        reqwest::Client::new()
            .get(format!("{plain}/metadata"))
            .send()
            .await
            .is_err()
    );
    let untrusting = reqwest::Client::new();
    assert!(
        untrusting
            .get(format!("{base}/metadata"))
            .send()
            .await
            .is_err()
    );
}

/// Requests in the shape the IHE ITI Scheduling examples have (an IHE client's `$find`
/// Parameters with a full Patient, a proposed Appointment with serviceType, appointmentType,
/// requestedPeriod and participants with `required` and `display`; `tests/fhir/ihe/`): the
/// elements allot does not use are accepted and ignored, and the flow goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ihe_shaped_requests_go_through() {
    let h = Harness::city_with(0.02, served).await;
    let fhir = Client::new(&h, h.token(Role::ClinicSystem));
    let fixture = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/tests/fhir/ihe/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let now = jiff::Timestamp::now();
    let from = now.to_string();
    let until = (now + jiff::SignedDuration::from_hours(24 * 7)).to_string();
    let find: Value = serde_json::from_str(
        &fixture("find-parameters.json")
            .replace("{{FROM}}", &from)
            .replace("{{UNTIL}}", &until),
    )
    .unwrap();
    fhir.seen.lock().unwrap().push(find.to_string());
    let (status, found) = fhir.post("Appointment/$find", &find).await;
    assert_eq!(status, 200, "{found}");
    let proposals = entries(&found);
    assert_eq!(proposals.len(), 3);
    let p = &proposals[0];
    let start: jiff::Timestamp = p["start"].as_str().unwrap().parse().unwrap();
    assert!(
        start >= now && start < until.parse().unwrap(),
        "inside the window asked for"
    );
    let text = fixture("appointment-proposed.json")
        .replace("{{START}}", p["start"].as_str().unwrap())
        .replace("{{END}}", p["end"].as_str().unwrap())
        .replace("{{SLOT}}", &slot_ref(p))
        .replace(
            "{{PRACTITIONER}}",
            p["participant"][1]["actor"]["reference"].as_str().unwrap(),
        )
        .replace(
            "{{LOCATION}}",
            p["participant"][2]["actor"]["reference"].as_str().unwrap(),
        );
    let proposed: Value = serde_json::from_str(&text).unwrap();
    fhir.seen.lock().unwrap().push(proposed.to_string());
    let (status, held) = fhir.with_appointment("hold", &proposed).await;
    assert_eq!(status, 200, "{held}");
    let pending = entries(&held).remove(0);
    assert_eq!(
        pending["participant"][0]["actor"]["reference"],
        "Patient/ihe-patient-1"
    );
    let (status, booked) = fhir.with_appointment("book", &pending).await;
    assert_eq!(status, 200, "{booked}");
    assert_eq!(entries(&booked)[0]["status"], "booked");
    fhir.validate("ihe_shaped_requests_go_through");
}
