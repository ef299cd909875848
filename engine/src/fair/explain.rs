//! "Why did I not get fair X?": for each fair ranked above the one received, the pool's cutoff
//! against the applicant's own (tier, lottery), in plain words.
//!
//! Under `da` (stable) and `rsd` (the same matching) the current cutoffs explain the outcome
//! exactly: an applicant gets the first pool on its list that is not full of applicants ahead of
//! it. Under `welfare` priorities do not decide; instead the flow is re-solved with the applicant
//! forced into each better fair, and the explanation says what that would cost: fewer applicants
//! placed in some tier, or a larger sum of squared ranks.

use allot_solvers::mcf::Solver;

use super::compare::{stats, stats_with};
use super::solve::{welfare_network, worst_full};
use super::{FairInput, FairSolved, Fairs, Mechanism, OPEN, Precedence, TIERS};
use crate::allocation::{Error, Explanation, Holdings, Loaded, Result, key_parts};

fn tier_words(tier: u32) -> String {
    let label = TIERS.get(tier as usize).copied().unwrap_or("unknown tier");
    format!("tier {tier} ({label})")
}

fn stalls_words(input: &FairInput, pool: u32) -> String {
    let p = &input.pools[pool as usize];
    if p.category == OPEN {
        format!("open stalls ({}, any category)", p.stalls)
    } else {
        format!("'{}' stalls ({})", p.category, p.stalls)
    }
}

/// Explains `applicant`'s current outcome in the loaded run, with `state` the current assignment.
pub fn explain(loaded: &Loaded<Fairs>, state: &Holdings, applicant: &str) -> Result<Explanation> {
    let (input, solved) = (&loaded.input, &loaded.solved);
    let i = input.applicant(applicant).ok_or_else(|| {
        Error::Request(format!(
            "there is no applicant '{applicant}' in run {}",
            loaded.run.label()
        ))
    })?;
    let a = &input.applicants[i as usize];
    let own_key = (u32::from(a.tier), solved.lottery[i as usize]);
    let mechanism = solved.mechanism;
    let mut lines = vec![format!(
        "Applicant {} ('{}' goods, {}, lottery number {}), fair run {} ({}, {} precedence):",
        a.id,
        a.category,
        tier_words(own_key.0),
        own_key.1,
        loaded.run.label(),
        mechanism.name(),
        loaded.params.precedence.name(),
    )];
    let held = state.unit_of(&solved.market, i);
    let got_rank =
        held.and_then(|_| state.position[i as usize].map(|position| solved.rank_at(i, position)));
    match held {
        Some(pool) => lines.push(format!(
            "You have a stall at {} (your choice {}), in its {} pool.",
            input.fair_of(pool),
            got_rank.unwrap_or(0),
            if input.pools[pool as usize].category == OPEN {
                "open"
            } else {
                "own-category"
            }
        )),
        None if state.withdrawn[i as usize] => {
            lines.push("You gave your stall back.".into());
            return Ok(Explanation {
                participant: a.id.clone(),
                lines,
            });
        }
        None => lines.push("You have no stall.".into()),
    }
    let better = match got_rank {
        Some(rank) => rank as usize - 1,
        None => a.choices.len(),
    };
    if better == 0 {
        lines.push("That is your first choice: no fair ranked above it.".into());
    }
    let cutoffs = worst_full(&solved.market, &state.position);
    let mut forced = match mechanism {
        Mechanism::Welfare if better > 0 => Some(Forced::new(input, solved)?),
        _ => None,
    };
    if forced.is_some() && !loaded.changes.is_empty() {
        lines.push(
            "(Explained against the run's plan: stalls given back since were re-offered by \
             waitlist, not re-optimised.)"
                .into(),
        );
    }
    for (k, &fair) in a.choices.iter().enumerate().take(better) {
        let name = &input.fairs[fair as usize].id;
        let head = format!("- {name} (your choice {}):", k + 1);
        let mut pools: Vec<u32> = [input.pool(fair, &a.category), input.pool(fair, OPEN)]
            .into_iter()
            .flatten()
            .filter(|&p| input.pools[p as usize].stalls > 0)
            .collect();
        if loaded.params.precedence == Precedence::OpenFirst {
            pools.reverse();
        }
        if pools.is_empty() {
            lines.push(format!(
                "{head} it has no '{}' stalls and no open stalls, so no stall there could be yours.",
                a.category
            ));
            continue;
        }
        if let Some(forced) = forced.as_mut() {
            lines.push(format!("{head} {}", forced.explain(i, &pools)?));
            continue;
        }
        lines.push(head);
        for &pool in &pools {
            let text = match cutoffs[pool as usize].map(key_parts) {
                Some((tier, lottery)) => {
                    let reason = if tier < own_key.0 {
                        format!(
                            "{} comes before {}, whatever the lottery",
                            tier_words(tier),
                            tier_words(own_key.0)
                        )
                    } else if tier == own_key.0 && lottery < own_key.1 {
                        format!(
                            "same tier, and lottery number {lottery} is lower than your {} \
                             (the lower number wins)",
                            own_key.1
                        )
                    } else {
                        "you rank ahead of it, which a stable outcome does not allow: run \
                         `allot fair verify`"
                            .into()
                    };
                    let verb = if mechanism == Mechanism::Rsd {
                        "were all taken before your turn (applicants choose in order of tier, then \
                         lottery number); the last one by"
                    } else {
                        "went to applicants ahead of you; the last one admitted is"
                    };
                    format!(
                        "its {} {verb} an applicant of {} with lottery number {lottery}: {reason}.",
                        stalls_words(input, pool),
                        tier_words(tier)
                    )
                }
                None => format!(
                    "its {} are not all taken now (a stall was given back and nobody on the \
                     waitlist wanted it).",
                    stalls_words(input, pool)
                ),
            };
            lines.push(format!("    {text}"));
        }
    }
    Ok(Explanation {
        participant: a.id.clone(),
        lines,
    })
}

