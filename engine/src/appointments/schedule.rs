//! The city's fixed structure: clinics, districts, specialties, doctors with their weekly
//! templates, and the slot layout over the planning horizon.
//!
//! Slots are implicit: doctor `d`'s slots on horizon day `j` are the consecutive numbers
//! `day_base[d * days + j] ..` in time order, and a slot's start comes from the doctor's
//! (interned) template for that weekday. So 12 million slots cost 4 bytes per doctor-day here,
//! plus the one status byte per slot in the inventory.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use super::nearest::NearestGrid;
use super::time::{Date, LocalTime, Zone, format_clock};

/// Minutes per visit by specialty under the federal order 290n, used when `doctors.csv` leaves
/// `minutes` empty.
pub const STANDARD_MINUTES: &[(&str, u16)] = &[
    ("therapist", 15),
    ("gp", 18),
    ("neurologist", 22),
    ("ent", 16),
    ("ophthalmologist", 14),
];

/// The standard minutes per visit of a specialty, if it has one.
pub fn standard_minutes(specialty: &str) -> Option<u16> {
    STANDARD_MINUTES
        .iter()
        .find(|(s, _)| *s == specialty)
        .map(|&(_, m)| m)
}

/// Longest planning horizon, in days.
pub const MAX_HORIZON_DAYS: u32 = 366;
/// Most specialties in one city (a specialty is a byte in the inventory's indexes).
pub const MAX_SPECIALTIES: usize = 255;

macro_rules! index_type {
    ($(#[$meta:meta])* $name:ident($inner:ty)) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $inner);

        impl $name {
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}

index_type!(
    /// A clinic, numbered from 0 in the order of `clinics.csv`.
    ClinicRef(u32)
);
index_type!(
    /// A district, numbered from 0 in order of first appearance in `clinics.csv`.
    DistrictRef(u32)
);
index_type!(
    /// A doctor, numbered from 0 in the order of `doctors.csv`.
    DoctorRef(u32)
);
index_type!(
    /// A specialty, numbered from 0 in order of first appearance in `doctors.csv`.
    SpecialtyRef(u8)
);
index_type!(
    /// A slot of the horizon (see the module docs for the numbering). Valid for the schedule
    /// that made it (from `parse_slot`, a proposal or an answer); ids from outside go through
    /// `parse_slot`, since methods given another schedule's numbers may panic.
    SlotRef(u32)
);

/// A point on the map, in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
}

impl Location {
    /// `LAT,LON` in degrees.
    pub fn parse(text: &str) -> Option<Location> {
        let (lat, lon) = text.split_once(',')?;
        let (lat, lon) = (lat.trim().parse().ok()?, lon.trim().parse().ok()?);
        Some(Location { lat, lon })
    }
}

/// Planar kilometres around a city's reference point (equirectangular: within 0.5% over a
/// city's extent), so that distances are a subtraction and a square root.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projection {
    lat0: f64,
    lon0: f64,
    km_per_lon: f64,
}

const KM_PER_LAT_DEGREE: f64 = 110.574;

impl Projection {
    pub fn around(lat0: f64, lon0: f64) -> Self {
        Projection {
            lat0,
            lon0,
            km_per_lon: 111.320 * lat0.to_radians().cos(),
        }
    }

    pub fn project(&self, at: Location) -> (f32, f32) {
        (
            ((at.lon - self.lon0) * self.km_per_lon) as f32,
            ((at.lat - self.lat0) * KM_PER_LAT_DEGREE) as f32,
        )
    }
}

/// Kilometres between two projected points.
pub fn km(a: (f32, f32), b: (f32, f32)) -> f32 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

/// A doctor's slots on one day: `first..first + n` where `n` is the length of his day's
/// [`Schedule::day_starts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoctorDay {
    pub doctor: DoctorRef,
    pub first: u32,
    template: u32,
}

#[derive(Debug, Clone)]
pub struct Clinic {
    pub id: Box<str>,
    pub district: DistrictRef,
    pub location: Location,
    /// Projected kilometres.
    pub xy: (f32, f32),
}

#[derive(Debug, Clone)]
pub struct District {
    pub id: Box<str>,
    /// The mean projected location of its clinics: where batch re-balancing measures travel from.
    pub centre: (f32, f32),
    pub clinics: Vec<ClinicRef>,
}

