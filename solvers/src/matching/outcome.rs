//! Matchings (feasible by construction) and mechanism outcomes with cutoffs.

use thiserror::Error;

use super::market::{Market, NONE};

/// Why an assignment is not a feasible matching of its market.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InfeasibleMatching {
    #[error("the assignment covers {got} students, the market has {expected}")]
    WrongLength { expected: usize, got: usize },
    #[error("student {student} is assigned school {school}, which it did not list")]
    NotListed { student: u32, school: u32 },
    #[error("school {school} is assigned {assigned} students but has {capacity} seats")]
    OverCapacity {
        school: u32,
        assigned: u64,
        capacity: u32,
    },
}

/// A feasible matching of a market: every student holds at most one school, only a school it
/// listed, and no school holds more students than its capacity. It borrows its market, so it can
/// never be checked against another one.
///
/// Stored as the entry (flat index into the market's preference lists) each student holds, or a
/// sentinel for unassigned students.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matching<'m> {
    market: &'m Market,
    entries: Vec<u32>,
}

impl<'m> Matching<'m> {
    /// Checks an assignment (school per student, or `None`) for feasibility.
    pub fn new(market: &'m Market, assignment: &[Option<u32>]) -> Result<Self, InfeasibleMatching> {
        let n = market.num_students();
        if assignment.len() != n {
            return Err(InfeasibleMatching::WrongLength {
                expected: n,
                got: assignment.len(),
            });
        }
        let offsets = market.offsets();
        let mut entries = vec![NONE; n];
        let mut load = vec![0u64; market.num_schools()];
        for (student, &school) in assignment.iter().enumerate() {
            let Some(school) = school else { continue };
            let student = student as u32;
            let position = market
                .list(student)
                .iter()
                .position(|&s| s == school)
                .ok_or(InfeasibleMatching::NotListed { student, school })?;
            entries[student as usize] = offsets[student as usize] + position as u32;
            load[school as usize] += 1;
        }
        for (school, (&assigned, &capacity)) in load.iter().zip(market.capacities()).enumerate() {
            if assigned > u64::from(capacity) {
                return Err(InfeasibleMatching::OverCapacity {
                    school: school as u32,
                    assigned,
                    capacity,
                });
            }
        }
        Ok(Self { market, entries })
    }

    /// Wraps the entries a mechanism of this module produced (feasible by its construction).
    pub(crate) fn from_entries(market: &'m Market, entries: Vec<u32>) -> Self {
        debug_assert_eq!(entries.len(), market.num_students());
        debug_assert!(entries.iter().enumerate().all(|(i, &e)| {
            e == NONE || (market.offsets()[i] <= e && e < market.offsets()[i + 1])
        }));
        debug_assert!({
            let matching = Self {
                market,
                entries: entries.clone(),
            };
            matching
                .loads()
                .iter()
                .zip(market.capacities())
                .all(|(l, c)| l <= c)
        });
        Self { market, entries }
    }

    pub fn market(&self) -> &'m Market {
        self.market
    }

    /// The school the student holds, if any (and `None` for an id out of range).
    pub fn school_of(&self, student: u32) -> Option<u32> {
        self.entry(student)
            .map(|e| self.market.entry_schools()[e as usize])
    }

    /// 0-based position of the held school in the student's list.
    pub fn position_of(&self, student: u32) -> Option<u32> {
        self.entry(student)
            .map(|e| e - self.market.offsets()[student as usize])
    }

    /// The student's priority key at the school it holds.
    pub fn key_of(&self, student: u32) -> Option<u64> {
        self.entry(student)
            .map(|e| self.market.entry_keys()[e as usize])
    }

    /// School per student, `None` when unassigned.
    pub fn assignment(&self) -> Vec<Option<u32>> {
        (0..self.entries.len() as u32)
            .map(|i| self.school_of(i))
            .collect()
    }

    pub fn num_matched(&self) -> usize {
        self.entries.iter().filter(|&&e| e != NONE).count()
    }

    /// Students held per school.
    pub fn loads(&self) -> Vec<u32> {
        let mut load = vec![0u32; self.market.num_schools()];
        let schools = self.market.entry_schools();
        for &e in self.entries.iter().filter(|&&e| e != NONE) {
            load[schools[e as usize] as usize] += 1;
        }
        load
    }

    /// Per school: the largest (worst) key among the students it holds, if any.
    pub fn worst_keys(&self) -> Vec<Option<u64>> {
        let mut worst = vec![None; self.market.num_schools()];
        let (schools, keys) = (self.market.entry_schools(), self.market.entry_keys());
        for &e in self.entries.iter().filter(|&&e| e != NONE) {
            let slot: &mut Option<u64> = &mut worst[schools[e as usize] as usize];
            *slot = Some(slot.map_or(keys[e as usize], |w| w.max(keys[e as usize])));
        }
        worst
    }

    /// The held entry per student (`u32::MAX` when unassigned).
    pub(crate) fn entries(&self) -> &[u32] {
        &self.entries
    }

    fn entry(&self, student: u32) -> Option<u32> {
        self.entries
            .get(student as usize)
            .copied()
            .filter(|&e| e != NONE)
    }
}

/// What a mechanism returns: the matching and one cutoff per school.
///
/// A school's cutoff is the priority key of the last student it admitted, `None` when the school
/// has seats left at the end (it did not fill, or nobody listed it) or has capacity 0. What "last
/// admitted" means depends on the mechanism and is documented on each; for the stable mechanisms
/// (both deferred acceptance variants) it is the largest key the school holds, and it explains the
/// outcome exactly: a student is matched to the first school on its list that has no cutoff or a
/// cutoff at least its own key there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<'m> {
    matching: Matching<'m>,
    cutoffs: Vec<Option<u64>>,
}

impl<'m> Outcome<'m> {
    pub(crate) fn new(matching: Matching<'m>, cutoffs: Vec<Option<u64>>) -> Self {
        debug_assert_eq!(cutoffs.len(), matching.market().num_schools());
        Self { matching, cutoffs }
    }

    /// An outcome whose cutoffs are the largest key held at each school that is full.
    pub(crate) fn with_worst_key_cutoffs(matching: Matching<'m>) -> Self {
        let market = matching.market();
        let loads = matching.loads();
        let cutoffs = matching
            .worst_keys()
            .into_iter()
            .zip(loads)
            .zip(market.capacities())
            .map(|((worst, load), &capacity)| worst.filter(|_| load == capacity))
            .collect();
        Self { matching, cutoffs }
    }

    pub fn matching(&self) -> &Matching<'m> {
        &self.matching
    }

    pub fn cutoffs(&self) -> &[Option<u64>] {
        &self.cutoffs
    }

    /// The school's cutoff (`None` also for an id out of range).
    pub fn cutoff(&self, school: u32) -> Option<u64> {
        self.cutoffs.get(school as usize).copied().flatten()
    }

    pub fn into_parts(self) -> (Matching<'m>, Vec<Option<u64>>) {
        (self.matching, self.cutoffs)
    }
}
