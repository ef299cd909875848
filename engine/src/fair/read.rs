//! Reading `fairs.csv` and `applicants.csv`: every problem is reported with file:line:field and
//! nothing else happens.

use std::collections::hash_map::Entry;
use std::path::Path;

use foldhash::{HashMap, HashMapExt};

use super::{Applicant, Fair, FairInput, OPEN, Pool};
use crate::allocation::applications::Applications;
use crate::input::{InputError, Table, clip};

/// Validated fair files: the canonical input and the file order of their rows.
#[derive(Debug, Clone)]
pub struct FairFiles {
    pub input: FairInput,
    /// The canonical index of each row of `applicants.csv`, in file order.
    pub applicant_order: Vec<u32>,
    /// The canonical index of each row of `fairs.csv`, in file order.
    pub pool_order: Vec<u32>,
}

/// Reads and validates `fairs.csv` and `applicants.csv`.
pub fn read(fairs: &Path, applicants: &Path) -> Result<FairFiles, InputError> {
    let fairs = Table::read(fairs)?;
    let applicants = Table::read(applicants)?;
    read_tables(&fairs, &applicants)
}

struct PoolRow {
    fair: String,
    category: String,
    stalls: u32,
}

/// [`read`] on tables already in memory.
pub fn read_tables(fairs: &Table, applicants: &Table) -> Result<FairFiles, InputError> {
    // fairs.csv
    let c_fair = fairs.column("fair")?;
    let c_district = fairs.column("district")?;
    let c_category = fairs.column("category")?;
    let c_stalls = fairs.column("stalls")?;
    // Fields borrow the row being read, so what is kept across rows is copied.
    let mut rows: Vec<PoolRow> = Vec::new();
    let mut district_of: HashMap<String, (String, u64)> = HashMap::new();
    let mut pool_line: HashMap<(String, String), u64> = HashMap::new();
    fairs.for_each_row(|row| -> Result<(), InputError> {
        let fair = row.id(c_fair)?;
        let district = row.id(c_district)?;
        let category = row.id(c_category)?;
        let stalls = row.parse::<u32>(c_stalls, "a number of stalls (0 or more)")?;
        match district_of.entry(fair.to_owned()) {
            Entry::Vacant(v) => {
                v.insert((district.to_owned(), row.line()));
            }
            Entry::Occupied(o) if o.get().0 != district => {
                let (first, line) = o.get();
                return Err(row.error(
                    c_district,
                    format!(
                        "fair '{}' is in district '{}' on line {line}, not '{}'",
                        clip(fair),
                        clip(first),
                        clip(district)
                    ),
                ));
            }
            Entry::Occupied(_) => {}
        }
        if let Some(line) = pool_line.insert((fair.to_owned(), category.to_owned()), row.line()) {
            return Err(row.error(
                c_category,
                format!(
                    "fair '{}' already has a '{}' row (line {line})",
                    clip(fair),
                    clip(category)
                ),
            ));
        }
        rows.push(PoolRow {
            fair: fair.to_owned(),
            category: category.to_owned(),
            stalls,
        });
        Ok(())
    })?;
    if rows.is_empty() {
        return Err(InputError::file(
            fairs.name(),
            "has no rows: expected one row per stall pool (fair,district,category,stalls)",
        ));
    }
    let mut fair_ids: Vec<&str> = district_of.keys().map(String::as_str).collect();
    fair_ids.sort_unstable();
    let fair_index: HashMap<&str, u32> = fair_ids
        .iter()
        .enumerate()
        .map(|(i, &f)| (f, i as u32))
        .collect();
    let mut by_pool: Vec<u32> = (0..rows.len() as u32).collect();
    by_pool.sort_unstable_by(|&a, &b| {
        let (a, b) = (&rows[a as usize], &rows[b as usize]);
        (fair_index[a.fair.as_str()], &a.category).cmp(&(fair_index[b.fair.as_str()], &b.category))
    });
    let mut pool_order = vec![0u32; rows.len()];
    let mut pools = Vec::with_capacity(rows.len());
    let mut fair_list: Vec<Fair> = fair_ids
        .iter()
        .map(|&id| Fair {
            id: id.to_owned(),
            district: district_of[id].0.to_owned(),
            pools: 0..0,
        })
        .collect();
    for (canonical, &row) in by_pool.iter().enumerate() {
        pool_order[row as usize] = canonical as u32;
        let r = &rows[row as usize];
        let fair = fair_index[r.fair.as_str()];
        let range = &mut fair_list[fair as usize].pools;
        if range.start == range.end {
            *range = canonical as u32..canonical as u32;
        }
        range.end = canonical as u32 + 1;
        pools.push(Pool {
            fair,
            category: r.category.clone(),
            stalls: r.stalls,
        });
    }

    // applicants.csv
    let mut common = Applications::new(
        applicants,
        "applicant",
        "fair",
        fairs.name(),
        fair_list.len(),
    )?;
    let c_category = applicants.column("category")?;
    let c_tier = applicants.column("tier")?;
    let mut list: Vec<Applicant> = Vec::with_capacity(applicants.count_rows());
    applicants.for_each_row(|row| -> Result<(), InputError> {
        let common = common.read(&row, |k| &list[k as usize].id, &fair_index)?;
        let category = row.id(c_category)?;
        if category == OPEN {
            return Err(row.error(
                c_category,
                "'*' is not a category of goods (it marks open stalls in fairs.csv)",
            ));
        }
        const TIER: &str = "a tier (0 local farmer, 1 regional producer, 2 other)";
        let tier = row.parse::<u8>(c_tier, TIER)?;
        if tier > 2 {
            return Err(row.error(c_tier, format!("expected {TIER}, found '{tier}'")));
        }
        list.push(Applicant {
            id: common.id.to_owned(),
            category: category.to_owned(),
            tier,
            lottery: common.lottery,
            choices: common.choices,
        });
        Ok(())
    })?;
    if list.is_empty() {
        return Err(InputError::file(
            applicants.name(),
            "has no rows: expected one row per application",
        ));
    }
    let mut by_id: Vec<u32> = (0..list.len() as u32).collect();
    by_id.sort_unstable_by(|&a, &b| list[a as usize].id.cmp(&list[b as usize].id));
    let mut applicant_order = vec![0u32; list.len()];
    for (canonical, &row) in by_id.iter().enumerate() {
        applicant_order[row as usize] = canonical as u32;
    }
    let mut slots: Vec<Option<Applicant>> = list.into_iter().map(Some).collect();
    let applicants = by_id
        .iter()
        .map(|&row| slots[row as usize].take().unwrap_or_else(empty_applicant))
        .collect();
    Ok(FairFiles {
        input: FairInput {
            fairs: fair_list,
            pools,
            applicants,
            lottery_given: common.lottery_given(),
        },
        applicant_order,
        pool_order,
    })
}

// `by_id` is a permutation, so every slot is taken exactly once; this is never called.
fn empty_applicant() -> Applicant {
    Applicant {
        id: String::new(),
        category: String::new(),
        tier: 0,
        lottery: None,
        choices: Vec::new(),
    }
}