#[derive(Debug, Clone)]
pub struct Doctor {
    pub id: Box<str>,
    pub clinic: ClinicRef,
    pub specialty: SpecialtyRef,
    /// Minutes per visit.
    pub minutes: u16,
    template: u32,
}

/// A weekly template as written: intervals `[start, end)` in minutes since midnight, per weekday
/// (0 = Monday), sorted and disjoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Week(pub [Vec<(u16, u16)>; 7]);

/// A template expanded for one visit length: slot start minutes per weekday.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    starts: [Vec<u16>; 7],
}

impl Template {
    fn expand(week: &Week, minutes: u16) -> Template {
        let starts = std::array::from_fn(|w| {
            let mut out = Vec::new();
            for &(start, end) in &week.0[w] {
                let mut t = start;
                while t + minutes <= end {
                    out.push(t);
                    t += minutes;
                }
            }
            out
        });
        Template { starts }
    }
}

/// One doctor as read from `doctors.csv` (the clinic already resolved).
#[derive(Debug, Clone)]
pub struct DoctorRow {
    pub id: String,
    pub clinic: ClinicRef,
    pub specialty: String,
    pub minutes: u16,
    pub week: Week,
}

/// One clinic as read from `clinics.csv`.
#[derive(Debug, Clone)]
pub struct ClinicRow {
    pub id: String,
    pub district: String,
    pub location: Location,
}

/// Where and when a slot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotInfo {
    pub doctor: DoctorRef,
    pub clinic: ClinicRef,
    pub specialty: SpecialtyRef,
    /// Day of the horizon, from 0.
    pub day: u32,
    /// Start, in local time.
    pub start: LocalTime,
    pub minutes: u16,
}

impl SlotInfo {
    pub fn end(&self) -> LocalTime {
        self.start.add_minutes(i64::from(self.minutes))
    }

    pub fn overlaps(&self, other: &SlotInfo) -> bool {
        self.start < other.end() && other.start < self.end()
    }
}

/// Why a schedule cannot be built (beyond the per-row checks of the CSV reader).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("the horizon must be 1 to {MAX_HORIZON_DAYS} days, not {0}")]
    Horizon(u32),
    #[error("more than {MAX_SPECIALTIES} specialties")]
    TooManySpecialties,
    #[error("the schedule has {0} slots over the horizon, more than the 4,294,967,294 supported")]
    TooManySlots(u64),
    #[error("no clinics")]
    NoClinics,
    #[error(
        "{clinics} clinics x {specialties} specialties x {days} days need more load counters \
         than the {MAX_COUNTERS} supported"
    )]
    TooManyCounters {
        clinics: usize,
        specialties: usize,
        days: u32,
    },
}

/// Most (clinic, specialty, day) counters (4 bytes each).
pub const MAX_COUNTERS: usize = 1 << 27;

/// The immutable structure of a city's appointment inventory.
#[derive(Debug)]
pub struct Schedule {
    pub first_day: Date,
    pub days: u32,
    pub zone: Zone,
    pub projection: Projection,
    pub clinics: Vec<Clinic>,
    pub districts: Vec<District>,
    /// Specialty codes (`therapist`, ...).
    pub specialties: Vec<Box<str>>,
    pub doctors: Vec<Doctor>,
    templates: Vec<Template>,
    clinic_index: HashMap<Box<str>, ClinicRef>,
    district_index: HashMap<Box<str>, DistrictRef>,
    doctor_index: HashMap<Box<str>, DoctorRef>,
    specialty_index: HashMap<Box<str>, SpecialtyRef>,
    /// First slot of each (doctor, day), doctor-major, plus the total at the end.
    day_base: Vec<u32>,
    /// Doctors of each (clinic, specialty): `cs_doctors[cs_start[k]..cs_start[k + 1]]`.
    cs_start: Vec<u32>,
    cs_doctors: Vec<DoctorRef>,
    /// Each (clinic, specialty, day)'s doctors and their first slots that day, adjacent in
    /// memory (day-major within a clinic and specialty): `$find` reads one clinic-day at a time.
    cs_days: Vec<DoctorDay>,
    /// Per specialty, the clinics that have doctors of it, by location.
    specialty_clinics: Vec<NearestGrid<ClinicRef>>,
}

