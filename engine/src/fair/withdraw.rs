//! Stalls given back during the season, and the current assignment rebuilt from the log.
//!
//! A withdrawing applicant frees its stall; the stall is offered to the first applicant on that
//! pool's waitlist (the best priority among those who listed the pool and hold something they
//! ranked lower, or nothing) who has not withdrawn. That applicant moves, freeing its own stall,
//! which is offered the same way: a vacancy chain, ending when a freed stall is wanted by nobody
//! or the mover held nothing before. Every step is a logged decision (`Withdrawn`, then one
//! `PlaceReOffered` per move), all in one batch.
//!
//! Why no justified envy appears: before the chain, everybody who prefers a full pool has a
//! lower priority than everybody it holds (the matching is stable). Each step gives the freed
//! stall to the best applicant who prefers that pool, and applicants only move up their lists, so
//! the set of applicants preferring any pool only shrinks; the new holder outranks everybody left
//! preferring the pool. A stall stays free only when nobody left wants it.

use std::collections::HashMap;

use super::publish::waitlist;
use super::{FairInput, FairSolved};
use crate::allocation::{Change, Error, LoggedChange, Result};

/// The current assignment: the run's outcome with the logged changes replayed.
#[derive(Debug, Clone)]
pub struct FairState {
    /// Per applicant, the position in its pool list of the pool it holds now.
    pub position: Vec<Option<u32>>,
    /// Per applicant, whether it gave its stall back (it is never offered one again).
    pub withdrawn: Vec<bool>,
    /// The pool each applicant left last (what its next `PlaceReOffered { from }` hands on).
    vacated: HashMap<u32, u32>,
}

impl FairState {
    /// The state right after the run.
    pub fn new(solved: &FairSolved) -> Self {
        FairState {
            position: solved.position.clone(),
            withdrawn: vec![false; solved.position.len()],
            vacated: HashMap::new(),
        }
    }

    /// The state after the run and `changes` (as logged).
    pub fn replay(
        input: &FairInput,
        solved: &FairSolved,
        changes: &[LoggedChange],
    ) -> Result<Self> {
        let mut state = Self::new(solved);
        for logged in changes {
            state
                .apply(input, solved, &logged.change)
                .map_err(|problem| {
                    Error::Request(format!(
                        "entry {}: {problem}: the logged changes do not fit the run",
                        logged.index
                    ))
                })?;
        }
        Ok(state)
    }

    /// The pool the applicant holds now.
    pub fn pool_of(&self, solved: &FairSolved, applicant: u32) -> Option<u32> {
        let position = self.position[applicant as usize]?;
        Some(solved.market.list(applicant)[position as usize])
    }

    fn apply(
        &mut self,
        input: &FairInput,
        solved: &FairSolved,
        change: &Change,
    ) -> Result<(), String> {
        let find = |id: &str| {
            input
                .applicant(id)
                .ok_or_else(|| format!("unknown applicant '{id}'"))
        };
        match change {
            Change::Withdrawn { participant, place } => {
                let i = find(participant)?;
                let pool = self
                    .pool_of(solved, i)
                    .ok_or_else(|| format!("'{participant}' holds no stall to give back"))?;
                if input.fair_of(pool) != place {
                    return Err(format!("'{participant}' holds no stall at '{place}'"));
                }
                self.position[i as usize] = None;
                self.withdrawn[i as usize] = true;
                self.vacated.insert(i, pool);
            }
            Change::ReOffered {
                participant,
                place,
                from,
            } => {
                let (i, from) = (find(participant)?, find(from)?);
                let pool = self
                    .vacated
                    .remove(&from)
                    .ok_or_else(|| format!("'{from}' left no stall to re-offer"))?;
                if input.fair_of(pool) != place {
                    return Err(format!("'{from}' left no stall at '{place}'"));
                }
                let position = solved
                    .market
                    .list(i)
                    .iter()
                    .position(|&p| p == pool)
                    .ok_or_else(|| format!("'{participant}' did not list '{place}'"))?;
                if let Some(old) = self.pool_of(solved, i) {
                    self.vacated.insert(i, old);
                }
                self.position[i as usize] = Some(position as u32);
            }
        }
        Ok(())
    }
}

/// The changes that `applicant` giving its stall back makes (module docs), without logging
/// them.
pub fn withdraw(
    input: &FairInput,
    solved: &FairSolved,
    state: &FairState,
    applicant: &str,
) -> Result<Vec<Change>> {
    let i = input
        .applicant(applicant)
        .ok_or_else(|| Error::Request(format!("there is no applicant '{applicant}'")))?;
    let Some(mut freed) = state.pool_of(solved, i) else {
        let why = if state.withdrawn[i as usize] {
            "has already given its stall back"
        } else {
            "holds no stall"
        };
        return Err(Error::Request(format!("'{applicant}' {why}")));
    };
    let mut state = state.clone();
    let mut changes = vec![Change::Withdrawn {
        participant: applicant.to_owned(),
        place: input.fair_of(freed).to_owned(),
    }];
    state
        .apply(input, solved, &changes[0])
        .map_err(Error::Request)?;
    let mut from = i;
    loop {
        let next = waitlist(solved, &state.position, freed)
            .map(|(j, _)| j)
            .find(|&j| !state.withdrawn[j as usize]);
        let Some(j) = next else { break };
        let change = Change::ReOffered {
            participant: input.applicants[j as usize].id.clone(),
            place: input.fair_of(freed).to_owned(),
            from: input.applicants[from as usize].id.clone(),
        };
        let left = state.pool_of(solved, j);
        state
            .apply(input, solved, &change)
            .map_err(Error::Request)?;
        changes.push(change);
        match left {
            Some(pool) => {
                freed = pool;
                from = j;
            }
            None => break,
        }
    }
    Ok(changes)
}
