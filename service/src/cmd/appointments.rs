//! `allot appointments ...`: load a city's clinics and doctors into the data folder, then find,
//! hold, book, cancel, reschedule, mark absences, re-balance queued referrals and show
//! appointments. Every change is a decision in the data folder's log; each command rebuilds the
//! inventory from the log (and its latest snapshot) when it starts.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use allot_engine::appointments::generate::{City, CitySpec};
use allot_engine::appointments::inputs::read_requests_file;
use allot_engine::appointments::rebalance::{Outcome, Plan, RebalanceOptions};
use allot_engine::appointments::{
    AppointmentId, Booking, Date, Engine, EngineOptions, Error, FindRequest, HoldId, LocalTime,
    Location, ManualClock, Proposal, Request, ScheduleInput, Zone,
};
use allot_engine::input::CsvText;
use allot_engine::input::Table;
use allot_engine::log::Timestamp;
use allot_engine::log::decision::{Attendance, CancelledBy};
use allot_service::proto::v1 as pb;
use allot_service::server::appointments::{inventory, slot_taken_detail};
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};

use super::remote::{Remote, RemoteArgs, status_error};

const CSV_HEADERS: &str = "\
Input files (CSV with a header row; column order is free, extra columns are ignored):
  clinics.csv   clinic,district,lat,lon
                e.g. C0001,D001,55.7601,37.6150
  doctors.csv   doctor,clinic,specialty,minutes,schedule
                e.g. V00001,C0001,therapist,,\"mon-fri 08:00-12:00 12:30-16:30; sat 09:00-13:00\"
                minutes per visit may be empty for therapist (15), gp (18), neurologist (22),
                ent (16) and ophthalmologist (14) (order 290n); the schedule is a weekly
                template: days mon..sun, ranges mon-fri, lists mon,wed (quote the field), then
                HH:MM-HH:MM intervals, each cut into visits.
  absences.csv  doctor,from,until
                e.g. V00001,2025-03-04,2025-03-05 (whole days, until inclusive) or
                V00001,2025-03-04T12:00,2025-03-04T16:00 (until exclusive)
  requests.csv  request,patient,district,specialty,earliest
                e.g. R1,P123,D001,therapist,2025-03-04 (earliest acceptable day)
Times are the city's local time (YYYY-MM-DDTHH:MM); slot ids are DOCTOR@YYYY-MM-DDTHH:MM.
A bad row is reported as FILE:LINE: FIELD: PROBLEM and nothing is written or logged.";

const EXAMPLE: &str = "\
Example session:
  allot appointments generate --out city --requests 2000 --from 2025-03-03
  allot appointments load --clinics city/clinics.csv --doctors city/doctors.csv \\
      --absences city/absences.csv --from 2025-03-03 --days 14
  allot appointments find --specialty therapist --clinic C0001 --count 3
  allot appointments hold --patient P1 --slot V00001@2025-03-04T08:15
  allot appointments book --hold h42
  allot appointments show a17
  allot appointments reschedule a17 --to V00002@2025-03-05T09:00
  allot appointments cancel a17
  allot appointments absence --doctor V00001 --from 2025-03-04 --until 2025-03-04
  allot appointments rebalance --requests city/requests.csv --out plan --book";

#[derive(Debug, Args)]
#[command(
    about = "Appointments for UMIAS: load a city, find, hold, book, cancel, reschedule, absences, re-balancing",
    long_about = "Appointments for UMIAS: load a city's clinics and doctors, then find ranked \
                  slots across clinics ($find), hold ($hold) and book ($book) them, cancel, \
                  reschedule, mark doctors absent (their patients are re-offered other slots), \
                  and re-balance a queue of referrals by min-cost flow.\n\n\
                  Every change is a decision in the data folder's log (see `allot audit`), \
                  acknowledged once it is durable.",
    after_help = concat!(
        "Input files (CSV): clinics.csv clinic,district,lat,lon; doctors.csv \
         doctor,clinic,specialty,minutes,schedule; absences.csv doctor,from,until; requests.csv \
         request,patient,district,specialty,earliest. `allot appointments load --help` explains them.\n\n",
        "Start with `allot appointments generate --out city` for a synthetic city to load."
    ),
    after_long_help = EXAMPLE
)]
pub struct AppointmentsArgs {
    #[command(subcommand)]
    command: AppointmentsCommand,

    /// Who is asking, as recorded in each decision.
    #[arg(long, global = true, default_value = "cli", value_name = "NAME")]
    actor: String,

    /// Pretend the local time is T (YYYY-MM-DDTHH:MM): for rehearsals and tests. Holds expire,
    /// and slots count as past, by this clock.
    #[arg(long, global = true, env = "ALLOT_NOW", value_name = "T")]
    now: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum By {
    Patient,
    Clinic,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Visit {
    Fulfilled,
    Noshow,
}

#[derive(Debug, Subcommand)]
enum AppointmentsCommand {
    /// Load a city's clinics, doctors (with weekly templates) and absences into the data folder.
    #[command(after_long_help = CSV_HEADERS)]
    Load {
        #[arg(long, value_name = "FILE")]
        clinics: PathBuf,
        #[arg(long, value_name = "FILE")]
        doctors: PathBuf,
        #[arg(long, value_name = "FILE")]
        absences: Option<PathBuf>,
        /// First day of the planning horizon (default: today).
        #[arg(long, value_name = "YYYY-MM-DD")]
        from: Option<String>,
        /// Days in the horizon.
        #[arg(long, default_value_t = 14)]
        days: u32,
        /// The city's time zone: an IANA name, with its rules, or a fixed offset from UTC.
        #[arg(
            long,
            alias = "utc-offset",
            default_value = "Europe/Moscow",
            value_name = "ZONE or +HH:MM",
            allow_hyphen_values = true
        )]
        time_zone: String,
    },

    /// Write a synthetic city (clinics.csv, doctors.csv, absences.csv, requests.csv) to a folder.
    ///
    /// Shaped like Moscow's polyclinics: at --scale 1, 125 districts, 600 clinics, 30,000
    /// doctors (about 12 million slots over 14 days). The same seed gives the same city.
    Generate {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Size relative to Moscow (0.05: 6 districts, 30 clinics, 1,500 doctors).
        #[arg(long, default_value_t = 0.05)]
        scale: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Referrals to write to requests.csv.
        #[arg(long, default_value_t = 1000)]
        requests: usize,
        /// Doctors absent for one to three days, in absences.csv.
        #[arg(long, default_value_t = 5)]
        absences: usize,
        /// First day of the horizon the absences and requests fall in (default: today).
        #[arg(long, value_name = "YYYY-MM-DD")]
        from: Option<String>,
        #[arg(long, default_value_t = 14)]
        days: u32,
    },

