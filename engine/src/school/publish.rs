//! The published results of a school run: `assignment.csv`, `cutoffs.csv`, `block_cutoffs.csv`
//! (with reserves) and `summary.json`.
//!
//! [`SchoolTables`] is the one definition of those files: built from a solved run (by the
//! engine's publisher, or by the API's `GetResults`) and written by [`SchoolTables::write`]
//! wherever the rows came from (the CLI writes what the API sent).

use serde_json::json;

use super::compare::{Stats, stats};
use super::{SchoolFiles, SchoolInput, SchoolSolved, Schools};
use crate::allocation::PublishedTables;
use crate::allocation::{OutputDir, Publish, Result, RunInfo, key_parts, rank_table};

/// Publishes a school run, with rows in the order of the input files.
#[derive(Debug, Clone)]
pub struct SchoolPublisher {
    student_order: Vec<u32>,
    school_order: Vec<u32>,
}

impl SchoolPublisher {
    pub fn new(files: &SchoolFiles) -> Self {
        SchoolPublisher {
            student_order: files.student_order.clone(),
            school_order: files.school_order.clone(),
        }
    }
}

/// Where a student goes: a row of `assignment.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolAssignmentRow {
    pub student: String,
    /// The school and its 1-based rank in the student's list.
    pub assigned: Option<(String, u32)>,
}

/// A school's figures: a row of `cutoffs.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolCutoffRow {
    pub school: String,
    pub capacity: u32,
    pub assigned: u32,
    /// (class, lottery) of the last admitted, when the school is full.
    pub cutoff: Option<(u32, u64)>,
}

/// A block of a school's seats: a row of `block_cutoffs.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockCutoffRow {
    pub school: String,
    /// 1-based, in the order the blocks fill.
    pub block: u32,
    /// The class the seats are reserved for; `None` for open seats.
    pub class: Option<u32>,
    pub seats: u32,
    pub cutoff: Option<(u32, u64)>,
}

/// The tables of a school run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchoolTables {
    pub assignment: Vec<SchoolAssignmentRow>,
    pub cutoffs: Vec<SchoolCutoffRow>,
    /// Empty without reserves (and then no `block_cutoffs.csv` is written).
    pub blocks: Vec<BlockCutoffRow>,
}

impl SchoolTables {
    /// The tables of a solved run in the assignment `position` (the run's, or with seats given
    /// back since: [`crate::allocation::Holdings`]), with students and schools in the given
    /// orders (the files', or canonical). The cutoffs are the run's.
    pub fn of(
        input: &SchoolInput,
        solved: &SchoolSolved,
        position: &[Option<u32>],
        student_order: impl IntoIterator<Item = u32>,
        school_order: impl IntoIterator<Item = u32>,
    ) -> Self {
        let assignment = student_order
            .into_iter()
            .map(|i| SchoolAssignmentRow {
                student: input.students[i as usize].id.clone(),
                assigned: position[i as usize].map(|at| {
                    let j = solved.market.list(i)[at as usize];
                    (input.schools[j as usize].id.clone(), at + 1)
                }),
            })
            .collect();
        let mut load = vec![0u32; input.schools.len()];
        for (i, at) in position.iter().enumerate() {
            if let Some(at) = at {
                load[solved.market.list(i as u32)[*at as usize] as usize] += 1;
            }
        }
        let cutoffs = school_order
            .into_iter()
            .map(|j| {
                let school = &input.schools[j as usize];
                SchoolCutoffRow {
                    school: school.id.clone(),
                    capacity: school.capacity,
                    assigned: load[j as usize],
                    cutoff: solved.cutoffs[j as usize].map(key_parts),
                }
            })
            .collect();
        let mut blocks = Vec::new();
        for (j, school_blocks, cutoffs) in &solved.blocks {
            for (k, (b, cut)) in school_blocks.iter().zip(cutoffs).enumerate() {
                blocks.push(BlockCutoffRow {
                    school: input.schools[*j as usize].id.clone(),
                    block: k as u32 + 1,
                    class: b.class,
                    seats: b.seats,
                    cutoff: cut.map(key_parts),
                });
            }
        }
        SchoolTables {
            assignment,
            cutoffs,
            blocks,
        }
    }
}

impl PublishedTables for SchoolTables {
    type Files = SchoolFiles;

    /// Tables built in canonical order (`of` on `0..n`, as the API sends them), in the order of
    /// the files they were read from.
    fn in_file_order(self, files: &SchoolFiles) -> Self {
        let mut assignment: Vec<Option<SchoolAssignmentRow>> =
            self.assignment.into_iter().map(Some).collect();
        let mut cutoffs: Vec<Option<SchoolCutoffRow>> =
            self.cutoffs.into_iter().map(Some).collect();
        SchoolTables {
            assignment: (files.student_order.iter())
                .filter_map(|&i| assignment[i as usize].take())
                .collect(),
            cutoffs: (files.school_order.iter())
                .filter_map(|&j| cutoffs[j as usize].take())
                .collect(),
            blocks: self.blocks,
        }
    }