impl Schedule {
    /// Builds the layout. Rows were validated by the reader (ids unique, clinics known, times in
    /// range).
    pub fn build(
        first_day: Date,
        days: u32,
        zone: Zone,
        clinic_rows: &[ClinicRow],
        doctor_rows: &[DoctorRow],
    ) -> Result<Schedule, ScheduleError> {
        if days == 0 || days > MAX_HORIZON_DAYS {
            return Err(ScheduleError::Horizon(days));
        }
        if clinic_rows.is_empty() {
            return Err(ScheduleError::NoClinics);
        }
        let n = clinic_rows.len() as f64;
        let lat0 = clinic_rows.iter().map(|c| c.location.lat).sum::<f64>() / n;
        let lon0 = clinic_rows.iter().map(|c| c.location.lon).sum::<f64>() / n;
        let projection = Projection::around(lat0, lon0);

        let mut districts: Vec<District> = Vec::new();
        let mut district_index: HashMap<Box<str>, DistrictRef> = HashMap::new();
        let mut clinics = Vec::with_capacity(clinic_rows.len());
        let mut clinic_index = HashMap::with_capacity(clinic_rows.len());
        for (i, row) in clinic_rows.iter().enumerate() {
            let district = *district_index
                .entry(row.district.as_str().into())
                .or_insert_with(|| {
                    districts.push(District {
                        id: row.district.as_str().into(),
                        centre: (0.0, 0.0),
                        clinics: Vec::new(),
                    });
                    DistrictRef(districts.len() as u32 - 1)
                });
            let c = ClinicRef(i as u32);
            districts[district.index()].clinics.push(c);
            clinic_index.insert(row.id.as_str().into(), c);
            clinics.push(Clinic {
                id: row.id.as_str().into(),
                district,
                location: row.location,
                xy: projection.project(row.location),
            });
        }
        for d in &mut districts {
            let k = d.clinics.len() as f32;
            let (sx, sy) = d.clinics.iter().fold((0.0, 0.0), |(x, y), c| {
                (x + clinics[c.index()].xy.0, y + clinics[c.index()].xy.1)
            });
            d.centre = (sx / k, sy / k);
        }

        let mut specialties: Vec<Box<str>> = Vec::new();
        let mut specialty_index: HashMap<Box<str>, SpecialtyRef> = HashMap::new();
        let mut templates: Vec<Template> = Vec::new();
        let mut template_index: HashMap<(&Week, u16), u32> = HashMap::new();
        let mut doctors = Vec::with_capacity(doctor_rows.len());
        let mut doctor_index = HashMap::with_capacity(doctor_rows.len());
        for (i, row) in doctor_rows.iter().enumerate() {
            let specialty = match specialty_index.get(row.specialty.as_str()) {
                Some(&s) => s,
                None => {
                    if specialties.len() >= MAX_SPECIALTIES {
                        return Err(ScheduleError::TooManySpecialties);
                    }
                    let s = SpecialtyRef(specialties.len() as u8);
                    specialties.push(row.specialty.as_str().into());
                    specialty_index.insert(row.specialty.as_str().into(), s);
                    s
                }
            };
            let template = *template_index
                .entry((&row.week, row.minutes))
                .or_insert_with(|| {
                    templates.push(Template::expand(&row.week, row.minutes));
                    templates.len() as u32 - 1
                });
            doctor_index.insert(row.id.as_str().into(), DoctorRef(i as u32));
            doctors.push(Doctor {
                id: row.id.as_str().into(),
                clinic: row.clinic,
                specialty,
                minutes: row.minutes,
                template,
            });
        }

        let mut day_base = Vec::with_capacity(doctors.len() * days as usize + 1);
        let mut total: u64 = 0;
        for doctor in &doctors {
            let t = &templates[doctor.template as usize];
            for j in 0..days {
                day_base.push(total as u32);
                total += t.starts[first_day.add_days(j as i32).weekday()].len() as u64;
                if total >= u64::from(u32::MAX) {
                    return Err(ScheduleError::TooManySlots(total));
                }
            }
        }
        day_base.push(total as u32);

        let s_count = specialties.len().max(1);
        if clinics
            .len()
            .saturating_mul(s_count)
            .saturating_mul(days as usize)
            > MAX_COUNTERS
        {
            return Err(ScheduleError::TooManyCounters {
                clinics: clinics.len(),
                specialties: s_count,
                days,
            });
        }
        let mut order: Vec<DoctorRef> = (0..doctors.len() as u32).map(DoctorRef).collect();
        order.sort_by_key(|d| {
            let doc = &doctors[d.index()];
            (doc.clinic, doc.specialty, *d)
        });
        let mut cs_start = vec![0u32; clinics.len() * s_count + 1];
        for d in &order {
            let doc = &doctors[d.index()];
            cs_start[doc.clinic.index() * s_count + doc.specialty.index() + 1] += 1;
        }
        for k in 0..clinics.len() * s_count {
            cs_start[k + 1] += cs_start[k];
        }
        // Block of (clinic, specialty) k: days × n_k entries from cs_start[k] × days.
        let mut cs_days = Vec::with_capacity(order.len() * days as usize);
        for k in 0..clinics.len() * s_count {
            let group = &order[cs_start[k] as usize..cs_start[k + 1] as usize];
            for day in 0..days as usize {
                cs_days.extend(group.iter().map(|&doctor| DoctorDay {
                    doctor,
                    first: day_base[doctor.index() * days as usize + day],
                    template: doctors[doctor.index()].template,
                }));
            }
        }
        let mut specialty_clinics = vec![Vec::new(); specialties.len()];
        for c in 0..clinics.len() {
            for (s, list) in specialty_clinics.iter_mut().enumerate() {
                let k = c * s_count + s;
                if cs_start[k + 1] > cs_start[k] {
                    list.push(ClinicRef(c as u32));
                }
            }
        }
        let specialty_clinics = specialty_clinics
            .into_iter()
            .map(|list: Vec<ClinicRef>| {
                NearestGrid::new(list.iter().map(|&c| (clinics[c.index()].xy, c)).collect())
            })
            .collect();
        Ok(Schedule {
            first_day,
            days,
            zone,
            projection,
            clinics,
            districts,
            specialties,
            doctors,
            templates,
            clinic_index,
            district_index,
            doctor_index,
            specialty_index,
            day_base,
            cs_start,
            cs_doctors: order,
            cs_days,
            specialty_clinics,
        })
    }

