//! `allot appointments ...`: load a city's clinics and doctors into the data folder, then find,
//! hold, book, cancel, reschedule, mark absences, re-balance queued referrals and show
//! appointments. Every change is a decision in the data folder's log; each command rebuilds the
//! inventory from the log (and its latest snapshot) when it starts.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use allot_engine::appointments::inputs::{
    self, FILES_HELP, REQUEST_COLUMNS, earliest_request_day, read_request_rows,
};
use allot_engine::appointments::{Date, Error, LocalTime, Location, Zone};
use allot_engine::log::{Log, Timestamp};
use allot_service::proto::v1 as pb;
use allot_service::render::appointments as render;
use allot_service::server::appointments::timestamp;
use allot_service::server::city;
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};

use super::api::{self, Flag, Local, RemoteArgs, Session};
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

/// Who cancels (the values are the API's `CancelledBy`).
#[derive(Debug, Clone, Copy, ValueEnum)]
enum By {
    Patient = pb::CancelledBy::Patient as isize,
    Clinic = pb::CancelledBy::Clinic as isize,
}

/// How a visit ended (the values are the API's `Attendance`).
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Visit {
    Fulfilled = pb::Attendance::Fulfilled as isize,
    Noshow = pb::Attendance::Noshow as isize,
}

#[derive(Debug, Subcommand)]
enum AppointmentsCommand {
    /// Load a city's clinics, doctors (with weekly templates) and absences into the data folder.
    #[command(after_long_help = FILES_HELP)]
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
        #[arg(long, value_name = "DURATION", value_parser = inputs::parse_ttl)]
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
    #[command(after_long_help = FILES_HELP)]
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
    let actor = args.actor.as_str();
    let now = args
        .now
        .as_deref()
        .map(|t| parse_time("--now", t))
        .transpose()?;
    let on_folder = |folder: &Path, now, flags: &'static [Flag]| -> Result<Call> {
        if remote.server.is_none() && !Log::exists(folder) {
            bail!(Error::NotLoaded(folder.to_owned()));
        }
        let local = Local {
            appointments: Some(now),
            ..Local::write(actor)
        };
        let session = api::open(remote, folder, local)?
            .names(flags)
            .detail(render::alternatives);
        Ok(Call {
            session,
            zone: OnceCell::new(),
        })
    };
    let on_city = |flags| on_folder(data, now, flags);
    match args.command {
        AppointmentsCommand::Load {
            clinics,
            doctors,
            absences,
            from,
            days,
            time_zone,
        } => {
            remote.refuse("the server loads its own city")?;
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
            let files = city::CityFiles {
                clinics: &clinics,
                doctors: &doctors,
                absences: absences.as_deref(),
                first,
                days,
                zone,
            };
            print!("{}", render::loaded(&city::load(data, files, actor, now)?));
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
        } => {
            let first = from.map(|d| parse_date("--from", &d)).transpose()?;
            let city = city::generate(&out, (scale, seed, first, days), requests, absences)
                .map_err(anyhow::Error::msg)?;
            print!("{}", render::generated(&city, absences, requests, &out));
            Ok(())
        }
        AppointmentsCommand::Snapshot => {
            remote.refuse("a server snapshots its own inventory")?;
            print!(
                "{}",
                render::snapshot(
                    &city::open_engine(data, now, &mut |w| eprintln!("warning: {w}"))?
                        .snapshot()?
                )
            );
            Ok(())
        }
        AppointmentsCommand::Expire => {
            remote.refuse("a server expires holds by itself")?;
            let ended =
                city::open_engine(data, now, &mut |w| eprintln!("warning: {w}"))?.expire_holds()?;
            println!("{ended} holds and offers ended");
            Ok(())
        }
        AppointmentsCommand::Status { json } => {
            let call = on_city(&[])?;
            print!("{}", render::inventory(&call.inventory()?, json));
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
            let call = on_city(&[
                ("request.patient.home", "--home"),
                ("request.patient.attached_clinic", "--clinic"),
                ("request.patient.id", "--patient"),
                ("request.specialty", "--specialty"),
                ("request.window_start", "--from"),
                ("request.window_end", "--until"),
                ("request.count", "--count"),
                ("request.preferred_clinics", "--prefer"),
            ])?;
            let at =
                |flag, t: &Option<String>| t.as_deref().map(|t| call.timestamp(flag, t, false));
            let request = pb::FindSlotsRequest {
                // The API asks for a patient: without --patient, the asker (no appointments).
                patient: Some(patient_of(
                    patient.as_deref().unwrap_or(actor),
                    home,
                    clinic,
                )?),
                specialty,
                window_start: at("--from", &from).transpose()?,
                window_end: at("--until", &until).transpose()?,
                count: u32::try_from(count).unwrap_or(u32::MAX),
                preferred_clinics: prefer,
                ..Default::default()
            };
            let mut api = call.session.api().appointments();
            let found = call.session.call(api.find_slots(request))?;
            if json {
                let list: Vec<_> = found.proposals.iter().map(render::proposal_json).collect();
                println!("{}", serde_json::Value::Array(list));
            } else if found.proposals.is_empty() {
                println!("no free slots match");
            } else {
                print!("{}", render::proposals_text(&found.proposals));
            }
            Ok(())
        }
        AppointmentsCommand::Hold { patient, slot, ttl } => {
            let call = on_city(&[
                ("request.slot_id", "--slot"),
                ("request.patient", "--patient"),
                ("request.ttl", "--ttl"),
            ])?;
            let request = pb::HoldSlotRequest {
                slot_id: slot,
                patient: Some(patient_of(&patient, None, None)?),
                ttl: ttl.and_then(|d| prost_types::Duration::try_from(d).ok()),
                request_id: String::new(),
            };
            let mut api = call.session.api().appointments();
            let hold = call.session.call(api.hold_slot(request))?.hold;
            let hold = hold.context("the answer has no hold")?;
            println!(
                "held {} as {} until {}",
                render::slot_of(&hold.slot).id,
                hold.id,
                call.local(hold.expires.as_ref())?
            );
            Ok(())
        }
        AppointmentsCommand::Release { hold } => {
            let call = on_city(&[("request.hold_id", "")])?;
            let request = pb::ReleaseHoldRequest {
                hold_id: hold.clone(),
                request_id: String::new(),
            };
            let mut api = call.session.api().appointments();
            call.session.call(api.release_hold(request))?;
            println!("released {hold}");
            Ok(())
        }
        AppointmentsCommand::Book {
            hold,
            patient,
            slot,
        } => {
            let call = on_city(&[
                ("request.hold_id", "--hold"),
                ("request.slot_id", "--slot"),
                ("request.patient", "--patient"),
            ])?;
            let (target, patient) = match (hold, patient, slot) {
                (Some(h), _, _) => (pb::book_request::Target::HoldId(h), None),
                (None, Some(p), Some(s)) => (
                    pb::book_request::Target::SlotId(s),
                    Some(patient_of(&p, None, None)?),
                ),
                _ => bail!("give --hold, or --patient and --slot"),
            };
            let request = pb::BookRequest {
                target: Some(target),
                patient,
                request_id: String::new(),
            };
            let mut api = call.session.api().appointments();
            let booked = call.session.call(api.book(request))?.appointment;
            let booked = booked.context("the answer has no appointment")?;
            println!(
                "booked {} as {}",
                render::slot_of(&booked.slot).id,
                booked.id
            );
            Ok(())
        }
        AppointmentsCommand::Cancel { appointment, by } => {
            let call = on_city(POSITIONAL)?;
            let request = pb::CancelRequest {
                appointment_id: appointment.clone(),
                cancelled_by: by as i32,
                request_id: String::new(),
            };
            call.session
                .call(call.session.api().appointments().cancel(request))?;
            println!("cancelled {appointment}");
            Ok(())
        }
        AppointmentsCommand::Reschedule {
            appointment,
            to,
            hold,
        } => {
            let call = on_city(&[
                ("request.appointment_id", ""),
                ("request.slot_id", "--to"),
                ("request.hold_id", "--hold"),
            ])?;
            let target = match hold {
                Some(h) => pb::reschedule_request::Target::HoldId(h),
                None => pb::reschedule_request::Target::SlotId(to),
            };
            let request = pb::RescheduleRequest {
                appointment_id: appointment,
                target: Some(target),
                request_id: String::new(),
            };
            let mut api = call.session.api().appointments();
            let moved = call.session.call(api.reschedule(request))?;
            let now = moved.appointment.context("the answer has no appointment")?;
            println!(
                "moved {} from {} to {}",
                now.id,
                render::slot_of(&moved.previous_slot).id,
                render::slot_of(&now.slot).id
            );
            Ok(())
        }
        AppointmentsCommand::Accept { appointment } => {
            let call = on_city(POSITIONAL)?;
            let request = pb::AcceptOfferRequest {
                appointment_id: appointment,
                request_id: String::new(),
            };
            let mut api = call.session.api().appointments();
            let moved = call.session.call(api.accept_offer(request))?;
            let now = moved.appointment.context("the answer has no appointment")?;
            println!(
                "{} booked at {} (was {})",
                now.id,
                render::slot_of(&now.slot).id,
                render::slot_of(&moved.previous_slot).id
            );
            Ok(())
        }
        AppointmentsCommand::Attendance {
            appointment,
            status,
        } => {
            let call = on_city(POSITIONAL)?;
            let request = pb::RecordAttendanceRequest {
                appointment_id: appointment.clone(),
                attendance: status as i32,
                request_id: String::new(),
            };
            let mut api = call.session.api().appointments();
            call.session.call(api.record_attendance(request))?;
            println!("recorded {appointment}");
            Ok(())
        }
        AppointmentsCommand::Absence {
            doctor,
            from,
            until,
        } => {
            let call = on_city(&[
                ("request.doctor_id", "--doctor"),
                ("request.from", "--from"),
                ("request.until", "--until"),
            ])?;
            let from_t = call.timestamp("--from", &from, false)?;
            let until_t = call.timestamp("--until", &until, true)?;
            let request = pb::MarkAbsenceRequest {
                doctor_id: doctor.clone(),
                from: Some(from_t),
                until: Some(until_t),
                request_id: String::new(),
            };
            let mut api = call.session.api().appointments();
            let out = call.session.call(api.mark_absence(request))?;
            let (from, until) = (call.local(Some(&from_t))?, call.local(Some(&until_t))?);
            print!("{}", render::absence(&doctor, from, until, &out));
            Ok(())
        }
        AppointmentsCommand::Show { id, json } => {
            let call = on_city(&[("request.hold_id", ""), ("request.appointment_id", "")])?;
            show(&call, &id, json)
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
            // With --clinics: a city loaded from the files alone, in a folder that goes away.
            let scratch;
            let call = match (clinics, doctors) {
                (Some(clinics), Some(doctors)) => {
                    remote.refuse("--clinics works on files alone")?;
                    let first = match from {
                        Some(d) => parse_date("--from", &d)?,
                        None => earliest_request_day(&requests)?,
                    };
                    scratch = tempfile::tempdir().context("creating a scratch folder")?;
                    let files = city::CityFiles {
                        clinics: &clinics,
                        doctors: &doctors,
                        absences: absences.as_deref(),
                        first,
                        days,
                        zone: Zone::moscow(),
                    };
                    let at = Some(now.unwrap_or(first.start()));
                    drop(city::load(scratch.path(), files, actor, at)?);
                    on_folder(scratch.path(), at, &[])?
                }
                _ => on_city(&[])?,
            };
            let (queue, lines) = read_queue(&requests)?;
            let request = pb::RebalanceRequest {
                requests: queue,
                commit: book,
                request_id: String::new(),
                nearest_clinics: u32::try_from(nearest).unwrap_or(u32::MAX),
            };
            let mut api = call.session.api().appointments();
            let answer = call.session.run(api.rebalance(request));
            let answer = answer
                .map(tonic::Response::into_inner)
                .map_err(|status| queue_error(&call.session, status, &requests, &lines))?;
            let zone = call.zone()?;
            write_plan(&answer, &requests, book, &out, &zone)?;
            println!("{}", render::rebalance_line(&answer));
            if book {
                println!("booked {}", render::booked_count(&answer));
            }
            println!(
                "wrote {} and {}",
                out.join("assignment.csv").display(),
                out.join("summary.json").display()
            );
            Ok(())
        }
    }
}