    /// Writes `assignment.csv`, `cutoffs.csv` and, with reserves, `block_cutoffs.csv` into
    /// `dir`.
    fn write(&self, dir: &mut OutputDir) -> Result<()> {
        for name in SCHOOL_TABLES {
            if name == "block_cutoffs.csv" && self.blocks.is_empty() {
                continue;
            }
            dir.write(name, |w| {
                let mut csv = csv::Writer::from_writer(w);
                self.write_csv(name, &mut csv)?;
                csv.flush()
            })?;
        }
        Ok(())
    }
}

/// The CSV files of a school run's results (`block_cutoffs.csv` only with reserves).
pub const SCHOOL_TABLES: [&str; 3] = ["assignment.csv", "cutoffs.csv", "block_cutoffs.csv"];

impl SchoolTables {
    /// Writes the file `name` of [`SCHOOL_TABLES`] (header, then rows) to `w`; nothing for
    /// another name. The one definition of their columns: the CLI's folder and the console's
    /// downloads both write through it.
    pub fn write_csv<W: std::io::Write>(
        &self,
        name: &str,
        w: &mut csv::Writer<W>,
    ) -> csv::Result<()> {
        match name {
            "assignment.csv" => {
                w.write_record(["student", "school", "rank"])?;
                for row in &self.assignment {
                    match &row.assigned {
                        Some((school, rank)) => {
                            w.write_record([&row.student, school, &rank.to_string()])?
                        }
                        None => w.write_record([row.student.as_str(), "", ""])?,
                    }
                }
            }
            "cutoffs.csv" => {
                w.write_record(["school", "capacity", "assigned", "class", "lottery"])?;
                for row in &self.cutoffs {
                    let (class, lottery) = key_fields(row.cutoff);
                    w.write_record([
                        &row.school,
                        &row.capacity.to_string(),
                        &row.assigned.to_string(),
                        &class,
                        &lottery,
                    ])?;
                }
            }
            "block_cutoffs.csv" => {
                w.write_record(["school", "block", "eligible", "seats", "class", "lottery"])?;
                for row in &self.blocks {
                    let eligible = match row.class {
                        None => "open".to_owned(),
                        Some(c) => format!("class {c}"),
                    };
                    let (class, lottery) = key_fields(row.cutoff);
                    w.write_record([
                        &row.school,
                        &row.block.to_string(),
                        &eligible,
                        &row.seats.to_string(),
                        &class,
                        &lottery,
                    ])?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn key_fields(key: Option<(u32, u64)>) -> (String, String) {
    match key {
        Some((class, lottery)) => (class.to_string(), lottery.to_string()),
        None => (String::new(), String::new()),
    }
}

/// The figures of a school run's input that `summary.json` shows besides its [`Stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputFigures {
    pub schools: u64,
    pub seats: u64,
    pub reserves: u64,
    pub lottery_given: bool,
}

impl InputFigures {
    pub fn of(input: &SchoolInput) -> Self {
        InputFigures {
            schools: input.schools.len() as u64,
            seats: input.total_seats(),
            reserves: input.reserves.len() as u64,
            lottery_given: input.lottery_given,
        }
    }
}

/// The content of `summary.json`: the run's fields ([`RunInfo::summary`]) and the school run's
/// figures.
pub fn summary(info: &RunInfo, stats: &Stats, input: InputFigures) -> serde_json::Value {
    let mut summary = info.summary(input.lottery_given);
    let fields = [
        ("students", json!(stats.students)),
        ("schools", json!(input.schools)),
        ("seats", json!(input.seats)),
        ("reserves", json!(input.reserves)),
        ("assigned", json!(stats.assigned)),
        ("unassigned", json!(stats.unassigned)),
        ("rank_counts", rank_table(&stats.rank_counts)),
        ("blocking_pairs", json!(stats.blocking_pairs)),
        ("justified_envy", json!(stats.justified_envy)),
    ];
    summary.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
    summary.into()
}

impl Publish<Schools> for SchoolPublisher {
    fn files(&self, input: &SchoolInput, solved: &SchoolSolved, dir: &mut OutputDir) -> Result<()> {
        let students = self.student_order.iter().copied();
        let schools = self.school_order.iter().copied();
        SchoolTables::of(input, solved, &solved.position, students, schools).write(dir)
    }

    fn summary(
        &self,
        input: &SchoolInput,
        solved: &SchoolSolved,
        info: &RunInfo,
    ) -> Result<serde_json::Value> {
        let stats = stats(input, solved)?;
        Ok(summary(info, &stats, InputFigures::of(input)))
    }

    fn solve_seconds(&self, solved: &SchoolSolved) -> f64 {
        solved.solve_seconds
    }
}