    /// The loaded city: horizon, clinics, doctors, slots by FHIR status, memory per slot.
    Status {
        #[arg(long)]
        json: bool,
    },

    /// $find: ranked proposals across clinics, each with its score broken down (lower is better).
    ///
    /// score = 1/km x travel + 3/day x waiting + 20 x the clinic's utilisation that day
    ///         - 2 for the attached or a preferred clinic.
    Find {
        #[arg(long)]
        specialty: String,
        /// The patient's home, `LAT,LON` in degrees (default: the attached clinic's location).
        #[arg(long, value_name = "LAT,LON", allow_hyphen_values = true)]
        home: Option<String>,
        /// The clinic the patient is attached to.
        #[arg(long, value_name = "CLINIC")]
        clinic: Option<String>,
        /// Avoid overlapping this patient's appointments.
        #[arg(long)]
        patient: Option<String>,
        /// Earliest start (default: now).
        #[arg(long, value_name = "T")]
        from: Option<String>,
        /// Latest start, exclusive (default: the end of the horizon).
        #[arg(long, value_name = "T")]
        until: Option<String>,
        #[arg(long, default_value_t = 5)]
        count: usize,
        /// Preferred clinics, comma-separated.
        #[arg(long, value_delimiter = ',', value_name = "CLINIC,...")]
        prefer: Vec<String>,
        #[arg(long)]
        json: bool,
    },

    /// $hold: hold a free slot for a patient (default 5 minutes).
    Hold {
        #[arg(long)]
        patient: String,
        /// DOCTOR@YYYY-MM-DDTHH:MM
        #[arg(long)]
        slot: String,
        /// How long, e.g. 90s, 5m, 1h30m (1 second to 7 days).
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        ttl: Option<Duration>,
    },

    /// Let a hold go before it expires.
    Release { hold: String },

    /// $book: book a held slot (--hold) or a free slot directly (--patient and --slot).
    Book {
        #[arg(long, conflicts_with_all = ["patient", "slot"])]
        hold: Option<String>,
        #[arg(long, requires = "slot")]
        patient: Option<String>,
        #[arg(long, requires = "patient")]
        slot: Option<String>,
    },

    /// Cancel a booked appointment (or decline a re-offer).
    Cancel {
        appointment: String,
        #[arg(long, value_enum, default_value = "patient")]
        by: By,
    },

    /// Move a booked appointment to another slot, atomically (the old one stays on failure).
    Reschedule {
        appointment: String,
        #[arg(long, value_name = "SLOT")]
        to: String,
        /// The patient's hold on the new slot, consumed by the move.
        #[arg(long)]
        hold: Option<String>,
    },

    /// Accept the slot re-offered after a doctor's absence.
    Accept { appointment: String },

    /// Record how a booked appointment ended.
    Attendance {
        appointment: String,
        #[arg(long, value_enum)]
        status: Visit,
    },

    /// Mark a doctor absent: his slots become unavailable and his patients are re-offered.
    Absence {
        #[arg(long)]
        doctor: String,
        /// Start: YYYY-MM-DDTHH:MM, or a date (its start).
        #[arg(long, value_name = "T")]
        from: String,
        /// End: YYYY-MM-DDTHH:MM (exclusive), or a date (its end).
        #[arg(long, value_name = "T")]
        until: String,
    },

    /// Show an appointment (aN) or a hold (hN).
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },

    /// Re-balance a queue of referrals by min-cost flow; write assignment.csv and summary.json.
    ///
    /// With --clinics and --doctors, works on those files alone (nothing is logged). Without,
    /// on the free slots of the loaded city; --book then books the plan (one AllocationRun
    /// decision and a SlotBooked per request).
    #[command(after_long_help = CSV_HEADERS)]
    Rebalance {
        #[arg(long, value_name = "FILE")]
        requests: PathBuf,
        #[arg(long, value_name = "FILE", requires = "doctors")]
        clinics: Option<PathBuf>,
        #[arg(long, value_name = "FILE", requires = "clinics")]
        doctors: Option<PathBuf>,
        #[arg(long, value_name = "FILE", requires = "clinics")]
        absences: Option<PathBuf>,
        /// With --clinics: first day of the horizon (default: the earliest request's day).
        #[arg(long, value_name = "YYYY-MM-DD")]
        from: Option<String>,
        /// With --clinics: days in the horizon.
        #[arg(long, default_value_t = 14)]
        days: u32,
        /// Candidate clinics per group of requests (the nearest with the specialty).
        #[arg(long, default_value_t = 16)]
        nearest: usize,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Book the plan in the data folder's city.
        #[arg(long, conflicts_with = "clinics")]
        book: bool,
    },

    /// Save the inventory to a snapshot, so the next start replays only later decisions.
    Snapshot,

    /// End the holds and re-offers whose time has passed.
    Expire,
}

