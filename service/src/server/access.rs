//! Who may call what: the roles, and the one table that gives every gRPC method its access rule.
//!
//! A path missing from [`METHODS`] is answered UNIMPLEMENTED (after the token is checked) and never
//! reaches a handler, so a service registered without its rows is closed rather than open. The table also lists the domain
//! services' methods before their handlers are registered: the role design belongs to the API.
//! A test checks that the table names exactly the methods of the file descriptor sets served.

use std::fmt;
use std::str::FromStr;

/// A role a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// UMIAS: finds, holds, books, cancels and reschedules appointments; re-balances referrals.
    ClinicSystem,
    /// Runs fair-stall allocations.
    FairAdmin,
    /// Runs school-seat allocations.
    SchoolAdmin,
    /// Simulates scenarios.
    Planner,
    /// Reads and proves the decision log, reads and verifies allocation outcomes.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::ClinicSystem,
        Role::FairAdmin,
        Role::SchoolAdmin,
        Role::Planner,
        Role::Auditor,
    ];

    /// The role's name in configuration files and messages.
    pub fn name(self) -> &'static str {
        match self {
            Role::ClinicSystem => "clinic-system",
            Role::FairAdmin => "fair-admin",
            Role::SchoolAdmin => "school-admin",
            Role::Planner => "planner",
            Role::Auditor => "auditor",
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role \"{0}\": the roles are clinic-system, fair-admin, school-admin, planner, auditor"
)]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| UnknownRole(allot_engine::input::clip(s)))
    }
}

/// A set of roles.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Roles(u8);

impl Roles {
    pub const NONE: Roles = Roles(0);
    pub const ALL: Roles = Roles(0b1_1111);

    pub const fn of(roles: &[Role]) -> Roles {
        let mut bits = 0;
        let mut i = 0;
        while i < roles.len() {
            bits |= roles[i].bit();
            i += 1;
        }
        Roles(bits)
    }

    pub fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    pub fn intersects(self, other: Roles) -> bool {
        self.0 & other.0 != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.contains(*r))
    }
}

impl FromIterator<Role> for Roles {
    fn from_iter<I: IntoIterator<Item = Role>>(iter: I) -> Roles {
        Roles(iter.into_iter().fold(0, |bits, r| bits | r.bit()))
    }
}

/// `[auditor, planner]`.
impl fmt::Debug for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter().map(Role::name)).finish()
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Role::name).collect();
        if names.is_empty() {
            f.write_str("no role")
        } else {
            f.write_str(&names.join(", "))
        }
    }
}

/// Who may call a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token: the health check and reflection, which load balancers and tools
    /// call before they have credentials and which reveal nothing but the API's shape; and the
    /// citizens' lookups of their own outcome and of published cutoffs (the outcome only with
    /// the applicant's id and, where the city gave one, its code).
    Public,
    /// A valid token with at least one of these roles.
    AnyOf(Roles),
}

/// One gRPC method and its rules.
#[derive(Debug, Clone, Copy)]
pub struct Method {
    /// The HTTP/2 path, `/package.Service/Method`.
    pub path: &'static str,
    pub access: Access,
    /// A call that may stay open indefinitely (a watch). It does not count against the
    /// server-wide concurrency limit, so watchers cannot starve ordinary calls.
    pub long_lived: bool,
    /// The call makes decisions (logs them): a follower replica refuses it with UNAVAILABLE
    /// naming the leader, before any handler runs.
    pub writes: bool,
}

const fn roles(path: &'static str, roles: &[Role]) -> Method {
    Method {
        path,
        access: Access::AnyOf(Roles::of(roles)),
        long_lived: false,
        writes: false,
    }
}

/// A method that makes decisions (see [`Method::writes`]).
const fn writes(path: &'static str, roles: &[Role]) -> Method {
    Method {
        path,
        access: Access::AnyOf(Roles::of(roles)),
        long_lived: false,
        writes: true,
    }
}

const fn public(path: &'static str, long_lived: bool) -> Method {
    Method {
        path,
        access: Access::Public,
        long_lived,
        writes: false,
    }
}

const CLINIC: Role = Role::ClinicSystem;
const FAIRS: Role = Role::FairAdmin;
const SCHOOLS: Role = Role::SchoolAdmin;
const PLANNER: Role = Role::Planner;
const AUDITOR: Role = Role::Auditor;

