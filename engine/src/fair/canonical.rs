//! The canonical encoding of a fair application set (its SHA-256 is the set digest the window's
//! closing commits to, and the run's input digest).
//!
//! With the log's codec (integers big-endian, strings with a `u32` length):
//!
//! ```text
//! str  "allot/fairs/input/v1"
//! u32  number of fairs, then per fair, sorted by id (bytes):
//!        str id, str district, u32 number of pools, then per pool, sorted by category (bytes):
//!          str category ("*" for open stalls), u32 stalls
//! u8   1 if the applicants carry lottery numbers, else 0
//! u32  number of applicants, then per applicant, sorted by id (bytes):
//!        str id, str category, u8 tier, [u64 lottery, only when carried],
//!        u32 number of choices, then per choice, best first: u32 index of the fair in the list above
//! ```
//!
//! The file order of rows is not part of it: two files with the same rows in another order have
//! the same digest.

use allot_solvers::matching::MAX_LOTTERY;

use super::{Applicant, Fair, FairInput, OPEN, Pool};
use crate::log::codec::{Reader, Writer};

const TAG: &[u8] = b"allot/fairs/input/v1";

pub(super) fn encode(input: &FairInput) -> Vec<u8> {
    let mut w = Writer::with_capacity(64 + input.applicants.len() * 48);
    w.bytes(TAG);
    w.u32(input.fairs.len() as u32);
    for fair in &input.fairs {
        w.bytes(fair.id.as_bytes());
        w.bytes(fair.district.as_bytes());
        w.u32(fair.pools.len() as u32);
        for pool in &input.pools[fair.pools.start as usize..fair.pools.end as usize] {
            w.bytes(pool.category.as_bytes());
            w.u32(pool.stalls);
        }
    }
    w.u8(u8::from(input.lottery_given));
    w.u32(input.applicants.len() as u32);
    for a in &input.applicants {
        w.bytes(a.id.as_bytes());
        w.bytes(a.category.as_bytes());
        w.u8(a.tier);
        if let Some(lottery) = a.lottery {
            w.u64(lottery);
        }
        w.u32(a.choices.len() as u32);
        for &f in &a.choices {
            w.u32(f);
        }
    }
    w.into_bytes()
}

pub(super) fn decode(bytes: &[u8]) -> Result<FairInput, String> {
    decode_checked(bytes).map_err(|e| e.to_string())
}

#[derive(Debug, thiserror::Error)]
enum Problem {
    #[error(transparent)]
    Codec(#[from] crate::log::codec::DecodeError),
    #[error("{0}")]
    Invalid(String),
}

fn invalid(text: String) -> Problem {
    Problem::Invalid(text)
}

fn decode_checked(bytes: &[u8]) -> Result<FairInput, Problem> {
    let mut r = Reader::new(bytes);
    if r.bytes("tag")? != TAG {
        return Err(invalid("not a fair application set (unknown tag)".into()));
    }
    let nfairs = r.u32("fairs")?;
    let mut fairs: Vec<Fair> = Vec::new();
    let mut pools: Vec<Pool> = Vec::new();
    for f in 0..nfairs {
        let id = r.str("fair")?.to_owned();
        let district = r.str("district")?.to_owned();
        if fairs
            .last()
            .is_some_and(|last| last.id.as_bytes() >= id.as_bytes())
        {
            return Err(invalid(format!("fair '{id}' is out of order")));
        }
        let npools = r.u32("pools")?;
        let start = pools.len() as u32;
        for _ in 0..npools {
            let category = r.str("category")?.to_owned();
            let stalls = r.u32("stalls")?;
            if pools[start as usize..]
                .last()
                .is_some_and(|last| last.category.as_bytes() >= category.as_bytes())
            {
                return Err(invalid(format!(
                    "fair '{id}': pool '{category}' is out of order"
                )));
            }
            pools.push(Pool {
                fair: f,
                category,
                stalls,
            });
        }
        fairs.push(Fair {
            id,
            district,
            pools: start..pools.len() as u32,
        });
    }
    let lottery_given = match r.u8("lottery")? {
        0 => false,
        1 => true,
        other => return Err(invalid(format!("lottery flag {other} is neither 0 nor 1"))),
    };
    let napplicants = r.u32("applicants")?;
    let mut applicants: Vec<Applicant> = Vec::new();
    let mut seen = vec![u32::MAX; fairs.len()];
    for i in 0..napplicants {
        let id = r.str("applicant")?.to_owned();
        if applicants
            .last()
            .is_some_and(|last| last.id.as_bytes() >= id.as_bytes())
        {
            return Err(invalid(format!("applicant '{id}' is out of order")));
        }
        let category = r.str("category")?.to_owned();
        if category == OPEN {
            return Err(invalid(format!("applicant '{id}' has category '*'")));
        }
        let tier = r.u8("tier")?;
        if tier > 2 {
            return Err(invalid(format!("applicant '{id}' has tier {tier}")));
        }
        let lottery = if lottery_given {
            let n = r.u64("lottery")?;
            if n > MAX_LOTTERY {
                return Err(invalid(format!("applicant '{id}' has lottery {n}")));
            }
            Some(n)
        } else {
            None
        };
        let nchoices = r.u32("choices")?;
        let mut choices = Vec::new();
        for _ in 0..nchoices {
            let f = r.u32("choice")?;
            match seen.get_mut(f as usize) {
                None => return Err(invalid(format!("applicant '{id}' lists fair {f}"))),
                Some(mark) if *mark == i => {
                    return Err(invalid(format!("applicant '{id}' lists fair {f} twice")));
                }
                Some(mark) => *mark = i,
            }
            choices.push(f);
        }
        applicants.push(Applicant {
            id,
            category,
            tier,
            lottery,
            choices,
        });
    }
    r.finish("applicants")?;
    Ok(FairInput {
        fairs,
        pools,
        applicants,
        lottery_given,
    })
}