/// Request fields named by the appointment id a command takes as its argument.
const POSITIONAL: &[Flag] = &[("request.appointment_id", "")];

/// A command's session, and the city's time zone once asked.
struct Call {
    session: Session,
    zone: OnceCell<Zone>,
}

impl Call {
    fn inventory(&self) -> Result<pb::GetInventoryResponse> {
        let mut api = self.session.api().appointments();
        Ok(self
            .session
            .call(api.get_inventory(pb::GetInventoryRequest {}))?)
    }

    /// The city's time zone (the API's times are instants; the command line's are local).
    fn zone(&self) -> Result<Zone> {
        if let Some(zone) = self.zone.get() {
            return Ok(zone.clone());
        }
        let name = self.inventory()?.time_zone;
        let zone = Zone::parse(&name)
            .with_context(|| format!("the answer names an unknown time zone '{name}'"))?;
        Ok(self.zone.get_or_init(|| zone).clone())
    }

    /// A local time (or a date: its start, or with `end_of_day` its end) as an instant.
    fn timestamp(
        &self,
        flag: &str,
        text: &str,
        end_of_day: bool,
    ) -> Result<prost_types::Timestamp> {
        let mut t = parse_time(flag, text)?;
        if end_of_day && text.len() == 10 {
            t = t.add_minutes(24 * 60);
        }
        Ok(timestamp(t.to_timestamp(&self.zone()?)))
    }