pub fn run(args: AppointmentsArgs, data: &Path, remote: &RemoteArgs) -> Result<()> {
    if !matches!(args.command, AppointmentsCommand::Generate { .. })
        && let Some(remote) = remote.connect()?
    {
        return run_remote(args.command, &remote);
    }
    let actor = args.actor.as_str();
    let now = args
        .now
        .as_deref()
        .map(|t| parse_time("--now", t))
        .transpose()?;
    match args.command {
        AppointmentsCommand::Load {
            clinics,
            doctors,
            absences,
            from,
            days,
            time_zone,
        } => {
            let zone = Zone::parse(&time_zone).ok_or_else(|| {
                anyhow!(
                    "--time-zone: expected an IANA time zone such as Europe/Moscow, or +HH:MM, \
                     found '{time_zone}'"
                )
            })?;
            let first = match from {
                Some(d) => parse_date("--from", &d)?,
                None => LocalTime::from_timestamp(Timestamp::now(), &zone).date(),
            };
            let input = ScheduleInput::read(&clinics, &doctors, first, days, zone.clone())?;
            let clock = clock_at(now, &zone);
            let engine = Engine::create_from_files(
                data,
                &input,
                absences.as_deref(),
                actor,
                EngineOptions::default(),
                clock,
            )?;
            let s = engine.schedule();
            let c = engine.counts();
            println!(
                "loaded {} clinics, {} districts, {} doctors: {} slots from {} for {} days ({} unavailable)",
                s.clinics.len(),
                s.districts.len(),
                s.doctors.len(),
                s.slot_count(),
                s.first_day,
                s.days,
                c.busy_unavailable
            );
            println!("schedule {}", engine.schedule_digest());
            Ok(())
        }
        AppointmentsCommand::Generate {
            out,
            scale,
            seed,
            requests,
            absences,
            from,
            days,
        } => generate(&out, scale, seed, requests, absences, from, days),
        AppointmentsCommand::Status { json } => {
            let engine = open(data, now)?;
            print_inventory(&inventory(&engine), json);
            Ok(())
        }
        AppointmentsCommand::Find {
            specialty,
            home,
            clinic,
            patient,
            from,
            until,
            count,
            prefer,
            json,
        } => {
            let engine = open(data, now)?;
            let request = FindRequest {
                patient,
                specialty,
                home: home.as_deref().map(parse_location).transpose()?,
                attached: clinic,
                preferred: prefer,
                from: from
                    .as_deref()
                    .map(|t| parse_time("--from", t))
                    .transpose()?,
                until: until
                    .as_deref()
                    .map(|t| parse_time("--until", t))
                    .transpose()?,
                count,
            };
            let query = engine.resolve_find(&request).map_err(flag)?;
            let proposals = engine.find(&query)?;
            if json {
                let list: Vec<_> = proposals
                    .iter()
                    .map(|p| proposal_json(&engine, p))
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else if proposals.is_empty() {
                println!("no free slots match");
            } else {
                print!("{}", proposals_text(&engine, &proposals));
            }
            Ok(())
        }
        AppointmentsCommand::Hold { patient, slot, ttl } => {
            let engine = open(data, now)?;
            let slot = engine.parse_slot(&slot).map_err(flag)?;
            let held = engine
                .hold(actor, &patient, slot, ttl)
                .map_err(|e| taken(&engine, e))?;
            println!(
                "held {} as {} until {}",
                engine.slot_id(held.slot),
                held.hold,
                local(&engine, held.expires)
            );
            Ok(())
        }
        AppointmentsCommand::Release { hold } => {
            let engine = open(data, now)?;
            engine.release(actor, parse_hold(&hold)?)?;
            println!("released {hold}");
            Ok(())
        }
        AppointmentsCommand::Book {
            hold,
            patient,
            slot,
        } => {
            let engine = open(data, now)?;
            let booked = match (hold, patient, slot) {
                (Some(h), _, _) => engine.book(actor, Booking::Hold(parse_hold(&h)?)),
                (None, Some(patient), Some(slot)) => {
                    let slot = engine.parse_slot(&slot).map_err(flag)?;
                    engine.book(
                        actor,
                        Booking::Slot {
                            patient: &patient,
                            slot,
                        },
                    )
                }
                _ => bail!("give --hold, or --patient and --slot"),
            }
            .map_err(|e| taken(&engine, e))?;
            println!(
                "booked {} as {}",
                engine.slot_id(booked.slot),
                booked.appointment
            );
            Ok(())
        }
        AppointmentsCommand::Cancel { appointment, by } => {
            let engine = open(data, now)?;
            let by = match by {
                By::Patient => CancelledBy::Patient,
                By::Clinic => CancelledBy::Clinic,
            };
            engine.cancel(actor, parse_appointment(&appointment)?, by)?;
            println!("cancelled {appointment}");
            Ok(())
        }
        AppointmentsCommand::Reschedule {
            appointment,
            to,
            hold,
        } => {
            let engine = open(data, now)?;
            let to = engine.parse_slot(&to).map_err(flag)?;
            let hold = hold.as_deref().map(parse_hold).transpose()?;
            let moved = engine
                .reschedule(actor, parse_appointment(&appointment)?, to, hold)
                .map_err(|e| taken(&engine, e))?;
            println!(
                "moved {} from {} to {}",
                moved.appointment,
                engine.slot_id(moved.from),
                engine.slot_id(moved.to)
            );
            Ok(())
        }
        AppointmentsCommand::Accept { appointment } => {
            let engine = open(data, now)?;
            let moved = engine.accept_offer(actor, parse_appointment(&appointment)?)?;
            println!(
                "{} booked at {} (was {})",
                moved.appointment,
                engine.slot_id(moved.to),
                engine.slot_id(moved.from)
            );
            Ok(())
        }
        AppointmentsCommand::Attendance {
            appointment,
            status,
        } => {
            let engine = open(data, now)?;
            let status = match status {
                Visit::Fulfilled => Attendance::Fulfilled,
                Visit::Noshow => Attendance::NoShow,
            };
            engine.record_attendance(actor, parse_appointment(&appointment)?, status)?;
            println!("recorded {appointment}");
            Ok(())
        }
        AppointmentsCommand::Absence {
            doctor,
            from,
            until,
        } => {
            let engine = open(data, now)?;
            let from_t = parse_time("--from", &from)?;
            let mut until_t = parse_time("--until", &until)?;
            if until.len() == 10 {
                until_t = until_t.add_minutes(24 * 60);
            }
            let out = engine
                .mark_absence_by_id(actor, &doctor, from_t, until_t)
                .map_err(flag)?;
            println!(
                "{doctor} absent from {from_t} until {until_t}: {} slots unavailable, {} holds ended, {} patients re-offered, {} cancelled",
                out.slots,
                out.released.len(),
                out.reoffered.len(),
                out.cancelled.len()
            );
            for r in &out.reoffered {
                println!(
                    "  {}: {} -> offered {} (score {:.2})",
                    r.appointment,
                    engine.slot_id(r.from),
                    engine.slot_id(r.offer.slot),
                    r.offer.score.total
                );
            }
            for appt in &out.cancelled {
                println!("  {appt}: cancelled, no slot to offer");
            }
            Ok(())
        }
        AppointmentsCommand::Show { id, json } => {
            let engine = open(data, now)?;
            show(&engine, &id, json)
        }
        AppointmentsCommand::Rebalance {
            requests,
            clinics,
            doctors,
            absences,
            from,
            days,
            nearest,
            out,
            book,
        } => {
            let options = RebalanceOptions {
                nearest,
                ..RebalanceOptions::default()
            };
            let engine = match (clinics, doctors) {
                (Some(c), Some(d)) => {
                    offline(&c, &d, absences.as_deref(), &requests, from, days, now)?
                }
                _ => open(data, now)?,
            };
            let list = read_requests_file(&requests, engine.schedule())?;
            let plan = engine.plan_rebalance(&list, &options).map_err(flag)?;
            let booked = if book {
                let run = format!(
                    "rebalance-{}",
                    local(&engine, engine.clock().now())
                        .to_string()
                        .replace(':', "")
                );
                Some(engine.book_plan(actor, &run, &list, &plan, &options)?)
            } else {
                None
            };
            write_plan(&engine, &list, &plan, booked.as_deref(), &options, &out)?;
            println!(
                "{} requests in {} groups: {} assigned, {} unassigned; cost {:.1} (greedy {:.1}); \
                 max utilisation {:.1}% (greedy {:.1}%); p95 wait {} days (greedy {}); solved in {:.3} s",
                list.len(),
                plan.groups,
                plan.optimal.assigned,
                plan.optimal.unassigned,
                plan.optimal.cost,
                plan.greedy.cost,
                100.0 * plan.optimal.max_utilisation,
                100.0 * plan.greedy.max_utilisation,
                plan.optimal.p95_wait_days,
                plan.greedy.p95_wait_days,
                plan.solve_seconds
            );
            if let Some(b) = booked {
                println!("booked {}", b.iter().flatten().count());
            }
            println!(
                "wrote {} and {}",
                out.join("assignment.csv").display(),
                out.join("summary.json").display()
            );
            Ok(())
        }
        AppointmentsCommand::Snapshot => {
            let engine = open(data, now)?;
            let info = engine.snapshot()?;
            println!(
                "snapshot of the inventory after the log's first {} entries: {} ({} bytes, {} records, sha256 {}, logged as entry {})",
                info.covers,
                info.path.display(),
                info.bytes,
                info.records,
                info.digest,
                info.entry
            );
            Ok(())
        }
        AppointmentsCommand::Expire => {
            let engine = open(data, now)?;
            println!("{} holds and offers ended", engine.expire_holds()?);
            Ok(())
        }
    }
}

/// A clock at `now` (local) or at the real time; it does not advance during one command.
fn clock_at(now: Option<LocalTime>, zone: &Zone) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(match now {
        Some(t) => t.to_timestamp(zone),
        None => Timestamp::now(),
    }))
}

