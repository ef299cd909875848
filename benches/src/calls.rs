//! One client task's calls for the load generators (`grpc_load`, `replica_load`): a method, a
//! city to ask about, and the state each task walks through.

use std::sync::Arc;

use allot_engine::appointments::generate::{City, CitySpec};
use allot_engine::appointments::schedule::SlotRef;
use allot_engine::appointments::{
    DoctorRef, Engine, EngineOptions, LocalTime, Schedule, SystemClock, Zone,
};
use allot_engine::log::{Log, Timestamp};
use allot_service::proto::v1 as pb;
use allot_service::proto::v1::appointments_client::AppointmentsClient;
use allot_service::proto::v1::audit_client::AuditClient;
use allot_service::proto::v1::schools_client::SchoolsClient;
use allot_service::rpc::client::{self, Authorized, Bearer};
use clap::ValueEnum;
use rand::{RngExt as _, SeedableRng as _};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// `grpc.health.v1.Health/Check` (public; the server's floor: gate, routing, HTTP/2).
    Health,
    /// `allot.v1.Audit/GetInclusionProof` of a random entry against the latest checkpoint.
    InclusionProof,
    /// `allot.v1.Audit/GetEntry` of a random entry.
    Entry,
    /// `allot.v1.Appointments/FindSlots`: `--proposals` for a random patient (memory only).
    FindSlots,
    /// `allot.v1.Appointments/Book` of a free slot: one durable decision per call.
    Book,
    /// `allot.v1.Schools/SubmitApplications` of one student (10 choices among 7,893 schools,
    /// as in Chile) to one open window: one durable decision and a receipt per call.
    Apply,
}

/// What the appointment methods need to know of the city.
#[derive(Debug)]
pub struct CityView {
    pub schedule: Arc<Schedule>,
    /// Clinic locations (degrees), homes are drawn near them.
    pub homes: Vec<(f64, f64)>,
    pub specialties: Vec<String>,
    /// Proposals a FindSlots asks for.
    pub proposals: u32,
}

/// The slots one Book task walks through: those of its doctors, from tomorrow on.
#[derive(Debug)]
pub struct SlotWalk {
    doctors: Vec<DoctorRef>,
    doctor: usize,
    next: u32,
    end: u32,
    booked: u64,
    task: u64,
}

impl SlotWalk {
    fn next(&mut self, s: &Schedule) -> Option<SlotRef> {
        loop {
            if self.next < self.end {
                let slot = SlotRef(self.next);
                self.next += 1;
                if s.slot(slot).day >= 1 {
                    return Some(slot);
                }
                continue;
            }
            let d = *self.doctors.get(self.doctor)?;
            self.doctor += 1;
            let range = s.doctor_slots(d);
            self.next = range.start;
            self.end = range.end;
        }
    }
}

/// One task's client for the chosen method.
#[derive(Debug)]
pub enum Caller {
    Health(HealthClient<Channel>),
    Audit {
        client: AuditClient<Authorized>,
        entries: u64,
        rng: Box<rand_chacha::ChaCha8Rng>,
    },
    Find {
        client: AppointmentsClient<Authorized>,
        city: Arc<CityView>,
        rng: Box<rand_chacha::ChaCha8Rng>,
        n: u64,
    },
    Book {
        client: AppointmentsClient<Authorized>,
        city: Arc<CityView>,
        walk: SlotWalk,
    },
    Apply {
        client: SchoolsClient<Authorized>,
        rng: Box<rand_chacha::ChaCha8Rng>,
        task: u64,
        n: u64,
    },
}

