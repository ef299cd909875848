//! The files of a fair run: `assignment.csv`, `cutoffs.csv`, `waitlist.csv`, `summary.json`.

use serde_json::json;

use super::{FairFiles, FairInput, FairSolved, Fairs};
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

/// Per pool, its waitlist: the applicants who listed it and did not get it or anything they
/// ranked higher, best priority first (the order stalls given back are re-offered in).
pub(super) fn waitlist<'m>(
    solved: &'m FairSolved,
    position: &'m [Option<u32>],
    pool: u32,
) -> impl Iterator<Item = (u32, u64)> + 'm {
    solved
        .market
        .applicants(pool)
        .filter(move |&(i, _, at)| position[i as usize].is_none_or(|held| held > at))
        .map(|(i, key, _)| (i, key))
}

impl Publish<Fairs> for FairPublisher {
    fn files(&self, input: &FairInput, solved: &FairSolved, dir: &mut OutputDir) -> Result<()> {
        dir.write_csv(
            "assignment.csv",
            &["applicant", "fair", "category", "rank"],
            |w| {
                for &i in &self.applicant_order {
                    let a = &input.applicants[i as usize];
                    match solved.pool_of(i) {
                        Some(p) => w.write_record([
                            a.id.as_str(),
                            input.fair_of(p),
                            &input.pools[p as usize].category,
                            &solved.rank_of(i).unwrap_or(0).to_string(),
                        ])?,
                        None => w.write_record([a.id.as_str(), "", "", ""])?,
                    }
                }
                Ok(())
            },
        )?;
        let loads = loads(solved);
        dir.write_csv(
            "cutoffs.csv",
            &[
                "fair", "district", "category", "stalls", "placed", "tier", "lottery",
            ],
            |w| {
                for &p in &self.pool_order {
                    let pool = &input.pools[p as usize];
                    let fair = &input.fairs[pool.fair as usize];
                    let (tier, lottery) = match solved.cutoffs[p as usize].map(key_parts) {
                        Some((t, l)) => (t.to_string(), l.to_string()),
                        None => (String::new(), String::new()),
                    };
                    w.write_record([
                        fair.id.as_str(),
                        &fair.district,
                        &pool.category,
                        &pool.stalls.to_string(),
                        &loads[p as usize].to_string(),
                        &tier,
                        &lottery,
                    ])?;
                }
                Ok(())
            },
        )?;
        dir.write_csv(
            "waitlist.csv",
            &[
                "fair",
                "category",
                "position",
                "applicant",
                "tier",
                "lottery",
            ],
            |w| {
                for &p in &self.pool_order {
                    let pool = &input.pools[p as usize];
                    for (k, (i, key)) in waitlist(solved, &solved.position, p).enumerate() {
                        let (tier, lottery) = key_parts(key);
                        w.write_record([
                            input.fair_of(p),
                            &pool.category,
                            &(k + 1).to_string(),
                            &input.applicants[i as usize].id,
                            &tier.to_string(),
                            &lottery.to_string(),
                        ])?;
                    }
                }
                Ok(())
            },
        )
    }

    fn summary(
        &self,
        input: &FairInput,
        solved: &FairSolved,
        info: &RunInfo,
    ) -> Result<serde_json::Value> {
        let stats = super::compare::stats(input, solved);
        let stalls = input.total_stalls();
        let mut summary = info.summary(input.lottery_given);
        let fill_rate = if stalls == 0 {
            0.0
        } else {
            stats.placed() as f64 / stalls as f64
        };
        let fields = [
            ("applicants", json!(input.applicants.len())),
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
        Ok(summary.into())
    }

    fn solve_seconds(&self, solved: &FairSolved) -> f64 {
        solved.solve_seconds
    }
}

/// Stalls taken per pool.
pub(super) fn loads(solved: &FairSolved) -> Vec<u32> {
    let mut load = vec![0u32; solved.market.num_schools()];
    for i in 0..solved.position.len() as u32 {
        if let Some(p) = solved.pool_of(i) {
            load[p as usize] += 1;
        }
    }
    load
}
