//! "Why did I not get school X?": for each school ranked above the one received, the school's
//! cutoff (priority class and lottery of the last admitted) against the student's own there.
//!
//! The cutoffs explain the stable mechanisms exactly (`da`, `school-da`, with reserves per seat
//! block). For `boston` the round a school filled matters first; `ttc` and `eada` do not admit by
//! priority alone, so their cutoffs are only descriptive, and the explanation says so.

use super::{Mechanism, SchoolSolved, Schools};
use crate::allocation::{Error, Explanation, Holdings, Loaded, Result, key_parts};

fn seats(n: u32) -> String {
    if n == 1 {
        "1 seat".into()
    } else {
        format!("{n} seats")
    }
}

fn class_words(class: u32, default: u32) -> String {
    if class == default {
        format!("priority class {class} (no priority listed)")
    } else {
        format!("priority class {class}")
    }
}

/// The reason a student with priority `own` lost to the cutoff `cut`.
fn versus(cut: (u32, u64), own: (u32, u64), default: u32) -> String {
    if cut.0 < own.0 {
        format!(
            "{} comes before {}, whatever the lottery",
            class_words(cut.0, default),
            class_words(own.0, default)
        )
    } else if cut.0 == own.0 && cut.1 < own.1 {
        format!(
            "same class, and lottery number {} is lower than your {} (the lower number wins)",
            cut.1, own.1
        )
    } else {
        "you rank ahead of it there".into()
    }
}

/// Explains `student`'s current outcome in the loaded run, with `state` the current assignment
/// (the run's, with seats given back since and their re-offers).
pub fn explain(loaded: &Loaded<Schools>, state: &Holdings, student: &str) -> Result<Explanation> {
    let (input, solved) = (&loaded.input, &loaded.solved);
    let i = input.student(student).ok_or_else(|| {
        Error::Request(format!(
            "there is no student '{student}' in run {}",
            loaded.run.label()
        ))
    })?;
    let default = input.default_class();
    let list = solved.market.list(i);
    let keys = solved.market.keys_of(i);
    let mechanism = solved.mechanism;
    let mut lines = vec![format!(
        "Student {student}, school run {} ({}, {} tie-breaking{}):",
        loaded.run.label(),
        mechanism.name(),
        loaded.params.tie_breaking.name(),
        if input.reserves.is_empty() {
            String::new()
        } else {
            format!(", reserves {}", loaded.params.reserve_order.name())
        }
    )];
    let better = match state.position[i as usize] {
        Some(p) => {
            let school = &input.schools[list[p as usize] as usize].id;
            let when = if solved.position[i as usize] == Some(p) {
                ""
            } else {
                ", offered after the run when a seat there was given back"
            };
            lines.push(format!(
                "You have a seat at {school} (your choice {}){when}.",
                p + 1
            ));
            p as usize
        }
        None if state.withdrawn[i as usize] => {
            lines.push("You gave your seat back.".into());
            return Ok(Explanation {
                participant: student.to_owned(),
                lines,
            });
        }
        None => {
            lines.push("You have no seat.".into());
            list.len()
        }
    };
    if better == 0 {
        lines.push("That is your first choice: no school ranked above it.".into());
    }
    match mechanism {
        Mechanism::Ttc => lines.push(
            "Top trading cycles gives seats by trading: a seat at a school goes to a student when \
             a cycle of students and schools pointing at each other forms, so a cutoff below only \
             describes who got in, it is not a bar."
                .into(),
        ),
        Mechanism::Eada => lines.push(
            "Efficiency-adjusted deferred acceptance lets students waive priorities that only hurt \
             others, so a cutoff below only describes who got in, it is not a bar."
                .into(),
        ),
        _ => {}
    }
    for k in 0..better {
        let school = list[k];
        let own = key_parts(keys[k]);
        let name = &input.schools[school as usize].id;
        let capacity = input.schools[school as usize].capacity;
        let head = format!("- {name} (your choice {}):", k + 1);
        if capacity == 0 {
            lines.push(format!("{head} it has no seats."));
            continue;
        }
        if let Some(rounds) = &solved.filled_in_round {
            lines.push(boston(solved, rounds, school, k, own, default, &head));
            continue;
        }
        if let Some((_, blocks, cutoffs)) = solved.blocks.iter().find(|(s, _, _)| *s == school) {
            lines.push(head);
            for (b, cut) in blocks.iter().zip(cutoffs) {
                let what = match b.class {
                    None => format!("its {} open to all", seats(b.seats)),
                    Some(c) => format!("its {} reserved for class {c}", seats(b.seats)),
                };
                let text = match (b.class, cut.map(key_parts)) {
                    (Some(c), _) if c != own.0 => {
                        format!(
                            "{what}: you are not eligible (you have {})",
                            class_words(own.0, default)
                        )
                    }
                    (_, Some(cut)) => format!(
                        "{what} went to students ahead of you; the last admitted has {} and \
                         lottery number {}: {}.",
                        class_words(cut.0, default),
                        cut.1,
                        versus(cut, own, default)
                    ),
                    (_, None) => format!("{what} were not all taken."),
                };
                lines.push(format!("    {text}"));
            }
            continue;
        }
        let text = match solved.cutoffs[school as usize].map(key_parts) {
            Some(cut) => format!(
                "its {} went to students ahead of you; the last admitted has {} and lottery \
                 number {}: {}.",
                seats(capacity),
                class_words(cut.0, default),
                cut.1,
                versus(cut, own, default)
            ),
            None => format!("its {} were not all taken.", seats(capacity)),
        };
        lines.push(format!(
            "{head} {text} You have {} and lottery number {} there.",
            class_words(own.0, default),
            own.1
        ));
    }
    Ok(Explanation {
        participant: student.to_owned(),
        lines,
    })
}

/// Immediate acceptance: a school is lost by filling in an earlier round, or in the student's
/// round with a cutoff above it.
fn boston(
    solved: &SchoolSolved,
    rounds: &[Option<u32>],
    school: u32,
    position: usize,
    own: (u32, u64),
    default: u32,
    head: &str,
) -> String {
    let filled = rounds[school as usize];
    let cut = solved.cutoffs[school as usize].map(key_parts);
    match (filled, cut) {
        (Some(r), _) if (r as usize) < position => format!(
            "{head} it filled in round {} with students who ranked it higher (choice {}); you \
             applied there in round {}. Under immediate acceptance admissions in a round are final.",
            r + 1,
            r + 1,
            position + 1
        ),
        (Some(_), Some(cut)) => format!(
            "{head} it filled in round {}, your round for it; the last admitted has {} and lottery \
             number {}: {}.",
            position + 1,
            class_words(cut.0, default),
            cut.1,
            versus(cut, own, default)
        ),
        _ => format!("{head} it had seats left when you applied there."),
    }
}
