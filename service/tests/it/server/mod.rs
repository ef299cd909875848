//! The gRPC server end to end over a real socket: a server started in-process on 127.0.0.1:0 (or
//! the `allot serve` binary), called with the generated clients.

mod access;
mod allocations;
mod appointments;
mod audit;
mod bad_requests;
mod bounds;
mod cli;
mod fhir;
mod lifecycle;
mod limits;
mod scenarios;
mod tiles;
mod web;
pub(crate) mod witness;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use allot_engine::appointments::generate::{City, CitySpec};
use allot_engine::appointments::schedule::Schedule;
use allot_engine::appointments::{Engine, EngineOptions, LocalTime, SystemClock, Zone};
use allot_engine::fs::{DataDir, FileSystem};
use allot_engine::log::decision::{SlotBooked, SlotHeld};
use allot_engine::log::{Log, LogOptions, Record, Timestamp, VerifierKey};
use allot_service::proto::v1::appointments_client::AppointmentsClient;
use allot_service::proto::v1::audit_client::AuditClient;
use allot_service::proto::v1::fairs_client::FairsClient;
use allot_service::proto::v1::schools_client::SchoolsClient;
use allot_service::rpc::client::{self, Authorized, Bearer};
use allot_service::server::access::{Role, Roles};
use allot_service::server::config::{Caller, ServerConfig, mint_token};
use allot_service::server::{Domains, ServeError, ServerHandle, Stopped};
use tempfile::TempDir;
use tonic::transport::Channel;

/// A server over a fresh data folder, with one token per role and one with every role.
pub struct Harness {
    pub dir: TempDir,
    pub log: Arc<Log>,
    handle: Option<ServerHandle>,
    pub url: String,
    /// The tiles' HTTP address, when served.
    pub tiles_url: Option<String>,
    /// The FHIR face's base (`http://ADDR/fhir`), when served.
    pub fhir_url: Option<String>,
    /// The schedule of a harness with a generated city (not the engine: it holds the log).
    schedule: Option<Arc<Schedule>>,
    tokens: BTreeMap<Role, String>,
    pub all: String,
}

impl Harness {
    /// A server over a log of `entries` entries.
    pub async fn start(entries: u64) -> Harness {
        Self::with(entries, |_| {}).await
    }

    /// The same, with the configuration adjusted by `tweak`. Checkpoints are signed only on
    /// request (and at start), so tests know which sizes are signed.
    pub async fn with(entries: u64, tweak: impl FnOnce(&mut ServerConfig)) -> Harness {
        let dir = TempDir::new().unwrap();
        let log = Arc::new(Log::open(dir.path(), LogOptions::default()).unwrap());
        append(&log, entries);
        let domains = Domains::open(&log).unwrap();
        Self::launch(dir, log, domains, tweak).await
    }

    /// A server over a fresh data folder with a generated city of `scale` (1 is Moscow) whose
    /// horizon starts today, on the real clock.
    pub async fn city(scale: f64) -> Harness {
        Self::city_with(scale, |_| {}).await
    }

    pub async fn city_with(scale: f64, tweak: impl FnOnce(&mut ServerConfig)) -> Harness {
        let dir = TempDir::new().unwrap();
        let log = Arc::new(Log::open(dir.path(), LogOptions::default()).unwrap());
        let engine = load_city(&log, scale);
        let domains = Domains {
            appointments: Some(engine),
        };
        Self::launch(dir, log, domains, tweak).await
    }

    /// A server with a generated city whose data folder is on the file system `fs` (which may
    /// be slow or fail on purpose).
    pub async fn city_on(fs: Arc<dyn FileSystem>, scale: f64) -> Harness {
        let dir = TempDir::new().unwrap();
        let data = DataDir::on(fs, dir.path());
        let log = Arc::new(Log::open(&data, LogOptions::default()).unwrap());
        let engine = load_city(&log, scale);
        let domains = Domains {
            appointments: Some(engine),
        };
        Self::launch(dir, log, domains, |_| {}).await
    }

    /// A server over an existing data folder (a restart).
    pub async fn reopen(dir: TempDir) -> Harness {
        let log = Arc::new(Log::open(dir.path(), LogOptions::default()).unwrap());
        let domains = Domains::open(&log).unwrap();
        Self::launch(dir, log, domains, |_| {}).await
    }

