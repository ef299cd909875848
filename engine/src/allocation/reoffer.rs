//! Places given back after a run, re-offered down a vacancy chain, and the current assignment
//! rebuilt from the log: one implementation for every domain whose places can be given back
//! (a fair's stalls, a school's seats).
//!
//! A participant giving its place back frees a seat of a *unit* (a fair's stall pool, a school).
//! The seat is offered to the first participant on the unit's waitlist (the best priority among
//! those who listed the unit and hold something they ranked lower, or nothing) who has not given
//! a place back and whom the unit takes together with everybody it still holds
//! ([`Vacancies::first_taken`]: the first, unless a school's seat reserves would turn somebody
//! away).
//! That participant moves, freeing its own seat, which is offered the same way: a vacancy chain,
//! ending when a freed seat is wanted by nobody or the mover held nothing before. Every step is
//! a logged decision (`Withdrawn`, then one `PlaceReOffered` per move), all in one batch.
//!
//! Why no justified envy appears (after a stable run: deferred acceptance): before the chain,
//! everybody who prefers a full unit has a lower priority than everybody it holds. Each step gives
//! the freed seat to the best participant who prefers the unit, and participants only move up
//! their lists, so the set of participants preferring any unit only shrinks; the new holder
//! outranks everybody left preferring the unit. A seat stays free only when nobody left wants it.
//! After an unstable run (top trading cycles, immediate acceptance, efficiency-adjusted DA) the
//! chain adds no envy of its own: every freed seat still goes to the best claimant.

use std::collections::HashMap;

use allot_solvers::matching::Market;

use super::{Allocation, Change, Error, LoggedChange, Result};

/// A domain whose places can be given back and re-offered (module docs).
pub trait Vacancies: Allocation {
    /// What a participant holds, for messages: "stall", "seat".
    const PLACE: &'static str;
    /// The units and priorities: one student per participant (same index), one school per unit.
    fn market(solved: &Self::Solved) -> &Market;
    /// Per participant, the position in its list of the unit the run gave it.
    fn run_position(solved: &Self::Solved) -> &[Option<u32>];
    /// The place (a fair, a school) a unit belongs to, as logged.
    fn place_of(input: &Self::Input, unit: u32) -> &str;
    fn participant(input: &Self::Input, id: &str) -> Option<u32>;
    fn participant_id(input: &Self::Input, i: u32) -> &str;
    /// The first of `waitlist` (in priority order) whom `unit` takes together with everybody it
    /// holds in `state`: the first, unless seat reserves say otherwise.
    fn first_taken(
        _solved: &Self::Solved,
        _unit: u32,
        _state: &Holdings,
        waitlist: &mut dyn Iterator<Item = u32>,
    ) -> Result<Option<u32>> {
        Ok(waitlist.next())
    }
}

/// The current assignment: the run's outcome with the logged changes replayed.
#[derive(Debug, Clone)]
pub struct Holdings {
    /// Per participant, the position in its list of the unit it holds now.
    pub position: Vec<Option<u32>>,
    /// Per participant, whether it gave its place back (it is never offered one again).
    pub withdrawn: Vec<bool>,
    /// The unit each participant left last (what its next `PlaceReOffered { from }` hands on).
    vacated: HashMap<u32, u32>,
}

impl Holdings {
    /// The state right after the run.
    pub fn after_run<A: Vacancies>(solved: &A::Solved) -> Self {
        let position = A::run_position(solved).to_vec();
        Holdings {
            withdrawn: vec![false; position.len()],
            position,
            vacated: HashMap::new(),
        }
    }

    /// The state after the run and `changes` (as logged).
    pub fn replay<A: Vacancies>(
        input: &A::Input,
        solved: &A::Solved,
        changes: &[LoggedChange],
    ) -> Result<Self> {
        let mut state = Self::after_run::<A>(solved);
        for logged in changes {
            state
                .apply::<A>(input, solved, &logged.change)
                .map_err(|problem| {
                    Error::Request(format!(
                        "entry {}: {problem}: the logged changes do not fit the run",
                        logged.index
                    ))
                })?;
        }
        Ok(state)
    }

    /// The unit participant `i` holds now.
    pub fn unit_of(&self, market: &Market, i: u32) -> Option<u32> {
        let position = self.position[i as usize]?;
        Some(market.list(i)[position as usize])
    }

