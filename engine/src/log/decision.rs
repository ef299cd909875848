//! The typed payloads of decisions: one variant of [`Decision`] per kind of decision the product
//! makes, each with a stable kind code and a canonical encoding (layouts in `FORMAT.md`).
//!
//! Extending: add a struct with `canonical_struct!` and a line to `decisions!` with a new, never
//! used kind code. Existing kinds never change their layout (that would need a new entry version),
//! so old entries keep their bytes, their hashes and the proofs that cover them.
//!
//! Every entry also carries an `actor` (who asked) and a `subject` (whom the decision is about);
//! payloads do not repeat the subject. The subject each kind expects is in its documentation.

use super::codec::{
    Bytes, Canonical, DecodeError, Digest, Parameters, Problem, Reader, Writer, canonical_enum,
    canonical_struct,
};
use super::entry::Timestamp;

canonical_enum! {
    /// The service a window, run or re-offer belongs to.
    pub enum Domain {
        Appointments = 1,
        Fairs = 2,
        Schools = 3,
    }
}

canonical_enum! {
    /// Why a hold ended without a booking.
    pub enum HoldEnd {
        /// Its time limit passed.
        Expired = 1,
        /// The patient or the booking system let it go.
        Released = 2,
    }
}

canonical_enum! {
    /// Who cancelled an appointment.
    pub enum CancelledBy {
        Patient = 1,
        Clinic = 2,
        /// allot itself, for example when a doctor's absence freed the slot.
        System = 3,
    }
}

canonical_enum! {
    /// How a booked appointment ended (FHIR `Appointment.status`).
    pub enum Attendance {
        Fulfilled = 1,
        NoShow = 2,
    }
}

canonical_struct! {
    /// A time-limited hold on a free slot (IHE `$hold`). Subject: the patient.
    pub struct SlotHeld {
        pub slot: String,
        /// The hold's id, quoted by the booking or release that ends it.
        pub hold: String,
        pub expires: Timestamp,
    }
}

canonical_struct! {
    /// A hold ended without a booking; the slot is free again. Subject: the patient.
    pub struct HoldReleased {
        pub slot: String,
        pub hold: String,
        pub reason: HoldEnd,
    }
}

canonical_struct! {
    /// A slot booked for a patient (IHE `$book`). Subject: the patient.
    pub struct SlotBooked {
        pub slot: String,
        pub appointment: String,
        /// The hold this booking consumed, if it followed one.
        pub hold: Option<String>,
    }
}

canonical_struct! {
    /// A booked appointment cancelled; its slot is free again. Subject: the patient.
    pub struct AppointmentCancelled {
        pub appointment: String,
        pub slot: String,
        pub by: CancelledBy,
    }
}

canonical_struct! {
    /// An appointment moved to another slot. Subject: the patient.
    pub struct Rescheduled {
        pub appointment: String,
        pub from_slot: String,
        pub to_slot: String,
    }
}

canonical_struct! {
    /// A doctor is absent; his slots in the interval stop being bookable. Subject: the doctor.
    pub struct AbsenceMarked {
        pub from: Timestamp,
        pub until: Timestamp,
        /// How many booked slots the absence freed (each followed by a re-offer or cancellation).
        pub freed_slots: u32,
    }
}

canonical_struct! {
    /// A patient displaced by an absence is offered another slot. Subject: the patient.
    pub struct ReOffered {
        pub appointment: String,
        pub from_slot: String,
        pub offered_slot: String,
        /// The offer lapses at this time unless accepted.
        pub expires: Timestamp,
    }
}

canonical_struct! {
    /// How a booked appointment ended. Subject: the patient.
    pub struct AttendanceRecorded {
        pub appointment: String,
        pub status: Attendance,
    }
}

canonical_struct! {
    /// An application received into an open window, or amended (a later one with the same
    /// subject replaces it until the window closes). Subject: the item's key in the window, e.g.
    /// `applicant:A17`, `pool:F3/food`, `school:S12`. The item is the domain's JSON record of it
    /// (documented in `FORMAT.md`); the window's canonical set is built from the last record of
    /// every subject not withdrawn.
    pub struct ApplicationSubmitted {
        pub domain: Domain,
        pub window: String,
        pub item: Bytes,
    }
}

