//! The generators' figures match the requested scale.

use allot_scenarios::city::{CitySpec, generate};

fn within(value: f64, want: f64, tolerance: f64) -> bool {
    (value - want).abs() <= want * tolerance
}

#[test]
fn moscow_scale_has_the_figures_of_the_brief() {
    let city = generate(&CitySpec::moscow(1));
    let net = city.appointments.as_ref().unwrap();
    assert_eq!(net.districts.len(), 125);
    assert_eq!(net.clinics.len(), 600);
    assert_eq!(net.doctors.len(), 30_000);
    let shares: f64 = net.districts.iter().map(|d| d.population).sum();
    assert!((shares - 1.0).abs() < 1e-9);
    let fairs = city.fairs.as_ref().unwrap();
    assert_eq!(fairs.fairs.len(), 150);
    assert_eq!(fairs.applicants.len(), 20_000);
    let stalls = fairs.total_stalls() as f64;
    assert!(within(stalls, 15_000.0, 0.10), "{stalls} stalls");
    let schools = city.schools.as_ref().unwrap();
    assert_eq!(schools.schools.len(), 1_000);
    assert_eq!(schools.students.len(), 100_000);
    assert!(
        schools
            .students
            .iter()
            .all(|s| (1..=12).contains(&s.choices.len()))
    );
    // Capacities are Poisson(105) with a floor of 5: about 105,000 seats.
    let seats = schools.total_seats() as f64;
    assert!(within(seats, 105_000.0, 0.03), "{seats} seats");
    // The same seed gives the same city.
    assert_eq!(generate(&CitySpec::moscow(1)), city);
}

#[test]
fn scaled_cities_shrink_every_count_in_proportion() {
    for scale in [0.02, 0.1, 0.25] {
        let spec = CitySpec::scaled(9, scale);
        let city = generate(&spec);
        let net = city.appointments.as_ref().unwrap();
        assert_eq!(net.clinics.len(), (600.0 * scale).round() as usize);
        assert_eq!(net.doctors.len(), (30_000.0 * scale).round() as usize);
        let districts = ((125.0 * scale).round() as usize).min(net.clinics.len());
        assert_eq!(net.districts.len(), districts);
        let fairs = city.fairs.as_ref().unwrap();
        assert_eq!(fairs.fairs.len(), (150.0 * scale).round() as usize);
        assert_eq!(fairs.applicants.len(), (20_000.0 * scale).round() as usize);
        // Each fair has at least 20 stalls, so tiny cities have a few more than in proportion.
        let stalls = fairs.total_stalls() as f64;
        let want = 15_000.0 * scale;
        assert!(
            stalls >= want * 0.85 && stalls <= want * 1.25,
            "{stalls} stalls at scale {scale}"
        );
        let schools = city.schools.as_ref().unwrap();
        assert_eq!(schools.schools.len(), (1_000.0 * scale).round() as usize);
        assert_eq!(schools.students.len(), (100_000.0 * scale).round() as usize);
        // Canonical order: ids sorted, so the engine's lookups work.
        assert!(schools.students.windows(2).all(|w| w[0].id < w[1].id));
        assert!(schools.schools.windows(2).all(|w| w[0].id < w[1].id));
        // The schedule builds, with a doctor's usual slots: 30 or so a day.
        let input = net.schedule_input(allot_engine::appointments::Date(20_150), 7);
        let schedule = input.build().unwrap();
        let per_doctor_day = f64::from(schedule.slot_count()) / (net.doctors.len() as f64 * 7.0);
        assert!((20.0..45.0).contains(&per_doctor_day), "{per_doctor_day}");
    }
}

#[test]
fn generated_school_input_is_the_generated_market() {
    // The engine's input and the solver market of the same spec rank the same schools with the
    // same priority classes: DA on both gives the same assignment.
    use allot_engine::allocation::Allocation;
    use allot_scenarios::school_gen::{SchoolSpec, generate, generate_input};
    let spec = SchoolSpec {
        seed: 4,
        students: 3_000,
        schools: 40,
        max_choices: 8,
    };
    let market = generate(spec).market;
    let input = generate_input(spec);
    let solved = allot_engine::school::Schools::solve(
        &input,
        &allot_engine::school::Params::default(),
        None,
    )
    .unwrap();
    let direct = allot_solvers::matching::deferred_acceptance(&market);
    for i in 0..3_000u32 {
        assert_eq!(
            solved.school_of(i),
            direct.matching().school_of(i),
            "student {i}"
        );
    }
}
