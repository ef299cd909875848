//! A city to simulate: its clinic network (districts, clinics, doctors), its weekend fairs and its
//! school places. Generated from a seed at Moscow scale or scaled down ([`generate`]), or read
//! from CSV folders in the formats of the product brief ([`City::from_csv`]).
//!
//! At scale 1: 125 districts, 600 clinics and 30,000 doctors (the engine's generator,
//! [`allot_engine::appointments::generate`]); about 150 fairs with about 15,000 stalls and 20,000
//! applicants ([`crate::fair_gen`]); 1,000 schools and 100,000 applicants with up to 12 choices
//! ([`crate::school_gen`]). Every count scales linearly with the scale (at least one of each).

use std::path::Path;

use allot_engine::appointments::generate as appt_gen;
use allot_engine::appointments::schedule::standard_minutes;
use allot_engine::appointments::{Date, Location, ScheduleInput, Zone};
use allot_engine::fair::FairInput;
use allot_engine::input::{InputError, Table};
use allot_engine::school::{SchoolInput, SchoolPaths};

use crate::error::Error;
use crate::{fair_gen, school_gen};

/// The shape of a generated city.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CitySpec {
    pub seed: u64,
    /// 1.0 is Moscow; 0.01 is a test city (1 district, 6 clinics, 300 doctors, 2 fairs, ...).
    pub scale: f64,
}

impl CitySpec {
    /// Moscow scale.
    pub fn moscow(seed: u64) -> CitySpec {
        CitySpec { seed, scale: 1.0 }
    }

    pub fn scaled(seed: u64, scale: f64) -> CitySpec {
        CitySpec { seed, scale }
    }

    fn count(&self, moscow: f64) -> usize {
        ((moscow * self.scale.max(0.0)).round() as usize).max(1)
    }

    /// Fairs at this scale (150 at scale 1).
    pub fn fairs(&self) -> usize {
        self.count(150.0)
    }

    /// Fair applicants at this scale (20,000 at scale 1).
    pub fn fair_applicants(&self) -> usize {
        self.count(20_000.0)
    }

    /// Schools at this scale (1,000 at scale 1).
    pub fn schools(&self) -> usize {
        self.count(1_000.0)
    }

    /// School applicants at this scale (100,000 at scale 1).
    pub fn students(&self) -> usize {
        self.count(100_000.0)
    }
}

/// A district of the clinic network.
#[derive(Debug, Clone, PartialEq)]
pub struct District {
    pub id: String,
    pub centre: Location,
    /// Share of the city's patients (the shares sum to 1).
    pub population: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clinic {
    pub id: String,
    /// Index into [`ClinicNetwork::districts`].
    pub district: usize,
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Doctor {
    pub id: String,
    /// Index into [`ClinicNetwork::clinics`].
    pub clinic: usize,
    pub specialty: String,
    pub minutes: u16,
    /// The weekly template, as `doctors.csv` writes it.
    pub schedule: String,
}

/// The clinics and doctors of a city, in the shape the scenario variants change; it becomes the
/// engine's schedule through [`ClinicNetwork::schedule_input`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClinicNetwork {
    pub districts: Vec<District>,
    pub clinics: Vec<Clinic>,
    pub doctors: Vec<Doctor>,
}

impl ClinicNetwork {
    /// The network of the engine's synthetic city.
    pub fn from_generated(city: &appt_gen::City) -> ClinicNetwork {
        ClinicNetwork {
            districts: city
                .districts
                .iter()
                .map(|d| District {
                    id: d.id.clone(),
                    centre: d.centre,
                    population: d.population,
                })
                .collect(),
            clinics: city
                .clinics
                .iter()
                .map(|c| Clinic {
                    id: c.id.clone(),
                    district: c.district,
                    location: c.location,
                })
                .collect(),
            doctors: city
                .doctors
                .iter()
                .map(|d| Doctor {
                    id: d.id.clone(),
                    clinic: d.clinic,
                    specialty: d.specialty.to_owned(),
                    minutes: d.minutes,
                    schedule: d.schedule.to_owned(),
                })
                .collect(),
        }
    }

    pub fn district(&self, id: &str) -> Option<usize> {
        self.districts.iter().position(|d| d.id == id)
    }

    pub fn clinic(&self, id: &str) -> Option<usize> {
        self.clinics.iter().position(|c| c.id == id)
    }

    /// `clinics.csv`.
    pub fn clinics_csv(&self) -> String {
        appt_gen::clinics_csv(self.clinics.iter().map(|c| {
            (
                c.id.as_str(),
                self.districts[c.district].id.as_str(),
                c.location,
            )
        }))
    }

