//! Synthetic cities shaped like Moscow's polyclinic network, seeded and scalable: districts on a
//! disc around the centre with uneven populations, clinics and doctors placed so that capacity
//! lags population in the biggest districts (where queues form), specialties and minutes per
//! visit of order 290n, and full-time weekly templates. At scale 1: 125 districts, 600 clinics,
//! 30,000 doctors and about 12 million slots over 14 days.
//!
//! The same seed gives the same city (ChaCha8), whatever the machine. The CSV writers produce
//! exactly the files `allot appointments load` reads.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::inputs::ScheduleInput;
use super::schedule::{Location, STANDARD_MINUTES};
use super::time::{Date, Zone};
use crate::input::CsvText;

/// Moscow's centre (Red Square).
pub const MOSCOW: Location = Location {
    lat: 55.7539,
    lon: 37.6208,
};

/// Share of doctors (and of demand) by specialty.
pub const SPECIALTY_MIX: &[(&str, f64)] = &[
    ("therapist", 0.36),
    ("gp", 0.22),
    ("neurologist", 0.12),
    ("ent", 0.14),
    ("ophthalmologist", 0.16),
];

/// Weekly templates of full-time doctors, with their share: morning and evening shifts on
/// weekdays, shorter weekend duty.
const TEMPLATES: &[(&str, f64)] = &[
    ("mon-fri 08:00-16:30; sat-sun 09:00-15:00", 0.45),
    ("mon-fri 11:30-20:00; sat-sun 09:00-15:00", 0.45),
    ("mon-sun 08:00-14:00 14:30-17:00", 0.10),
];

/// The shape of a generated city.
#[derive(Debug, Clone, PartialEq)]
pub struct CitySpec {
    pub seed: u64,
    pub districts: usize,
    pub clinics: usize,
    pub doctors: usize,
    /// Radius of the disc the districts cover.
    pub radius_km: f64,
    pub first_day: Date,
    pub days: u32,
}

impl CitySpec {
    /// Moscow scale: 125 districts, 600 clinics, 30,000 doctors, 14 days from 2025-03-03.
    pub fn moscow(seed: u64) -> CitySpec {
        CitySpec {
            seed,
            districts: 125,
            clinics: 600,
            doctors: 30_000,
            radius_km: 18.0,
            first_day: Date(20_150),
            days: 14,
        }
    }

