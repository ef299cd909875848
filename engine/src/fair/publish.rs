//! The published results of a fair run: `assignment.csv`, `cutoffs.csv`, `waitlist.csv` and
//! `summary.json`.
//!
//! [`FairTables`] is the one definition of those files: built from a solved run (by the engine's
//! publisher, or by the API's `GetResults` for the run's current state) and written by
//! [`FairTables::write`] wherever the rows came from (the CLI writes what the API sent).

use serde_json::json;

use super::compare::Stats;
use super::{FairFiles, FairInput, FairSolved, Fairs};
use crate::allocation::{Holdings, PublishedTables, waitlist};
use crate::allocation::{OutputDir, Publish, Result, RunInfo, key_parts, rank_table};

/// Publishes a fair run, with rows in the order of the input files.
#[derive(Debug, Clone)]
pub struct FairPublisher {
    applicant_order: Vec<u32>,
    pool_order: Vec<u32>,
}

impl FairPublisher {
    pub fn new(files: &FairFiles) -> Self {
        FairPublisher {
            applicant_order: files.applicant_order.clone(),
            pool_order: files.pool_order.clone(),
        }
    }
}

/// Where an applicant trades: a row of `assignment.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentRow {
    pub applicant: String,
    /// The fair, the pool's category and the fair's 1-based rank in the applicant's list.
    pub placed: Option<(String, String, u32)>,
}

/// A pool's figures: a row of `cutoffs.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutoffRow {
    pub fair: String,
    pub district: String,
    pub category: String,
    pub stalls: u32,
    pub placed: u32,
    /// (tier, lottery) of the last admitted, when the pool is full.
    pub cutoff: Option<(u32, u64)>,
}

/// A place on a pool's waitlist: a row of `waitlist.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitlistRow {
    pub fair: String,
    pub category: String,
    /// 1-based.
    pub position: u32,
    pub applicant: String,
    pub tier: u32,
    pub lottery: u64,
}

/// The three tables of a fair run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FairTables {
    pub assignment: Vec<AssignmentRow>,
    pub cutoffs: Vec<CutoffRow>,
    pub waitlist: Vec<WaitlistRow>,
}

impl FairTables {
    /// The rows of `cutoffs.csv` alone (a public lookup needs no assignment or waitlist).
    pub fn cutoff_rows(
        input: &FairInput,
        solved: &FairSolved,
        state: &Holdings,
        pool_order: impl IntoIterator<Item = u32>,
    ) -> Vec<CutoffRow> {
        let mut placed = vec![0u32; input.pools.len()];
        for i in 0..input.applicants.len() as u32 {
            if let Some(p) = state.unit_of(&solved.market, i) {
                placed[p as usize] += 1;
            }
        }
        pool_order
            .into_iter()
            .map(|p| {
                let pool = &input.pools[p as usize];
                let fair = &input.fairs[pool.fair as usize];
                CutoffRow {
                    fair: fair.id.clone(),
                    district: fair.district.clone(),
                    category: pool.category.clone(),
                    stalls: pool.stalls,
                    placed: placed[p as usize],
                    cutoff: solved.cutoffs[p as usize].map(key_parts),
                }
            })
            .collect()
    }

    /// The tables of `state` (the run's outcome with any changes replayed), with applicants and
    /// pools in the given orders (the files', or canonical).
    pub fn of(
        input: &FairInput,
        solved: &FairSolved,
        state: &Holdings,
        applicant_order: impl IntoIterator<Item = u32>,
        pool_order: impl IntoIterator<Item = u32> + Clone,
    ) -> Self {
        let assignment = applicant_order
            .into_iter()
            .map(|i| {
                let pool = state.unit_of(&solved.market, i);
                let rank = state.position[i as usize].map(|at| solved.rank_at(i, at));
                AssignmentRow {
                    applicant: input.applicants[i as usize].id.clone(),
                    placed: pool.zip(rank).map(|(p, rank)| {
                        let category = input.pools[p as usize].category.clone();
                        (input.fair_of(p).to_owned(), category, rank)
                    }),
                }
            })
            .collect();
        let cutoffs = Self::cutoff_rows(input, solved, state, pool_order.clone());
        let mut waiting = Vec::new();
        for p in pool_order {
            let pool = &input.pools[p as usize];
            let eligible = waitlist(&solved.market, &state.position, p)
                .filter(|&(i, _)| !state.withdrawn[i as usize]);
            for (k, (i, key)) in eligible.enumerate() {
                let (tier, lottery) = key_parts(key);
                waiting.push(WaitlistRow {
                    fair: input.fair_of(p).to_owned(),
                    category: pool.category.clone(),
                    position: k as u32 + 1,
                    applicant: input.applicants[i as usize].id.clone(),
                    tier,
                    lottery,
                });
            }
        }
        FairTables {
            assignment,
            cutoffs,
            waitlist: waiting,
        }
    }
}

impl PublishedTables for FairTables {
    type Files = FairFiles;

