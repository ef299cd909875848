//! Re-running a logged run from its stored input and logged seed and parameters.

use allot_solvers::matching::Seed;

use super::state::{LoggedRun, find_run, logged_outcomes, scan_back, stored_input};
use super::{Allocation, Result, lottery_seed, outcome_digest};
use crate::fs::DataDir;
use crate::log::decision::{ApplicationsClosed, SeedDrawn};
use crate::log::{Decision, Log};

/// One verification step and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// The result of [`verify`]: the run and every check, in order.
#[derive(Debug, Clone)]
pub struct Verification {
    pub run: LoggedRun,
    pub checks: Vec<Check>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// Verifies the run `which` names (index or id prefix, see [`find_run`]) in the log of
/// `data_dir`:
///
/// - `input`: the stored input blob exists, hashes to the run's `input_digest` and decodes;
/// - `commitment`: the window was closed (`ApplicationsClosed` with that digest and the run's
///   participant count) before the run;
/// - `seed`: for drawn lotteries, a `SeedDrawn` for that commitment, after it and before the run,
///   whose seed is SHA-256(commitment || beacon value) and equals the run's; otherwise the input
///   carries its own lottery numbers;
/// - `outcome digest`: re-running the mechanism gives the logged outcome digest;
/// - `outcomes`: every logged outcome equals the re-run's, participant by participant;
/// - `counts`: the logged counts equal the re-run's.
///
/// Errors only when the run cannot be found or the log cannot be read; everything else is a
/// failed check.
pub fn verify<A: Allocation>(data_dir: impl Into<DataDir>, which: &str) -> Result<Verification> {
    let log = Log::open_read_only(data_dir)?;
    verify_with_log::<A>(&log, which)
}

/// [`verify`] on a log the caller holds open (a server shares one log between its domains).
pub fn verify_with_log<A: Allocation>(log: &Log, which: &str) -> Result<Verification> {
    let run = find_run(log, A::DOMAIN, Some(which))?;
    let mut checks = Vec::new();
    let digest = run.run.input_digest;
    let input = match stored_input::<A>(log, &run.run) {
        Ok(input) => {
            checks.push(made(
                "input",
                true,
                format!("stored input {digest} is present and intact"),
            ));
            Some(input)
        }
        Err(e) => {
            checks.push(made("input", false, e.to_string()));
            None
        }
    };

    let participants = run.run.counts.participants;
    let batch_start = run.index.saturating_sub(participants);
    let closed = scan_back(log, batch_start, |raw| {
        Ok(match raw.decode()?.record.decision {
            Decision::ApplicationsClosed(c)
                if c.set_digest == digest && c.domain == run.run.domain =>
            {
                Some((raw.index, c))
            }
            _ => None,
        })
    })?;
    let closed_at = closed.as_ref().map(|(i, _)| *i);
    match &closed {
        Some((index, ApplicationsClosed { applications, .. })) if *applications == participants => {
            checks.push(made(
                "commitment",
                true,
                format!("the window was closed with this application set at entry {index}"),
            ))
        }
        Some((index, c)) => checks.push(made(
            "commitment",
            false,
            format!(
                "the window closed at entry {index} with {} applications, the run has {participants}",
                c.applications
            ),
        )),
        None => checks.push(made(
            "commitment",
            false,
            format!("no ApplicationsClosed for input {digest} precedes the run"),
        )),
    }

    match run.run.seed {
        Some(seed) => {
            let drawn = scan_back(log, batch_start, |raw| {
                Ok(match raw.decode()?.record.decision {
                    Decision::SeedDrawn(s) if s.commitment == digest && s.seed == seed => {
                        Some((raw.index, s))
                    }
                    _ => None,
                })
            })?;
            match drawn {
                None => checks.push(made(
                    "seed",
                    false,
                    format!("no SeedDrawn with seed {seed} for input {digest} precedes the run"),
                )),
                Some((index, SeedDrawn { beacon_value, .. })) => {
                    let recomputed = lottery_seed(&digest, &beacon_value.0);
                    let after_commitment = closed_at.is_some_and(|c| c < index);
                    let ok = recomputed.0 == seed.0 && after_commitment;
                    let detail = if recomputed.0 != seed.0 {
                        format!(
                            "entry {index}: SHA-256(commitment || beacon) is {}, not the seed {seed}",
                            hex::encode(recomputed.0)
                        )
                    } else if !after_commitment {
                        format!("entry {index}: the seed was drawn before the window closed")
                    } else {
                        format!(
                            "seed drawn at entry {index} = SHA-256(commitment || beacon {})",
                            hex::encode(&beacon_value.0)
                        )
                    };
                    checks.push(made("seed", ok, detail));
                }
            }
        }
        None => {
            if let Some(input) = &input {
                match A::params_from(&run.run.mechanism, &run.run.parameters)
                    .and_then(|p| A::draws_lottery(input, &p))
                {
                    Ok(false) => checks.push(made(
                        "seed",
                        true,
                        "the input carries its own lottery numbers".into(),
                    )),
                    Ok(true) => checks.push(made(
                        "seed",
                        false,
                        "the input has no lottery numbers but the run logged no seed".into(),
                    )),
                    Err(e) => checks.push(made("seed", false, e.to_string())),
                }
            }
        }
    }

    let Some(input) = input else {
        return Ok(Verification { run, checks });
    };
    let solved = A::params_from(&run.run.mechanism, &run.run.parameters).and_then(|params| {
        let seed = run.run.seed.map(|d| Seed(d.0));
        A::solve(&input, &params, seed.as_ref())
    });
    let solved = match solved {
        Ok(solved) => solved,
        Err(e) => {
            checks.push(made("outcome digest", false, format!("cannot re-run: {e}")));
            return Ok(Verification { run, checks });
        }
    };
    let placements = A::placements(&input, &solved);
    let digest = outcome_digest(A::DOMAIN, &placements);
    checks.push(made(
        "outcome digest",
        digest == run.run.outcome_digest,
        if digest == run.run.outcome_digest {
            format!("the re-run gives the logged outcome digest {digest}")
        } else {
            format!(
                "the re-run gives {digest}, the log says {}",
                run.run.outcome_digest
            )
        },
    ));

    match logged_outcomes(log, &run) {
        Err(e) => checks.push(made("outcomes", false, e.to_string())),
        Ok(logged) => {
            let mut differ = Vec::new();
            let mut count = 0usize;
            for (p, (subject, o)) in placements.iter().zip(&logged) {
                if p.participant != subject || p.place != o.assigned.as_deref() || p.rank != o.rank
                {
                    count += 1;
                    if differ.len() < 5 {
                        differ.push(format!(
                            "{subject}: logged {}, re-run {} {}",
                            o.assigned.as_deref().unwrap_or("nothing"),
                            p.participant,
                            p.place.unwrap_or("nothing")
                        ));
                    }
                }
            }
            let ok = count == 0 && logged.len() == placements.len();
            let detail = if ok {
                format!("all {} logged outcomes equal the re-run", logged.len())
            } else if logged.len() != placements.len() {
                format!(
                    "{} outcomes logged, the re-run has {}",
                    logged.len(),
                    placements.len()
                )
            } else {
                format!("{count} logged outcomes differ: {}", differ.join("; "))
            };
            checks.push(made("outcomes", ok, detail));
        }
    }

    let assigned = placements.iter().filter(|p| p.place.is_some()).count() as u64;
    let counts = &run.run.counts;
    checks.push(made(
        "counts",
        counts.participants == placements.len() as u64
            && counts.assigned == assigned
            && counts.places == A::places(&input),
        format!(
            "logged {} participants, {} places, {} assigned; re-run {}, {}, {}",
            counts.participants,
            counts.places,
            counts.assigned,
            placements.len(),
            A::places(&input),
            assigned
        ),
    ));
    Ok(Verification { run, checks })
}

fn made(name: &'static str, ok: bool, detail: String) -> Check {
    Check { name, ok, detail }
}
