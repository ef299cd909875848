//! Verifiable lotteries: single and multiple tie-breaking numbers drawn from a 32-byte seed.
//!
//! Every number is bound to identities, not to file order: a student's draw is the first 8
//! bytes, big-endian, of SHA-256 over the seed, a domain tag and identity bytes the caller
//! passes (e.g. the UTF-8 bytes of the student's id). The lottery number returned is the
//! student's rank (0 = best) when sorting by (draw, identity bytes); two students with the same
//! identity bytes are an error. An auditor recomputes single tie-breaking in a few lines:
//!
//! ```python
//! import hashlib
//! def draw(seed, tag, *parts):
//!     return int.from_bytes(hashlib.sha256(seed + tag + b"".join(parts)).digest()[:8], "big")
//! def single(seed, ids):  # seed: 32 bytes; ids: the students' identity bytes
//!     order = sorted(ids, key=lambda s: (draw(seed, b"allot/stb/v1", s), s))
//!     return {s: rank for rank, s in enumerate(order)}
//! def multiple(seed, school, applicants):  # one school's identity, the ids of those listing it
//!     size = len(school).to_bytes(8, "big")
//!     order = sorted(applicants, key=lambda s: (draw(seed, b"allot/mtb/v1", size, school, s), s))
//!     return {s: rank for rank, s in enumerate(order)}
//! ```
//!
//! Ranks rather than raw draws keep the numbers below `2^40`, so they fit
//! [`priority_key`](super::priority_key), and make them distinct without a collision risk.

use sha2::{Digest, Sha256};
use thiserror::Error;

use super::market::Preferences;

/// Domain tag of single tie-breaking draws.
pub const SINGLE_TAG: &[u8] = b"allot/stb/v1";
/// Domain tag of multiple tie-breaking draws.
pub const MULTIPLE_TAG: &[u8] = b"allot/mtb/v1";

/// The 32 bytes every draw is derived from (e.g. SHA-256 of the application set's digest and a
/// public randomness beacon value, computed by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Seed(pub [u8; 32]);

/// Why lottery numbers could not be drawn.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LotteryError {
    #[error("{what} {first} and {second} have the same identity bytes")]
    DuplicateIdentity {
        what: &'static str,
        first: usize,
        second: usize,
    },
    #[error("{what}: {got} identities for {expected} {what}")]
    WrongCount {
        what: &'static str,
        expected: usize,
        got: usize,
    },
}

/// The raw single tie-breaking draw of one student: the first 8 bytes, big-endian, of
/// SHA-256(seed || "allot/stb/v1" || student).
pub fn single_draw(seed: &Seed, student: &[u8]) -> u64 {
    let mut hash = Sha256::new();
    hash.update(seed.0);
    hash.update(SINGLE_TAG);
    hash.update(student);
    first_u64(hash)
}

/// The raw multiple tie-breaking draw of a student at a school: the first 8 bytes, big-endian,
/// of SHA-256(seed || "allot/mtb/v1" || u64 big-endian length of school || school || student).
/// The length prefix keeps (school, student) pairs from colliding as byte strings.
pub fn multiple_draw(seed: &Seed, school: &[u8], student: &[u8]) -> u64 {
    let mut hash = Sha256::new();
    hash.update(seed.0);
    hash.update(MULTIPLE_TAG);
    hash.update((school.len() as u64).to_be_bytes());
    hash.update(school);
    hash.update(student);
    first_u64(hash)
}

fn first_u64(hash: Sha256) -> u64 {
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Single tie-breaking: one lottery number per student (its rank by draw, 0 = best, ties of
/// equal draws broken by the identity bytes), the same at every school.
pub fn single_tie_break<S: AsRef<[u8]>>(
    seed: &Seed,
    students: &[S],
) -> Result<Vec<u64>, LotteryError> {
    distinct(students, "students")?;
    let draws: Vec<u64> = students
        .iter()
        .map(|s| single_draw(seed, s.as_ref()))
        .collect();
    let mut order: Vec<u32> = (0..students.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        draws[a]
            .cmp(&draws[b])
            .then_with(|| students[a].as_ref().cmp(students[b].as_ref()))
    });
    let mut lottery = vec![0u64; students.len()];
    for (rank, &student) in order.iter().enumerate() {
        lottery[student as usize] = rank as u64;
    }
    Ok(lottery)
}

/// Multiple tie-breaking: one lottery number per (student, listed school) entry of `prefs`, in
/// entry order: the student's rank by draw among the school's applicants (0 = best, ties broken
/// by the student's identity bytes). `students` and `schools` are the identities of `prefs`'s
/// student and school ids.
pub fn multiple_tie_break<S: AsRef<[u8]>, T: AsRef<[u8]>>(
    seed: &Seed,
    prefs: &Preferences,
    students: &[S],
    schools: &[T],
) -> Result<Vec<u64>, LotteryError> {
    if students.len() != prefs.num_students() {
        return Err(LotteryError::WrongCount {
            what: "students",
            expected: prefs.num_students(),
            got: students.len(),
        });
    }
    if schools.len() != prefs.num_schools() {
        return Err(LotteryError::WrongCount {
            what: "schools",
            expected: prefs.num_schools(),
            got: schools.len(),
        });
    }
    distinct(students, "students")?;
    distinct(schools, "schools")?;
    let offsets = prefs.offsets();
    let mut draws = Vec::with_capacity(prefs.num_entries());
    let mut owner = Vec::with_capacity(prefs.num_entries());
    for (student, pair) in offsets.windows(2).enumerate() {
        for &school in &prefs.schools()[pair[0] as usize..pair[1] as usize] {
            draws.push(multiple_draw(
                seed,
                schools[school as usize].as_ref(),
                students[student].as_ref(),
            ));
            owner.push(student as u32);
        }
    }
    // Group the entries by school, rank each group by (draw, identity).
    let mut by_school: Vec<u32> = (0..prefs.num_entries() as u32).collect();
    let entry_school = prefs.schools();
    by_school.sort_unstable_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        entry_school[a]
            .cmp(&entry_school[b])
            .then(draws[a].cmp(&draws[b]))
            .then_with(|| {
                students[owner[a] as usize]
                    .as_ref()
                    .cmp(students[owner[b] as usize].as_ref())
            })
    });
    let mut lottery = vec![0u64; prefs.num_entries()];
    for group in by_school.chunk_by(|&a, &b| entry_school[a as usize] == entry_school[b as usize]) {
        for (rank, &entry) in group.iter().enumerate() {
            lottery[entry as usize] = rank as u64;
        }
    }
    Ok(lottery)
}

fn distinct<S: AsRef<[u8]>>(ids: &[S], what: &'static str) -> Result<(), LotteryError> {
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_unstable_by(|&a, &b| ids[a].as_ref().cmp(ids[b].as_ref()));
    match order
        .windows(2)
        .find(|p| ids[p[0]].as_ref() == ids[p[1]].as_ref())
    {
        Some(p) => Err(LotteryError::DuplicateIdentity {
            what,
            first: p[0].min(p[1]),
            second: p[0].max(p[1]),
        }),
        None => Ok(()),
    }
}