    pub fn slot_count(&self) -> u32 {
        self.day_base.last().copied().unwrap_or(0)
    }

    pub fn clinic(&self, id: &str) -> Option<ClinicRef> {
        self.clinic_index.get(id).copied()
    }

    pub fn district(&self, id: &str) -> Option<DistrictRef> {
        self.district_index.get(id).copied()
    }

    pub fn doctor(&self, id: &str) -> Option<DoctorRef> {
        self.doctor_index.get(id).copied()
    }

    pub fn specialty(&self, code: &str) -> Option<SpecialtyRef> {
        self.specialty_index.get(code).copied()
    }

    pub fn specialty_code(&self, s: SpecialtyRef) -> &str {
        &self.specialties[s.index()]
    }

    /// The horizon's days as a range of local times.
    pub fn horizon(&self) -> Range<LocalTime> {
        self.first_day.start()..self.first_day.add_days(self.days as i32).start()
    }

    /// The horizon day of a local time (negative before the horizon).
    pub fn day_of(&self, t: LocalTime) -> i64 {
        i64::from(t.date().0) - i64::from(self.first_day.0)
    }

    pub fn date(&self, day: u32) -> Date {
        self.first_day.add_days(day as i32)
    }

    /// Slots of `doctor` on horizon day `day`, in time order.
    pub fn doctor_day(&self, doctor: DoctorRef, day: u32) -> Range<u32> {
        let k = doctor.index() * self.days as usize + day as usize;
        self.day_base[k]..self.day_base[k + 1]
    }

    /// All slots of `doctor`.
    pub fn doctor_slots(&self, doctor: DoctorRef) -> Range<u32> {
        let k = doctor.index() * self.days as usize;
        self.day_base[k]..self.day_base[k + self.days as usize]
    }

    /// Start minute (since midnight) of the `k`-th slot of `doctor` on `day`.
    pub fn start_minute(&self, doctor: DoctorRef, day: u32, k: u32) -> u16 {
        let t = &self.templates[self.doctors[doctor.index()].template as usize];
        t.starts[self.date(day).weekday()][k as usize]
    }

    /// The doctors of a specialty at a clinic.
    pub fn clinic_doctors(&self, clinic: ClinicRef, specialty: SpecialtyRef) -> &[DoctorRef] {
        let k = clinic.index() * self.specialties.len().max(1) + specialty.index();
        &self.cs_doctors[self.cs_start[k] as usize..self.cs_start[k + 1] as usize]
    }