fn open(data: &Path, now: Option<LocalTime>) -> Result<Engine> {
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let (engine, report) = Engine::open(data, EngineOptions::default(), clock.clone())?;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(t) = now {
        clock.set(t.to_timestamp(&engine.schedule().zone));
    }
    Ok(engine)
}

/// An engine on CSV files alone, in memory, for `rebalance --clinics`.
fn offline(
    clinics: &Path,
    doctors: &Path,
    absences: Option<&Path>,
    requests: &Path,
    from: Option<String>,
    days: u32,
    now: Option<LocalTime>,
) -> Result<Engine> {
    let first = match from {
        Some(d) => parse_date("--from", &d)?,
        None => earliest_request(requests)?,
    };
    let zone = Zone::moscow();
    let input = ScheduleInput::read(clinics, doctors, first, days, zone.clone())?;
    let schedule = Arc::new(input.build()?);
    let clock = clock_at(Some(now.unwrap_or(first.start())), &zone);
    let engine = Engine::new(
        schedule,
        allot_engine::log::Digest::of(&input.to_blob()),
        Arc::new(allot_engine::appointments::DiscardSink),
        clock,
        EngineOptions::default(),
    );
    if let Some(path) = absences {
        for a in allot_engine::appointments::inputs::read_absences_file(path, engine.schedule())? {
            engine.mark_absence("cli", a.doctor, a.from, a.until)?;
        }
    }
    Ok(engine)
}

/// The earliest `earliest` date of a requests file (the horizon's default start).
fn earliest_request(path: &Path) -> Result<Date> {
    let table = Table::read(path)?;
    let column = table.column("earliest")?;
    let mut first: Option<Date> = None;
    table.for_each_row(|row| -> Result<(), allot_engine::input::InputError> {
        let text = row.text(column);
        let date = Date::parse(text).ok_or_else(|| {
            row.error(
                column,
                format!("expected a date YYYY-MM-DD, found '{text}'"),
            )
        })?;
        first = Some(first.map_or(date, |f| f.min(date)));
        Ok(())
    })?;
    first.ok_or_else(|| anyhow!("{}: has no requests", path.display()))
}

fn generate(
    out: &Path,
    scale: f64,
    seed: u64,
    requests: usize,
    absences: usize,
    from: Option<String>,
    days: u32,
) -> Result<()> {
    if !(scale > 0.0 && scale <= 4.0) {
        bail!("--scale: expected a number in (0, 4], found {scale}");
    }
    let first = match from {
        Some(d) => parse_date("--from", &d)?,
        None => LocalTime::from_timestamp(Timestamp::now(), &Zone::moscow()).date(),
    };
    let city = City::generate(&CitySpec {
        first_day: first,
        days,
        ..CitySpec::scaled(seed, scale)
    });
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let files = [
        ("clinics.csv", city.clinics_csv()),
        ("doctors.csv", city.doctors_csv()),
        ("absences.csv", city.absences_csv(seed, absences)),
        (
            "requests.csv",
            city.requests_csv(seed, requests, first, days.clamp(1, 7)),
        ),
    ];
    for (name, text) in files {
        write_file(&out.join(name), text.as_bytes())?;
    }
    println!(
        "wrote {} districts, {} clinics, {} doctors, {absences} absences and {requests} requests to {}",
        city.districts.len(),
        city.clinics.len(),
        city.doctors.len(),
        out.display()
    );
    Ok(())
}