canonical_struct! {
    /// An application withdrawn from an open window. Subject: the item's key in the window.
    pub struct ApplicationWithdrawn {
        pub domain: Domain,
        pub window: String,
    }
}

canonical_struct! {
    /// An application window closed: the committed, canonical application set. Subject: the window.
    pub struct ApplicationsClosed {
        pub domain: Domain,
        pub applications: u64,
        /// SHA-256 of the canonical application set; the lottery seed commits to it.
        pub set_digest: Digest,
    }
}

canonical_struct! {
    /// The lottery seed drawn for a closed window from a public randomness beacon published after
    /// it closed: `seed = SHA-256(commitment || beacon_value)`. Subject: the window.
    pub struct SeedDrawn {
        pub domain: Domain,
        /// The `set_digest` of the window's `ApplicationsClosed`.
        pub commitment: Digest,
        pub beacon_source: String,
        pub beacon_round: u64,
        pub beacon_value: Bytes,
        pub seed: Digest,
    }
}

canonical_struct! {
    /// Sizes of an allocation run.
    pub struct RunCounts {
        pub participants: u64,
        pub places: u64,
        pub assigned: u64,
    }
}

canonical_struct! {
    /// An allocation run: enough to re-run it and compare. Logged in one batch with its outcomes.
    /// Subject: the window (or the re-balance) it allocated.
    pub struct AllocationRun {
        pub domain: Domain,
        /// `da`, `welfare`, `rsd`, `ttc`, `mcf`, ...
        pub mechanism: String,
        /// SHA-256 of the canonical inputs (applications, capacities, priorities).
        pub input_digest: Digest,
        pub parameters: Parameters,
        /// The lottery seed, when lottery numbers were drawn from one.
        pub seed: Option<Digest>,
        /// SHA-256 of the canonical assignment.
        pub outcome_digest: Digest,
        pub counts: RunCounts,
    }
}

canonical_struct! {
    /// One participant's outcome of a run. Subject: the participant.
    pub struct Outcome {
        /// [`AllocationRun::id`] of the run: outcomes are logged in the run's own batch, before its
        /// index is known, so they name it by content.
        pub run: Digest,
        /// The place given, or none.
        pub assigned: Option<String>,
        /// 1-based position of `assigned` in the participant's list.
        pub rank: Option<u32>,
    }
}

canonical_struct! {
    /// A participant gave back the place a run assigned. Subject: the participant.
    pub struct Withdrawn {
        pub domain: Domain,
        pub run: Digest,
        pub place: String,
    }
}

canonical_struct! {
    /// A domain's application windows were saved as of the log's first `covers` entries (a hint
    /// read on start instead of those entries); `digest` is SHA-256 of the saved state, which is
    /// read only if it matches. Subject: `windows`.
    pub struct WindowsSaved {
        pub domain: Domain,
        pub covers: u64,
        pub digest: Digest,
    }
}

canonical_struct! {
    /// A participant accepted the place it holds in a run (the run's, or one re-offered to it).
    /// Subject: the participant.
    pub struct PlaceAccepted {
        pub domain: Domain,
        pub run: Digest,
        pub place: String,
    }
}

canonical_struct! {
    /// A given-back place offered to the next participant in line. Subject: the new holder.
    pub struct PlaceReOffered {
        pub domain: Domain,
        pub run: Digest,
        pub place: String,
        /// Who gave the place back.
        pub from: String,
    }
}

canonical_struct! {
    /// A city's clinics, doctors and weekly schedules loaded as the appointment inventory over a
    /// planning horizon. Subject: `appointments`.
    pub struct ScheduleLoaded {
        /// SHA-256 of the canonical schedule input (kept in the blob store), from which the
        /// slots are expanded again on every start.
        pub input_digest: Digest,
        /// The horizon's first day, a local date `YYYY-MM-DD`.
        pub first_day: String,
        pub days: u32,
        pub clinics: u32,
        pub doctors: u32,
        pub slots: u64,
    }
}

