//! The one shape of every inventory change: under the patient's shard lock and the doctor locks
//! of the slots it touches, an operation checks, applies its effects (keeping what undoes each),
//! queues its decisions beside them, and submits the batch while it still holds the locks (so
//! the log's order is the order in which slots changed, and no fsync happens under a lock). It
//! answers once the decisions are durable ([`Pending`]). If the submission fails, the effects
//! are undone at once, under the same locks; if the log fails later, when the answer is awaited.

use std::sync::Arc;

use super::engine::Inner;
use super::error::{Error, Result};
use super::pending::Pending;
use super::state::{Effect, PatientShard};
use crate::log::{Decision, Record, Timestamp};

/// Records to submit, or none when the sink does not want them.
pub(crate) struct Batch {
    wanted: bool,
    pub records: Vec<Record>,
    time: Timestamp,
}

impl Batch {
    pub fn new(wanted: bool, time: Timestamp) -> Batch {
        Batch {
            wanted,
            records: Vec::new(),
            time,
        }
    }

    pub fn push(&mut self, actor: &str, subject: &str, decision: impl FnOnce() -> Decision) {
        if self.wanted {
            self.records
                .push(Record::new(self.time, actor, subject, decision()));
        }
    }
}

/// One operation's effects and decisions, made while its locks are held.
pub(crate) struct Change<'e> {
    inner: &'e Arc<Inner>,
    batch: Batch,
    /// What undoes each effect applied so far, in the order they were applied.
    undo: Vec<Effect>,
}

impl<'e> Change<'e> {
    pub fn new(inner: &'e Arc<Inner>, now: Timestamp) -> Change<'e> {
        Change {
            batch: inner.batch(now),
            inner,
            undo: Vec::new(),
        }
    }

    /// Applies `effect` to the inventory now; `undo` puts it back should the log fail (`None`:
    /// nothing to put back). If it cannot be applied, the change's earlier effects are undone.
    pub fn apply(
        &mut self,
        shard: &mut PatientShard,
        effect: Effect,
        undo: Option<Effect>,
    ) -> Result<()> {
        if let Err(why) = self.inner.inv.apply(shard, &effect) {
            for effect in self.undo.drain(..).rev() {
                let _ = self.inner.inv.apply(shard, &effect);
            }
            return Err(Error::Internal(why));
        }
        self.undo.extend(undo);
        Ok(())
    }

    /// Queues a decision about `subject` (made only if the sink wants records).
    pub fn log(&mut self, actor: &str, subject: &str, decision: impl FnOnce() -> Decision) {
        self.batch.push(actor, subject, decision);
    }

    /// Submits the decisions while the caller still holds its locks; the answer is `value` once
    /// they are durable.
    pub fn commit<T>(self, shard: &mut PatientShard, value: T) -> Result<Pending<T>> {
        let mut undo = self.undo;
        undo.reverse();
        let ack = self.inner.submit(shard, self.batch, &undo)?;
        Ok(Pending::new(self.inner, ack, value, undo))
    }
}