    /// The doctors of a specialty at a clinic on horizon day `day`, with their first slots.
    pub fn clinic_day(&self, clinic: ClinicRef, specialty: SpecialtyRef, day: u32) -> &[DoctorDay] {
        let k = clinic.index() * self.specialties.len().max(1) + specialty.index();
        let (start, end) = (self.cs_start[k] as usize, self.cs_start[k + 1] as usize);
        let n = end - start;
        let at = start * self.days as usize + day as usize * n;
        &self.cs_days[at..at + n]
    }

    /// Start minutes (since midnight) of a doctor's slots on a day of the week (0 = Monday):
    /// slot `first + k` of a [`DoctorDay`] on such a day starts at minute `[k]`.
    pub fn day_starts(&self, doctor_day: &DoctorDay, weekday: usize) -> &[u16] {
        &self.templates[doctor_day.template as usize].starts[weekday]
    }

    /// The `k` clinics with doctors of `specialty` nearest to `at` (projected), nearest first,
    /// ties by clinic; all of them when `k` is 0.
    pub fn nearest_clinics(
        &self,
        specialty: SpecialtyRef,
        at: (f32, f32),
        k: usize,
    ) -> Vec<(ClinicRef, f32)> {
        let grid = &self.specialty_clinics[specialty.index()];
        let k = if k == 0 { grid.len() } else { k };
        grid.nearest(at, k)
    }

    /// Where and when a slot is.
    pub fn slot(&self, slot: SlotRef) -> SlotInfo {
        let days = self.days as usize;
        // The last doctor whose first slot is at or before `slot` (a doctor without slots shares
        // his first slot with the next one, so the last such doctor is the slot's).
        let (mut lo, mut hi) = (0usize, self.doctors.len());
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if self.day_base[mid * days] <= slot.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        self.slot_of_doctor(DoctorRef(lo as u32), slot)
    }

    fn slot_of_doctor(&self, doctor: DoctorRef, slot: SlotRef) -> SlotInfo {
        let days = self.days as usize;
        let base = &self.day_base[doctor.index() * days..doctor.index() * days + days + 1];
        let day = base.partition_point(|&b| b <= slot.0).saturating_sub(1);
        let k = slot.0 - base[day];
        let doc = &self.doctors[doctor.index()];
        let minute = self.start_minute(doctor, day as u32, k);
        SlotInfo {
            doctor,
            clinic: doc.clinic,
            specialty: doc.specialty,
            day: day as u32,
            start: self.date(day as u32).start().add_minutes(i64::from(minute)),
            minutes: doc.minutes,
        }
    }

    /// The slot id `DOCTOR@YYYY-MM-DDTHH:MM` (local time).
    pub fn slot_id(&self, slot: SlotRef) -> String {
        let info = self.slot(slot);
        format!("{}@{}", self.doctors[info.doctor.index()].id, info.start)
    }

    /// The slot a slot id names, if it is one of this schedule's.
    pub fn parse_slot(&self, id: &str) -> Option<SlotRef> {
        let (doctor, time) = id.rsplit_once('@')?;
        let doctor = self.doctor(doctor)?;
        let start = LocalTime::parse(time)?;
        self.slot_at(doctor, start)
    }

    /// The slot of `doctor` starting at `start`, if there is one.
    pub fn slot_at(&self, doctor: DoctorRef, start: LocalTime) -> Option<SlotRef> {
        let day = u32::try_from(self.day_of(start)).ok()?;
        if day >= self.days {
            return None;
        }
        let t = &self.templates[self.doctors[doctor.index()].template as usize];
        let minute = u16::try_from(start.minute_of_day()).ok()?;
        let k = t.starts[start.date().weekday()]
            .binary_search(&minute)
            .ok()?;
        Some(SlotRef(self.doctor_day(doctor, day).start + k as u32))
    }

    /// Slots of `doctor` overlapping `[from, until)`.
    pub fn doctor_slots_between(
        &self,
        doctor: DoctorRef,
        from: LocalTime,
        until: LocalTime,
    ) -> Vec<SlotRef> {
        let minutes = i64::from(self.doctors[doctor.index()].minutes);
        let first = self.day_of(from).max(0);
        let last = self.day_of(until).min(i64::from(self.days) - 1);
        let mut out = Vec::new();
        for day in first..=last {
            let day = day as u32;
            let midnight = self.date(day).start();
            for (k, slot) in self.doctor_day(doctor, day).enumerate() {
                let start =
                    midnight.add_minutes(i64::from(self.start_minute(doctor, day, k as u32)));
                if start < until && start.add_minutes(minutes) > from {
                    out.push(SlotRef(slot));
                }
            }
        }
        out
    }