canonical_struct! {
    /// The appointment inventory as left by the log's first `covers` entries was saved to a
    /// snapshot file, so that a restart replays only the entries after them. Subject:
    /// `appointments`.
    pub struct SnapshotTaken {
        pub covers: u64,
        /// SHA-256 of the snapshot's canonical state bytes (the file is checked against it).
        pub digest: Digest,
        /// The `input_digest` of the schedule the inventory belongs to.
        pub schedule: Digest,
        pub slots: u64,
        /// Appointments and holds in the snapshot.
        pub records: u64,
    }
}

impl AllocationRun {
    /// The run's id: SHA-256 of its kind code and canonical payload, so outcomes can name the run
    /// in the same batch and anyone can recompute the id from the logged entry.
    pub fn id(&self) -> Digest {
        let mut w = Writer::new();
        w.u16(DecisionKind::ALLOCATION_RUN.0);
        self.encode(&mut w);
        Digest::of(&w.into_bytes())
    }
}

/// A decision kind's stable code (the `kind` field of an entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DecisionKind(pub u16);

macro_rules! decisions {
    ( $( $(#[$vmeta:meta])* $variant:ident = $code:literal, $konst:ident; )* ) => {
        /// Every decision the log records, by kind.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Decision {
            $( $(#[$vmeta])* $variant($variant), )*
        }

        impl DecisionKind {
            $( pub const $konst: DecisionKind = DecisionKind($code); )*
            pub const ALL: &'static [DecisionKind] = &[$(DecisionKind::$konst),*];

            /// The kind's name, or `None` for a code this build does not know.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $code => Some(stringify!($variant)), )*
                    _ => None,
                }
            }
        }

        impl Decision {
            pub fn kind(&self) -> DecisionKind {
                match self { $( Decision::$variant(_) => DecisionKind($code), )* }
            }

            pub fn name(&self) -> &'static str {
                match self { $( Decision::$variant(_) => stringify!($variant), )* }
            }

            /// The payload's fields and rendered values, in encoding order.
            pub fn fields(&self) -> Vec<(&'static str, String)> {
                match self { $( Decision::$variant(p) => p.fields(), )* }
            }

            pub(crate) fn encode_payload(&self, w: &mut Writer) {
                match self { $( Decision::$variant(p) => p.encode(w), )* }
            }

            pub(crate) fn decode_payload(
                kind: u16,
                r: &mut Reader<'_>,
            ) -> Result<Decision, DecodeError> {
                match kind {
                    $( $code => <$variant as Canonical>::decode(r, stringify!($variant))
                        .map(Decision::$variant), )*
                    other => Err(r.error("kind", Problem::UnknownKind(other))),
                }
            }
        }

        $(
            impl From<$variant> for Decision {
                fn from(p: $variant) -> Decision {
                    Decision::$variant(p)
                }
            }
        )*
    };
}

decisions! {
    SlotHeld = 0x0101, SLOT_HELD;
    HoldReleased = 0x0102, HOLD_RELEASED;
    SlotBooked = 0x0103, SLOT_BOOKED;
    AppointmentCancelled = 0x0104, APPOINTMENT_CANCELLED;
    Rescheduled = 0x0105, RESCHEDULED;
    AbsenceMarked = 0x0106, ABSENCE_MARKED;
    ReOffered = 0x0107, RE_OFFERED;
    AttendanceRecorded = 0x0108, ATTENDANCE_RECORDED;
    ApplicationsClosed = 0x0201, APPLICATIONS_CLOSED;
    SeedDrawn = 0x0202, SEED_DRAWN;
    AllocationRun = 0x0203, ALLOCATION_RUN;
    Outcome = 0x0204, OUTCOME;
    Withdrawn = 0x0205, WITHDRAWN;
    PlaceReOffered = 0x0206, PLACE_RE_OFFERED;
    ScheduleLoaded = 0x0109, SCHEDULE_LOADED;
    SnapshotTaken = 0x010a, SNAPSHOT_TAKEN;
    ApplicationSubmitted = 0x0207, APPLICATION_SUBMITTED;
    ApplicationWithdrawn = 0x0208, APPLICATION_WITHDRAWN;
    PlaceAccepted = 0x0209, PLACE_ACCEPTED;
    WindowsSaved = 0x020a, WINDOWS_SAVED;
}
