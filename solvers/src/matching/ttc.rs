//! Top trading cycles (Abdulkadiroglu and Sonmez 2003).

use super::market::{Market, NONE};
use super::outcome::{Matching, Outcome};

/// Top trading cycles: every school with a free seat points to its highest-priority remaining
/// student among those who listed it, every remaining student to its best listed school with a
/// free seat; each student on a cycle gets the school it points to, the school loses a seat, and
/// the process repeats. A student with no listed school left stays unassigned. The outcome is
/// Pareto efficient and strategy-proof for students, but not stable.
///
/// Implementation: one persistent pointer graph walked depth-first. A path is extended along
/// pointers until it closes on itself; the cycle is executed and the walk resumes from the path's
/// remaining prefix, whose pointers are still valid (a cycle only removes its own students and
/// seats). Pointers only move forward (students down their lists past full schools, schools down
/// their priority order past assigned students), so the whole run is O(students + schools +
/// entries). Cycles are found in a different order than the textbook's simultaneous rounds, but
/// every cycle stays a cycle until it is executed, so the matching is the same.
///
/// Cutoff: the largest key a full school holds (descriptive only: TTC trades priorities, so a
/// student above a school's cutoff may still not get it); `None` when it has seats left or
/// capacity 0.
pub fn top_trading_cycles(market: &Market) -> Outcome<'_> {
    let (n, m) = (market.num_students(), market.num_schools());
    let (offsets, schools) = (market.offsets(), market.entry_schools());
    let (applicant_offsets, applicants) = (market.applicant_offsets(), market.applicant_entries());
    let entry_student = market.entry_student();
    let mut seats = market.capacities().to_vec();
    // Student pointer: the entry it points at. School pointer: index into its applicants.
    let mut student_at: Vec<u32> = offsets[..n].to_vec();
    let mut school_at: Vec<u32> = applicant_offsets[..m].to_vec();
    let mut done = vec![false; n];
    let mut entries = vec![NONE; n];
    // Nodes: students are 0..n, schools n..n + m. `path_index[v]` is v's place on the path.
    let mut path: Vec<u32> = Vec::new();
    let mut path_index = vec![NONE; n + m];
    for root in 0..n as u32 {
        if done[root as usize] {
            continue;
        }
        path_index[root as usize] = 0;
        path.push(root);
        while let Some(&node) = path.last() {
            let u = node as usize;
            let target = if u < n {
                let (at, end) = (&mut student_at[u], offsets[u + 1]);
                while *at < end && seats[schools[*at as usize] as usize] == 0 {
                    *at += 1;
                }
                (*at < end).then(|| n as u32 + schools[*at as usize])
            } else {
                let s = u - n;
                let (at, end) = (&mut school_at[s], applicant_offsets[s + 1]);
                while *at < end && done[entry_student[applicants[*at as usize] as usize] as usize] {
                    *at += 1;
                }
                (*at < end).then(|| entry_student[applicants[*at as usize] as usize])
            };
            match target {
                None => {
                    // A student with nothing left stays unassigned; a school with nobody left
                    // closes (unreachable in practice: its pointing student listed it).
                    path.pop();
                    path_index[u] = NONE;
                    if u < n {
                        done[u] = true;
                    } else {
                        seats[u - n] = 0;
                    }
                }
                Some(v) if path_index[v as usize] != NONE => {
                    let from = path_index[v as usize] as usize;
                    for &w in &path[from..] {
                        let w = w as usize;
                        if w < n {
                            entries[w] = student_at[w];
                            done[w] = true;
                            seats[schools[student_at[w] as usize] as usize] -= 1;
                        }
                        path_index[w] = NONE;
                    }
                    path.truncate(from);
                }
                Some(v) => {
                    path_index[v as usize] = path.len() as u32;
                    path.push(v);
                }
            }
        }
    }
    Outcome::with_worst_key_cutoffs(Matching::from_entries(market, entries))
}