    async fn launch(
        dir: TempDir,
        log: Arc<Log>,
        domains: Domains,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Harness {
        match Self::try_launch(dir, log, domains, tweak).await {
            Ok(h) => h,
            Err((_, e)) => panic!("the server did not start: {e}"),
        }
    }

    /// [`Harness::launch`], giving the folder back with the error when the server refuses to
    /// start.
    async fn try_launch(
        dir: TempDir,
        log: Arc<Log>,
        domains: Domains,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Result<Harness, (TempDir, ServeError)> {
        let mut config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            checkpoint_interval: Duration::from_secs(3600),
            ..ServerConfig::default()
        };
        let mut tokens = BTreeMap::new();
        for role in Role::ALL {
            let token = mint_token().unwrap();
            config.tokens.insert_token(
                &token,
                Caller {
                    name: role.name().to_owned(),
                    roles: Roles::of(&[role]),
                },
            );
            tokens.insert(role, token);
        }
        let all = mint_token().unwrap();
        config.tokens.insert_token(
            &all,
            Caller {
                name: "everyone".into(),
                roles: Roles::ALL,
            },
        );
        tweak(&mut config);
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let schedule = domains.appointments.as_ref().map(|e| e.schedule().clone());
        let handle = match allot_service::server::start_with(config, log.clone(), domains).await {
            Ok(handle) => handle,
            Err(e) => return Err((dir, e)),
        };
        let url = format!("{scheme}://{}", handle.local_addr());
        let tiles_url = handle.tiles_addr().map(|a| format!("http://{a}"));
        let fhir_url = handle.fhir_addr().map(|a| format!("{scheme}://{a}/fhir"));
        Ok(Harness {
            tiles_url,
            fhir_url,
            schedule,
            dir,
            log,
            handle: Some(handle),
            url,
            tokens,
            all,
        })
    }

    /// The web console's address, when served.
    pub fn web_addr(&self) -> Option<std::net::SocketAddr> {
        self.handle.as_ref().and_then(|h| h.web_addr())
    }

    /// The schedule behind the server (a harness with a generated city).
    pub fn schedule(&self) -> &Schedule {
        self.schedule.as_deref().expect("a harness with a city")
    }

    pub fn token(&self, role: Role) -> &str {
        &self.tokens[&role]
    }

    pub async fn channel(&self) -> Channel {
        client::connect(&self.url, None).await.unwrap()
    }

    pub async fn audit(&self, token: Option<&str>) -> AuditClient<Authorized> {
        client::audit(self.channel().await, Bearer::new(token).unwrap())
    }

    pub async fn auditor(&self) -> AuditClient<Authorized> {
        self.audit(Some(self.token(Role::Auditor))).await
    }

    /// An Appointments client as the clinic system.
    pub async fn clinic(&self) -> AppointmentsClient<Authorized> {
        client::appointments(
            self.channel().await,
            Bearer::new(Some(self.token(Role::ClinicSystem))).unwrap(),
        )
    }

    pub async fn fairs(&self) -> FairsClient<Authorized> {
        client::fairs(
            self.channel().await,
            Bearer::new(Some(self.token(Role::FairAdmin))).unwrap(),
        )
    }

    pub async fn schools(&self) -> SchoolsClient<Authorized> {
        client::schools(
            self.channel().await,
            Bearer::new(Some(self.token(Role::SchoolAdmin))).unwrap(),
        )
    }

    /// Stops the server, closes the log and gives the data folder back (for a restart).
    pub async fn into_dir(mut self) -> TempDir {
        let stopped = self.stop().await;
        drop(stopped);
        let log = self.log.clone();
        drop(self.log);
        // The engine's background work may hold the log for a moment.
        let mut log = log;
        for _ in 0..100 {
            match Arc::try_unwrap(log) {
                Ok(l) => {
                    l.close().unwrap();
                    return self.dir;
                }
                Err(again) => {
                    log = again;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        panic!("the log is still held after the server stopped");
    }

    /// The key the log signs with, read from the data folder: trusted out of band.
    pub fn trusted_key(&self) -> VerifierKey {
        trusted_key(self.dir.path())
    }

    /// Begins a graceful stop.
    pub fn shutdown(&self) {
        self.handle.as_ref().unwrap().shutdown();
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(&mut self) -> Stopped {
        let handle = self.handle.take().unwrap();
        handle.shutdown();
        tokio::time::timeout(Duration::from_secs(20), handle.wait())
            .await
            .expect("the server stops")
            .unwrap()
    }
}

pub fn trusted_key(data: &Path) -> VerifierKey {
    let text = std::fs::read_to_string(data.join("log/verifier.key")).unwrap();
    VerifierKey::parse(text.trim()).unwrap()
}

/// Entry `i` as a domain would log it: holds and bookings, with distinct subjects.
pub fn record(i: u64) -> Record {
    let time = Timestamp::from_unix_micros(1_740_821_400_000_000 + i * 1_000_123);
    let slot = format!("clinic-{:03}/dr-{:04}/{i}", i % 600, i % 30_000);
    if i.is_multiple_of(3) {
        let expires = Timestamp::from_unix_micros(time.unix_micros() + 300_000_000);
        let held = SlotHeld {
            slot,
            hold: format!("hold-{i}"),
            expires,
        };
        Record::new(time, "umias", format!("patient-{i}"), held)
    } else {
        let booked = SlotBooked {
            slot,
            appointment: format!("appt-{i}"),
            hold: i.is_multiple_of(2).then(|| format!("hold-{}", i - 1)),
        };
        Record::new(time, "umias", format!("patient-{i}"), booked)
    }
}

/// Appends `n` more entries (in batches, durably).
pub fn append(log: &Log, n: u64) {
    let start = log.size();
    let records: Vec<Record> = (start..start + n).map(record).collect();
    for chunk in records.chunks(1000) {
        log.append_batch(chunk).unwrap();
    }
}

/// Loads a generated city of `scale` whose horizon starts today (Moscow time) into `data`.
pub fn load_city(log: &Arc<Log>, scale: f64) -> Engine {
    let today = LocalTime::from_timestamp(Timestamp::now(), &Zone::moscow()).date();
    let spec = CitySpec {
        first_day: today,
        ..CitySpec::scaled(7, scale)
    };
    let city = City::generate(&spec);
    Engine::create_with_log(
        log.clone(),
        &city.input(),
        b"doctor,from,until\n",
        "test",
        EngineOptions::default(),
        Arc::new(SystemClock),
    )
    .unwrap()
}