    /// An instant in the city's local time.
    fn local(&self, t: Option<&prost_types::Timestamp>) -> Result<LocalTime> {
        Ok(render::local_time(t, &self.zone()?))
    }
}

fn patient_of(id: &str, home: Option<String>, clinic: Option<String>) -> Result<pb::Patient> {
    let home = home.as_deref().map(parse_location).transpose()?;
    Ok(pb::Patient {
        id: id.to_owned(),
        home: home.map(|l| pb::Location {
            lat: l.lat,
            lon: l.lon,
        }),
        attached_clinic: clinic.unwrap_or_default(),
    })
}

/// `show`: an appointment (aN) or a hold (hN).
fn show(call: &Call, id: &str, json: bool) -> Result<()> {
    let mut api = call.session.api().appointments();
    let text = if id.starts_with('h') {
        let request = pb::GetHoldRequest {
            hold_id: id.to_owned(),
        };
        let hold = call.session.call(api.get_hold(request))?.hold;
        render::hold(
            &hold.context("the answer has no hold")?,
            &call.zone()?,
            json,
        )
    } else {
        let request = pb::GetAppointmentRequest {
            appointment_id: id.to_owned(),
        };
        let a = call.session.call(api.get_appointment(request))?.appointment;
        render::appointment(
            &a.context("the answer has no appointment")?,
            &call.zone()?,
            json,
        )
    };
    print!("{text}");
    Ok(())
}