/// Writes a file whole (a temporary name, then a rename), so no half file is left behind.
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// The loaded city and its slots by status, from the data folder or a server alike.
fn print_inventory(i: &pb::GetInventoryResponse, json: bool) {
    if json {
        let v = serde_json::json!({
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
        println!("{v}");
        return;
    }
    println!(
        "horizon      {} for {} days (UTC{})",
        i.first_day, i.days, i.utc_offset
    );
    println!(
        "city         {} districts, {} clinics, {} doctors ({})",
        i.districts,
        i.clinics,
        i.doctors,
        i.specialties.join(", ")
    );
    println!(
        "slots        {} free, {} busy-tentative, {} busy, {} busy-unavailable",
        i.free, i.busy_tentative, i.busy, i.busy_unavailable
    );
    println!(
        "memory       {:.1} MB, {:.2} bytes per slot",
        i.memory_bytes as f64 / 1e6,
        i.bytes_per_slot
    );
    println!("log          {} entries", i.log_entries);
    println!("schedule     {}", i.schedule_digest);
}

fn local(engine: &Engine, t: Timestamp) -> LocalTime {
    LocalTime::from_timestamp(t, &engine.schedule().zone)
}

fn proposals_text(engine: &Engine, proposals: &[Proposal]) -> String {
    let s = engine.schedule();
    let mut out = String::new();
    for (i, p) in proposals.iter().enumerate() {
        let clinic = &s.clinics[p.clinic.index()];
        let sc = &p.score;
        let _ = writeln!(
            out,
            "{}. {}  {} ({}) {}  score {:.2} = travel {:.2} ({:.1} km) + wait {:.2} ({} d) + load {:.2} ({:.0}% full){}",
            i + 1,
            engine.slot_id(p.slot),
            clinic.id,
            s.districts[clinic.district.index()].id,
            s.specialty_code(s.doctors[p.doctor.index()].specialty),
            sc.total,
            sc.travel,
            sc.travel_km,
            sc.wait,
            sc.wait_days,
            sc.load,
            100.0 * sc.utilisation,
            if sc.preference > 0.0 {
                format!(" - preferred {:.2}", sc.preference)
            } else {
                String::new()
            }
        );
    }
    out
}

fn proposal_json(engine: &Engine, p: &Proposal) -> serde_json::Value {
    let s = engine.schedule();
    serde_json::json!({
        "slot": engine.slot_id(p.slot),
        "status": "proposed",
        "clinic": &*s.clinics[p.clinic.index()].id,
        "doctor": &*s.doctors[p.doctor.index()].id,
        "start": p.start.to_string(),
        "score": {
            "total": p.score.total,
            "travel": p.score.travel,
            "travel_km": p.score.travel_km,
            "wait": p.score.wait,
            "wait_days": p.score.wait_days,
            "load": p.score.load,
            "utilisation": p.score.utilisation,
            "preference": p.score.preference,
        }
    })
}

/// Adds the fresh proposals of a "slot taken" answer to its message.
fn taken(engine: &Engine, e: Error) -> anyhow::Error {
    let alternatives = e.alternatives().to_vec();
    if alternatives.is_empty() {
        return flag(e);
    }
    anyhow!("{e}:\n{}", proposals_text(engine, &alternatives).trim_end())
}

/// Names a request field by its command-line flag.
fn flag(e: Error) -> anyhow::Error {
    match e {
        Error::BadRequest { field, problem } => {
            let name = match field {
                "attached" => "clinic",
                "preferred" => "prefer",
                other => other,
            };
            anyhow!("--{}: {problem}", name.replace('_', "-"))
        }
        other => other.into(),
    }
}

fn show(engine: &Engine, id: &str, json: bool) -> Result<()> {
    let s = engine.schedule();
    if let Ok(h) = id.parse::<HoldId>() {
        let v = engine
            .hold_info(h)
            .ok_or_else(|| anyhow!(Error::UnknownHold(id.to_owned())))?;
        if json {
            println!(
                "{}",
                serde_json::json!({"id": id, "status": "pending", "patient": v.patient,
                    "slot": engine.slot_id(v.slot), "expires": local(engine, v.expires).to_string()})
            );
        } else {
            println!("hold         {id} (pending)");
            println!("patient      {}", v.patient);
            println!(
                "slot         {}  {}",
                engine.slot_id(v.slot),
                s.describe(v.slot)
            );
            println!("expires      {}", local(engine, v.expires));
        }
        return Ok(());
    }
    let a = parse_appointment(id)?;
    let v = engine
        .appointment(a)
        .ok_or_else(|| anyhow!(Error::UnknownAppointment(id.to_owned())))?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "id": id,
                "status": v.status.fhir(),
                "patient": v.patient,
                "slot": engine.slot_id(v.slot),
                "slot_status": v.slot_status.fhir(),
                "offered": v.offered.map(|(slot, expires)| serde_json::json!({
                    "slot": engine.slot_id(slot), "expires": local(engine, expires).to_string()})),
            })
        );
        return Ok(());
    }
    println!("appointment  {id} ({})", v.status.fhir());
    println!("patient      {}", v.patient);
    println!(
        "slot         {}  {} (slot {})",
        engine.slot_id(v.slot),
        s.describe(v.slot),
        v.slot_status.fhir()
    );
    if let Some((slot, expires)) = v.offered {
        println!(
            "re-offered   {}  {} until {} (accept or cancel)",
            engine.slot_id(slot),
            s.describe(slot),
            local(engine, expires)
        );
    }
    Ok(())
}

fn write_plan(
    engine: &Engine,
    requests: &[Request],
    plan: &Plan,
    booked: Option<&[Option<AppointmentId>]>,
    options: &RebalanceOptions,
    out: &Path,
) -> Result<()> {
    let s = engine.schedule();
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
    if booked.is_some() {
        header.push("appointment");
    }
    let mut csv = CsvText::new(&header);
    for (i, (r, slot)) in requests.iter().zip(&plan.slots).enumerate() {
        let mut row = vec![r.id.clone(), r.patient.clone()];
        match slot {
            Some(x) => {
                let info = s.slot(*x);
                let dist = allot_engine::appointments::schedule::km(
                    s.districts[r.district.index()].centre,
                    s.clinics[info.clinic.index()].xy,
                );
                let wait = s.day_of(info.start) - s.day_of(r.earliest.start());
                row.extend([
                    s.clinics[info.clinic.index()].id.to_string(),
                    s.doctors[info.doctor.index()].id.to_string(),
                    engine.slot_id(*x),
                    info.start.to_string(),
                    format!("{dist:.2}"),
                    wait.to_string(),
                ]);
            }
            None => row.extend(std::iter::repeat_n(String::new(), 6)),
        }
        if let Some(b) = booked {
            row.push(b[i].map(|a| a.to_string()).unwrap_or_default());
        }
        csv.row(&row);
    }
    let csv = csv.finish();
    let outcome = |o: &Outcome| {
        serde_json::json!({
            "assigned": o.assigned,
            "unassigned": o.unassigned,
            "cost": o.cost,
            "mean_travel_km": o.mean_travel_km,
            "mean_wait_days": o.mean_wait_days,
            "p50_wait_days": o.p50_wait_days,
            "p95_wait_days": o.p95_wait_days,
            "max_wait_days": o.max_wait_days,
            "max_utilisation": o.max_utilisation,
            "mean_utilisation": o.mean_utilisation,
            "utilisation_spread": o.utilisation_spread,
        })
    };
    let summary = serde_json::json!({
        "requests": requests.len(),
        "groups": plan.groups,
        "network": {"nodes": plan.nodes, "arcs": plan.arcs},
        "cost": plan.optimal.cost,
        "optimal": outcome(&plan.optimal),
        "greedy": outcome(&plan.greedy),
        "parameters": {
            "travel_per_km": options.travel_per_km,
            "wait_per_day": options.wait_per_day,
            "tiers": options.tiers.iter().map(|(u, p)| serde_json::json!({"up_to": u, "points": p})).collect::<Vec<_>>(),
            "nearest": options.nearest,
            "unassigned": options.unassigned,
        },
        "booked": booked.map(|b| b.iter().flatten().count()),
        "solve_seconds": plan.solve_seconds,
        "seconds": plan.seconds,
    });
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    write_file(&out.join("assignment.csv"), csv.as_bytes())?;
    write_file(
        &out.join("summary.json"),
        format!("{}\n", serde_json::to_string_pretty(&summary)?).as_bytes(),
    )
}

