//! The gRPC request fuzz target (see `allot_engine::fuzz`): the first byte picks a unary method,
//! the rest is decoded with prost into its request type, and the request goes to the real
//! handler (the same validation and engine calls as over the network) of a server state on a
//! small city in a scratch data folder, made once per process. Must not panic; a refusal for a
//! bad argument names the field path.
//!
//! Client-streaming uploads are not here: they are checked over a socket by the service tests.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use allot_engine::appointments::{Engine, EngineOptions, ScheduleInput, SystemClock, Zone};
use allot_engine::log::{Log, LogOptions};
use prost::Message;
use tokio::sync::watch;
use tonic::{Code, Request, Status};

use crate::proto::v1 as pb;
use crate::proto::v1::appointments_server::Appointments as _;
use crate::proto::v1::audit_server::Audit as _;
use crate::proto::v1::fairs_server::Fairs as _;
use crate::proto::v1::schools_server::Schools as _;
use crate::server::access::Roles;
use crate::server::allocation::fairs::FairsService;
use crate::server::allocation::schools::SchoolsService;
use crate::server::appointments::AppointmentsService;
use crate::server::audit::AuditService;
use crate::server::{AppState, Caller, Domains};

struct World {
    runtime: tokio::runtime::Runtime,
    appointments: AppointmentsService,
    fairs: FairsService,
    schools: SchoolsService,
    audit: AuditService,
    _stop: watch::Sender<bool>,
}

const CLINICS: &str = "clinic,district,lat,lon\nC1,D1,55.75,37.61\nC2,D2,55.80,37.50\n";
const DOCTORS: &str = "doctor,clinic,specialty,minutes,schedule\n\
                       d1,C1,therapist,,mon-sun 08:00-12:00\nd2,C2,ent,20,mon-sun 09:00-13:00\n";

/// The data folder the target's server state lives in (one per process; remove it after use).
pub fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join(format!("allot-fuzz-grpc-{}", std::process::id()))
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = scratch_dir();
        let _ = std::fs::remove_dir_all(&dir);
        let today = allot_engine::appointments::LocalTime::from_timestamp(
            allot_engine::log::Timestamp::now(),
            &Zone::moscow(),
        )
        .date();
        let input = ScheduleInput {
            first_day: today,
            days: 7,
            zone: Zone::moscow(),
            clinics_name: "clinics.csv".into(),
            clinics_csv: CLINICS.as_bytes().to_vec(),
            doctors_name: "doctors.csv".into(),
            doctors_csv: DOCTORS.as_bytes().to_vec(),
        };
        let engine = Engine::create(
            &dir,
            &input,
            b"doctor,from,until\n",
            "fuzz",
            EngineOptions::default(),
            Arc::new(SystemClock),
        )
        .expect("a small city");
        drop(engine);
        let log = Arc::new(Log::open(&dir, LogOptions::default()).expect("the log"));
        let domains = Domains::open(&log).expect("the city");
        let (stop, stopping) = watch::channel(false);
        let state = Arc::new(AppState::with_domains(log, stopping, domains));
        World {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
            appointments: AppointmentsService::new(state.clone()),
            fairs: FairsService::new(state.clone()),
            schools: SchoolsService::new(state.clone()),
            audit: AuditService::new(state),
            _stop: stop,
        }
    })
}

fn request<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.extensions_mut().insert(Arc::new(Caller {
        name: "fuzz".into(),
        roles: Roles::ALL,
    }));
    request
}

/// A refusal of a bad argument names the field path first.
fn check<T>(result: Result<T, Status>) {
    if let Err(status) = result
        && matches!(status.code(), Code::InvalidArgument | Code::OutOfRange)
    {
        assert!(
            status.message().starts_with("request"),
            "{:?} names no field path",
            status.message()
        );
        assert!(status.message().len() <= 2000, "a long message");
    }
}

/// How many methods the first byte chooses from.
pub const METHODS: u8 = 26;

macro_rules! call {
    ($w:expr, $service:ident, $method:ident, $type:ty, $bytes:expr) => {
        if let Ok(message) = <$type>::decode($bytes) {
            check($w.runtime.block_on($w.$service.$method(request(message))));
        }
    };
}

pub fn grpc_request(data: &[u8]) {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let w = world();
    match which % METHODS {
        0 => call!(w, appointments, find_slots, pb::FindSlotsRequest, bytes),
        1 => call!(w, appointments, hold_slot, pb::HoldSlotRequest, bytes),
        2 => call!(w, appointments, book, pb::BookRequest, bytes),
        3 => call!(w, appointments, cancel, pb::CancelRequest, bytes),
        4 => call!(w, appointments, reschedule, pb::RescheduleRequest, bytes),
        5 => call!(
            w,
            appointments,
            get_appointment,
            pb::GetAppointmentRequest,
            bytes
        ),
        6 => call!(w, appointments, mark_absence, pb::MarkAbsenceRequest, bytes),
        7 => call!(w, appointments, rebalance, pb::RebalanceRequest, bytes),
        8 => call!(
            w,
            fairs,
            close_applications,
            pb::CloseFairApplicationsRequest,
            bytes
        ),
        9 => call!(
            w,
            fairs,
            run_allocation,
            pb::RunFairAllocationRequest,
            bytes
        ),
        10 => call!(w, fairs, get_outcome, pb::GetFairOutcomeRequest, bytes),
        11 => call!(w, fairs, explain, pb::ExplainFairOutcomeRequest, bytes),
        12 => call!(w, fairs, withdraw, pb::WithdrawFairStallRequest, bytes),
        13 => call!(w, fairs, verify, pb::VerifyFairRunRequest, bytes),
        14 => call!(
            w,
            schools,
            close_applications,
            pb::CloseSchoolApplicationsRequest,
            bytes
        ),
        15 => call!(
            w,
            schools,
            run_allocation,
            pb::RunSchoolAllocationRequest,
            bytes
        ),
        16 => call!(w, schools, get_outcome, pb::GetSchoolOutcomeRequest, bytes),
        17 => call!(w, schools, explain, pb::ExplainSchoolOutcomeRequest, bytes),
        18 => call!(w, schools, verify, pb::VerifySchoolRunRequest, bytes),
        19 => call!(w, audit, get_entry, pb::GetEntryRequest, bytes),
        20 => call!(
            w,
            audit,
            get_inclusion_proof,
            pb::GetInclusionProofRequest,
            bytes
        ),
        21 => call!(
            w,
            audit,
            get_consistency_proof,
            pb::GetConsistencyProofRequest,
            bytes
        ),
        22 => call!(w, appointments, release_hold, pb::ReleaseHoldRequest, bytes),
        23 => call!(w, appointments, accept_offer, pb::AcceptOfferRequest, bytes),
        24 => call!(
            w,
            appointments,
            record_attendance,
            pb::RecordAttendanceRequest,
            bytes
        ),
        _ => call!(
            w,
            appointments,
            get_inventory,
            pb::GetInventoryRequest,
            bytes
        ),
    }
}
