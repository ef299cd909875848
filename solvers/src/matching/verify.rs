//! Verifiers of a matching: stability (blocking pairs), justified envy and Pareto efficiency.
//! Feasibility is checked when a [`Matching`] is built.

use super::market::NONE;
use super::outcome::Matching;

/// A student and a school it prefers to its assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pair {
    pub student: u32,
    pub school: u32,
}

/// A witness that a matching is not Pareto efficient: applying it makes every student named
/// strictly better off and nobody worse off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParetoImprovement {
    /// The student prefers this school, which has a free seat, to its assignment.
    VacantSeat(Pair),
    /// Each student takes the listed school, whose seat the next student in the cycle (the first
    /// after the last) holds now; every student prefers its new school.
    Cycle(Vec<Pair>),
}

impl Matching<'_> {
    /// Visits every (student, school the student prefers to its assignment) entry.
    fn for_each_preferred(&self, mut visit: impl FnMut(u32, u32, u64)) {
        let market = self.market();
        let (offsets, schools, keys) = (
            market.offsets(),
            market.entry_schools(),
            market.entry_keys(),
        );
        for (student, &held) in self.entries().iter().enumerate() {
            let end = if held == NONE {
                offsets[student + 1]
            } else {
                held
            };
            for entry in offsets[student]..end {
                visit(
                    student as u32,
                    schools[entry as usize],
                    keys[entry as usize],
                );
            }
        }
    }

    /// Blocking pairs: a student and a school it prefers to its assignment that has a free seat
    /// or holds a student with lower priority (a larger key). Empty iff the matching is stable.
    /// Listed by student, then by the student's preference. O(students + schools + entries).
    pub fn blocking_pairs(&self) -> Vec<Pair> {
        let mut pairs = Vec::new();
        self.visit_blocking(|pair| pairs.push(pair));
        pairs
    }

    pub fn count_blocking_pairs(&self) -> usize {
        let mut count = 0;
        self.visit_blocking(|_| count += 1);
        count
    }

    pub fn is_stable(&self) -> bool {
        self.count_blocking_pairs() == 0
    }

    fn visit_blocking(&self, mut visit: impl FnMut(Pair)) {
        let (loads, worst) = (self.loads(), self.worst_keys());
        let capacities = self.market().capacities();
        self.for_each_preferred(|student, school, key| {
            let s = school as usize;
            let envied = worst[s].is_some_and(|w| key < w);
            if loads[s] < capacities[s] || envied {
                visit(Pair { student, school });
            }
        });
    }

    /// Justified envy: pairs of a student and a school it prefers to its assignment where the
    /// school holds somebody of lower priority. Blocking pairs without the vacant-seat ones
    /// (wastefulness). Listed like [`Matching::blocking_pairs`].
    pub fn justified_envy(&self) -> Vec<Pair> {
        let worst = self.worst_keys();
        let mut pairs = Vec::new();
        self.for_each_preferred(|student, school, key| {
            if worst[school as usize].is_some_and(|w| key < w) {
                pairs.push(Pair { student, school });
            }
        });
        pairs
    }

    /// Number of (student, school) justified-envy pairs.
    pub fn count_justified_envy(&self) -> usize {
        self.justified_envy().len()
    }

    /// `None` iff the matching is Pareto efficient for the students; otherwise a witness.
    ///
    /// A matching is Pareto efficient iff no student prefers a school with a free seat and the
    /// digraph "student i -> student j when i prefers j's school to its own" has no cycle. The
    /// digraph is searched through the schools (student -> preferred full school -> the students
    /// it holds), which keeps it at O(students + schools + entries) edges; the search is an
    /// iterative depth-first search, so deep graphs do not overflow the stack.
    pub fn pareto_improvement(&self) -> Option<ParetoImprovement> {
        let market = self.market();
        let (n, m) = (market.num_students(), market.num_schools());
        let (offsets, schools) = (market.offsets(), market.entry_schools());
        let loads = self.loads();
        let capacities = market.capacities();
        let mut vacant = None;
        self.for_each_preferred(|student, school, _| {
            if vacant.is_none() && loads[school as usize] < capacities[school as usize] {
                vacant = Some(Pair { student, school });
            }
        });
        if let Some(pair) = vacant {
            return Some(ParetoImprovement::VacantSeat(pair));
        }
        // The students each school holds, as flat rows.
        let mut held_offsets = vec![0u32; m + 1];
        for s in 0..m {
            held_offsets[s + 1] = held_offsets[s] + loads[s];
        }
        let mut fill = held_offsets[..m].to_vec();
        let mut held = vec![0u32; self.num_matched()];
        for (student, &entry) in self.entries().iter().enumerate() {
            if entry != NONE {
                let slot = &mut fill[schools[entry as usize] as usize];
                held[*slot as usize] = student as u32;
                *slot += 1;
            }
        }
        // Nodes: students 0..n, schools n..n + m. Edge cursors: a student's next entry to try,
        // a school's next held student. Colour: 0 new, 1 on the stack, 2 finished.
        let entries = self.entries();
        let edge_end = |v: usize| -> u32 {
            if v < n {
                if entries[v] == NONE {
                    offsets[v + 1]
                } else {
                    entries[v]
                }
            } else {
                held_offsets[v - n + 1]
            }
        };
        let mut cursor: Vec<u32> = offsets[..n]
            .iter()
            .chain(&held_offsets[..m])
            .copied()
            .collect();
        let mut colour = vec![0u8; n + m];
        let mut stack: Vec<u32> = Vec::new();
        for root in 0..n {
            if colour[root] != 0 || entries[root] == NONE {
                // Unassigned students have no incoming edge, so they lie on no cycle.
                continue;
            }
            colour[root] = 1;
            stack.push(root as u32);
            while let Some(&top) = stack.last() {
                let v = top as usize;
                if cursor[v] == edge_end(v) {
                    colour[v] = 2;
                    stack.pop();
                    continue;
                }
                let at = cursor[v] as usize;
                cursor[v] += 1;
                let w = if v < n {
                    n + schools[at] as usize
                } else {
                    held[at] as usize
                };
                match colour[w] {
                    0 => {
                        colour[w] = 1;
                        stack.push(w as u32);
                    }
                    1 => {
                        let from = stack.iter().rposition(|&x| x as usize == w).unwrap_or(0);
                        let cycle = &stack[from..];
                        // Alternating student, school, ...: each student takes the next school.
                        let k = cycle.len();
                        let pairs = (0..k)
                            .filter(|&t| (cycle[t] as usize) < n)
                            .map(|t| Pair {
                                student: cycle[t],
                                school: cycle[(t + 1) % k] - n as u32,
                            })
                            .collect();
                        return Some(ParetoImprovement::Cycle(pairs));
                    }
                    _ => {}
                }
            }
        }
        None
    }

    pub fn is_pareto_efficient(&self) -> bool {
        self.pareto_improvement().is_none()
    }
}
