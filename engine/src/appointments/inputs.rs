//! The appointment CSV inputs, read through [`crate::input::Table`] so every problem names the
//! file, the line and the field. Headers (column order is free; extra columns are ignored):
//!
//! - `clinics.csv`: `clinic,district,lat,lon` — ids, the district's id, the location in degrees.
//! - `doctors.csv`: `doctor,clinic,specialty,minutes,schedule` — `minutes` per visit may be empty
//!   (or the column absent) for the specialties of order 290n (therapist 15, gp 18, neurologist
//!   22, ent 16, ophthalmologist 14); `schedule` is the weekly template, e.g.
//!   `mon-fri 08:00-12:00 12:30-16:30; sat 09:00-13:00` (days: `mon`..`sun`, ranges `mon-fri`,
//!   lists `mon,wed` in a quoted field; each interval is cut into visits, a remainder shorter than
//!   a visit is unused).
//! - `absences.csv`: `doctor,from,until` — local `YYYY-MM-DDTHH:MM` times (`until` exclusive), or
//!   dates: a `from` date is the start of that day, an `until` date the end of that day.
//! - `requests.csv`: `request,patient,district,specialty,earliest` — queued referrals for batch
//!   re-balancing; `earliest` is the first acceptable day (`YYYY-MM-DD`); waiting is counted from it.

use std::collections::HashMap;
use std::path::Path;

use super::schedule::{
    ClinicRow, DistrictRef, DoctorRef, DoctorRow, Location, Schedule, SpecialtyRef, Week,
    standard_minutes,
};
use super::time::{Date, LocalTime, Zone, parse_clock};
use crate::input::{InputError, Table, clip};
use crate::log::codec::{Canonical, DecodeError, Reader, Writer};

/// Shortest and longest visit accepted, in minutes.
pub const VISIT_MINUTES: std::ops::RangeInclusive<u16> = 5..=240;

/// Everything a schedule is built from: the horizon and the two CSV files, kept as given so the
/// same bytes can be stored, digested and rebuilt from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleInput {
    pub first_day: Date,
    pub days: u32,
    pub zone: Zone,
    /// File names for error messages (not part of the canonical bytes).
    pub clinics_name: String,
    pub clinics_csv: Vec<u8>,
    pub doctors_name: String,
    pub doctors_csv: Vec<u8>,
}

const BLOB_MAGIC: &str = "allot appointments schedule v1";

impl ScheduleInput {
    /// Reads the two files (nothing is checked until [`ScheduleInput::build`]).
    pub fn read(
        clinics: &Path,
        doctors: &Path,
        first_day: Date,
        days: u32,
        zone: Zone,
    ) -> Result<ScheduleInput, InputError> {
        let read = |p: &Path| {
            std::fs::read(p)
                .map_err(|e| InputError::file(p.display().to_string(), format!("cannot read: {e}")))
        };
        Ok(ScheduleInput {
            first_day,
            days,
            zone,
            clinics_name: clinics.display().to_string(),
            clinics_csv: read(clinics)?,
            doctors_name: doctors.display().to_string(),
            doctors_csv: read(doctors)?,
        })
    }

