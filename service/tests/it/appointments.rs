//! `allot appointments ...` end to end: a session from a generated city to a re-balanced queue,
//! and bad inputs that must fail with one file:line:field error and write nothing.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `allot` in `dir` with a fixed clock (Monday 2030-03-04, 07:00 local).
fn allot(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_allot"))
        .current_dir(dir)
        .args(args)
        .env("ALLOT_DATA", dir.join("data"))
        .env("ALLOT_NOW", "2030-03-04T07:00")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run allot")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = allot(dir, args);
    assert!(
        out.status.success(),
        "allot {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The first line of stderr of a command that must fail.
fn fails(dir: &Path, args: &[&str]) -> String {
    let out = allot(dir, args);
    assert!(!out.status.success(), "allot {args:?} succeeded");
    let err = String::from_utf8(out.stderr).unwrap();
    err.lines().next().unwrap_or_default().to_owned()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap()
}

/// Generates and loads a city of 6 districts, 30 clinics and 1,500 doctors.
fn city(dir: &Path) {
    ok(
        dir,
        &[
            "appointments",
            "generate",
            "--out",
            "city",
            "--requests",
            "3000",
            "--from",
            "2030-03-04",
            "--seed",
            "3",
        ],
    );
    let out = ok(
        dir,
        &[
            "appointments",
            "load",
            "--clinics",
            "city/clinics.csv",
            "--doctors",
            "city/doctors.csv",
            "--absences",
            "city/absences.csv",
            "--from",
            "2030-03-04",
        ],
    );
    assert!(
        out.starts_with("loaded 30 clinics, 6 districts, 1500 doctors"),
        "{out}"
    );
}

#[test]
fn a_session_from_find_to_rebalance() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    city(dir);
    let status = json(&ok(dir, &["appointments", "status", "--json"]));
    let total = status["slots"]["total"].as_u64().unwrap();
    assert_eq!(
        status["slots"]["free"].as_u64().unwrap()
            + status["slots"]["busy-unavailable"].as_u64().unwrap(),
        total
    );

    // Find: ranked, scores add up, best first.
    let found = json(&ok(
        dir,
        &[
            "appointments",
            "find",
            "--specialty",
            "therapist",
            "--clinic",
            "C0001",
            "--count",
            "4",
            "--json",
        ],
    ));
    let list = found.as_array().unwrap();
    assert_eq!(list.len(), 4);
    let totals: Vec<f64> = list
        .iter()
        .map(|p| p["score"]["total"].as_f64().unwrap())
        .collect();
    assert!(totals.windows(2).all(|w| w[0] <= w[1]), "{totals:?}");
    for p in list {
        let s = &p["score"];
        let sum = s["travel"].as_f64().unwrap()
            + s["wait"].as_f64().unwrap()
            + s["load"].as_f64().unwrap()
            - s["preference"].as_f64().unwrap();
        assert!((sum - s["total"].as_f64().unwrap()).abs() < 1e-9);
        assert_eq!(p["status"], "proposed");
    }
    let slot = list[0]["slot"].as_str().unwrap().to_owned();
    let other = list[1]["slot"].as_str().unwrap().to_owned();

    // Hold, a second hold refused with proposals, book the hold.
    let held = ok(
        dir,
        &["appointments", "hold", "--patient", "P1", "--slot", &slot],
    );
    let hold = held.split_whitespace().nth(3).unwrap().to_owned();
    assert!(hold.starts_with('h'), "{held}");
    let err = fails(
        dir,
        &["appointments", "hold", "--patient", "P2", "--slot", &slot],
    );
    assert!(
        err.contains("is taken (busy-tentative); 5 other proposals attached"),
        "{err}"
    );
    let booked = ok(dir, &["appointments", "book", "--hold", &hold]);
    let appt = booked.split_whitespace().last().unwrap().to_owned();
    let shown = json(&ok(dir, &["appointments", "show", &appt, "--json"]));
    assert_eq!(
        (
            shown["status"].as_str(),
            shown["slot"].as_str(),
            shown["patient"].as_str()
        ),
        (Some("booked"), Some(slot.as_str()), Some("P1"))
    );

    // Reschedule, then an absence re-offers the patient elsewhere; accept; cancel.
    ok(dir, &["appointments", "reschedule", &appt, "--to", &other]);
    let shown = json(&ok(dir, &["appointments", "show", &appt, "--json"]));
    assert_eq!(shown["slot"].as_str(), Some(other.as_str()));
    let (doctor, when) = other.split_once('@').unwrap();
    let out = ok(
        dir,
        &[
            "appointments",
            "absence",
            "--doctor",
            doctor,
            "--from",
            &when[..10],
            "--until",
            &when[..10],
        ],
    );
    assert!(out.contains("1 patients re-offered"), "{out}");
    assert_eq!(
        json(&ok(dir, &["appointments", "show", &appt, "--json"]))["status"],
        "pending"
    );
    ok(dir, &["appointments", "accept", &appt]);
    assert_eq!(
        json(&ok(dir, &["appointments", "show", &appt, "--json"]))["status"],
        "booked"
    );
    ok(dir, &["appointments", "cancel", &appt]);
    assert_eq!(
        json(&ok(dir, &["appointments", "show", &appt, "--json"]))["status"],
        "cancelled"
    );

    // Re-balance the queue in the loaded city and book it.
    let out = ok(
        dir,
        &[
            "appointments",
            "rebalance",
            "--requests",
            "city/requests.csv",
            "--out",
            "plan",
            "--book",
        ],
    );
    assert!(out.contains("booked 3000"), "{out}");
    let summary = json(&std::fs::read_to_string(dir.join("plan/summary.json")).unwrap());
    assert_eq!(summary["requests"], 3000);
    assert!(
        summary["optimal"]["cost"].as_f64().unwrap() <= summary["greedy"]["cost"].as_f64().unwrap()
    );
    let csv = std::fs::read_to_string(dir.join("plan/assignment.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3001);
    assert!(
        csv.starts_with(
            "request,patient,clinic,doctor,slot,start,travel_km,wait_days,appointment\n"
        )
    );
    let status = json(&ok(dir, &["appointments", "status", "--json"]));
    assert_eq!(status["slots"]["busy"].as_u64(), Some(3000));

    // Everything is in the log, which verifies; a snapshot makes the next start replay less.
    ok(dir, &["audit", "verify"]);
    let snap = ok(dir, &["appointments", "snapshot"]);
    assert!(
        snap.starts_with("snapshot of the inventory after the log's first"),
        "{snap}"
    );
    assert_eq!(
        json(&ok(dir, &["appointments", "status", "--json"]))["slots"],
        status["slots"]
    );
}

#[test]
fn offline_rebalance_writes_both_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(
        dir,
        &[
            "appointments",
            "generate",
            "--out",
            "city",
            "--scale",
            "0.02",
            "--requests",
            "500",
            "--from",
            "2030-03-04",
        ],
    );
    let out = ok(
        dir,
        &[
            "appointments",
            "rebalance",
            "--requests",
            "city/requests.csv",
            "--clinics",
            "city/clinics.csv",
            "--doctors",
            "city/doctors.csv",
            "--out",
            "plan",
        ],
    );
    assert!(out.starts_with("500 requests in "), "{out}");
    assert!(dir.join("plan/assignment.csv").is_file() && dir.join("plan/summary.json").is_file());
    assert!(
        !dir.join("data").exists(),
        "an offline re-balance logs nothing"
    );
}

/// Loads `clinics` and `doctors` (and re-balances `requests` when given) and returns the
/// first error line, with the temporary folder's path taken out.
fn check(files: &[&str], expect: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (name, text) in ["clinics.csv", "doctors.csv", "absences.csv", "requests.csv"]
        .iter()
        .zip(files)
    {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let mut args = vec![
        "appointments",
        "load",
        "--clinics",
        "clinics.csv",
        "--doctors",
        "doctors.csv",
        "--from",
        "2030-03-04",
        "--days",
        "7",
    ];
    if files.len() > 2 {
        args.extend(["--absences", "absences.csv"]);
    }
    let got = if files.len() > 3 {
        ok(dir, &args);
        fails(
            dir,
            &[
                "appointments",
                "rebalance",
                "--requests",
                "requests.csv",
                "--out",
                "plan",
            ],
        )
    } else {
        let err = fails(dir, &args);
        assert!(!dir.join("data").exists(), "a failed load wrote {err}");
        err
    };
    assert!(
        !dir.join("plan").exists(),
        "a failed re-balance wrote output"
    );
    assert_eq!(got, expect);
}

#[test]
fn bad_inputs_fail_with_file_line_field_and_write_nothing() {
    let clinics = "clinic,district,lat,lon\nC1,D1,55.75,37.61\nC2,D2,55.70,37.50\n";
    let doctors =
        "doctor,clinic,specialty,minutes,schedule\nV1,C1,therapist,,mon-fri 08:00-12:00\n";
    check(
        &["clinic,district,lat,lon\nC1,D1,55.75\n", doctors],
        "error: clinics.csv:2: has 3 fields, the header has 4",
    );
    check(
        &["clinic,district,lat,lon\nC1,D1,north,37.6\n", doctors],
        "error: clinics.csv:2: lat: expected a latitude in degrees, found 'north'",
    );
    check(
        &[
            clinics,
            "doctor,clinic,specialty,minutes,schedule\nV1,C9,gp,,mon 08:00-12:00\n",
        ],
        "error: doctors.csv:2: clinic: no clinic 'C9' in the clinics file",
    );
    check(
        &[
            clinics,
            "doctor,clinic,specialty,minutes,schedule\nV1,C1,gp,,mon 08:00-25:00\n",
        ],
        "error: doctors.csv:2: schedule: '08:00-25:00' is not a time interval HH:MM-HH:MM",
    );
    check(
        &[
            clinics,
            "doctor,clinic,specialty,schedule\nV1,C1,surgeon,mon 08:00-12:00\n",
        ],
        "error: doctors.csv:2: specialty: no standard minutes per visit for specialty 'surgeon': \
         give them in 'minutes'",
    );
    check(
        &[
            clinics,
            doctors,
            "doctor,from,until\nV1,2030-03-05,2030-03-04\n",
        ],
        "error: absences.csv:2: until: 2030-03-04 is not after from (2030-03-05)",
    );
    check(
        &[
            clinics,
            doctors,
            "doctor,from,until\n",
            "request,patient,district,specialty,earliest\nR1,P1,D3,therapist,2030-03-04\n",
        ],
        "error: requests.csv:2: district: no district 'D3' in the clinics file",
    );
    check(
        &[
            clinics,
            doctors,
            "doctor,from,until\n",
            "request,patient,district,specialty\nR1,P1,D1,therapist\n",
        ],
        "error: requests.csv:1: earliest: missing column (the header has: request,patient,district,specialty)",
    );
}

#[test]
fn operations_refuse_bad_ids_and_explain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert_eq!(
        fails(dir, &["appointments", "status"]).split(" in ").next(),
        Some("error: no schedule is loaded")
    );
    ok(
        dir,
        &[
            "appointments",
            "generate",
            "--out",
            "city",
            "--scale",
            "0.01",
            "--from",
            "2030-03-04",
        ],
    );
    ok(
        dir,
        &[
            "appointments",
            "load",
            "--clinics",
            "city/clinics.csv",
            "--doctors",
            "city/doctors.csv",
            "--from",
            "2030-03-04",
        ],
    );
    let err = fails(
        dir,
        &[
            "appointments",
            "hold",
            "--patient",
            "P1",
            "--slot",
            "V00001@2031-01-01T08:00",
        ],
    );
    assert!(
        err.starts_with("error: --slot: no slot 'V00001@2031-01-01T08:00' in the schedule"),
        "{err}"
    );
    assert_eq!(
        fails(
            dir,
            &[
                "appointments",
                "find",
                "--specialty",
                "dentist",
                "--clinic",
                "C0001"
            ]
        ),
        "error: --specialty: no doctors of specialty 'dentist' (the city has: therapist, gp, neurologist, ent, ophthalmologist)"
    );
    assert_eq!(
        fails(dir, &["appointments", "find", "--specialty", "gp"]),
        "error: --home: give the patient's home location or attached clinic"
    );
    assert_eq!(
        fails(dir, &["appointments", "book", "--hold", "h999999"]),
        "error: no hold h999999: it was never made, or it ended (booked, released or expired)"
    );
    assert_eq!(
        fails(dir, &["appointments", "cancel", "17"]),
        "error: expected an appointment id such as a17, found '17'"
    );
    assert_eq!(
        fails(
            dir,
            &[
                "appointments",
                "hold",
                "--patient",
                "P1",
                "--slot",
                "V00001@2030-03-04T08:00",
                "--ttl",
                "5y"
            ]
        ),
        "error: invalid value '5y' for '--ttl <DURATION>': give weeks, days, hours, minutes or \
         seconds (a month or a year has no fixed length)"
    );
    // Out of range, however it is written: refused, never wrapped around (5124095576030432h
    // times 3600 seconds overflows 64 bits, and was once taken as about an hour).
    for (ttl, why) in [
        ("5124095576030432h", "overflows"),
        ("8d", "must be from 1s to 7 days"),
        ("0s", "must be from 1s to 7 days"),
        ("-5m", "must be from 1s to 7 days"),
    ] {
        let flag = format!("--ttl={ttl}");
        let err = fails(
            dir,
            &[
                "appointments",
                "hold",
                "--patient",
                "P1",
                "--slot",
                "V00001@2030-03-04T08:00",
                &flag,
            ],
        );
        assert!(
            err.starts_with(&format!(
                "error: invalid value '{ttl}' for '--ttl <DURATION>'"
            )) && err.contains(why),
            "{err}"
        );
    }
    let again = fails(
        dir,
        &[
            "appointments",
            "load",
            "--clinics",
            "city/clinics.csv",
            "--doctors",
            "city/doctors.csv",
        ],
    );
    assert!(again.contains("a schedule is already loaded"), "{again}");
    let help = ok(dir, &["appointments", "load", "--help"]);
    assert!(
        help.contains("doctors.csv   doctor,clinic,specialty,minutes,schedule"),
        "{help}"
    );
}