fn parse_time(flag: &str, text: &str) -> Result<LocalTime> {
    LocalTime::parse(text).ok_or_else(|| {
        anyhow!("{flag}: expected a local time YYYY-MM-DDTHH:MM or a date, found '{text}'")
    })
}

fn parse_date(flag: &str, text: &str) -> Result<Date> {
    Date::parse(text).ok_or_else(|| anyhow!("{flag}: expected a date YYYY-MM-DD, found '{text}'"))
}

fn parse_location(text: &str) -> Result<Location> {
    let bad = || anyhow!("--home: expected LAT,LON in degrees, found '{text}'");
    let (lat, lon) = text.split_once(',').ok_or_else(bad)?;
    let lat: f64 = lat.trim().parse().map_err(|_| bad())?;
    let lon: f64 = lon.trim().parse().map_err(|_| bad())?;
    Ok(Location { lat, lon })
}

fn parse_hold(text: &str) -> Result<HoldId> {
    text.parse()
        .map_err(|()| anyhow!("expected a hold id such as h42, found '{text}'"))
}

fn parse_appointment(text: &str) -> Result<AppointmentId> {
    text.parse()
        .map_err(|()| anyhow!("expected an appointment id such as a17, found '{text}'"))
}

/// A hold's time to live: `90s`, `5m`, `1h30m`, `2d` (jiff's friendly format, or ISO 8601
/// `PT5M`; a day is 24 hours), from 1 second to 7 days.
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let span: jiff::Span = text
        .parse()
        .map_err(|e| format!("expected a duration such as 90s, 5m, 1h30m or 2d: {e}"))?;
    let parsed = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|_| {
            "give weeks, days, hours, minutes or seconds (a month or a year has no fixed length)"
                .to_owned()
        })?;
    let max = jiff::SignedDuration::from_hours(7 * 24);
    if parsed < jiff::SignedDuration::from_secs(1) || parsed > max {
        return Err(format!("must be from 1s to 7 days, found {parsed:#}"));
    }
    Duration::try_from(parsed).map_err(|e| e.to_string())
}

// --- Remote mode ---------------------------------------------------------------------------------

/// A local time of the city (remote mode reads times as Moscow time, UTC+03:00) as a timestamp.
fn remote_time(flag: &str, text: &str, end_of_day: bool) -> Result<prost_types::Timestamp> {
    let mut t = parse_time(flag, text)?;
    if end_of_day && text.len() == 10 {
        t = t.add_minutes(24 * 60);
    }
    let micros = t.to_timestamp(&Zone::moscow()).unix_micros();
    Ok(prost_types::Timestamp {
        seconds: (micros / 1_000_000) as i64,
        nanos: 0,
    })
}

fn remote_local(t: Option<&prost_types::Timestamp>) -> String {
    t.map_or_else(String::new, |t| {
        let micros = u64::try_from(t.seconds).unwrap_or(0) * 1_000_000;
        LocalTime::from_timestamp(Timestamp::from_unix_micros(micros), &Zone::moscow()).to_string()
    })
}

fn remote_patient(id: &str, home: Option<&str>, clinic: Option<&str>) -> Result<pb::Patient> {
    let home = home.map(parse_location).transpose()?.map(|l| pb::Location {
        lat: l.lat,
        lon: l.lon,
    });
    Ok(pb::Patient {
        id: id.to_owned(),
        home,
        attached_clinic: clinic.unwrap_or_default().to_owned(),
    })
}

/// Proposals as `find` prints them.
fn remote_proposals(proposals: &[pb::Proposal]) -> String {
    let mut out = String::new();
    for p in proposals {
        let (Some(slot), Some(sc)) = (&p.slot, &p.score) else {
            continue;
        };
        let _ = writeln!(
            out,
            "{}. {}  {} ({}) {}  score {:.2} = travel {:.2} ({:.1} km) + wait {:.2} ({} d) + load {:.2} ({:.0}% full){}",
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
            if sc.preference > 0.0 {
                format!(" - preferred {:.2}", sc.preference)
            } else {
                String::new()
            }
        );
    }
    out
}

/// A failed call; a taken slot lists the server's fresh proposals, as locally.
fn remote_error(status: tonic::Status) -> anyhow::Error {
    match slot_taken_detail(&status) {
        Some(taken) if !taken.alternatives.is_empty() => anyhow!(
            "{}:\n{}",
            status_error(status),
            remote_proposals(&taken.alternatives).trim_end()
        ),
        _ => status_error(status),
    }
}

fn fhir(status: i32) -> &'static str {
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

fn slot_fhir(status: i32) -> &'static str {
    match pb::SlotStatus::try_from(status) {
        Ok(pb::SlotStatus::Free) => "free",
        Ok(pb::SlotStatus::BusyTentative) => "busy-tentative",
        Ok(pb::SlotStatus::Busy) => "busy",
        Ok(pb::SlotStatus::BusyUnavailable) => "busy-unavailable",
        _ => "unknown",
    }
}

