//! The validated many-to-one market: preference lists, capacities and strict priorities.

use thiserror::Error;

/// Sentinel for "no entry / no school / no student" in the flat arrays. Ids are always below it.
pub(crate) const NONE: u32 = u32::MAX;

/// Bits of a [`priority_key`] taken by the lottery number; the class sits above them.
pub const LOTTERY_BITS: u32 = 40;
/// Largest lottery number [`priority_key`] accepts: `2^40 - 1`.
pub const MAX_LOTTERY: u64 = (1 << LOTTERY_BITS) - 1;
/// Largest priority class [`priority_key`] accepts: `2^23 - 1`, so that every key stays below
/// `2^63` and never reaches the reserved `u64::MAX`.
pub const MAX_CLASS: u32 = (1 << 23) - 1;

/// Why a preference list, a market or a priority key was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MarketError {
    #[error("the offsets must start at 0, not {first}")]
    OffsetsStart { first: u32 },
    #[error(
        "the offsets must not decrease: offset {index} is {value}, below the previous {previous}"
    )]
    OffsetsDecrease {
        index: usize,
        value: u32,
        previous: u32,
    },
    #[error("the last offset is {last} but there are {entries} listed schools")]
    OffsetsEnd { last: u32, entries: usize },
    #[error(
        "student {student} lists school {school} at position {position}, but there are only {schools} schools"
    )]
    SchoolOutOfRange {
        student: u32,
        position: u32,
        school: u32,
        schools: u32,
    },
    #[error("student {student} lists school {school} twice")]
    DuplicateChoice { student: u32, school: u32 },
    #[error("{what} has {got} elements, expected {expected}")]
    LengthMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("too many {what}: {got} (at most {max})")]
    TooLarge {
        what: &'static str,
        got: usize,
        max: usize,
    },
    #[error(
        "priorities at school {school} are not strict: students {first} and {second} both have key {key}"
    )]
    TiedPriority {
        school: u32,
        key: u64,
        first: u32,
        second: u32,
    },
    #[error("student {student} has the reserved key u64::MAX at position {position}")]
    ReservedKey { student: u32, position: u32 },
    #[error("priority class {class} is above the maximum {max}", max = MAX_CLASS)]
    ClassOutOfRange { class: u32 },
    #[error("lottery number {lottery} is above the maximum {max}", max = MAX_LOTTERY)]
    LotteryOutOfRange { lottery: u64 },
}

/// Combines a priority class (0 = highest) and a lottery number (lower wins) into one priority
/// key, `class << 40 | lottery`, as the C++ reference does. Lower keys have higher priority.
pub fn priority_key(class: u32, lottery: u64) -> Result<u64, MarketError> {
    if class > MAX_CLASS {
        return Err(MarketError::ClassOutOfRange { class });
    }
    if lottery > MAX_LOTTERY {
        return Err(MarketError::LotteryOutOfRange { lottery });
    }
    Ok(u64::from(class) << LOTTERY_BITS | lottery)
}

/// Every student's strict, possibly incomplete, preference list over schools, best first, stored
/// as one flat array (compressed sparse rows): student `i` lists `schools[offsets[i]..offsets[i + 1]]`.
///
/// Invariants (checked on construction): school ids are below `num_schools`, no student lists a
/// school twice, the offsets start at 0, never decrease and end at the number of entries, and
/// every count fits below `u32::MAX` (which the solvers reserve as a sentinel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    num_schools: u32,
    offsets: Vec<u32>,
    schools: Vec<u32>,
}

