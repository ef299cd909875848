//! Idempotent retries: the answers of calls that carried a `request_id`, so that a retry (after a
//! lost answer or a passed deadline) gets the first answer instead of acting twice.
//!
//! A call with a `request_id` runs as a task of its own: it finishes (and its answer is kept)
//! even when its caller goes away, say at a deadline. A retry that comes while it still runs
//! waits for it and gets its answer; a retry after it gets the kept answer. So an operation
//! acts at most once per id, however the calls and retries interleave. A failed call keeps
//! nothing (a retry after it acts anew, as the first one changed nothing).
//!
//! Kept in memory for the server's lifetime, at most [`HELD_REPLIES`] answers (the oldest go
//! first), per caller and method. A retry with the same id and a different request is
//! ALREADY_EXISTS.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};

use prost::Message;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;
use tonic::Status;

use super::validate::{FieldPath, check_optional_id};

/// How many answers are remembered.
pub const HELD_REPLIES: usize = 100_000;

type Key = (String, &'static str, String);

/// A call's outcome as its retries receive it: the encoded answer, or the error.
type Outcome = Result<Vec<u8>, Status>;

#[derive(Debug)]
enum Entry {
    /// The first call still runs; its outcome arrives on the channel.
    Running {
        digest: [u8; 32],
        done: watch::Receiver<Option<Outcome>>,
    },
    Answered {
        digest: [u8; 32],
        answer: Vec<u8>,
    },
}

impl Entry {
    fn digest(&self) -> &[u8; 32] {
        match self {
            Entry::Running { digest, .. } | Entry::Answered { digest, .. } => digest,
        }
    }
}

#[derive(Debug, Default)]
struct Held {
    entries: HashMap<Key, Entry>,
    /// Answered keys, oldest first.
    order: VecDeque<Key>,
}

/// The remembered answers.
#[derive(Debug, Default)]
pub struct Replies {
    held: Arc<Mutex<Held>>,
}

fn lock(held: &Mutex<Held>) -> std::sync::MutexGuard<'_, Held> {
    held.lock().unwrap_or_else(|e| e.into_inner())
}

impl Replies {
    /// Runs `act` once per caller, `method` and `request_id` (an empty id: always runs); see the
    /// module documentation.
    pub async fn once<Req, Resp, Fut>(
        &self,
        caller: &str,
        method: &'static str,
        request_id: &str,
        request: &Req,
        act: impl FnOnce() -> Fut,
    ) -> Result<Resp, Status>
    where
        Req: Message,
        Resp: Message + Default + 'static,
        Fut: Future<Output = Result<Resp, Status>> + Send + 'static,
    {
        let path = FieldPath::request().field("request_id");
        let Some(id) = check_optional_id(request_id, &path)? else {
            return act().await;
        };
        let digest: [u8; 32] = Sha256::digest(request.encode_to_vec()).into();
        let key: Key = (caller.to_owned(), method, id.to_owned());
        let mut done = {
            let mut held = lock(&self.held);
            match held.entries.get(&key) {
                Some(entry) if *entry.digest() != digest => {
                    return Err(Status::already_exists(format!(
                        "request.request_id: {id:?} was already used for a different {method} \
                         request"
                    )));
                }
                Some(Entry::Answered { answer, .. }) => return decode(answer),
                Some(Entry::Running { done, .. }) => done.clone(),
                None => {
                    let (send, done) = watch::channel(None);
                    held.entries.insert(
                        key.clone(),
                        Entry::Running {
                            digest,
                            done: done.clone(),
                        },
                    );
                    // Detached: it finishes even if this call is dropped (a passed deadline).
                    let held = self.held.clone();
                    let work = act();
                    tokio::spawn(async move {
                        let outcome = work.await.map(|answer| answer.encode_to_vec());
                        let mut held = lock(&held);
                        match &outcome {
                            Ok(answer) => {
                                held.entries.insert(
                                    key.clone(),
                                    Entry::Answered {
                                        digest,
                                        answer: answer.clone(),
                                    },
                                );
                                held.order.push_back(key);
                                while held.order.len() > HELD_REPLIES {
                                    if let Some(old) = held.order.pop_front() {
                                        held.entries.remove(&old);
                                    }
                                }
                            }
                            Err(_) => {
                                held.entries.remove(&key);
                            }
                        }
                        drop(held);
                        let _ = send.send(Some(outcome));
                    });
                    done
                }
            }
        };
        let outcome = done
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Status::internal("a call with this request_id stopped without an answer"))?
            .clone();
        match outcome {
            Some(Ok(answer)) => decode(&answer),
            Some(Err(status)) => Err(status),
            None => Err(Status::internal("no answer")),
        }
    }
}

fn decode<Resp: Message + Default>(answer: &[u8]) -> Result<Resp, Status> {
    Resp::decode(answer).map_err(|e| Status::internal(format!("a remembered answer: {e}")))
}