/// A call's answer, or its error as the CLI reports it.
fn call<T>(r: std::result::Result<tonic::Response<T>, tonic::Status>) -> Result<T> {
    r.map(tonic::Response::into_inner).map_err(remote_error)
}

fn run_remote(command: AppointmentsCommand, remote: &Remote) -> Result<()> {
    let mut c = remote.appointments();
    match command {
        AppointmentsCommand::Find {
            specialty,
            home,
            clinic,
            patient,
            from,
            until,
            count,
            prefer,
            json,
        } => {
            let request = pb::FindSlotsRequest {
                patient: Some(remote_patient(
                    patient.as_deref().unwrap_or("cli"),
                    home.as_deref(),
                    clinic.as_deref(),
                )?),
                specialty,
                window_start: from
                    .as_deref()
                    .map(|t| remote_time("--from", t, false))
                    .transpose()?,
                window_end: until
                    .as_deref()
                    .map(|t| remote_time("--until", t, false))
                    .transpose()?,
                count: u32::try_from(count).unwrap_or(u32::MAX),
                preferred_clinics: prefer,
            };
            let found = call(remote.run(c.find_slots(request)))?;
            if json {
                let list: Vec<_> = found
                    .proposals
                    .iter()
                    .filter_map(|p| {
                        let (slot, sc) = (p.slot.as_ref()?, p.score.as_ref()?);
                        Some(serde_json::json!({
                            "slot": slot.id,
                            "status": "proposed",
                            "clinic": slot.clinic,
                            "doctor": slot.doctor,
                            "start": remote_local(slot.start.as_ref()),
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
                        }))
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else if found.proposals.is_empty() {
                println!("no free slots match");
            } else {
                print!("{}", remote_proposals(&found.proposals));
            }
        }
        AppointmentsCommand::Hold { patient, slot, ttl } => {
            let hold = call(remote.run(c.hold_slot(pb::HoldSlotRequest {
                slot_id: slot,
                patient: Some(remote_patient(&patient, None, None)?),
                ttl: ttl.map(|d| prost_types::Duration {
                    seconds: d.as_secs() as i64,
                    nanos: 0,
                }),
                request_id: String::new(),
            })))?
            .hold
            .ok_or_else(|| anyhow!("the server answered no hold"))?;
            println!(
                "held {} as {} until {}",
                hold.slot.map(|s| s.id).unwrap_or_default(),
                hold.id,
                remote_local(hold.expires.as_ref())
            );
        }
        AppointmentsCommand::Book {
            hold,
            patient,
            slot,
        } => {
            let (target, patient) = match (hold, patient, slot) {
                (Some(h), _, _) => (pb::book_request::Target::HoldId(h), None),
                (None, Some(p), Some(s)) => (
                    pb::book_request::Target::SlotId(s),
                    Some(remote_patient(&p, None, None)?),
                ),
                _ => bail!("give --hold, or --patient and --slot"),
            };
            let a = call(remote.run(c.book(pb::BookRequest {
                target: Some(target),
                patient,
                request_id: String::new(),
            })))?
            .appointment
            .ok_or_else(|| anyhow!("the server answered no appointment"))?;
            println!(
                "booked {} as {}",
                a.slot.map(|s| s.id).unwrap_or_default(),
                a.id
            );
        }
        AppointmentsCommand::Cancel { appointment, by } => {
            let by = match by {
                By::Patient => pb::CancelledBy::Patient,
                By::Clinic => pb::CancelledBy::Clinic,
            };
            call(remote.run(c.cancel(pb::CancelRequest {
                appointment_id: appointment.clone(),
                cancelled_by: by as i32,
                request_id: String::new(),
            })))?;
            println!("cancelled {appointment}");
        }
        AppointmentsCommand::Status { json } => {
            let inventory = call(remote.run(c.get_inventory(pb::GetInventoryRequest {})))?;
            print_inventory(&inventory, json);
        }
        AppointmentsCommand::Release { hold } => {
            call(remote.run(c.release_hold(pb::ReleaseHoldRequest {
                hold_id: hold.clone(),
                request_id: String::new(),
            })))?;
            println!("released {hold}");
        }
        AppointmentsCommand::Accept { appointment } => {
            let before = call(remote.run(c.get_appointment(pb::GetAppointmentRequest {
                appointment_id: appointment.clone(),
            })))?
            .appointment
            .and_then(|a| a.slot)
            .map(|s| s.id)
            .unwrap_or_default();
            let a = call(remote.run(c.accept_offer(pb::AcceptOfferRequest {
                appointment_id: appointment,
                request_id: String::new(),
            })))?
            .appointment
            .ok_or_else(|| anyhow!("the server answered no appointment"))?;
            println!(
                "{} booked at {} (was {before})",
                a.id,
                a.slot.map(|s| s.id).unwrap_or_default()
            );
        }
        AppointmentsCommand::Attendance {
            appointment,
            status,
        } => {
            let attendance = match status {
                Visit::Fulfilled => pb::Attendance::Fulfilled,
                Visit::Noshow => pb::Attendance::Noshow,
            };
            call(remote.run(c.record_attendance(pb::RecordAttendanceRequest {
                appointment_id: appointment.clone(),
                attendance: attendance as i32,
                request_id: String::new(),
            })))?;
            println!("recorded {appointment}");
        }
        AppointmentsCommand::Reschedule {
            appointment,
            to,
            hold,
        } => {
            let before = call(remote.run(c.get_appointment(pb::GetAppointmentRequest {
                appointment_id: appointment.clone(),
            })))?
            .appointment
            .and_then(|a| a.slot)
            .map(|s| s.id)
            .unwrap_or_default();
            let target = match hold {
                Some(h) => pb::reschedule_request::Target::HoldId(h),
                None => pb::reschedule_request::Target::SlotId(to),
            };
            let a = call(remote.run(c.reschedule(pb::RescheduleRequest {
                appointment_id: appointment,
                target: Some(target),
                request_id: String::new(),
            })))?
            .appointment
            .ok_or_else(|| anyhow!("the server answered no appointment"))?;
            println!(
                "moved {} from {before} to {}",
                a.id,
                a.slot.map(|s| s.id).unwrap_or_default()
            );
        }
        AppointmentsCommand::Absence {
            doctor,
            from,
            until,
        } => {
            let out = call(remote.run(c.mark_absence(pb::MarkAbsenceRequest {
                doctor_id: doctor.clone(),
                from: Some(remote_time("--from", &from, false)?),
                until: Some(remote_time("--until", &until, true)?),
                request_id: String::new(),
            })))?;
            println!(
                "{doctor} absent from {from} until {until}: {} slots unavailable, {} patients re-offered, {} cancelled",
                out.unavailable_slots,
                out.re_offers.len(),
                out.cancelled_appointments.len()
            );
            for r in &out.re_offers {
                let offer = r.offer.as_ref();
                println!(
                    "  {}: {} -> offered {} (score {:.2})",
                    r.appointment_id,
                    r.from_slot,
                    offer.and_then(|o| o.slot.as_ref()).map_or("", |s| &s.id),
                    offer
                        .and_then(|o| o.score.as_ref())
                        .map_or(0.0, |s| s.total)
                );
            }
            for a in &out.cancelled_appointments {
                println!("  {a}: cancelled, no slot to offer");
            }
        }
        AppointmentsCommand::Show { id, json } => {
            if id.starts_with('h') {
                bail!("holds are shown only on the data folder (the API answers appointments)");
            }
            let a = call(remote.run(c.get_appointment(pb::GetAppointmentRequest {
                appointment_id: id.clone(),
            })))?
            .appointment
            .ok_or_else(|| anyhow!("the server answered no appointment"))?;
            let slot = a.slot.clone().unwrap_or_default();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "id": id,
                        "status": fhir(a.status),
                        "patient": a.patient_id,
                        "slot": slot.id,
                        "slot_status": slot_fhir(slot.status),
                        "offered": a.offered_slot.as_ref().map(|s| serde_json::json!({
                            "slot": s.id, "expires": remote_local(a.offer_expires.as_ref())})),
                    })
                );
            } else {
                println!("appointment  {id} ({})", fhir(a.status));
                println!("patient      {}", a.patient_id);
                println!(
                    "slot         {}  {} {} at {} (slot {})",
                    slot.id,
                    slot.specialty,
                    slot.doctor,
                    slot.clinic,
                    slot_fhir(slot.status)
                );
                if let Some(s) = &a.offered_slot {
                    println!(
                        "re-offered   {} until {} (accept or cancel)",
                        s.id,
                        remote_local(a.offer_expires.as_ref())
                    );
                }
            }
        }
        AppointmentsCommand::Rebalance {
            requests,
            clinics,
            out,
            book,
            ..
        } => {
            if clinics.is_some() {
                bail!("--clinics works on files alone: leave out --server");
            }
            let table = Table::read(&requests)?;
            let columns = [
                table.column("request")?,
                table.column("patient")?,
                table.column("district")?,
                table.column("specialty")?,
                table.column("earliest")?,
            ];
            let mut queue = Vec::new();
            table.for_each_row(|row| -> Result<(), allot_engine::input::InputError> {
                let [id, patient, district, specialty, earliest] =
                    columns.map(|c| row.text(c).to_owned());
                queue.push(pb::QueuedRequest {
                    id,
                    patient_id: patient,
                    district,
                    specialty,
                    earliest_day: earliest,
                });
                Ok(())
            })?;
            let n = queue.len();
            let answer = call(remote.run(c.rebalance(pb::RebalanceRequest {
                requests: queue,
                commit: book,
                request_id: String::new(),
            })))?;
            write_remote_plan(&answer, &out)?;
            let (o, g) = (
                answer.optimised.unwrap_or_default(),
                answer.greedy.unwrap_or_default(),
            );
            println!(
                "{n} requests: {} assigned, {} unassigned; cost {:.1} (greedy {:.1}); \
                 max utilisation {:.1}% (greedy {:.1}%); p95 wait {} days (greedy {}); solved in {:.3} s",
                answer.assignments.len(),
                answer.unassigned.len(),
                o.cost,
                g.cost,
                100.0 * o.max_utilisation,
                100.0 * g.max_utilisation,
                o.waiting_days_p95,
                g.waiting_days_p95,
                answer.solve_seconds
            );
            if book {
                println!(
                    "booked {}",
                    answer
                        .assignments
                        .iter()
                        .filter(|a| !a.appointment_id.is_empty())
                        .count()
                );
            }
            println!(
                "wrote {} and {}",
                out.join("assignment.csv").display(),
                out.join("summary.json").display()
            );
        }
        AppointmentsCommand::Load { .. }
        | AppointmentsCommand::Snapshot
        | AppointmentsCommand::Expire
        | AppointmentsCommand::Generate { .. } => bail!(
            "this command works only on the data folder (the API has no such call): leave out \
             --server (and ALLOT_SERVER)"
        ),
    }
    Ok(())
}