impl Caller {
    pub fn new(
        method: Method,
        channel: Channel,
        bearer: Bearer,
        entries: u64,
        task: u64,
        tasks: u64,
        city: Option<&Arc<CityView>>,
    ) -> Caller {
        match method {
            Method::Health => Caller::Health(HealthClient::new(channel)),
            Method::FindSlots => Caller::Find {
                client: client::appointments(channel, bearer),
                city: city.expect("a city").clone(),
                rng: Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(task)),
                n: 0,
            },
            Method::Book => {
                let city = city.expect("a city").clone();
                let doctors = (task..city.schedule.doctors.len() as u64)
                    .step_by(tasks as usize)
                    .map(|d| DoctorRef(d as u32))
                    .collect();
                Caller::Book {
                    client: client::appointments(channel, bearer),
                    city,
                    walk: SlotWalk {
                        doctors,
                        doctor: 0,
                        next: 0,
                        end: 0,
                        booked: 0,
                        task,
                    },
                }
            }
            Method::Apply => Caller::Apply {
                client: client::schools(channel, bearer),
                rng: Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(task)),
                task,
                n: 0,
            },
            Method::InclusionProof | Method::Entry => Caller::Audit {
                client: client::audit(channel, bearer),
                entries,
                rng: Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(task)),
            },
        }
    }

    /// One call; for a booking, the log index of its decision.
    pub async fn call(&mut self, method: Method) -> Result<Option<u64>, tonic::Status> {
        match (self, method) {
            (
                Caller::Find {
                    client,
                    city,
                    rng,
                    n,
                },
                _,
            ) => {
                let (lat, lon) = city.homes[rng.random_range(0..city.homes.len())];
                let specialty = &city.specialties[rng.random_range(0..city.specialties.len())];
                *n += 1;
                let request = pb::FindSlotsRequest {
                    patient: Some(pb::Patient {
                        id: format!("F{n}"),
                        home: Some(pb::Location {
                            lat: lat + rng.random_range(-0.01..0.01),
                            lon: lon + rng.random_range(-0.015..0.015),
                        }),
                        attached_clinic: String::new(),
                    }),
                    specialty: specialty.clone(),
                    count: city.proposals,
                    ..Default::default()
                };
                client.find_slots(request).await.map(|_| None)
            }
            (Caller::Book { client, city, walk }, _) => {
                let Some(slot) = walk.next(&city.schedule) else {
                    return Err(tonic::Status::out_of_range(
                        "this task booked all its slots",
                    ));
                };
                walk.booked += 1;
                let request = pb::BookRequest {
                    target: Some(pb::book_request::Target::SlotId(
                        city.schedule.slot_id(slot),
                    )),
                    patient: Some(pb::Patient {
                        id: format!("B{}-{}", walk.task, walk.booked),
                        home: Some(pb::Location {
                            lat: 55.75,
                            lon: 37.62,
                        }),
                        attached_clinic: String::new(),
                    }),
                    request_id: String::new(),
                };
                let answer = client.book(request).await?.into_inner();
                Ok(answer.appointment.map(|a| a.log_index))
            }
            (
                Caller::Apply {
                    client,
                    rng,
                    task,
                    n,
                },
                _,
            ) => {
                *n += 1;
                let mut choices: Vec<String> = Vec::with_capacity(10);
                while choices.len() < 10 {
                    let school = format!("S{:05}", rng.random_range(0..7_893u32));
                    if !choices.contains(&school) {
                        choices.push(school);
                    }
                }
                let request = pb::SubmitSchoolApplicationsRequest {
                    window: "intake".to_owned(),
                    students: vec![pb::Student {
                        second_factor: String::new(),
                        id: format!("T{task}-{n}"),
                        lottery: None,
                        choices,
                    }],
                    ..Default::default()
                };
                let answer = client.submit_applications(tokio_stream::iter([request]));
                answer.await.map(|_| None)
            }
            (Caller::Health(c), _) => {
                let request = HealthCheckRequest {
                    service: String::new(),
                };
                c.check(request).await.map(|_| None)
            }
            (
                Caller::Audit {
                    client,
                    entries,
                    rng,
                },
                Method::InclusionProof,
            ) => {
                let index = rng.random_range(0..*entries);
                let request = pb::GetInclusionProofRequest {
                    index,
                    tree_size: None,
                    ..Default::default()
                };
                client.get_inclusion_proof(request).await.map(|_| None)
            }
            (
                Caller::Audit {
                    client,
                    entries,
                    rng,
                },
                _,
            ) => {
                let index = rng.random_range(0..*entries);
                client
                    .get_entry(pb::GetEntryRequest { index })
                    .await
                    .map(|_| None)
            }
        }
    }
}

/// Loads a generated city of `scale` whose horizon starts today (Moscow time).
pub fn load_city(log: &Arc<Log>, scale: f64) -> anyhow::Result<Engine> {
    let today = LocalTime::from_timestamp(Timestamp::now(), &Zone::moscow()).date();
    let spec = CitySpec {
        first_day: today,
        ..CitySpec::scaled(1, scale)
    };
    let city = City::generate(&spec);
    Ok(Engine::create_with_log(
        log.clone(),
        &city.input(),
        b"doctor,from,until\n",
        "load",
        EngineOptions::default(),
        Arc::new(SystemClock),
    )?)
}
