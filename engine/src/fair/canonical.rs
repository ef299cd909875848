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

use super::{Applicant, Fair, FairInput, OPEN, Pool};
use crate::allocation::canonical::{
    Choices, Problem, invalid, lottery, lottery_flag, next_id, write_lottery,
};
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
        write_lottery(&mut w, a.lottery);
        Choices::write(&mut w, &a.choices);
    }
    w.into_bytes()
}

pub(super) fn decode(bytes: &[u8]) -> Result<FairInput, String> {
    decode_checked(bytes).map_err(|e| e.to_string())
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
        let id = next_id(&mut r, "fair", fairs.last().map(|l| l.id.as_str()))?;
        let district = r.str("district")?.to_owned();
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
    let lottery_given = lottery_flag(&mut r)?;
    let napplicants = r.u32("applicants")?;
    let mut applicants: Vec<Applicant> = Vec::new();
    let mut lists = Choices::new(fairs.len());
    for i in 0..napplicants {
        let id = next_id(
            &mut r,
            "applicant",
            applicants.last().map(|l| l.id.as_str()),
        )?;
        let category = r.str("category")?.to_owned();
        if category == OPEN {
            return Err(invalid(format!("applicant '{id}' has category '*'")));
        }
        let tier = r.u8("tier")?;
        if tier > 2 {
            return Err(invalid(format!("applicant '{id}' has tier {tier}")));
        }
        let lottery = lottery(&mut r, lottery_given, &id)?;
        let choices = lists.read(&mut r, i, &id)?;
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