/// Every method of every service the server may serve, with who may call it.
pub const METHODS: &[Method] = &[
    roles("/allot.v1.Appointments/FindSlots", &[CLINIC]),
    writes("/allot.v1.Appointments/HoldSlot", &[CLINIC]),
    writes("/allot.v1.Appointments/Book", &[CLINIC]),
    writes("/allot.v1.Appointments/ReleaseHold", &[CLINIC]),
    writes("/allot.v1.Appointments/Cancel", &[CLINIC]),
    writes("/allot.v1.Appointments/AcceptOffer", &[CLINIC]),
    writes("/allot.v1.Appointments/RecordAttendance", &[CLINIC]),
    writes("/allot.v1.Appointments/Reschedule", &[CLINIC]),
    roles("/allot.v1.Appointments/GetAppointment", &[CLINIC]),
    roles("/allot.v1.Appointments/GetHold", &[CLINIC]),
    roles("/allot.v1.Appointments/GetInventory", &[CLINIC]),
    writes("/allot.v1.Appointments/MarkAbsence", &[CLINIC]),
    writes("/allot.v1.Appointments/Rebalance", &[CLINIC]),
    roles("/allot.v1.Appointments/ListSlots", &[CLINIC]),
    roles("/allot.v1.Appointments/ListAppointments", &[CLINIC]),
    roles("/allot.v1.Appointments/ListDoctors", &[CLINIC]),
    roles("/allot.v1.Appointments/ListClinics", &[CLINIC]),
    writes("/allot.v1.Fairs/SubmitApplications", &[FAIRS]),
    writes("/allot.v1.Fairs/CloseApplications", &[FAIRS]),
    writes("/allot.v1.Fairs/WithdrawApplications", &[FAIRS]),
    roles("/allot.v1.Fairs/GetApplicationStatus", &[FAIRS, AUDITOR]),
    writes("/allot.v1.Fairs/AcceptPlace", &[FAIRS]),
    writes("/allot.v1.Fairs/RunAllocation", &[FAIRS]),
    roles("/allot.v1.Fairs/GetOutcome", &[FAIRS, AUDITOR]),
    roles("/allot.v1.Fairs/Explain", &[FAIRS, AUDITOR]),
    writes("/allot.v1.Fairs/Withdraw", &[FAIRS]),
    roles("/allot.v1.Fairs/Verify", &[FAIRS, AUDITOR]),
    roles("/allot.v1.Fairs/GetRun", &[FAIRS, AUDITOR]),
    roles("/allot.v1.Fairs/GetResults", &[FAIRS, AUDITOR]),
    roles("/allot.v1.Fairs/ListWindows", &[FAIRS, AUDITOR]),
    public("/allot.v1.Fairs/LookUp", false),
    public("/allot.v1.Fairs/GetCutoffs", false),
    writes("/allot.v1.Schools/SubmitApplications", &[SCHOOLS]),
    writes("/allot.v1.Schools/CloseApplications", &[SCHOOLS]),
    writes("/allot.v1.Schools/WithdrawApplications", &[SCHOOLS]),
    roles(
        "/allot.v1.Schools/GetApplicationStatus",
        &[SCHOOLS, AUDITOR],
    ),
    writes("/allot.v1.Schools/AcceptPlace", &[SCHOOLS]),
    writes("/allot.v1.Schools/RunAllocation", &[SCHOOLS]),
    roles("/allot.v1.Schools/GetOutcome", &[SCHOOLS, AUDITOR]),
    roles("/allot.v1.Schools/Explain", &[SCHOOLS, AUDITOR]),
    writes("/allot.v1.Schools/Withdraw", &[SCHOOLS]),
    roles("/allot.v1.Schools/Verify", &[SCHOOLS, AUDITOR]),
    roles("/allot.v1.Schools/GetRun", &[SCHOOLS, AUDITOR]),
    roles("/allot.v1.Schools/GetResults", &[SCHOOLS, AUDITOR]),
    roles("/allot.v1.Schools/ListWindows", &[SCHOOLS, AUDITOR]),
    public("/allot.v1.Schools/LookUp", false),
    public("/allot.v1.Schools/GetCutoffs", false),
    roles("/allot.v1.Scenarios/Simulate", &[PLANNER]),
    roles("/allot.v1.Audit/GetCheckpoint", &[AUDITOR]),
    roles("/allot.v1.Audit/GetEntry", &[AUDITOR]),
    roles("/allot.v1.Audit/GetInclusionProof", &[AUDITOR]),
    roles("/allot.v1.Audit/GetConsistencyProof", &[AUDITOR]),
    roles("/allot.v1.Audit/StreamEntries", &[AUDITOR]),
    roles(
        "/allot.v1.Metrics/GetMetrics",
        &[CLINIC, FAIRS, SCHOOLS, PLANNER, AUDITOR],
    ),
    public("/grpc.health.v1.Health/Check", false),
    public("/grpc.health.v1.Health/Watch", true),
    public(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        false,
    ),
    public(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        false,
    ),
];

/// The position of `path` in [`METHODS`].
pub fn method_index(path: &str) -> Option<usize> {
    METHODS.iter().position(|m| m.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.name().parse::<Role>(), Ok(role));
        }
        assert!("admin".parse::<Role>().is_err());
        let set: Roles = [AUDITOR, PLANNER].into_iter().collect();
        assert_eq!(set.to_string(), "planner, auditor");
        assert_eq!(format!("{set:?}"), r#"["planner", "auditor"]"#);
        assert!(Roles::ALL.iter().eq(Role::ALL));
    }

    #[test]
    fn paths_are_unique() {
        for (i, m) in METHODS.iter().enumerate() {
            assert_eq!(method_index(m.path), Some(i), "{} listed twice", m.path);
        }
    }
}