impl Preferences {
    /// Validates the flat form: `offsets` has one more element than there are students.
    pub fn new(
        num_schools: usize,
        offsets: Vec<u32>,
        schools: Vec<u32>,
    ) -> Result<Self, MarketError> {
        let max = NONE as usize - 1;
        if num_schools > max {
            return Err(MarketError::TooLarge {
                what: "schools",
                got: num_schools,
                max,
            });
        }
        if schools.len() > max {
            return Err(MarketError::TooLarge {
                what: "listed schools",
                got: schools.len(),
                max,
            });
        }
        let Some(&first) = offsets.first() else {
            return Err(MarketError::LengthMismatch {
                what: "offsets",
                expected: 1,
                got: 0,
            });
        };
        if offsets.len() - 1 > max {
            return Err(MarketError::TooLarge {
                what: "students",
                got: offsets.len() - 1,
                max,
            });
        }
        if first != 0 {
            return Err(MarketError::OffsetsStart { first });
        }
        for (index, pair) in offsets.windows(2).enumerate() {
            if pair[1] < pair[0] {
                return Err(MarketError::OffsetsDecrease {
                    index: index + 1,
                    value: pair[1],
                    previous: pair[0],
                });
            }
        }
        let last = offsets[offsets.len() - 1];
        if last as usize != schools.len() {
            return Err(MarketError::OffsetsEnd {
                last,
                entries: schools.len(),
            });
        }
        let num_schools = num_schools as u32;
        // `seen[s] == student + 1` marks school `s` as already listed by `student`.
        let mut seen = vec![0u32; num_schools as usize];
        for (student, pair) in offsets.windows(2).enumerate() {
            let student = student as u32;
            for (position, &school) in schools[pair[0] as usize..pair[1] as usize]
                .iter()
                .enumerate()
            {
                if school >= num_schools {
                    let position = position as u32;
                    return Err(MarketError::SchoolOutOfRange {
                        student,
                        position,
                        school,
                        schools: num_schools,
                    });
                }
                if seen[school as usize] == student + 1 {
                    return Err(MarketError::DuplicateChoice { student, school });
                }
                seen[school as usize] = student + 1;
            }
        }
        Ok(Self {
            num_schools,
            offsets,
            schools,
        })
    }

    /// Builds the flat form from one list per student.
    pub fn from_lists<L: AsRef<[u32]>>(
        num_schools: usize,
        lists: &[L],
    ) -> Result<Self, MarketError> {
        let mut builder = PreferencesBuilder::new(num_schools);
        for list in lists {
            builder.push(list.as_ref().iter().copied())?;
        }
        builder.build()
    }

    pub fn num_students(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn num_schools(&self) -> usize {
        self.num_schools as usize
    }

    /// Total number of (student, listed school) entries.
    pub fn num_entries(&self) -> usize {
        self.schools.len()
    }

    /// The student's list, best first; empty for an id out of range.
    pub fn list(&self, student: u32) -> &[u32] {
        match self.range(student) {
            Some(range) => &self.schools[range],
            None => &[],
        }
    }

    /// Flat offsets (one per student, plus the end).
    pub fn offsets(&self) -> &[u32] {
        &self.offsets
    }

    /// Flat listed schools, student after student.
    pub fn schools(&self) -> &[u32] {
        &self.schools
    }

    fn range(&self, student: u32) -> Option<std::ops::Range<usize>> {
        let i = student as usize;
        (i + 1 < self.offsets.len()).then(|| self.offsets[i] as usize..self.offsets[i + 1] as usize)
    }
}

/// Builds [`Preferences`] one student at a time without a `Vec` per student.
#[derive(Debug, Clone)]
pub struct PreferencesBuilder {
    num_schools: usize,
    offsets: Vec<u32>,
    schools: Vec<u32>,
}

impl PreferencesBuilder {
    pub fn new(num_schools: usize) -> Self {
        Self {
            num_schools,
            offsets: vec![0],
            schools: Vec::new(),
        }
    }

    /// Reserves room for `students` lists holding `entries` schools in total.
    pub fn with_capacity(num_schools: usize, students: usize, entries: usize) -> Self {
        let mut offsets = Vec::with_capacity(students + 1);
        offsets.push(0);
        Self {
            num_schools,
            offsets,
            schools: Vec::with_capacity(entries),
        }
    }

    /// Appends the next student's list, best first; returns the student's id. Ids and repeats
    /// are checked by [`PreferencesBuilder::build`]; on error the builder is left unchanged.
    pub fn push(&mut self, list: impl IntoIterator<Item = u32>) -> Result<u32, MarketError> {
        let max = NONE as usize - 1;
        let student = self.offsets.len() - 1;
        if student >= max {
            return Err(MarketError::TooLarge {
                what: "students",
                got: student + 1,
                max,
            });
        }
        let before = self.schools.len();
        self.schools.extend(list);
        if self.schools.len() > max {
            let got = self.schools.len();
            self.schools.truncate(before);
            return Err(MarketError::TooLarge {
                what: "listed schools",
                got,
                max,
            });
        }
        self.offsets.push(self.schools.len() as u32);
        Ok(student as u32)
    }

