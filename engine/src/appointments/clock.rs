//! The engine's "now": the system clock, or one that moves only when told (tests, simulations).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::log::Timestamp;

/// The engine's source of "now" (holds expire by it; find does not propose past slots).
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told (tests, simulations).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(t: Timestamp) -> Self {
        ManualClock(AtomicU64::new(t.unix_micros()))
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t.unix_micros(), Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_micros() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(self.0.load(Ordering::SeqCst))
    }
}