/// `assignment.csv` and `summary.json` of a remote re-balancing.
fn write_remote_plan(answer: &pb::RebalanceResponse, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut csv = CsvText::new(&[
        "request",
        "clinic",
        "doctor",
        "slot",
        "start",
        "appointment",
    ]);
    for a in &answer.assignments {
        let slot = a.slot.clone().unwrap_or_default();
        csv.row([
            a.request_id.as_str(),
            &slot.clinic,
            &slot.doctor,
            &slot.id,
            &remote_local(slot.start.as_ref()),
            &a.appointment_id,
        ]);
    }
    for id in &answer.unassigned {
        csv.row([id.as_str(), "", "", "", "", ""]);
    }
    let csv = csv.finish();
    write_file(&out.join("assignment.csv"), csv.as_bytes())?;
    let stats = |s: &Option<pb::RebalanceStats>| {
        let s = (*s).unwrap_or_default();
        serde_json::json!({
            "assigned": s.assigned,
            "cost": s.cost,
            "max_utilisation": s.max_utilisation,
            "utilisation_spread": s.utilisation_spread,
            "p50_wait_days": s.waiting_days_p50,
            "p95_wait_days": s.waiting_days_p95,
            "mean_travel_km": s.mean_travel_km,
        })
    };
    let summary = serde_json::json!({
        "requests": answer.assignments.len() + answer.unassigned.len(),
        "optimal": stats(&answer.optimised),
        "greedy": stats(&answer.greedy),
        "solve_seconds": answer.solve_seconds,
        "log": answer.log.as_ref().map(|l| serde_json::json!({"start": l.start, "end": l.end})),
    });
    write_file(
        &out.join("summary.json"),
        format!("{summary:#}\n").as_bytes(),
    )
}
