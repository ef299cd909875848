//! Appointment fixtures shared by the criterion bench and the `appt_load` runner: a generated
//! city as an engine, `$find` queries from its patients, and referral queues.

use std::sync::Arc;

use allot_engine::appointments::generate::{City, CitySpec};
use allot_engine::appointments::inputs::read_requests;
use allot_engine::appointments::{
    DecisionSink, Engine, EngineOptions, FindQuery, ManualClock, Request, Schedule,
};
use allot_engine::input::Table;
use allot_engine::log::{Digest, Timestamp};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The city at `scale` of Moscow over 14 days from 2025-03-03.
pub fn city(seed: u64, scale: f64) -> City {
    City::generate(&CitySpec::scaled(seed, scale))
}

/// 07:00 local time on the horizon's first day (every slot is still ahead).
pub fn opening(schedule: &Schedule) -> Timestamp {
    schedule
        .first_day
        .start()
        .add_minutes(7 * 60)
        .to_timestamp(&schedule.zone)
}

/// An engine on `city` with a clock frozen at the opening, writing to `sink`.
pub fn engine(city: &City, sink: Arc<dyn DecisionSink>) -> Engine {
    let schedule = Arc::new(city.input().build().expect("a generated city is valid"));
    let clock = Arc::new(ManualClock::new(opening(&schedule)));
    Engine::new(
        schedule,
        Digest::default(),
        sink,
        clock,
        EngineOptions::default(),
    )
}

/// `n` find queries of random patients (home near their district's centre, attached clinic,
/// specialty by the mix), 5 proposals each, over the whole horizon.
pub fn queries(city: &City, schedule: &Schedule, n: usize, seed: u64) -> Vec<FindQuery> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let p = city.patient(&mut rng, format!("q{i}"));
            FindQuery {
                specialty: schedule
                    .specialty(p.specialty)
                    .expect("generated specialty"),
                home: schedule.projection.project(p.home),
                attached: schedule.clinic(&city.clinics[p.attached].id),
                preferred: Vec::new(),
                from: None,
                until: None,
                count: 5,
                patient: None,
                exclude_doctor: None,
                only: Default::default(),
                weights: None,
            }
        })
        .collect()
}

/// `n` referrals with earliest days spread over `spread_days` from the horizon's start.
pub fn requests(
    city: &City,
    schedule: &Schedule,
    n: usize,
    seed: u64,
    spread_days: u32,
) -> Vec<Request> {
    let csv = city.requests_csv(seed, n, schedule.first_day, spread_days);
    let table = Table::from_bytes("requests.csv", csv.into_bytes()).expect("generated csv");
    read_requests(&table, schedule).expect("generated requests are valid")
}

/// This process's resident memory, in bytes (Linux), for memory-per-slot figures.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// p50 and p99 of a raw 4 KiB overwrite + fdatasync in `dir`, in seconds: what the disk allows
/// right now (it varies with the machine's other load), to read durable figures against.
pub fn raw_fdatasync(dir: &std::path::Path) -> (f64, f64) {
    use std::os::unix::fs::FileExt;
    let path = dir.join("fdatasync-probe");
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
    else {
        return (0.0, 0.0);
    };
    let _ = file.write_all_at(&vec![0u8; 1 << 20], 0);
    let _ = file.sync_all();
    let mut times = crate::latency::Latencies::default();
    for i in 0..200u64 {
        let t = std::time::Instant::now();
        let _ = file.write_all_at(&[1u8; 4096], (i % 256) * 4096);
        let _ = file.sync_data();
        times.record(t.elapsed());
    }
    let _ = std::fs::remove_file(&path);
    (times.seconds(0.5), times.seconds(0.99))
}