    /// Tables built in canonical order (`of` on `0..n`, as the API sends them), in the order of
    /// the files they were read from.
    fn in_file_order(self, files: &FairFiles) -> Self {
        let mut assignment: Vec<Option<AssignmentRow>> =
            self.assignment.into_iter().map(Some).collect();
        let mut cutoffs: Vec<Option<CutoffRow>> = self.cutoffs.into_iter().map(Some).collect();
        let mut waiting: std::collections::HashMap<(String, String), Vec<WaitlistRow>> =
            std::collections::HashMap::new();
        for row in self.waitlist {
            let key = (row.fair.clone(), row.category.clone());
            waiting.entry(key).or_default().push(row);
        }
        let mut tables = FairTables::default();
        for &i in &files.applicant_order {
            tables.assignment.extend(assignment[i as usize].take());
        }
        for &p in &files.pool_order {
            if let Some(row) = cutoffs[p as usize].take() {
                let key = (row.fair.clone(), row.category.clone());
                tables
                    .waitlist
                    .extend(waiting.remove(&key).unwrap_or_default());
                tables.cutoffs.push(row);
            }
        }
        tables
    }

    /// Writes `assignment.csv`, `cutoffs.csv` and `waitlist.csv` into `dir`.
    fn write(&self, dir: &mut OutputDir) -> Result<()> {
        for name in FAIR_TABLES {
            dir.write(name, |w| {
                let mut csv = csv::Writer::from_writer(w);
                self.write_csv(name, &mut csv)?;
                csv.flush()
            })?;
        }
        Ok(())
    }
}

/// The CSV files of a fair run's results.
pub const FAIR_TABLES: [&str; 3] = ["assignment.csv", "cutoffs.csv", "waitlist.csv"];

impl FairTables {
    /// Writes the file `name` of [`FAIR_TABLES`] (header, then rows) to `w`; nothing for
    /// another name. The one definition of their columns: the CLI's folder and the console's
    /// downloads both write through it.
    pub fn write_csv<W: std::io::Write>(
        &self,
        name: &str,
        w: &mut csv::Writer<W>,
    ) -> csv::Result<()> {
        match name {
            "assignment.csv" => {
                w.write_record(["applicant", "fair", "category", "rank"])?;
                for row in &self.assignment {
                    match &row.placed {
                        Some((fair, category, rank)) => {
                            w.write_record([&row.applicant, fair, category, &rank.to_string()])?
                        }
                        None => w.write_record([row.applicant.as_str(), "", "", ""])?,
                    }
                }
            }
            "cutoffs.csv" => {
                w.write_record([
                    "fair", "district", "category", "stalls", "placed", "tier", "lottery",
                ])?;
                for row in &self.cutoffs {
                    let (tier, lottery) = match row.cutoff {
                        Some((t, l)) => (t.to_string(), l.to_string()),
                        None => (String::new(), String::new()),
                    };
                    w.write_record([
                        &row.fair,
                        &row.district,
                        &row.category,
                        &row.stalls.to_string(),
                        &row.placed.to_string(),
                        &tier,
                        &lottery,
                    ])?;
                }
            }
            "waitlist.csv" => {
                w.write_record([
                    "fair",
                    "category",
                    "position",
                    "applicant",
                    "tier",
                    "lottery",
                ])?;
                for row in &self.waitlist {
                    w.write_record([
                        &row.fair,
                        &row.category,
                        &row.position.to_string(),
                        &row.applicant,
                        &row.tier.to_string(),
                        &row.lottery.to_string(),
                    ])?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The content of `summary.json`: the run's fields ([`RunInfo::summary`]) and the fair's
/// figures.
pub fn summary(
    info: &RunInfo,
    stats: &Stats,
    applicants: u64,
    stalls: u64,
    lottery_given: bool,
) -> serde_json::Value {
    let mut summary = info.summary(lottery_given);
    let fill_rate = if stalls == 0 {
        0.0
    } else {
        stats.placed() as f64 / stalls as f64
    };
    let fields = [
        ("applicants", json!(applicants)),
        ("applicants_per_tier", json!(stats.applicants_per_tier)),
        ("stalls", json!(stalls)),
        ("placed", json!(stats.placed())),
        ("placed_per_tier", json!(stats.placed_per_tier)),
        ("unplaced", json!(stats.unplaced)),
        ("rank_counts", rank_table(&stats.rank_counts)),
        ("rank2_sum", json!(stats.rank2_sum)),
        ("fill_rate", json!(fill_rate)),
    ];
    summary.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
    summary.into()
}

impl Publish<Fairs> for FairPublisher {
    fn files(&self, input: &FairInput, solved: &FairSolved, dir: &mut OutputDir) -> Result<()> {
        let state = Holdings::after_run::<Fairs>(solved);
        let applicants = self.applicant_order.iter().copied();
        let pools = self.pool_order.iter().copied();
        FairTables::of(input, solved, &state, applicants, pools).write(dir)
    }

    fn summary(
        &self,
        input: &FairInput,
        solved: &FairSolved,
        info: &RunInfo,
    ) -> Result<serde_json::Value> {
        let stats = super::compare::stats(input, solved);
        Ok(summary(
            info,
            &stats,
            input.applicants.len() as u64,
            input.total_stalls(),
            input.lottery_given,
        ))
    }

    fn solve_seconds(&self, solved: &FairSolved) -> f64 {
        solved.solve_seconds
    }
}