/// The referrals of `requests.csv` as sent, and each one's line in the file.
fn read_queue(path: &Path) -> Result<(Vec<pb::QueuedRequest>, Vec<u64>)> {
    let rows = read_request_rows(path)?;
    let lines = rows.iter().map(|r| r.line).collect();
    Ok((allot_service::rpc::queue(rows), lines))
}

/// The fields of `QueuedRequest`, in the order of [`REQUEST_COLUMNS`].
const QUEUED_FIELDS: [&str; 5] = ["id", "patient_id", "district", "specialty", "earliest_day"];

/// A refused re-balancing: a referral's field is named by its file, line and column.
fn queue_error(
    session: &Session,
    status: tonic::Status,
    path: &Path,
    lines: &[u64],
) -> anyhow::Error {
    use tonic_types::StatusExt as _;
    let violation = (!session.is_remote())
        .then(|| status.get_details_bad_request())
        .flatten()
        .and_then(|b| b.field_violations.into_iter().next());
    let at = violation.as_ref().and_then(|v| {
        let rest = v.field.strip_prefix("request.requests[")?;
        let (index, field) = rest.split_once("].")?;
        let line = lines.get(index.parse::<usize>().ok()?)?;
        let column = REQUEST_COLUMNS[QUEUED_FIELDS.iter().position(|f| *f == field)?];
        Some(format!(
            "{}:{line}: {column}: {}",
            path.display(),
            v.description
        ))
    });
    match at {
        Some(text) => anyhow!(text),
        None => session.error(status).into(),
    }
}

/// `assignment.csv` (in the order of the requests) and `summary.json` of a re-balancing.
fn write_plan(
    answer: &pb::RebalanceResponse,
    requests: &Path,
    booked: bool,
    out: &Path,
    zone: &Zone,
) -> Result<()> {
    let (queue, _) = read_queue(requests)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let csv = render::plan_csv(answer, &queue, booked, zone);
    allot_service::process::write_whole(&out.join("assignment.csv"), csv.as_bytes())?;
    let summary = render::plan_summary(answer, booked);
    let text = format!("{}\n", serde_json::to_string_pretty(&summary)?);
    Ok(allot_service::process::write_whole(
        &out.join("summary.json"),
        text.as_bytes(),
    )?)
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
    Location::parse(text)
        .with_context(|| format!("--home: expected LAT,LON in degrees, found '{text}'"))
}
