//! Where an engine's decisions go: the decision log (durable), memory (tests, what-if runs that
//! keep them) or nowhere (simulations).

use std::sync::Mutex;

use crate::log::{Error, Log, Record, Ticket};

/// Where decisions go. The decision log is the durable sink; simulations run the same engine on
/// a sink that keeps or discards them.
pub trait DecisionSink: Send + Sync + std::fmt::Debug {
    /// Queues `records` as one all-or-nothing batch, in order.
    fn submit(&self, records: &[Record]) -> Result<Ack, Error>;

    /// Whether records are wanted at all (a discarding sink lets the engine skip making them).
    fn wants_records(&self) -> bool {
        true
    }

    /// The decision log behind the sink, when it is durable (snapshots need it).
    fn log(&self) -> Option<&Log> {
        None
    }
}

/// A submitted batch's fate.
#[derive(Debug)]
pub enum Ack {
    /// Nothing to wait for.
    Done,
    /// Durable once the ticket resolves.
    Durable(Ticket),
    /// Failed after it was queued.
    Failed(String),
}

impl DecisionSink for Log {
    fn submit(&self, records: &[Record]) -> Result<Ack, Error> {
        Log::submit(self, records).map(Ack::Durable)
    }

    fn log(&self) -> Option<&Log> {
        Some(self)
    }
}

/// Keeps every decision in memory (tests, what-if runs that want the decisions).
#[derive(Debug, Default)]
pub struct MemorySink {
    pub records: Mutex<Vec<Record>>,
}

impl DecisionSink for MemorySink {
    fn submit(&self, records: &[Record]) -> Result<Ack, Error> {
        super::state::lock(&self.records).extend_from_slice(records);
        Ok(Ack::Done)
    }
}

/// Discards decisions (simulation): the engine does not even make them.
#[derive(Debug, Default)]
pub struct DiscardSink;

impl DecisionSink for DiscardSink {
    fn submit(&self, _: &[Record]) -> Result<Ack, Error> {
        Ok(Ack::Done)
    }

    fn wants_records(&self) -> bool {
        false
    }
}
