//! Scenario files: the examples are valid; bad files are refused with file, line and field.

use std::path::Path;

use allot_scenarios::Scenario;

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn error(text: &str) -> String {
    match Scenario::parse(text, "bad.toml", &examples()) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_examples_are_valid() {
    for name in ["small-city.toml", "fairs-only.toml", "moscow-week.toml"] {
        let s = Scenario::load(&examples().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(s.variants.len() >= 2, "{name}");
    }
    let s = Scenario::load(&examples().join("moscow-week.toml")).unwrap();
    assert_eq!(s.variants.len(), 9);
    let base = s.variants[0].appointments.as_ref().unwrap();
    let closed = s.variants[1].appointments.as_ref().unwrap();
    assert_eq!(closed.network.clinics.len(), base.network.clinics.len() - 1);
    assert!(closed.network.doctors.len() < base.network.doctors.len());
    let added = s.variants[2].appointments.as_ref().unwrap();
    assert_eq!(added.network.doctors.len(), base.network.doctors.len() + 20);
    let (fairs, _) = s.variants[5].fairs.as_ref().unwrap();
    assert_eq!(
        fairs.fairs.len(),
        s.variants[0].fairs.as_ref().unwrap().0.fairs.len() + 1
    );
    let (schools, params) = s.variants[7].schools.as_ref().unwrap();
    assert_eq!(schools.schools.len(), 1_001);
    assert!(!schools.reserves.is_empty());
    assert_eq!(params.mechanism, allot_engine::school::Mechanism::Da);
}

#[test]
fn bad_files_name_the_line_and_the_field() {
    let city = "[city]\ngenerate = { seed = 1, scale = 0.01 }\n";
    let cases: &[(&str, &str)] = &[
        // TOML syntax.
        ("seed = \n", "bad.toml:1"),
        // An unknown field.
        (
            &format!("{city}[period]\ndayz = 3\n"),
            "bad.toml:4: dayz: unknown field",
        ),
        // An unknown clinic, on the line of its id.
        (
            &format!(
                "{city}\n[[variant]]\nname = \"x\"\nclose_clinics = [\"C0001\",\n  \"C9999\"]\n"
            ),
            "bad.toml:7: variant[0].close_clinics: no clinic 'C9999'",
        ),
        (
            &format!(
                "{city}[[variant]]\nname = \"x\"\nadd_doctors = [{{ district = \"D404\", specialty = \"gp\", count = 1 }}]\n"
            ),
            "bad.toml:5: variant[0].add_doctors.district: no district 'D404'",
        ),
        (
            &format!(
                "{city}[[variant]]\nname = \"x\"\nfair_stalls = [{{ fair = \"nope\", stalls = 3 }}]\n"
            ),
            "bad.toml:5: variant[0].fair_stalls.fair: no fair 'nope'",
        ),
        (
            &format!(
                "{city}[[variant]]\nname = \"x\"\nopen_school = [{{ school = \"S-new\", capacity = 5, like = \"S77777\", share = 0.5 }}]\n"
            ),
            "bad.toml:5: variant[0].open_school.like: no school 'S77777'",
        ),
        (
            &format!("{city}[fairs]\nmechanism = \"auction\"\n"),
            "bad.toml:4: fairs.mechanism: unknown fair mechanism 'auction'",
        ),
        (
            &format!("{city}[appointments]\nno_show = 1.5\n"),
            "bad.toml:4: appointments.no_show: expected a share from 0 to 1",
        ),
        (
            &format!("{city}[[variant]]\nname = \"baseline\"\n"),
            "bad.toml:4: variant[0].name",
        ),
        (
            "[city]\ngenerate = { seed = 1, scale = 0.01 }\ncsv = \"x\"\n",
            "bad.toml:1: city: give exactly one of",
        ),
        (
            &format!(
                "{city}[[variant]]\nname = \"ttc with reserves\"\nschool_mechanism = \"ttc\"\nschool_reserves = [{{ every = 2, class = 1, share = 0.5 }}]\n"
            ),
            "bad.toml:3: variant[0].school_mechanism: ttc does not support seat reserves",
        ),
    ];
    for (text, want) in cases {
        let got = error(text);
        assert!(
            got.starts_with(want),
            "want '{want}...', got '{got}' for\n{text}"
        );
    }
}

#[test]
fn a_csv_city_with_bad_rows_names_the_csv_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fairs.csv"),
        "fair,district,category,stalls\nF1,D1,produce,3\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("applicants.csv"),
        "applicant,category,tier,choices\nA1,produce,0,F1\nA2,produce,7,F1\n",
    )
    .unwrap();
    let text = format!("[city]\ncsv = {:?}\n", dir.path().display().to_string());
    let got = error(&text);
    assert!(got.contains("applicants.csv:3: tier"), "{got}");
    // A domain with only some of its files.
    std::fs::write(dir.path().join("clinics.csv"), "clinic,district,lat,lon\n").unwrap();
    let got = error(&text);
    assert!(
        got.contains("doctors.csv") && got.contains("missing"),
        "{got}"
    );
}