    /// `doctors.csv`, with every doctor's minutes per visit written out.
    pub fn doctors_csv(&self) -> String {
        appt_gen::doctors_csv(self.doctors.iter().map(|d| appt_gen::DoctorCsvRow {
            doctor: &d.id,
            clinic: &self.clinics[d.clinic].id,
            specialty: &d.specialty,
            minutes: Some(d.minutes),
            schedule: &d.schedule,
        }))
    }

    /// The schedule input over `days` days from `first_day`, in Moscow time.
    pub fn schedule_input(&self, first_day: Date, days: u32) -> ScheduleInput {
        ScheduleInput {
            first_day,
            days,
            zone: Zone::moscow(),
            clinics_name: "clinics.csv".into(),
            clinics_csv: self.clinics_csv().into_bytes(),
            doctors_name: "doctors.csv".into(),
            doctors_csv: self.doctors_csv().into_bytes(),
        }
    }

    /// Reads `clinics.csv` and `doctors.csv` (validated by the engine's reader first, so every
    /// problem names the file, line and field). Districts are known by their clinics: a district's
    /// centre is the mean location of its clinics and its share of patients is its share of the
    /// doctors (demand follows capacity when the files say nothing about population).
    pub fn read(clinics: &Path, doctors: &Path) -> Result<ClinicNetwork, Error> {
        let input = ScheduleInput::read(clinics, doctors, Date(20_150), 7, Zone::moscow())?;
        input.build()?;
        let clinics_t = Table::from_bytes(input.clinics_name.clone(), input.clinics_csv)?;
        let doctors_t = Table::from_bytes(input.doctors_name.clone(), input.doctors_csv)?;
        let mut net = ClinicNetwork {
            districts: Vec::new(),
            clinics: Vec::new(),
            doctors: Vec::new(),
        };
        let (c_id, c_district) = (clinics_t.column("clinic")?, clinics_t.column("district")?);
        let (c_lat, c_lon) = (clinics_t.column("lat")?, clinics_t.column("lon")?);
        clinics_t.for_each_row(|row| -> Result<(), InputError> {
            let district_id = row.id(c_district)?;
            let district = match net.district(district_id) {
                Some(d) => d,
                None => {
                    net.districts.push(District {
                        id: district_id.to_owned(),
                        centre: Location { lat: 0.0, lon: 0.0 },
                        population: 0.0,
                    });
                    net.districts.len() - 1
                }
            };
            net.clinics.push(Clinic {
                id: row.id(c_id)?.to_owned(),
                district,
                location: Location {
                    lat: row.parse::<f64>(c_lat, "a latitude")?,
                    lon: row.parse::<f64>(c_lon, "a longitude")?,
                },
            });
            Ok(())
        })?;
        let index: std::collections::HashMap<String, usize> = net
            .clinics
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        let d_id = doctors_t.column("doctor")?;
        let d_clinic = doctors_t.column("clinic")?;
        let d_specialty = doctors_t.column("specialty")?;
        let d_minutes = doctors_t.optional_column("minutes");
        let d_schedule = doctors_t.column("schedule")?;
        doctors_t.for_each_row(|row| -> Result<(), InputError> {
            let specialty = row.id(d_specialty)?.to_owned();
            let given = match d_minutes {
                Some(c) => row.parse_optional::<u16>(c, "minutes per visit")?,
                None => None,
            };
            let clinic = row.id(d_clinic)?;
            net.doctors.push(Doctor {
                id: row.id(d_id)?.to_owned(),
                clinic: *index
                    .get(clinic)
                    .ok_or_else(|| row.error(d_clinic, format!("no clinic '{clinic}'")))?,
                minutes: given.or_else(|| standard_minutes(&specialty)).unwrap_or(15),
                specialty,
                schedule: row.text(d_schedule).to_owned(),
            });
            Ok(())
        })?;
        let mut sums = vec![(0.0, 0.0, 0usize, 0usize); net.districts.len()];
        for c in &net.clinics {
            let s = &mut sums[c.district];
            s.0 += c.location.lat;
            s.1 += c.location.lon;
            s.2 += 1;
        }
        for d in &net.doctors {
            sums[net.clinics[d.clinic].district].3 += 1;
        }
        let doctors = net.doctors.len().max(1) as f64;
        for (d, s) in net.districts.iter_mut().zip(sums) {
            d.centre = Location {
                lat: s.0 / s.2.max(1) as f64,
                lon: s.1 / s.2.max(1) as f64,
            };
            d.population = s.3 as f64 / doctors;
        }
        Ok(net)
    }
}

/// A city: any of its three domains may be absent (a CSV folder may hold only some files).
#[derive(Debug, Clone, PartialEq)]
pub struct City {
    /// The spec it was generated from; `None` when read from files.
    pub spec: Option<CitySpec>,
    pub appointments: Option<ClinicNetwork>,
    pub fairs: Option<FairInput>,
    pub schools: Option<SchoolInput>,
}

/// A sub-seed for one part of the city, so that parts do not share random streams.
pub(crate) fn sub_seed(seed: u64, part: u64) -> u64 {
    // SplitMix64's finaliser.
    let mut z = seed ^ part.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Generates the whole city; the same spec always gives the same city.
pub fn generate(spec: &CitySpec) -> City {
    let appt = appt_gen::City::generate(&appt_gen::CitySpec::scaled(
        sub_seed(spec.seed, 1),
        spec.scale,
    ));
    let csv = fair_gen::generate(fair_gen::FairSpec {
        seed: sub_seed(spec.seed, 2),
        applicants: spec.fair_applicants(),
        fairs: spec.fairs(),
    });
    let fairs = parse_fairs(&csv.fairs, &csv.applicants)
        .expect("a generated fair instance is valid")
        .input;
    let schools = school_gen::generate_input(school_gen::SchoolSpec {
        seed: sub_seed(spec.seed, 3),
        students: spec.students(),
        schools: spec.schools(),
        max_choices: 12,
    });
    City {
        spec: Some(*spec),
        appointments: Some(ClinicNetwork::from_generated(&appt)),
        fairs: Some(fairs),
        schools: Some(schools),
    }
}

fn parse_fairs(fairs: &str, applicants: &str) -> Result<allot_engine::fair::FairFiles, InputError> {
    let f = Table::from_bytes("fairs.csv", fairs.as_bytes().to_vec())?;
    let a = Table::from_bytes("applicants.csv", applicants.as_bytes().to_vec())?;
    allot_engine::fair::read_tables(&f, &a)
}

impl City {
    /// Reads a CSV folder: `clinics.csv` + `doctors.csv` (appointments), `fairs.csv` +
    /// `applicants.csv` (fairs), `schools.csv` + `students.csv` + `priorities.csv` and optionally
    /// `reserves.csv` (schools). A domain whose files are all absent is left out; one with only
    /// some of its files is an error.
    pub fn from_csv(dir: &Path) -> Result<City, Error> {
        let has = |name: &str| dir.join(name).is_file();
        let all_or_none = |names: &[&str]| -> Result<bool, Error> {
            let present: Vec<bool> = names.iter().map(|n| has(n)).collect();
            if present.iter().all(|&p| p) {
                Ok(true)
            } else if present.iter().any(|&p| p) {
                let missing = names
                    .iter()
                    .zip(&present)
                    .find(|(_, p)| !**p)
                    .map(|(n, _)| *n)
                    .unwrap_or_default();
                Err(Error::Input(Box::new(InputError::file(
                    dir.join(missing).display().to_string(),
                    format!("missing (the folder has the other files of its domain: {names:?})"),
                ))))
            } else {
                Ok(false)
            }
        };
        let appointments = if all_or_none(&["clinics.csv", "doctors.csv"])? {
            Some(ClinicNetwork::read(
                &dir.join("clinics.csv"),
                &dir.join("doctors.csv"),
            )?)
        } else {
            None
        };
        let fairs = if all_or_none(&["fairs.csv", "applicants.csv"])? {
            Some(
                allot_engine::fair::read(&dir.join("fairs.csv"), &dir.join("applicants.csv"))?
                    .input,
            )
        } else {
            None
        };
        let schools = if all_or_none(&["schools.csv", "students.csv", "priorities.csv"])? {
            let reserves = dir.join("reserves.csv");
            let paths = SchoolPaths {
                schools: &dir.join("schools.csv"),
                students: &dir.join("students.csv"),
                priorities: &dir.join("priorities.csv"),
                reserves: reserves.is_file().then_some(reserves.as_path()),
            };
            Some(allot_engine::school::read(paths)?.input)
        } else {
            None
        };
        if appointments.is_none() && fairs.is_none() && schools.is_none() {
            return Err(Error::Input(Box::new(InputError::file(
                dir.display().to_string(),
                "no city files (clinics.csv and doctors.csv, fairs.csv and applicants.csv, \
                 schools.csv, students.csv and priorities.csv)",
            ))));
        }
        Ok(City {
            spec: None,
            appointments,
            fairs,
            schools,
        })
    }
}