    /// A human-readable summary of a slot: `clinic, doctor (specialty), date time`.
    pub fn describe(&self, slot: SlotRef) -> String {
        let i = self.slot(slot);
        format!(
            "{} {} ({}) {} {}",
            self.clinics[i.clinic.index()].id,
            self.doctors[i.doctor.index()].id,
            self.specialties[i.specialty.index()],
            i.start.date(),
            format_clock(i.start.minute_of_day())
        )
    }

    /// Bytes of memory the layout uses (for the memory report).
    pub fn layout_bytes(&self) -> usize {
        self.day_base.len() * 4
            + self.cs_start.len() * 4
            + self.cs_doctors.len() * 4
            + self.cs_days.len() * size_of::<DoctorDay>()
            + self
                .specialty_clinics
                .iter()
                .map(NearestGrid::bytes)
                .sum::<usize>()
            + self.doctors.len() * (size_of::<Doctor>() + 24)
            + self.clinics.len() * (size_of::<Clinic>() + 24)
            + self
                .templates
                .iter()
                .map(|t| t.starts.iter().map(|s| s.len() * 2 + 24).sum::<usize>())
                .sum::<usize>()
    }
}

impl fmt::Display for SlotRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::generate::{City, CitySpec};
    use super::*;

    #[test]
    fn every_slot_round_trips_through_its_id() {
        let city = City::generate(&CitySpec::scaled(4, 0.002));
        let s = city.input().build().unwrap();
        assert!(s.slot_count() > 1000);
        let mut last: Option<SlotInfo> = None;
        for n in 0..s.slot_count() {
            let slot = SlotRef(n);
            let id = s.slot_id(slot);
            assert_eq!(s.parse_slot(&id), Some(slot), "{id}");
            let info = s.slot(slot);
            // Within a doctor, slots run forward in time without overlapping.
            if let Some(prev) = last.filter(|p| p.doctor == info.doctor) {
                assert!(prev.end() <= info.start, "{id}");
            }
            assert_eq!(s.doctors[info.doctor.index()].clinic, info.clinic);
            last = Some(info);
        }
        assert_eq!(s.parse_slot("V00001@2025-03-03T08:01"), None);
        assert_eq!(s.parse_slot("nobody@2025-03-03T08:00"), None);
        assert_eq!(s.parse_slot("V00001@2025-04-03T08:00"), None);
        assert_eq!(s.parse_slot("V00001"), None);
    }

    #[test]
    fn clinic_days_list_each_doctors_slots_as_the_slot_layout_does() {
        let city = City::generate(&CitySpec::scaled(4, 0.002));
        let s = city.input().build().unwrap();
        let mut listed = 0;
        for c in 0..s.clinics.len() as u32 {
            for sp in 0..s.specialties.len() as u8 {
                let (clinic, specialty) = (ClinicRef(c), SpecialtyRef(sp));
                let doctors = s.clinic_doctors(clinic, specialty);
                for day in 0..s.days {
                    let got = s.clinic_day(clinic, specialty, day);
                    assert_eq!(got.len(), doctors.len());
                    for (dd, &doctor) in got.iter().zip(doctors) {
                        assert_eq!(dd.doctor, doctor);
                        let slots = s.doctor_day(doctor, day);
                        let starts = s.day_starts(dd, s.date(day).weekday());
                        assert_eq!(dd.first, slots.start);
                        assert_eq!(starts.len(), slots.len());
                        for (k, slot) in slots.enumerate() {
                            let info = s.slot(SlotRef(slot));
                            assert_eq!(info.start.minute_of_day(), u32::from(starts[k]));
                            listed += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(listed, s.slot_count());
    }

    #[test]
    fn slots_between_are_those_overlapping_the_interval() {
        let city = City::generate(&CitySpec::scaled(4, 0.002));
        let s = city.input().build().unwrap();
        let d = DoctorRef(3);
        let from = LocalTime::parse("2025-03-04T10:07").unwrap();
        let until = LocalTime::parse("2025-03-05T09:00").unwrap();
        let got = s.doctor_slots_between(d, from, until);
        let brute: Vec<SlotRef> = s
            .doctor_slots(d)
            .map(SlotRef)
            .filter(|&x| {
                let i = s.slot(x);
                i.start < until && i.end() > from
            })
            .collect();
        assert!(!brute.is_empty());
        assert_eq!(got, brute);
    }
}