    pub fn build(self) -> Result<Preferences, MarketError> {
        Preferences::new(self.num_schools, self.offsets, self.schools)
    }
}

/// A validated school-choice market: preferences, a capacity per school (0 allowed) and a strict
/// priority key per (student, listed school) entry, lower key = higher priority at that school.
///
/// Invariants (checked on construction, so every mechanism can rely on them): the capacities and
/// keys have the right lengths, no key is `u64::MAX` (reserved), and keys are distinct among the
/// students listing the same school, so each school's priority order is strict. A key is only
/// compared with other keys at the same school, so the same student may carry different keys at
/// different schools (multiple tie-breaking) or the same lottery everywhere (single tie-breaking).
///
/// Construction also builds the school side: every school's applicants sorted by priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Market {
    prefs: Preferences,
    capacities: Vec<u32>,
    keys: Vec<u64>,
    /// The student owning each entry.
    entry_student: Vec<u32>,
    /// School `s`'s applicants are `applicants[applicant_offsets[s]..applicant_offsets[s + 1]]`,
    /// as entry indices, highest priority (lowest key) first.
    applicant_offsets: Vec<u32>,
    applicants: Vec<u32>,
}

impl Market {
    /// Validates and builds a market; `keys[e]` is the priority key of entry `e` of `prefs`.
    pub fn new(
        prefs: Preferences,
        capacities: Vec<u32>,
        keys: Vec<u64>,
    ) -> Result<Self, MarketError> {
        if capacities.len() != prefs.num_schools() {
            return Err(MarketError::LengthMismatch {
                what: "capacities",
                expected: prefs.num_schools(),
                got: capacities.len(),
            });
        }
        if keys.len() != prefs.num_entries() {
            return Err(MarketError::LengthMismatch {
                what: "keys",
                expected: prefs.num_entries(),
                got: keys.len(),
            });
        }
        let mut entry_student = vec![0u32; prefs.num_entries()];
        for (student, pair) in prefs.offsets.windows(2).enumerate() {
            for entry in pair[0]..pair[1] {
                if keys[entry as usize] == u64::MAX {
                    return Err(MarketError::ReservedKey {
                        student: student as u32,
                        position: entry - pair[0],
                    });
                }
                entry_student[entry as usize] = student as u32;
            }
        }
        // Counting sort of the entries by school, then each school's entries by key.
        let m = prefs.num_schools();
        let mut applicant_offsets = vec![0u32; m + 1];
        for &school in &prefs.schools {
            applicant_offsets[school as usize + 1] += 1;
        }
        for s in 0..m {
            applicant_offsets[s + 1] += applicant_offsets[s];
        }
        let mut fill: Vec<u32> = applicant_offsets[..m].to_vec();
        let mut by_school = vec![(0u64, 0u32); prefs.num_entries()];
        for (entry, &school) in prefs.schools.iter().enumerate() {
            let slot = &mut fill[school as usize];
            by_school[*slot as usize] = (keys[entry], entry as u32);
            *slot += 1;
        }
        for s in 0..m {
            let segment =
                &mut by_school[applicant_offsets[s] as usize..applicant_offsets[s + 1] as usize];
            segment.sort_unstable();
            if let Some(pair) = segment.windows(2).find(|pair| pair[0].0 == pair[1].0) {
                return Err(MarketError::TiedPriority {
                    school: s as u32,
                    key: pair[0].0,
                    first: entry_student[pair[0].1 as usize],
                    second: entry_student[pair[1].1 as usize],
                });
            }
        }
        let applicants = by_school.into_iter().map(|(_, entry)| entry).collect();
        Ok(Self {
            prefs,
            capacities,
            keys,
            entry_student,
            applicant_offsets,
            applicants,
        })
    }