    /// Moscow scaled by `scale`: districts, clinics and doctors linearly, the radius by its square
    /// root (so clinics stay as far apart and districts as big); at least one of each.
    pub fn scaled(seed: u64, scale: f64) -> CitySpec {
        let m = CitySpec::moscow(seed);
        let root = scale.max(0.0).sqrt();
        let clinics = ((m.clinics as f64 * scale).round() as usize).max(1);
        CitySpec {
            // Every district has a clinic (districts are known by their clinics).
            districts: ((m.districts as f64 * scale).round() as usize).clamp(1, clinics),
            clinics,
            doctors: ((m.doctors as f64 * scale).round() as usize).max(1),
            radius_km: (m.radius_km * root).max(1.0),
            ..m
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenDistrict {
    pub id: String,
    pub centre: Location,
    /// Share of the city's population (the shares sum to 1).
    pub population: f64,
    /// Indices into `City::clinics`.
    pub clinics: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenClinic {
    pub id: String,
    pub district: usize,
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenDoctor {
    pub id: String,
    pub clinic: usize,
    pub specialty: &'static str,
    pub minutes: u16,
    pub schedule: &'static str,
}

/// A generated patient.
#[derive(Debug, Clone, PartialEq)]
pub struct GenPatient {
    pub id: String,
    pub district: usize,
    pub home: Location,
    /// The nearest clinic of the home district.
    pub attached: usize,
    pub specialty: &'static str,
}

/// A generated city.
#[derive(Debug, Clone, PartialEq)]
pub struct City {
    pub spec: CitySpec,
    pub districts: Vec<GenDistrict>,
    pub clinics: Vec<GenClinic>,
    pub doctors: Vec<GenDoctor>,
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller.
    let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, table: &[(T, f64)]) -> T {
    let total: f64 = table.iter().map(|t| t.1).sum();
    let mut x = rng.random::<f64>() * total;
    for &(item, w) in table {
        if x < w {
            return item;
        }
        x -= w;
    }
    table[table.len() - 1].0
}

/// Kilometre offsets to a location near `at`.
fn offset(at: Location, dx_km: f64, dy_km: f64) -> Location {
    Location {
        lat: at.lat + dy_km / 110.574,
        lon: at.lon + dx_km / (111.320 * at.lat.to_radians().cos()),
    }
}

/// Splits `total` into integer parts proportional to `weights` (largest remainders).
fn apportion(total: usize, weights: &[f64]) -> Vec<usize> {
    let sum: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| w / sum * total as f64).collect();
    let mut parts: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut rest: Vec<usize> = (0..weights.len()).collect();
    rest.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    let missing = total - parts.iter().sum::<usize>();
    for &i in rest.iter().take(missing) {
        parts[i] += 1;
    }
    parts
}

/// `clinics.csv` of `(clinic, district, location)` rows.
pub fn clinics_csv<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str, Location)>) -> String {
    let mut out = CsvText::new(&["clinic", "district", "lat", "lon"]);
    for (clinic, district, at) in rows {
        let (lat, lon) = (format!("{:.6}", at.lat), format!("{:.6}", at.lon));
        out.row([clinic, district, &lat, &lon]);
    }
    out.finish()
}

/// One row of `doctors.csv`.
#[derive(Debug, Clone, Copy)]
pub struct DoctorCsvRow<'a> {
    pub doctor: &'a str,
    pub clinic: &'a str,
    pub specialty: &'a str,
    /// `None`: left empty, the specialty's standard minutes apply.
    pub minutes: Option<u16>,
    pub schedule: &'a str,
}

/// `doctors.csv` of these rows.
pub fn doctors_csv<'a>(rows: impl IntoIterator<Item = DoctorCsvRow<'a>>) -> String {
    let mut out = CsvText::new(&["doctor", "clinic", "specialty", "minutes", "schedule"]);
    for d in rows {
        let minutes = d.minutes.map(|m| m.to_string()).unwrap_or_default();
        out.row([d.doctor, d.clinic, d.specialty, &minutes, d.schedule]);
    }
    out.finish()
}

impl City {
    pub fn generate(spec: &CitySpec) -> City {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let n = spec.districts.max(1);
        let golden = std::f64::consts::PI * (3.0 - 5f64.sqrt());
        let mut districts: Vec<GenDistrict> = (0..n)
            .map(|i| {
                let r = spec.radius_km * ((i as f64 + 0.5) / n as f64).sqrt();
                let theta = i as f64 * golden;
                let jitter = spec.radius_km / (n as f64).sqrt() * 0.2;
                let centre = offset(
                    MOSCOW,
                    r * theta.cos() + jitter * normal(&mut rng),
                    r * theta.sin() + jitter * normal(&mut rng),
                );
                GenDistrict {
                    id: format!("D{:03}", i + 1),
                    centre,
                    population: (0.45 * normal(&mut rng)).exp(),
                    clinics: Vec::new(),
                }
            })
            .collect();
        let total: f64 = districts.iter().map(|d| d.population).sum();
        for d in &mut districts {
            d.population /= total;
        }

        // Capacity lags population: clinics by population^0.6 (at least one per district while
        // there are enough), doctors by population^0.8.
        let clinic_weights: Vec<f64> = districts.iter().map(|d| d.population.powf(0.6)).collect();
        let mut per_district = if spec.clinics >= n {
            let mut p = apportion(spec.clinics - n, &clinic_weights);
            p.iter_mut().for_each(|x| *x += 1);
            p
        } else {
            apportion(spec.clinics, &clinic_weights)
        };
        let spread = spec.radius_km / (n as f64).sqrt() * 0.45;
        let mut clinics = Vec::with_capacity(spec.clinics);
        for (d, count) in per_district.iter_mut().enumerate() {
            for _ in 0..*count {
                let location = offset(
                    districts[d].centre,
                    spread * normal(&mut rng),
                    spread * normal(&mut rng),
                );
                districts[d].clinics.push(clinics.len());
                clinics.push(GenClinic {
                    id: format!("C{:04}", clinics.len() + 1),
                    district: d,
                    location,
                });
            }
        }
        let doctor_weights: Vec<f64> = clinics
            .iter()
            .map(|c| {
                let d = &districts[c.district];
                d.population.powf(0.8) / d.clinics.len() as f64 * (0.7 + 0.6 * rng.random::<f64>())
            })
            .collect();
        let per_clinic = apportion(spec.doctors, &doctor_weights);
        let mut doctors = Vec::with_capacity(spec.doctors);
        for (c, &count) in per_clinic.iter().enumerate() {
            // Every clinic with five or more doctors has each specialty once; the rest by the mix.
            for k in 0..count {
                let specialty = match SPECIALTY_MIX.get(k) {
                    Some(&(s, _)) if count >= SPECIALTY_MIX.len() => s,
                    _ => pick(&mut rng, SPECIALTY_MIX),
                };
                let minutes = STANDARD_MINUTES
                    .iter()
                    .find(|(s, _)| *s == specialty)
                    .map_or(15, |&(_, m)| m);
                doctors.push(GenDoctor {
                    id: format!("V{:05}", doctors.len() + 1),
                    clinic: c,
                    specialty,
                    minutes,
                    schedule: pick(&mut rng, TEMPLATES),
                });
            }
        }
        City {
            spec: spec.clone(),
            districts,
            clinics,
            doctors,
        }
    }