    /// Validates both files and builds the schedule.
    pub fn build(&self) -> Result<Schedule, InputError> {
        let clinics = read_clinics(&Table::from_bytes(
            &self.clinics_name,
            self.clinics_csv.clone(),
        )?)?;
        let index: HashMap<&str, usize> = clinics
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.as_str(), i))
            .collect();
        let doctors = read_doctors(
            &Table::from_bytes(&self.doctors_name, self.doctors_csv.clone())?,
            &index,
        )?;
        Schedule::build(
            self.first_day,
            self.days,
            self.zone.clone(),
            &clinics,
            &doctors,
        )
        .map_err(|e| {
            let name = match e {
                super::schedule::ScheduleError::NoClinics => &self.clinics_name,
                _ => &self.doctors_name,
            };
            InputError::file(name, e.to_string())
        })
    }

    /// The canonical bytes stored in the blob store and digested into `ScheduleLoaded`.
    pub fn to_blob(&self) -> Vec<u8> {
        let mut w = Writer::new();
        BLOB_MAGIC.to_owned().encode(&mut w);
        self.first_day.to_string().encode(&mut w);
        self.days.encode(&mut w);
        self.zone.to_string().encode(&mut w);
        w.bytes(&self.clinics_csv);
        w.bytes(&self.doctors_csv);
        w.into_bytes()
    }

    /// Decodes [`ScheduleInput::to_blob`]'s bytes; a problem is described in the error.
    pub fn from_blob(bytes: &[u8]) -> Result<ScheduleInput, String> {
        let mut r = Reader::new(bytes);
        let e = |e: DecodeError| e.to_string();
        let magic = r.str("magic").map_err(e)?;
        if magic != BLOB_MAGIC {
            return Err(format!("not a schedule input (starts with {magic:?})"));
        }
        let first_day = r.str("first_day").map_err(e)?;
        let first_day = Date::parse(first_day).ok_or(format!("bad first day {first_day:?}"))?;
        let days = r.u32("days").map_err(e)?;
        let zone = r.str("zone").map_err(e)?;
        let zone = Zone::parse(zone).ok_or(format!("bad time zone {zone:?}"))?;
        let clinics_csv = r.bytes("clinics").map_err(e)?.to_vec();
        let doctors_csv = r.bytes("doctors").map_err(e)?.to_vec();
        r.finish("schedule").map_err(e)?;
        Ok(ScheduleInput {
            first_day,
            days,
            zone,
            clinics_name: "clinics.csv".into(),
            clinics_csv,
            doctors_name: "doctors.csv".into(),
            doctors_csv,
        })
    }
}

pub fn read_clinics(table: &Table) -> Result<Vec<ClinicRow>, InputError> {
    let id = table.column("clinic")?;
    let district = table.column("district")?;
    let lat = table.column("lat")?;
    let lon = table.column("lon")?;
    let mut out = Vec::with_capacity(table.count_rows());
    let mut seen = HashMap::new();
    // Ids are checked for repeats after the loop (the rows borrow nothing from the table).
    table.for_each_row(|row| -> Result<(), InputError> {
        let clinic = row.id(id)?;
        let district_id = row.id(district)?;
        let la: f64 = row.parse(lat, "a latitude in degrees")?;
        let lo: f64 = row.parse(lon, "a longitude in degrees")?;
        if !(-90.0..=90.0).contains(&la) {
            return Err(row.error(lat, format!("latitude {la} is outside -90..90")));
        }
        if !(-180.0..=180.0).contains(&lo) {
            return Err(row.error(lon, format!("longitude {lo} is outside -180..180")));
        }
        out.push((
            row.line(),
            ClinicRow {
                id: clinic.to_owned(),
                district: district_id.to_owned(),
                location: Location { lat: la, lon: lo },
            },
        ));
        Ok(())
    })?;
    for (line, c) in &out {
        if let Some(first) = seen.insert(c.id.as_str(), *line) {
            return Err(InputError::at(
                table.name(),
                *line,
                "clinic",
                format!(
                    "clinic '{}' appears twice (first at line {first})",
                    clip(&c.id)
                ),
            ));
        }
    }
    if out.is_empty() {
        return Err(InputError::file(table.name(), "has no clinics"));
    }
    Ok(out.into_iter().map(|(_, c)| c).collect())
}