#[test]
fn the_fairs_only_example_runs_from_its_csv_folder() {
    let s = Scenario::load(&examples().join("fairs-only.toml")).unwrap();
    assert!(s.variants[0].appointments.is_none() && s.variants[0].schools.is_none());
    let report = crate::run(&s, 30, 2);
    let metric = |i: usize, n: &str| report.variants[i].metric(n).unwrap().mean;
    let placed = |i: usize| metric(i, "fair_placed");
    // Welfare places the most local farmers possible in every draw (it maximises the number
    // placed tier by tier), so at least as many as DA on average.
    let tier0 = |i: usize| metric(i, "fair_placed_tier0");
    assert!(tier0(1) >= tier0(0), "{} < {}", tier0(1), tier0(0));
    // Doubling F2's stalls places more in expectation.
    assert!(placed(4) > placed(0));
    let names: Vec<&str> = report.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "baseline",
            "welfare",
            "rsd",
            "open stalls first",
            "F2 doubled"
        ]
    );
}

#[test]
fn a_csv_clinic_network_simulates_like_the_generated_one() {
    // The engine generator's own CSV files (minutes left empty: the standard ones apply).
    use allot_engine::appointments::generate::{City, CitySpec};
    let city = City::generate(&CitySpec::scaled(8, 0.02));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("clinics.csv"), city.clinics_csv()).unwrap();
    std::fs::write(dir.path().join("doctors.csv"), city.doctors_csv()).unwrap();
    let text = format!(
        "seed = 2\n[city]\ncsv = {:?}\n[period]\ndays = 2\n[[variant]]\nname = \"close\"\nclose_clinics = [\"{}\"]\n",
        dir.path().display().to_string(),
        city.clinics[0].id
    );
    let s = Scenario::parse(&text, "csv.toml", Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    assert!(s.variants[0].fairs.is_none() && s.variants[0].schools.is_none());
    let net = &s.variants[0].appointments.as_ref().unwrap().network;
    assert_eq!(net.doctors.len(), city.doctors.len());
    assert_eq!(net.clinics.len(), city.clinics.len());
    // Districts come from the clinics; their shares of patients are their shares of doctors.
    assert_eq!(net.districts.len(), city.districts.len());
    let shares: f64 = net.districts.iter().map(|d| d.population).sum();
    assert!((shares - 1.0).abs() < 1e-9);
    // Standard minutes per visit filled in from the specialty.
    for d in &net.doctors {
        let g = city.doctors.iter().find(|g| g.id == d.id).unwrap();
        assert_eq!(d.minutes, g.minutes, "{}", d.id);
    }
    let report = crate::run(&s, 2, 2);
    let requests = report.variants[0]
        .metric("appointment_requests")
        .unwrap()
        .mean;
    // 6.33 requests per doctor a day (Moscow's rate), two days, Poisson.
    let want = 190_000.0 / 30_000.0 * city.doctors.len() as f64 * 2.0;
    assert!(
        (requests - want).abs() < 4.0 * want.sqrt(),
        "{requests} vs {want}"
    );
}