    /// Builds a market whose key for (student, school, 0-based position in the student's list)
    /// comes from `key`, which may fail (e.g. with [`priority_key`]'s range errors).
    pub fn with_keys(
        prefs: Preferences,
        capacities: Vec<u32>,
        mut key: impl FnMut(u32, u32, u32) -> Result<u64, MarketError>,
    ) -> Result<Self, MarketError> {
        let mut keys = Vec::with_capacity(prefs.num_entries());
        for (student, pair) in prefs.offsets.windows(2).enumerate() {
            for entry in pair[0]..pair[1] {
                keys.push(key(
                    student as u32,
                    prefs.schools[entry as usize],
                    entry - pair[0],
                )?);
            }
        }
        Self::new(prefs, capacities, keys)
    }

    pub fn preferences(&self) -> &Preferences {
        &self.prefs
    }

    pub fn num_students(&self) -> usize {
        self.prefs.num_students()
    }

    pub fn num_schools(&self) -> usize {
        self.prefs.num_schools()
    }

    pub fn capacities(&self) -> &[u32] {
        &self.capacities
    }

    /// The school's capacity; 0 for an id out of range.
    pub fn capacity(&self, school: u32) -> u32 {
        self.capacities.get(school as usize).copied().unwrap_or(0)
    }

    /// The student's list, best first (empty for an id out of range).
    pub fn list(&self, student: u32) -> &[u32] {
        self.prefs.list(student)
    }

    /// The student's priority keys, parallel to [`Market::list`].
    pub fn keys_of(&self, student: u32) -> &[u64] {
        match self.prefs.range(student) {
            Some(range) => &self.keys[range],
            None => &[],
        }
    }

    /// The student's priority key at `school`, if the student listed it.
    pub fn key(&self, student: u32, school: u32) -> Option<u64> {
        let position = self.list(student).iter().position(|&s| s == school)?;
        Some(self.keys_of(student)[position])
    }

