//! The files of a school run: `assignment.csv`, `cutoffs.csv`, `block_cutoffs.csv` (with
//! reserves), `summary.json`.

use serde_json::json;

use super::compare::stats;
use super::{SchoolFiles, SchoolInput, SchoolSolved, Schools};
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

fn key_fields(key: Option<u64>) -> (String, String) {
    match key.map(key_parts) {
        Some((class, lottery)) => (class.to_string(), lottery.to_string()),
        None => (String::new(), String::new()),
    }
}

impl Publish<Schools> for SchoolPublisher {
    fn files(&self, input: &SchoolInput, solved: &SchoolSolved, dir: &mut OutputDir) -> Result<()> {
        dir.write_csv("assignment.csv", &["student", "school", "rank"], |w| {
            for &i in &self.student_order {
                let s = &input.students[i as usize];
                match solved.school_of(i) {
                    Some(j) => w.write_record([
                        s.id.as_str(),
                        &input.schools[j as usize].id,
                        &solved.rank_of(i).unwrap_or(0).to_string(),
                    ])?,
                    None => w.write_record([s.id.as_str(), "", ""])?,
                }
            }
            Ok(())
        })?;
        let mut load = vec![0u32; input.schools.len()];
        for i in 0..input.students.len() as u32 {
            if let Some(j) = solved.school_of(i) {
                load[j as usize] += 1;
            }
        }
        dir.write_csv(
            "cutoffs.csv",
            &["school", "capacity", "assigned", "class", "lottery"],
            |w| {
                for &j in &self.school_order {
                    let school = &input.schools[j as usize];
                    let (class, lottery) = key_fields(solved.cutoffs[j as usize]);
                    w.write_record([
                        school.id.as_str(),
                        &school.capacity.to_string(),
                        &load[j as usize].to_string(),
                        &class,
                        &lottery,
                    ])?;
                }
                Ok(())
            },
        )?;
        if !solved.blocks.is_empty() {
            dir.write_csv(
                "block_cutoffs.csv",
                &["school", "block", "eligible", "seats", "class", "lottery"],
                |w| {
                    for (j, blocks, cutoffs) in &solved.blocks {
                        for (k, (b, cut)) in blocks.iter().zip(cutoffs).enumerate() {
                            let eligible = match b.class {
                                None => "open".to_owned(),
                                Some(c) => format!("class {c}"),
                            };
                            let (class, lottery) = key_fields(*cut);
                            w.write_record([
                                input.schools[*j as usize].id.as_str(),
                                &(k + 1).to_string(),
                                &eligible,
                                &b.seats.to_string(),
                                &class,
                                &lottery,
                            ])?;
                        }
                    }
                    Ok(())
                },
            )?;
        }
        Ok(())
    }

    fn summary(
        &self,
        input: &SchoolInput,
        solved: &SchoolSolved,
        info: &RunInfo,
    ) -> Result<serde_json::Value> {
        let stats = stats(input, solved)?;
        let mut summary = info.summary(input.lottery_given);
        let fields = [
            ("students", json!(stats.students)),
            ("schools", json!(input.schools.len())),
            ("seats", json!(input.total_seats())),
            ("reserves", json!(input.reserves.len())),
            ("assigned", json!(stats.assigned)),
            ("unassigned", json!(stats.unassigned)),
            ("rank_counts", rank_table(&stats.rank_counts)),
            ("blocking_pairs", json!(stats.blocking_pairs)),
            ("justified_envy", json!(stats.justified_envy)),
        ];
        summary.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
        Ok(summary.into())
    }

    fn solve_seconds(&self, solved: &SchoolSolved) -> f64 {
        solved.solve_seconds
    }
}