    /// `clinics.csv`.
    pub fn clinics_csv(&self) -> String {
        clinics_csv(self.clinics.iter().map(|c| {
            (
                c.id.as_str(),
                self.districts[c.district].id.as_str(),
                c.location,
            )
        }))
    }

    /// `doctors.csv` (minutes left empty: the standard ones apply).
    pub fn doctors_csv(&self) -> String {
        doctors_csv(self.doctors.iter().map(|d| DoctorCsvRow {
            doctor: &d.id,
            clinic: &self.clinics[d.clinic].id,
            specialty: d.specialty,
            minutes: None,
            schedule: d.schedule,
        }))
    }

    /// The schedule input of this city over its horizon, in Moscow time.
    pub fn input(&self) -> ScheduleInput {
        ScheduleInput {
            first_day: self.spec.first_day,
            days: self.spec.days,
            zone: Zone::moscow(),
            clinics_name: "clinics.csv".into(),
            clinics_csv: self.clinics_csv().into_bytes(),
            doctors_name: "doctors.csv".into(),
            doctors_csv: self.doctors_csv().into_bytes(),
        }
    }

    /// A random patient: district by population, home near its centre, attached to the nearest
    /// clinic of the district, a specialty by the mix.
    pub fn patient(&self, rng: &mut ChaCha8Rng, id: String) -> GenPatient {
        let weights: Vec<(usize, f64)> = self
            .districts
            .iter()
            .enumerate()
            .map(|(i, d)| (i, d.population))
            .collect();
        let district = pick(rng, &weights);
        let d = &self.districts[district];
        let spread = self.spec.radius_km / (self.districts.len() as f64).sqrt() * 0.5;
        let home = offset(d.centre, spread * normal(rng), spread * normal(rng));
        let dist = |c: usize| {
            let l = self.clinics[c].location;
            (l.lat - home.lat).powi(2) + ((l.lon - home.lon) * home.lat.to_radians().cos()).powi(2)
        };
        let attached = d
            .clinics
            .iter()
            .copied()
            .min_by(|&a, &b| dist(a).total_cmp(&dist(b)))
            .unwrap_or(0);
        GenPatient {
            id,
            district,
            home,
            attached,
            specialty: pick(rng, SPECIALTY_MIX),
        }
    }

    /// `requests.csv` rows for batch re-balancing: `count` referrals, district by population,
    /// specialty by the mix, earliest day uniform over `spread_days` days from `first`.
    pub fn requests_csv(&self, seed: u64, count: usize, first: Date, spread_days: u32) -> String {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = CsvText::new(&["request", "patient", "district", "specialty", "earliest"]);
        for i in 0..count {
            let p = self.patient(&mut rng, format!("P{seed}-{i}"));
            let day = first.add_days(rng.random_range(0..spread_days.max(1)) as i32);
            out.row([
                &format!("R{i}"),
                &p.id,
                &self.districts[p.district].id,
                p.specialty,
                &day.to_string(),
            ]);
        }
        out.finish()
    }