pub fn read_doctors(
    table: &Table,
    clinics: &HashMap<&str, usize>,
) -> Result<Vec<DoctorRow>, InputError> {
    let id = table.column("doctor")?;
    let clinic = table.column("clinic")?;
    let specialty = table.column("specialty")?;
    let minutes = table.optional_column("minutes");
    let schedule = table.column("schedule")?;
    let mut out = Vec::with_capacity(table.count_rows());
    let mut lines: HashMap<String, u64> = HashMap::with_capacity(table.count_rows());
    table.for_each_row(|row| -> Result<(), InputError> {
        let doctor = row.id(id)?;
        if let Some(first) = lines.insert(doctor.to_owned(), row.line()) {
            return Err(row.error(
                id,
                format!(
                    "doctor '{}' appears twice (first at line {first})",
                    clip(doctor)
                ),
            ));
        }
        let clinic_id = row.id(clinic)?;
        let Some(&c) = clinics.get(clinic_id) else {
            return Err(row.error(
                clinic,
                format!("no clinic '{}' in the clinics file", clip(clinic_id)),
            ));
        };
        let spec = row.id(specialty)?;
        let given = match minutes {
            Some(col) => row
                .parse_optional::<u16>(col, "minutes per visit")?
                .map(|m| (col, m)),
            None => None,
        };
        let visit = match given {
            Some((col, m)) => {
                if !VISIT_MINUTES.contains(&m) {
                    return Err(row.error(
                        col,
                        format!(
                            "{m} minutes per visit is outside {}..{}",
                            VISIT_MINUTES.start(),
                            VISIT_MINUTES.end()
                        ),
                    ));
                }
                m
            }
            None => standard_minutes(spec).ok_or_else(|| {
                let problem = format!(
                    "no standard minutes per visit for specialty '{}': give them in 'minutes'",
                    clip(spec)
                );
                match minutes {
                    Some(m) => row.error(m, problem),
                    None => row.error(specialty, problem),
                }
            })?,
        };
        let week = parse_week(row.text(schedule)).map_err(|p| row.error(schedule, p))?;
        out.push(DoctorRow {
            id: doctor.to_owned(),
            clinic: super::schedule::ClinicRef(c as u32),
            specialty: spec.to_owned(),
            minutes: visit,
            week,
        });
        Ok(())
    })?;
    Ok(out)
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn weekday(name: &str) -> Result<usize, String> {
    WEEKDAYS
        .iter()
        .position(|d| d.eq_ignore_ascii_case(name))
        .ok_or_else(|| format!("'{}' is not a day (mon, tue, ..., sun)", clip(name)))
}

/// `mon-fri 08:00-12:00 12:30-16:30; sat 09:00-13:00`.
pub fn parse_week(text: &str) -> Result<Week, String> {
    if text.trim().is_empty() {
        return Err("empty, expected a weekly schedule such as 'mon-fri 08:00-14:00'".into());
    }
    let mut week = Week::default();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let mut tokens = part.split_whitespace();
        let days_text = tokens.next().unwrap_or_default();
        let mut days = [false; 7];
        for item in days_text.split(',') {
            match item.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (weekday(a)?, weekday(b)?);
                    if a > b {
                        return Err(format!(
                            "day range '{}' runs backwards (write it as two ranges)",
                            clip(item)
                        ));
                    }
                    days[a..=b].iter_mut().for_each(|d| *d = true);
                }
                None => days[weekday(item)?] = true,
            }
        }
        let mut any = false;
        for interval in tokens {
            any = true;
            let (a, b) = interval.split_once('-').ok_or_else(|| {
                format!("'{}' is not a time interval HH:MM-HH:MM", clip(interval))
            })?;
            let bad = || format!("'{}' is not a time interval HH:MM-HH:MM", clip(interval));
            let (a, b) = (
                parse_clock(a).ok_or_else(bad)?,
                parse_clock(b).ok_or_else(bad)?,
            );
            if a >= b {
                return Err(format!(
                    "interval '{}' ends before it starts",
                    clip(interval)
                ));
            }
            for (w, on) in days.iter().enumerate() {
                if *on {
                    week.0[w].push((a as u16, b as u16));
                }
            }
        }
        if !any {
            return Err(format!("'{}' names days but no hours", clip(part)));
        }
    }
    for (w, intervals) in week.0.iter_mut().enumerate() {
        intervals.sort_unstable();
        for pair in intervals.windows(2) {
            if pair[1].0 < pair[0].1 {
                let show = |(a, b): (u16, u16)| {
                    format!(
                        "{}-{}",
                        super::time::format_clock(a.into()),
                        super::time::format_clock(b.into())
                    )
                };
                return Err(format!(
                    "{}: {} overlaps {}",
                    WEEKDAYS[w],
                    show(pair[0]),
                    show(pair[1])
                ));
            }
        }
    }
    Ok(week)
}

/// A doctor's absence as read from `absences.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsenceRow {
    pub line: u64,
    pub doctor: DoctorRef,
    pub from: LocalTime,
    pub until: LocalTime,
}