/// The welfare flow with a warm solver, for "what if this applicant had that pool".
struct Forced<'a> {
    input: &'a FairInput,
    solved: &'a FairSolved,
    solver: Solver,
    net: super::WelfareNetwork,
    placed: [u64; 3],
    rank2: u64,
}

impl<'a> Forced<'a> {
    fn new(input: &'a FairInput, solved: &'a FairSolved) -> Result<Self> {
        let net = welfare_network(input, &solved.market, &solved.entry_rank)?;
        let mut solver = Solver::new(net.network.clone()).map_err(flow_error)?;
        solver.solve().map_err(flow_error)?;
        let base = stats(input, solved);
        Ok(Forced {
            input,
            solved,
            solver,
            net,
            placed: base.placed_per_tier,
            rank2: base.rank2_sum,
        })
    }

    /// What forcing applicant `i` into the best of `pools` (one fair's) would cost.
    fn explain(&mut self, i: u32, pools: &[u32]) -> Result<String> {
        let market = &self.solved.market;
        let offset = market.preferences().offsets()[i as usize];
        let mut best: Option<([u64; 3], u64)> = None;
        for &pool in pools {
            let Some(position) = market.list(i).iter().position(|&p| p == pool) else {
                continue;
            };
            let arc = self.net.entry_arc[offset as usize + position];
            self.solver.set_bounds(arc, 1, 1).map_err(flow_error)?;
            let solution = self.solver.solve().map_err(flow_error);
            self.solver.set_bounds(arc, 0, 1).map_err(flow_error)?;
            let positions = self.net.positions(market, &solution?.flow);
            let s = stats_with(self.input, self.solved, &positions);
            let key = (s.placed_per_tier, s.rank2_sum);
            let better = |b: &([u64; 3], u64)| {
                (b.0, std::cmp::Reverse(b.1)) < (key.0, std::cmp::Reverse(key.1))
            };
            if best.as_ref().is_none_or(better) {
                best = Some(key);
            }
        }
        let Some((placed, rank2)) = best else {
            return Ok("no stall there is open to you.".into());
        };
        for (tier, (&now, &then)) in self.placed.iter().zip(&placed).enumerate() {
            if then < now {
                let fewer = now - then;
                return Ok(format!(
                    "giving you a stall there would leave {fewer} fewer applicant{} of {} with a \
                     stall; the welfare rule places as many of tier 0 as possible, then tier 1, \
                     then tier 2.",
                    if fewer == 1 { "" } else { "s" },
                    tier_words(tier as u32)
                ));
            }
        }
        Ok(if rank2 > self.rank2 {
            format!(
                "giving you a stall there would place as many applicants in every tier, but raise \
                 the sum of squared choice ranks from {} to {rank2}; the welfare rule keeps it as \
                 low as possible.",
                self.rank2
            )
        } else {
            "another plan just as good gives you a stall there; among equally good plans the one \
             found first in lottery order was chosen."
                .into()
        })
    }
}

fn flow_error(e: allot_solvers::mcf::McfError) -> Error {
    Error::Unsupported(format!("the welfare flow could not be re-solved: {e}"))
}
