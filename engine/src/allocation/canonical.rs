//! Pieces the domains' canonical application sets share (each domain documents its layout):
//! ids in strictly increasing byte order, a lottery flag, optional lottery numbers and choice
//! lists of place indices, each place once.

use allot_solvers::matching::MAX_LOTTERY;

use crate::log::codec::{DecodeError, Reader, Writer};

/// Why bytes are not a canonical application set.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Problem {
    #[error(transparent)]
    Codec(#[from] DecodeError),
    #[error("{0}")]
    Invalid(String),
}

pub(crate) fn invalid(text: String) -> Problem {
    Problem::Invalid(text)
}

/// Reads the next id of a list sorted by id: it must come after `previous`.
pub(crate) fn next_id(
    r: &mut Reader<'_>,
    field: &'static str,
    previous: Option<&str>,
) -> Result<String, Problem> {
    let id = r.str(field)?;
    if previous.is_some_and(|p| p.as_bytes() >= id.as_bytes()) {
        return Err(invalid(format!("{field} '{id}' is out of order")));
    }
    Ok(id.to_owned())
}

/// The `u8` flag saying whether participants carry lottery numbers.
pub(crate) fn lottery_flag(r: &mut Reader<'_>) -> Result<bool, Problem> {
    match r.u8("lottery")? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(invalid(format!("lottery flag {other} is neither 0 nor 1"))),
    }
}

/// A participant's lottery number, present when `given`.
pub(crate) fn lottery(r: &mut Reader<'_>, given: bool, id: &str) -> Result<Option<u64>, Problem> {
    if !given {
        return Ok(None);
    }
    let n = r.u64("lottery")?;
    if n > MAX_LOTTERY {
        return Err(invalid(format!("'{id}' has lottery {n}")));
    }
    Ok(Some(n))
}

pub(crate) fn write_lottery(w: &mut Writer, lottery: Option<u64>) {
    if let Some(n) = lottery {
        w.u64(n);
    }
}

/// Choice lists: a `u32` count, then place indices, each below the number of places and listed
/// once per participant.
#[derive(Debug)]
pub(crate) struct Choices {
    /// Per place, the last participant that listed it.
    seen: Vec<u32>,
}

impl Choices {
    pub fn new(places: usize) -> Self {
        Choices {
            seen: vec![u32::MAX; places],
        }
    }

    /// Participant number `me`'s list.
    pub fn read(&mut self, r: &mut Reader<'_>, me: u32, id: &str) -> Result<Vec<u32>, Problem> {
        let k = r.u32("choices")?;
        let mut choices = Vec::with_capacity(k.min(1024) as usize);
        for _ in 0..k {
            let c = r.u32("choice")?;
            match self.seen.get_mut(c as usize) {
                None => return Err(invalid(format!("'{id}' lists place {c}"))),
                Some(mark) if *mark == me => {
                    return Err(invalid(format!("'{id}' lists place {c} twice")));
                }
                Some(mark) => *mark = me,
            }
            choices.push(c);
        }
        Ok(choices)
    }

    pub fn write(w: &mut Writer, choices: &[u32]) {
        w.u32(choices.len() as u32);
        for &c in choices {
            w.u32(c);
        }
    }
}