pub fn read_absences(table: &Table, schedule: &Schedule) -> Result<Vec<AbsenceRow>, InputError> {
    let doctor = table.column("doctor")?;
    let from = table.column("from")?;
    let until = table.column("until")?;
    let mut out = Vec::new();
    table.for_each_row(|row| -> Result<(), InputError> {
        let id = row.id(doctor)?;
        let d = schedule.doctor(id).ok_or_else(|| {
            row.error(
                doctor,
                format!("no doctor '{}' in the doctors file", clip(id)),
            )
        })?;
        let what = "a local time YYYY-MM-DDTHH:MM or a date YYYY-MM-DD";
        let f: LocalTimeField = row.parse(from, what)?;
        let u: LocalTimeField = row.parse(until, what)?;
        let until_time = if u.date_only {
            u.time.add_minutes(super::time::MINUTES_PER_DAY)
        } else {
            u.time
        };
        if until_time <= f.time {
            return Err(row.error(
                until,
                format!("{} is not after from ({})", row.text(until), row.text(from)),
            ));
        }
        out.push(AbsenceRow {
            line: row.line(),
            doctor: d,
            from: f.time,
            until: until_time,
        });
        Ok(())
    })?;
    Ok(out)
}

/// A local time field, remembering whether it was a bare date.
#[derive(Debug, Clone, Copy)]
struct LocalTimeField {
    time: LocalTime,
    date_only: bool,
}

impl std::str::FromStr for LocalTimeField {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(LocalTimeField {
            time: LocalTime::parse(s).ok_or(())?,
            date_only: s.len() == 10,
        })
    }
}

/// A queued referral as read from `requests.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: String,
    pub patient: String,
    pub district: DistrictRef,
    pub specialty: SpecialtyRef,
    /// First acceptable day.
    pub earliest: Date,
}

/// Checks one referral against the schedule (its identifiers already checked as such): the
/// `requests.csv` column at fault and the problem, or the referral. The CSV reader and the API's
/// `Rebalance` both check referrals with it.
pub fn check_request(
    schedule: &Schedule,
    id: &str,
    patient: &str,
    district: &str,
    specialty: &str,
    earliest: &str,
) -> Result<Request, (&'static str, String)> {
    let district_ref = schedule.district(district).ok_or_else(|| {
        let problem = format!("no district '{}' in the clinics file", clip(district));
        ("district", problem)
    })?;
    let specialty_ref = schedule.specialty(specialty).ok_or_else(|| {
        let problem = format!(
            "no doctor of specialty '{}' in the doctors file",
            clip(specialty)
        );
        ("specialty", problem)
    })?;
    let earliest = match Date::parse(earliest) {
        Some(day) => day,
        None if earliest.is_empty() => {
            return Err(("earliest", "empty, expected a date YYYY-MM-DD".to_owned()));
        }
        None => {
            let problem = format!("expected a date YYYY-MM-DD, found '{}'", clip(earliest));
            return Err(("earliest", problem));
        }
    };
    Ok(Request {
        id: id.to_owned(),
        patient: patient.to_owned(),
        district: district_ref,
        specialty: specialty_ref,
        earliest,
    })
}

pub fn read_requests(table: &Table, schedule: &Schedule) -> Result<Vec<Request>, InputError> {
    let id = table.column("request")?;
    let patient = table.column("patient")?;
    let district = table.column("district")?;
    let specialty = table.column("specialty")?;
    let earliest = table.column("earliest")?;
    let mut out = Vec::with_capacity(table.count_rows());
    let mut seen: HashMap<String, u64> = HashMap::with_capacity(table.count_rows());
    table.for_each_row(|row| -> Result<(), InputError> {
        let request = row.id(id)?;
        if let Some(first) = seen.insert(request.to_owned(), row.line()) {
            return Err(row.error(
                id,
                format!(
                    "request '{}' appears twice (first at line {first})",
                    clip(request)
                ),
            ));
        }
        let (p, d, s) = (row.id(patient)?, row.id(district)?, row.id(specialty)?);
        let checked = check_request(schedule, request, p, d, s, row.text(earliest));
        let at_fault = |field| match field {
            "district" => district,
            "specialty" => specialty,
            _ => earliest,
        };
        out.push(checked.map_err(|(field, problem)| row.error(at_fault(field), problem))?);
        Ok(())
    })?;
    Ok(out)
}

