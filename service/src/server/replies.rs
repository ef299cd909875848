//! Idempotent retries: the answers of calls that carried a `request_id`, so that a retry (after a
//! lost answer or a passed deadline) gets the first answer instead of acting twice.
//!
//! Kept in memory for the server's lifetime, at most [`HELD_REPLIES`] (the oldest go first), per
//! caller and method. A retry with the same id and a different request is ALREADY_EXISTS. Two
//! calls with the same id at the same moment may both act: a client retries after an answer or a
//! deadline, not concurrently.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Mutex;

use prost::Message;
use sha2::{Digest as _, Sha256};
use tonic::Status;

use super::validate::{FieldPath, check_optional_id};

/// How many answers are remembered.
pub const HELD_REPLIES: usize = 100_000;

type Key = (String, &'static str, String);

#[derive(Debug, Default)]
struct Held {
    answers: HashMap<Key, ([u8; 32], Vec<u8>)>,
    order: VecDeque<Key>,
}

/// The remembered answers.
#[derive(Debug, Default)]
pub struct Replies {
    held: Mutex<Held>,
}

impl Replies {
    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `act` unless the same caller already sent this `method` with this `request_id`
    /// (an empty id: always runs). A successful answer is remembered.
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
        Resp: Message + Default,
        Fut: Future<Output = Result<Resp, Status>>,
    {
        let path = FieldPath::request().field("request_id");
        let Some(id) = check_optional_id(request_id, &path)? else {
            return act().await;
        };
        let digest: [u8; 32] = Sha256::digest(request.encode_to_vec()).into();
        let key: Key = (caller.to_owned(), method, id.to_owned());
        if let Some((seen, answer)) = self.held().answers.get(&key) {
            if *seen != digest {
                return Err(Status::already_exists(format!(
                    "request.request_id: {id:?} was already used for a different {method} request"
                )));
            }
            return Resp::decode(answer.as_slice())
                .map_err(|e| Status::internal(format!("a remembered answer: {e}")));
        }
        let answer = act().await?;
        let mut held = self.held();
        if held
            .answers
            .insert(key.clone(), (digest, answer.encode_to_vec()))
            .is_none()
        {
            held.order.push_back(key);
        }
        while held.order.len() > HELD_REPLIES {
            if let Some(old) = held.order.pop_front() {
                held.answers.remove(&old);
            }
        }
        Ok(answer)
    }
}
