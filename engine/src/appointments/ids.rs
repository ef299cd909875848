//! The ids clients see: holds (`h123`) and appointments (`a123`), and the key a slot's hold has
//! in a patient shard (a hold, or a re-offer to an appointment after an absence).

use std::str::FromStr;

use super::state::SHARDS;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> std::result::Result<Self, ()> {
                let digits = s.strip_prefix($prefix).ok_or(())?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit())
                    || (digits.len() > 1 && digits.starts_with('0'))
                {
                    return Err(());
                }
                digits.parse::<u64>().ok().filter(|&n| n < HoldKey::OFFER_BIT).map($name).ok_or(())
            }
        }
    };
}

id_type!(
    /// A hold, `h123`.
    HoldId,
    "h"
);
id_type!(
    /// An appointment, `a123`.
    AppointmentId,
    "a"
);

/// What holds a slot in a patient shard's holds: a patient's hold, or a re-offer of another slot
/// to an appointment whose doctor is absent. One `u64` key space: a re-offer's key is its
/// appointment's number with the top bit set, which no hold or appointment number has (they
/// count up from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct HoldKey(u64);

impl HoldKey {
    const OFFER_BIT: u64 = 1 << 63;

    pub fn hold(number: u64) -> HoldKey {
        HoldKey(number)
    }

    pub fn offer(appointment: u64) -> HoldKey {
        HoldKey(appointment | Self::OFFER_BIT)
    }

    /// The appointment a re-offer is for; `None` for a patient's hold.
    pub fn offered_to(self) -> Option<u64> {
        (self.0 & Self::OFFER_BIT != 0).then_some(self.0 & !Self::OFFER_BIT)
    }

    /// The hold's or the appointment's number (whose `% SHARDS` is its patient shard).
    pub fn number(self) -> u64 {
        self.0 & !Self::OFFER_BIT
    }

    pub fn shard(self) -> usize {
        (self.number() % SHARDS as u64) as usize
    }

    /// The key as a snapshot stores it.
    pub fn to_bits(self) -> u64 {
        self.0
    }

    pub fn from_bits(bits: u64) -> HoldKey {
        HoldKey(bits)
    }

    /// The id a client sees: `h123` for a hold, `a123` (its appointment) for a re-offer.
    pub fn name(self) -> String {
        match self.offered_to() {
            Some(appointment) => AppointmentId(appointment).to_string(),
            None => HoldId(self.0).to_string(),
        }
    }
}