/// Reads `absences.csv` from a path.
pub fn read_absences_file(path: &Path, schedule: &Schedule) -> Result<Vec<AbsenceRow>, InputError> {
    read_absences(&Table::read(path)?, schedule)
}

/// The input files and their columns, as the CLI's help shows them.
pub const FILES_HELP: &str = "\
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

/// The columns of `requests.csv`.
pub const REQUEST_COLUMNS: [&str; 5] = ["request", "patient", "district", "specialty", "earliest"];

/// A row of `requests.csv` as written, not yet checked against a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    /// The row's line in the file.
    pub line: u64,
    pub request: String,
    pub patient: String,
    pub district: String,
    pub specialty: String,
    pub earliest: String,
}

/// The rows of a `requests.csv`, each with its line (for a caller that has them checked
/// elsewhere, e.g. by a server, and names a refused field by its file, line and column).
pub fn read_request_rows(path: &Path) -> Result<Vec<RequestRow>, InputError> {
    request_rows(&Table::read(path)?)
}

/// [`read_request_rows`] of a table already read (an upload).
pub fn request_rows(table: &Table) -> Result<Vec<RequestRow>, InputError> {
    let columns = REQUEST_COLUMNS.map(|column| table.column(column));
    let [request, patient, district, specialty, earliest] = columns;
    let [request, patient, district, specialty, earliest] =
        [request?, patient?, district?, specialty?, earliest?];
    let mut rows = Vec::with_capacity(table.count_rows());
    table.for_each_row(|row| -> Result<(), InputError> {
        rows.push(RequestRow {
            line: row.line(),
            request: row.text(request).to_owned(),
            patient: row.text(patient).to_owned(),
            district: row.text(district).to_owned(),
            specialty: row.text(specialty).to_owned(),
            earliest: row.text(earliest).to_owned(),
        });
        Ok(())
    })?;
    Ok(rows)
}

