//! Serial dictatorship in a given (e.g. lottery-drawn) order.

use thiserror::Error;

use super::market::{Market, NONE};
use super::outcome::{Matching, Outcome};

/// Why a serial order was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OrderError {
    #[error("the order lists student {student}, but there are only {students} students")]
    OutOfRange { student: u32, students: usize },
    #[error("the order lists student {student} twice")]
    Repeated { student: u32 },
    #[error("students {first} and {second} have the same ordering key {key}")]
    TiedKeys { first: u32, second: u32, key: u64 },
    #[error("the order has {got} students, the market {expected}")]
    WrongLength { expected: usize, got: usize },
    #[error("{got} students do not fit in u32 ids")]
    TooMany { got: usize },
}

/// A permutation of the students `0..n`: who chooses first, second, ...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialOrder(Vec<u32>);

impl SerialOrder {
    /// Checks that `order` is a permutation of `0..order.len()`.
    pub fn new(order: Vec<u32>) -> Result<Self, OrderError> {
        if u32::try_from(order.len()).is_err() {
            return Err(OrderError::TooMany { got: order.len() });
        }
        let mut seen = vec![false; order.len()];
        for &student in &order {
            let slot = seen
                .get_mut(student as usize)
                .ok_or(OrderError::OutOfRange {
                    student,
                    students: order.len(),
                })?;
            if std::mem::replace(slot, true) {
                return Err(OrderError::Repeated { student });
            }
        }
        Ok(Self(order))
    }

    /// Students by increasing key (e.g. a [`priority_key`](super::priority_key) of tier and
    /// lottery); equal keys are an error rather than a hidden tie-break.
    pub fn by_keys(keys: &[u64]) -> Result<Self, OrderError> {
        if u32::try_from(keys.len()).is_err() {
            return Err(OrderError::TooMany { got: keys.len() });
        }
        let mut order: Vec<u32> = (0..keys.len() as u32).collect();
        order.sort_unstable_by_key(|&i| keys[i as usize]);
        if let Some(pair) = order
            .windows(2)
            .find(|p| keys[p[0] as usize] == keys[p[1] as usize])
        {
            let (first, second) = (pair[0].min(pair[1]), pair[0].max(pair[1]));
            return Err(OrderError::TiedKeys {
                first,
                second,
                key: keys[first as usize],
            });
        }
        Ok(Self(order))
    }

    pub fn as_slice(&self) -> &[u32] {
        &self.0
    }
}

/// Serial dictatorship: students choose in `order`, each taking the best school on its list that
/// still has a seat. With a uniformly random order it is random serial dictatorship. The outcome
/// is Pareto efficient. Fails only when the order's length is not the market's student count.
///
/// Cutoff: the 0-based position in `order` of the student who took the school's last seat (not a
/// priority key: the order is the only priority here); `None` when it has seats left or capacity 0.
pub fn serial_dictatorship<'m>(
    market: &'m Market,
    order: &SerialOrder,
) -> Result<Outcome<'m>, OrderError> {
    if order.0.len() != market.num_students() {
        return Err(OrderError::WrongLength {
            expected: market.num_students(),
            got: order.0.len(),
        });
    }
    let (offsets, schools) = (market.offsets(), market.entry_schools());
    let mut seats = market.capacities().to_vec();
    let mut entries = vec![NONE; market.num_students()];
    let mut cutoffs = vec![None; market.num_schools()];
    for (turn, &student) in order.0.iter().enumerate() {
        let i = student as usize;
        let (lo, hi) = (offsets[i] as usize, offsets[i + 1] as usize);
        if let Some(k) = schools[lo..hi].iter().position(|&s| seats[s as usize] > 0) {
            let school = schools[lo + k] as usize;
            entries[i] = (lo + k) as u32;
            seats[school] -= 1;
            if seats[school] == 0 {
                cutoffs[school] = Some(turn as u64);
            }
        }
    }
    Ok(Outcome::new(
        Matching::from_entries(market, entries),
        cutoffs,
    ))
}
