//! A queued operation's answer: ready once its decisions are durable.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::engine::Inner;
use super::error::{Error, Result};
use super::sink::Ack;
use super::state::Effect;

/// A queued operation: the answer, once its decisions are durable.
///
/// [`Pending::wait`] blocks the thread; async callers `.await` it. Dropping it does not undo
/// the operation (its decisions are queued), it only stops waiting.
#[must_use = "an operation is acknowledged only once its decisions are durable"]
#[derive(Debug)]
pub struct Pending<T> {
    engine: Arc<Inner>,
    ack: Option<Ack>,
    value: Option<T>,
    undo: Vec<Effect>,
}

impl<T> Pending<T> {
    pub(crate) fn new(engine: &Arc<Inner>, ack: Ack, value: T, undo: Vec<Effect>) -> Self {
        Pending {
            engine: engine.clone(),
            ack: Some(ack),
            value: Some(value),
            undo,
        }
    }

    /// Blocks until the decisions are durable; the answer, or why it was not logged.
    pub fn wait(self) -> Result<T> {
        self.wait_entries().map(|(value, _)| value)
    }

    /// [`Pending::wait`], also returning the log entries the decisions became (none on a sink
    /// that is not durable).
    pub fn wait_entries(mut self) -> Result<(T, Option<Range<u64>>)> {
        let outcome = match self.ack.take() {
            Some(Ack::Durable(ticket)) => ticket.wait().map(Some).map_err(|e| e.to_string()),
            Some(Ack::Failed(e)) => Err(e),
            Some(Ack::Done) | None => Ok(None),
        };
        self.finish(outcome)
    }

    /// A future of the answer with the log entries its decisions became (see
    /// [`Pending::wait_entries`]).
    pub fn with_entries(self) -> WithEntries<T> {
        WithEntries(self)
    }

    fn finish(
        &mut self,
        outcome: std::result::Result<Option<Range<u64>>, String>,
    ) -> Result<(T, Option<Range<u64>>)> {
        match outcome {
            Ok(entries) => self
                .value
                .take()
                .map(|value| (value, entries))
                .ok_or_else(|| Error::Internal("a pending operation resolved twice".into())),
            Err(e) => {
                self.engine.fail(&e);
                self.engine.undo(std::mem::take(&mut self.undo));
                Err(Error::Failed(e))
            }
        }
    }

    fn poll_entries(&mut self, cx: &mut Context<'_>) -> Poll<Result<(T, Option<Range<u64>>)>> {
        let outcome = match &mut self.ack {
            Some(Ack::Durable(ticket)) => match Pin::new(ticket).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r.map(Some).map_err(|e| e.to_string()),
            },
            Some(Ack::Failed(e)) => Err(e.clone()),
            Some(Ack::Done) | None => Ok(None),
        };
        self.ack = None;
        Poll::Ready(self.finish(outcome))
    }
}

impl<T: Unpin> Future for Pending<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        self.poll_entries(cx).map(|r| r.map(|(value, _)| value))
    }
}

/// A [`Pending`] that also answers with the log entries of its decisions.
#[must_use = "an operation is acknowledged only once its decisions are durable"]
#[derive(Debug)]
pub struct WithEntries<T>(Pending<T>);

impl<T: Unpin> Future for WithEntries<T> {
    type Output = Result<(T, Option<Range<u64>>)>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.poll_entries(cx)
    }
}