    /// Who holds `unit` now.
    pub fn holders(&self, market: &Market, unit: u32) -> Vec<u32> {
        market
            .applicants(unit)
            .filter(|&(i, _, at)| self.position[i as usize] == Some(at))
            .map(|(i, _, _)| i)
            .collect()
    }

    fn apply<A: Vacancies>(
        &mut self,
        input: &A::Input,
        solved: &A::Solved,
        change: &Change,
    ) -> Result<(), String> {
        let market = A::market(solved);
        let find = |id: &str| {
            A::participant(input, id).ok_or_else(|| format!("unknown participant '{id}'"))
        };
        match change {
            Change::Withdrawn { participant, place } => {
                let i = find(participant)?;
                let unit = self
                    .unit_of(market, i)
                    .ok_or_else(|| format!("'{participant}' holds no {} to give back", A::PLACE))?;
                if A::place_of(input, unit) != place {
                    return Err(format!(
                        "'{participant}' holds no {} at '{place}'",
                        A::PLACE
                    ));
                }
                self.position[i as usize] = None;
                self.withdrawn[i as usize] = true;
                self.vacated.insert(i, unit);
            }
            Change::ReOffered {
                participant,
                place,
                from,
            } => {
                let (i, from) = (find(participant)?, find(from)?);
                let unit = self
                    .vacated
                    .remove(&from)
                    .ok_or_else(|| format!("'{from}' left no {} to re-offer", A::PLACE))?;
                if A::place_of(input, unit) != place {
                    return Err(format!("'{from}' left no {} at '{place}'", A::PLACE));
                }
                let position = market
                    .list(i)
                    .iter()
                    .position(|&u| u == unit)
                    .ok_or_else(|| format!("'{participant}' did not list '{place}'"))?;
                if let Some(old) = self.unit_of(market, i) {
                    self.vacated.insert(i, old);
                }
                self.position[i as usize] = Some(position as u32);
            }
        }
        Ok(())
    }
}

/// A unit's waitlist: the participants who listed it and hold nothing they ranked higher (or
/// nothing), best priority first, with their keys; withdrawn participants included.
pub fn waitlist<'m>(
    market: &'m Market,
    position: &'m [Option<u32>],
    unit: u32,
) -> impl Iterator<Item = (u32, u64)> + 'm {
    market
        .applicants(unit)
        .filter(move |&(i, _, at)| position[i as usize].is_none_or(|held| held > at))
        .map(|(i, key, _)| (i, key))
}

/// The changes that `participant` giving its place back makes (module docs), without logging
/// them.
pub fn give_back<A: Vacancies>(
    input: &A::Input,
    solved: &A::Solved,
    state: &Holdings,
    participant: &str,
) -> Result<Vec<Change>> {
    let market = A::market(solved);
    let i = A::participant(input, participant)
        .ok_or_else(|| Error::Request(format!("there is no participant '{participant}'")))?;
    let Some(mut freed) = state.unit_of(market, i) else {
        let why = if state.withdrawn[i as usize] {
            format!("has already given its {} back", A::PLACE)
        } else {
            format!("holds no {}", A::PLACE)
        };
        return Err(Error::Request(format!("'{participant}' {why}")));
    };
    let mut state = state.clone();
    let mut changes = vec![Change::Withdrawn {
        participant: participant.to_owned(),
        place: A::place_of(input, freed).to_owned(),
    }];
    state
        .apply::<A>(input, solved, &changes[0])
        .map_err(Error::Request)?;
    let mut from = i;
    loop {
        let next = {
            let mut eligible = waitlist(market, &state.position, freed)
                .map(|(j, _)| j)
                .filter(|&j| !state.withdrawn[j as usize]);
            A::first_taken(solved, freed, &state, &mut eligible)?
        };
        let Some(j) = next else { break };
        let change = Change::ReOffered {
            participant: A::participant_id(input, j).to_owned(),
            place: A::place_of(input, freed).to_owned(),
            from: A::participant_id(input, from).to_owned(),
        };
        let left = state.unit_of(market, j);
        state
            .apply::<A>(input, solved, &change)
            .map_err(Error::Request)?;
        changes.push(change);
        match left {
            Some(unit) => {
                freed = unit;
                from = j;
            }
            None => break,
        }
    }
    Ok(changes)
}
