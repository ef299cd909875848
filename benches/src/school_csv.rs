//! Reads the school-choice CSV folders of `../shared/anchors/gen/school_gen.py` into a [`Market`],
//! with the C++ reference's priority rule: key = class << 40 | lottery, class 2 when the
//! (school, student) pair is absent from `priorities.csv`.

use std::collections::HashMap;
use std::path::Path;

use allot_solvers::matching::{Market, PreferencesBuilder, priority_key};
use anyhow::{Context, Result, bail};

/// Priority class of a (school, student) pair missing from `priorities.csv`.
pub const DEFAULT_CLASS: u32 = 2;

/// A market read from a folder, with the names behind its integer ids.
#[derive(Debug)]
pub struct SchoolInstance {
    pub market: Market,
    pub schools: Vec<String>,
    pub students: Vec<String>,
    /// Each student's lottery number as given in `students.csv`.
    pub lotteries: Vec<u64>,
}

fn reader(path: &Path) -> Result<csv::Reader<std::fs::File>> {
    csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))
}

/// Reads `schools.csv`, `students.csv` and `priorities.csv` from `dir`.
pub fn read(dir: &Path) -> Result<SchoolInstance> {
    let mut schools = Vec::new();
    let mut capacities = Vec::new();
    let mut school_id = HashMap::new();
    let path = dir.join("schools.csv");
    for (line, row) in reader(&path)?.records().enumerate() {
        let row = row.with_context(|| format!("{} line {}", path.display(), line + 2))?;
        let capacity = row[1]
            .parse()
            .with_context(|| format!("{} line {}: capacity", path.display(), line + 2))?;
        school_id.insert(row[0].to_string(), schools.len() as u32);
        schools.push(row[0].to_string());
        capacities.push(capacity);
    }
    let mut students = Vec::new();
    let mut lotteries = Vec::new();
    let mut student_id = HashMap::new();
    let mut prefs = PreferencesBuilder::new(schools.len());
    let path = dir.join("students.csv");
    for (line, row) in reader(&path)?.records().enumerate() {
        let where_ = || format!("{} line {}", path.display(), line + 2);
        let row = row.with_context(where_)?;
        let lottery: u64 = row[1]
            .parse()
            .with_context(|| format!("{}: lottery", where_()))?;
        let mut list = Vec::new();
        for name in row[2].split(';').filter(|s| !s.is_empty()) {
            match school_id.get(name) {
                Some(&s) => list.push(s),
                None => bail!("{}: unknown school {name}", where_()),
            }
        }
        student_id.insert(row[0].to_string(), students.len() as u32);
        students.push(row[0].to_string());
        lotteries.push(lottery);
        prefs.push(list).with_context(where_)?;
    }
    let prefs = prefs.build()?;
    let mut class = vec![DEFAULT_CLASS; prefs.num_entries()];
    let path = dir.join("priorities.csv");
    for (line, row) in reader(&path)?.records().enumerate() {
        let where_ = || format!("{} line {}", path.display(), line + 2);
        let row = row.with_context(where_)?;
        let (Some(&school), Some(&student)) = (school_id.get(&row[0]), student_id.get(&row[1]))
        else {
            bail!("{}: unknown school or student", where_());
        };
        let value: u32 = row[2]
            .parse()
            .with_context(|| format!("{}: priority", where_()))?;
        let start = prefs.offsets()[student as usize];
        if let Some(k) = prefs.list(student).iter().position(|&s| s == school) {
            class[start as usize + k] = value;
        }
    }
    let mut keys = Vec::with_capacity(prefs.num_entries());
    for (student, pair) in prefs.offsets().windows(2).enumerate() {
        for &class in &class[pair[0] as usize..pair[1] as usize] {
            let lottery = lotteries[student];
            keys.push(priority_key(class, lottery).with_context(|| {
                format!(
                    "student {}: priority class {class} or lottery {lottery}",
                    students[student]
                )
            })?);
        }
    }
    let market = Market::new(prefs, capacities, keys).context("building the market")?;
    Ok(SchoolInstance {
        market,
        schools,
        students,
        lotteries,
    })
}