    /// `absences.csv`: `count` doctors absent for one to three whole days in the horizon.
    pub fn absences_csv(&self, seed: u64, count: usize) -> String {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = CsvText::new(&["doctor", "from", "until"]);
        let mut chosen = std::collections::BTreeSet::new();
        while chosen.len() < count.min(self.doctors.len()) {
            chosen.insert(rng.random_range(0..self.doctors.len()));
        }
        for d in chosen {
            let start = rng.random_range(0..self.spec.days.max(1));
            let len = rng.random_range(1..=3u32).min(self.spec.days - start);
            let from = self.spec.first_day.add_days(start as i32);
            let until = from.add_days(len as i32 - 1);
            out.row([&self.doctors[d].id, &from.to_string(), &until.to_string()]);
        }
        out.finish()
    }

    /// Writes `clinics.csv`, `doctors.csv`, `absences.csv` (`absences` doctors) and
    /// `requests.csv` (`requests` referrals over the horizon's first week) into `dir`, each file
    /// whole (a temporary name, then a rename).
    pub fn write_files(
        &self,
        dir: &std::path::Path,
        seed: u64,
        requests: usize,
        absences: usize,
    ) -> std::io::Result<()> {
        let (first, days) = (self.spec.first_day, self.spec.days);
        std::fs::create_dir_all(dir)?;
        let files = [
            ("clinics.csv", self.clinics_csv()),
            ("doctors.csv", self.doctors_csv()),
            ("absences.csv", self.absences_csv(seed, absences)),
            (
                "requests.csv",
                self.requests_csv(seed, requests, first, days.clamp(1, 7)),
            ),
        ];
        for (name, text) in files {
            let path = dir.join(name);
            let tmp = path.with_extension("partial");
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, &path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids with a comma, a quote or a line break stay one field: the CSV is read back (by the
    /// `csv` crate, as the engine reads it) into the same fields.
    #[test]
    fn written_csv_quotes_what_needs_quoting() {
        let odd = ["C,1", "D \"north\"", "V\n7"];
        let at = Location {
            lat: 55.75,
            lon: 37.62,
        };
        let clinics = clinics_csv([(odd[0], odd[1], at)]);
        let doctors = doctors_csv([DoctorCsvRow {
            doctor: odd[2],
            clinic: odd[0],
            specialty: "gp",
            minutes: Some(15),
            schedule: "mon-fri 08:00-12:00",
        }]);
        let read = |text: &str| -> Vec<Vec<String>> {
            csv::Reader::from_reader(text.as_bytes())
                .records()
                .map(|r| r.unwrap().iter().map(str::to_owned).collect())
                .collect()
        };
        assert_eq!(read(&clinics), [[odd[0], odd[1], "55.750000", "37.620000"]]);
        assert_eq!(
            read(&doctors),
            [[odd[2], odd[0], "gp", "15", "mon-fri 08:00-12:00"]]
        );
    }

    #[test]
    fn moscow_scale_has_the_requested_figures() {
        let city = City::generate(&CitySpec::moscow(1));
        assert_eq!(city.districts.len(), 125);
        assert_eq!(city.clinics.len(), 600);
        assert_eq!(city.doctors.len(), 30_000);
        assert!(city.districts.iter().all(|d| !d.clinics.is_empty()));
        let schedule = city.input().build().unwrap();
        let slots = schedule.slot_count();
        assert!(
            (11_000_000..13_000_000).contains(&slots),
            "{slots} slots at Moscow scale"
        );
        // Same seed, same city; another seed, another city.
        assert_eq!(City::generate(&CitySpec::moscow(1)), city);
        assert_ne!(City::generate(&CitySpec::moscow(2)).clinics, city.clinics);
    }

    #[test]
    fn scaled_cities_shrink_in_proportion() {
        let spec = CitySpec::scaled(3, 0.01);
        assert_eq!((spec.clinics, spec.doctors, spec.districts), (6, 300, 1));
        let city = City::generate(&spec);
        assert_eq!(city.doctors.len(), 300);
        let schedule = city.input().build().unwrap();
        assert_eq!(schedule.specialties.len(), SPECIALTY_MIX.len());
        // Capacity lags population: the most populous district has fewer clinics per person
        // than the least populous one that has a clinic.
        let big = City::generate(&CitySpec::moscow(5));
        let per_person = |d: &GenDistrict| d.clinics.len() as f64 / d.population;
        let most = big
            .districts
            .iter()
            .max_by(|a, b| a.population.total_cmp(&b.population))
            .unwrap();
        let least = big
            .districts
            .iter()
            .min_by(|a, b| a.population.total_cmp(&b.population))
            .unwrap();
        assert!(per_person(most) < per_person(least));
    }
}