    /// The school's applicants, highest priority first, as (student, key, 0-based position of
    /// the school in that student's list).
    pub fn applicants(&self, school: u32) -> impl ExactSizeIterator<Item = (u32, u64, u32)> + '_ {
        let range = match self
            .applicant_offsets
            .get(school as usize..school as usize + 2)
        {
            Some(pair) => pair[0] as usize..pair[1] as usize,
            None => 0..0,
        };
        self.applicants[range].iter().map(move |&entry| {
            let student = self.entry_student[entry as usize];
            (
                student,
                self.keys[entry as usize],
                entry - self.prefs.offsets[student as usize],
            )
        })
    }

    // Flat views for the mechanisms in this module.

    pub(crate) fn offsets(&self) -> &[u32] {
        &self.prefs.offsets
    }

    pub(crate) fn entry_schools(&self) -> &[u32] {
        &self.prefs.schools
    }

    pub(crate) fn entry_keys(&self) -> &[u64] {
        &self.keys
    }

    pub(crate) fn entry_student(&self) -> &[u32] {
        &self.entry_student
    }

    pub(crate) fn applicant_offsets(&self) -> &[u32] {
        &self.applicant_offsets
    }

    /// Entry indices of every school's applicants, highest priority first.
    pub(crate) fn applicant_entries(&self) -> &[u32] {
        &self.applicants
    }

    /// Number of students listing the school.
    pub(crate) fn demand(&self, school: usize) -> u32 {
        self.applicant_offsets[school + 1] - self.applicant_offsets[school]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefs(lists: &[&[u32]], schools: usize) -> Preferences {
        Preferences::from_lists(schools, lists).unwrap()
    }

    #[test]
    fn preferences_reject_bad_lists() {
        assert_eq!(
            Preferences::from_lists(2, &[&[0u32, 2][..]]),
            Err(MarketError::SchoolOutOfRange {
                student: 0,
                position: 1,
                school: 2,
                schools: 2
            })
        );
        assert_eq!(
            Preferences::from_lists(3, &[&[1u32][..], &[2, 0, 2]]),
            Err(MarketError::DuplicateChoice {
                student: 1,
                school: 2
            })
        );
        assert_eq!(
            Preferences::new(1, vec![1, 1], vec![0]),
            Err(MarketError::OffsetsStart { first: 1 })
        );
        assert_eq!(
            Preferences::new(1, vec![0, 2, 1], vec![0, 0]),
            Err(MarketError::OffsetsDecrease {
                index: 2,
                value: 1,
                previous: 2
            })
        );
        assert_eq!(
            Preferences::new(1, vec![0, 1], vec![0, 0]),
            Err(MarketError::OffsetsEnd {
                last: 1,
                entries: 2
            })
        );
        assert!(matches!(
            Preferences::new(1, vec![], vec![]),
            Err(MarketError::LengthMismatch { .. })
        ));
        // The same school may be listed by different students.
        let p = prefs(&[&[1, 0], &[], &[0]], 2);
        assert_eq!((p.num_students(), p.num_entries()), (3, 3));
        assert_eq!(p.list(0), &[1, 0]);
        assert_eq!(p.list(1), &[] as &[u32]);
        assert_eq!(p.list(7), &[] as &[u32]);
    }

    #[test]
    fn market_checks_lengths_and_strictness() {
        let p = prefs(&[&[0, 1], &[1]], 2);
        assert!(matches!(
            Market::new(p.clone(), vec![1], vec![0, 0, 0]),
            Err(MarketError::LengthMismatch {
                what: "capacities",
                ..
            })
        ));
        assert!(matches!(
            Market::new(p.clone(), vec![1, 1], vec![0, 0]),
            Err(MarketError::LengthMismatch { what: "keys", .. })
        ));
        // Entry 1 (student 0 at school 1) and entry 2 (student 1 at school 1) tie.
        assert_eq!(
            Market::new(p.clone(), vec![1, 1], vec![5, 7, 7]),
            Err(MarketError::TiedPriority {
                school: 1,
                key: 7,
                first: 0,
                second: 1
            })
        );
        assert_eq!(
            Market::new(p.clone(), vec![1, 1], vec![5, u64::MAX, 7]),
            Err(MarketError::ReservedKey {
                student: 0,
                position: 1
            })
        );
        // Equal keys at different schools are fine.
        let market = Market::new(p, vec![1, 0], vec![7, 3, 7]).unwrap();
        let at_one: Vec<_> = market.applicants(1).collect();
        assert_eq!(at_one, vec![(0, 3, 1), (1, 7, 0)]);
        assert_eq!(market.key(1, 1), Some(7));
        assert_eq!(market.key(1, 0), None);
        assert_eq!(market.applicants(9).len(), 0);
        assert_eq!(market.capacity(9), 0);
    }

    #[test]
    fn keys_from_a_function_follow_the_entries() {
        let p = prefs(&[&[2, 0], &[0]], 3);
        let market = Market::with_keys(p, vec![1, 1, 1], |student, school, position| {
            priority_key(school, u64::from(student * 10 + position))
        })
        .unwrap();
        assert_eq!(market.keys_of(0), &[2 << 40, 1]);
        assert_eq!(market.keys_of(1), &[10]);
        let failing = Market::with_keys(prefs(&[&[0]], 1), vec![1], |_, _, _| {
            priority_key(MAX_CLASS + 1, 0)
        });
        assert_eq!(
            failing,
            Err(MarketError::ClassOutOfRange {
                class: MAX_CLASS + 1
            })
        );
    }

    #[test]
    fn priority_key_ranges() {
        assert_eq!(priority_key(2, 5), Ok((2 << 40) | 5));
        assert_eq!(priority_key(MAX_CLASS, MAX_LOTTERY), Ok(u64::MAX >> 1));
        assert_eq!(
            priority_key(MAX_CLASS + 1, 0),
            Err(MarketError::ClassOutOfRange {
                class: MAX_CLASS + 1
            })
        );
        assert_eq!(
            priority_key(0, MAX_LOTTERY + 1),
            Err(MarketError::LotteryOutOfRange {
                lottery: MAX_LOTTERY + 1
            })
        );
        // Class dominates lottery.
        assert!(priority_key(0, MAX_LOTTERY).unwrap() < priority_key(1, 0).unwrap());
    }
}