/// The earliest `earliest` day of a requests file: where a horizon for it starts by default.
pub fn earliest_request_day(path: &Path) -> Result<Date, InputError> {
    let table = Table::read(path)?;
    let column = table.column("earliest")?;
    let mut first: Option<Date> = None;
    table.for_each_row(|row| -> Result<(), InputError> {
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
    first.ok_or_else(|| InputError::file(path.display().to_string(), "has no requests"))
}

/// Reads `requests.csv` from a path.
pub fn read_requests_file(path: &Path, schedule: &Schedule) -> Result<Vec<Request>, InputError> {
    read_requests(&Table::read(path)?, schedule)
}

/// A hold's time to live: `90s`, `5m`, `1h30m`, `2d` (jiff's friendly format, or ISO 8601
/// `PT5M`; a day is 24 hours), from 1 second to 7 days.
pub fn parse_ttl(text: &str) -> Result<std::time::Duration, String> {
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
    std::time::Duration::try_from(parsed).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLINICS: &str = "clinic,district,lat,lon\nc1,north,55.80,37.60\nc2,south,55.70,37.60\n";
    const DOCTORS: &str = "doctor,clinic,specialty,minutes,schedule\n\
                           d1,c1,therapist,,mon-fri 08:00-09:00\n\
                           d2,c2,surgeon,30,\"mon,wed 10:00-11:00 12:00-13:00; sat 09:00-10:00\"\n";

    fn input(clinics: &str, doctors: &str) -> ScheduleInput {
        ScheduleInput {
            first_day: Date::parse("2025-03-03").unwrap(),
            days: 7,
            zone: Zone::moscow(),
            clinics_name: "clinics.csv".into(),
            clinics_csv: clinics.as_bytes().to_vec(),
            doctors_name: "doctors.csv".into(),
            doctors_csv: doctors.as_bytes().to_vec(),
        }
    }

    /// Builds the schedule from `files` (clinics, doctors, then optionally absences and
    /// requests) and renders what was read, or the first error.
    fn check(files: &[&str], expect: &str) {
        let got = (|| -> Result<String, InputError> {
            let schedule = input(files[0], files[1]).build()?;
            let mut out = format!(
                "clinics={} doctors={} slots={}",
                schedule.clinics.len(),
                schedule.doctors.len(),
                schedule.slot_count()
            );
            if let Some(a) = files.get(2) {
                let table = Table::from_bytes("absences.csv", a.as_bytes().to_vec())?;
                for row in read_absences(&table, &schedule)? {
                    out += &format!(
                        " absent:{}:{}..{}",
                        schedule.doctors[row.doctor.index()].id,
                        row.from,
                        row.until
                    );
                }
            }
            if let Some(r) = files.get(3) {
                let table = Table::from_bytes("requests.csv", r.as_bytes().to_vec())?;
                for q in read_requests(&table, &schedule)? {
                    out += &format!(" request:{}:{}", q.id, schedule.specialty_code(q.specialty));
                }
            }
            Ok(out)
        })()
        .unwrap_or_else(|e| e.to_string());
        assert_eq!(got, expect, "files: {files:?}");
    }

    #[test]
    fn good_inputs_build_a_schedule() {
        // d1: 4 therapist visits of 15 min, Mon-Fri in the 7 days = 20; d2: 4 half-hour
        // visits on Monday and Wednesday, 2 on Saturday = 10.
        check(&[CLINICS, DOCTORS], "clinics=2 doctors=2 slots=30");
        check(
            &[
                CLINICS,
                DOCTORS,
                "doctor,from,until\nd1,2025-03-04,2025-03-05\nd2,2025-03-03T10:00,2025-03-03T10:30\n",
                "request,patient,district,specialty,earliest\nr1,p1,north,surgeon,2025-03-03\n",
            ],
            "clinics=2 doctors=2 slots=30 absent:d1:2025-03-04T00:00..2025-03-06T00:00 \
             absent:d2:2025-03-03T10:00..2025-03-03T10:30 request:r1:surgeon",
        );
        // The minutes column may be left out entirely for standard specialties.
        check(
            &[
                CLINICS,
                "doctor,clinic,specialty,schedule\nd1,c1,gp,sun 08:00-09:48\n",
            ],
            "clinics=2 doctors=1 slots=6",
        );
    }

    #[test]
    fn bad_inputs_name_file_line_and_field() {
        let d = "doctor,clinic,specialty,minutes,schedule\n";
        check(
            &["clinic,district,lat\nc1,n,55\n", DOCTORS],
            "clinics.csv:1: lon: missing column (the header has: clinic,district,lat)",
        );
        check(
            &["clinic,district,lat,lon\nc1,n,95,37\n", DOCTORS],
            "clinics.csv:2: lat: latitude 95 is outside -90..90",
        );
        check(
            &["clinic,district,lat,lon\nc1,n,55,east\n", DOCTORS],
            "clinics.csv:2: lon: expected a longitude in degrees, found 'east'",
        );
        check(
            &["clinic,district,lat,lon\nc1,n,55,37\nc1,s,55,37\n", DOCTORS],
            "clinics.csv:3: clinic: clinic 'c1' appears twice (first at line 2)",
        );
        check(
            &["clinic,district,lat,lon\n", DOCTORS],
            "clinics.csv: has no clinics",
        );
        check(
            &[CLINICS, &format!("{d}d1,c9,gp,,mon 08:00-09:00\n")],
            "doctors.csv:2: clinic: no clinic 'c9' in the clinics file",
        );
        check(
            &[
                CLINICS,
                &format!("{d}d1,c1,gp,,mon 08:00-09:00\nd1,c2,gp,,mon 08:00-09:00\n"),
            ],
            "doctors.csv:3: doctor: doctor 'd1' appears twice (first at line 2)",
        );
        check(
            &[CLINICS, &format!("{d}d1,c1,surgeon,,mon 08:00-09:00\n")],
            "doctors.csv:2: minutes: no standard minutes per visit for specialty 'surgeon': \
             give them in 'minutes'",
        );
        check(
            &[CLINICS, &format!("{d}d1,c1,gp,300,mon 08:00-09:00\n")],
            "doctors.csv:2: minutes: 300 minutes per visit is outside 5..240",
        );
        check(
            &[CLINICS, &format!("{d}d1,c1,gp,x,mon 08:00-09:00\n")],
            "doctors.csv:2: minutes: expected minutes per visit, found 'x'",
        );
        check(
            &[CLINICS, &format!("{d}d1,c1,gp,,\n")],
            "doctors.csv:2: schedule: empty, expected a weekly schedule such as \
             'mon-fri 08:00-14:00'",
        );
        check(
            &[CLINICS, &format!("{d}d1,c1,gp,,mon-fry 08:00-09:00\n")],
            "doctors.csv:2: schedule: 'fry' is not a day (mon, tue, ..., sun)",
        );
        check(
            &[CLINICS, &format!("{d}d1,c1,gp,,fri-mon 08:00-09:00\n")],
            "doctors.csv:2: schedule: day range 'fri-mon' runs backwards (write it as two ranges)",
        );
        check(
            &[CLINICS, &format!("{d}d1,c1,gp,,mon 8:00-09:00\n")],
            "doctors.csv:2: schedule: '8:00-09:00' is not a time interval HH:MM-HH:MM",
        );
        check(
            &[CLINICS, &format!("{d}d1,c1,gp,,mon 10:00-09:00\n")],
            "doctors.csv:2: schedule: interval '10:00-09:00' ends before it starts",
        );
        check(
            &[CLINICS, &format!("{d}d1,c1,gp,,mon\n")],
            "doctors.csv:2: schedule: 'mon' names days but no hours",
        );
        check(
            &[
                CLINICS,
                &format!("{d}d1,c1,gp,,mon 08:00-12:00; mon-tue 11:00-13:00\n"),
            ],
            "doctors.csv:2: schedule: mon: 08:00-12:00 overlaps 11:00-13:00",
        );
        check(
            &[
                CLINICS,
                DOCTORS,
                "doctor,from,until\nd9,2025-03-04,2025-03-05\n",
            ],
            "absences.csv:2: doctor: no doctor 'd9' in the doctors file",
        );
        check(
            &[
                CLINICS,
                DOCTORS,
                "doctor,from,until\nd1,2025-03-04T10:00,2025-03-04T09:00\n",
            ],
            "absences.csv:2: until: 2025-03-04T09:00 is not after from (2025-03-04T10:00)",
        );
        check(
            &[
                CLINICS,
                DOCTORS,
                "doctor,from,until\nd1,2025-02-30,2025-03-04\n",
            ],
            "absences.csv:2: from: expected a local time YYYY-MM-DDTHH:MM or a date \
             YYYY-MM-DD, found '2025-02-30'",
        );
        let r = "request,patient,district,specialty,earliest\n";
        check(
            &[
                CLINICS,
                DOCTORS,
                "doctor,from,until\n",
                &format!("{r}r1,p1,west,gp,2025-03-03\n"),
            ],
            "requests.csv:2: district: no district 'west' in the clinics file",
        );
        check(
            &[
                CLINICS,
                DOCTORS,
                "doctor,from,until\n",
                &format!("{r}r1,p1,north,gp,2025-03-03\n"),
            ],
            "requests.csv:2: specialty: no doctor of specialty 'gp' in the doctors file",
        );
        check(
            &[
                CLINICS,
                DOCTORS,
                "doctor,from,until\n",
                &format!("{r}r1,p1,north,therapist,2025-03-03\nr1,p2,north,therapist,2025-03-03\n"),
            ],
            "requests.csv:3: request: request 'r1' appears twice (first at line 2)",
        );
        check(
            &[
                CLINICS,
                DOCTORS,
                "doctor,from,until\n",
                &format!("{r}r1,p1,north,therapist,03.03.2025\n"),
            ],
            "requests.csv:2: earliest: expected a date YYYY-MM-DD, found '03.03.2025'",
        );
    }

    #[test]
    fn the_blob_round_trips() {
        let i = input(CLINICS, DOCTORS);
        let back = ScheduleInput::from_blob(&i.to_blob()).unwrap();
        assert_eq!(back, i);
        let mut bytes = i.to_blob();
        bytes.push(0);
        assert!(ScheduleInput::from_blob(&bytes).is_err());
    }
}
