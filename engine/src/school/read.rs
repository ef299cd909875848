//! Reading `schools.csv`, `students.csv`, `priorities.csv` and the optional `reserves.csv`:
//! every problem is reported with file:line:field and nothing else happens.

use std::path::Path;

use allot_solvers::matching::MAX_CLASS;
use foldhash::{HashMap, HashMapExt};

use super::{Priority, Reserve, School, SchoolInput, Student};
use crate::allocation::applications::Applications;
use crate::input::{InputError, Table, clip};

/// The files of a school run.
#[derive(Debug, Clone, Copy)]
pub struct SchoolPaths<'a> {
    pub schools: &'a Path,
    pub students: &'a Path,
    pub priorities: &'a Path,
    pub reserves: Option<&'a Path>,
}

/// Validated school files: the canonical input and the file order of their rows.
#[derive(Debug, Clone)]
pub struct SchoolFiles {
    pub input: SchoolInput,
    /// The canonical index of each row of `students.csv`, in file order.
    pub student_order: Vec<u32>,
    /// The canonical index of each row of `schools.csv`, in file order.
    pub school_order: Vec<u32>,
}

/// Reads and validates the school files.
pub fn read(paths: SchoolPaths<'_>) -> Result<SchoolFiles, InputError> {
    let schools = Table::read(paths.schools)?;
    let students = Table::read(paths.students)?;
    let priorities = Table::read(paths.priorities)?;
    let reserves = paths.reserves.map(Table::read).transpose()?;
    read_tables(&schools, &students, &priorities, reserves.as_ref())
}

/// The canonical order of rows by id: each row's sorted position, and the rows in that order.
fn canonical<'a>(len: usize, id: impl Fn(usize) -> &'a str) -> (Vec<u32>, Vec<u32>) {
    let mut by_id: Vec<u32> = (0..len as u32).collect();
    by_id.sort_unstable_by(|&a, &b| id(a as usize).cmp(id(b as usize)));
    let mut order = vec![0u32; len];
    for (canonical, &row) in by_id.iter().enumerate() {
        order[row as usize] = canonical as u32;
    }
    (order, by_id)
}

/// [`read`] on tables already in memory.
pub fn read_tables(
    schools: &Table,
    students: &Table,
    priorities: &Table,
    reserves: Option<&Table>,
) -> Result<SchoolFiles, InputError> {
    // schools.csv, in file order first.
    let c_school = schools.column("school")?;
    let c_capacity = schools.column("capacity")?;
    let mut school_ids: Vec<String> = Vec::new();
    let mut capacities: Vec<u32> = Vec::new();
    // Ids are looked up millions of times at the national size: a fast (seeded) hash.
    let mut school_row: HashMap<String, u32> = HashMap::new();
    let mut school_lines: Vec<u64> = Vec::new();
    schools.for_each_row(|row| -> Result<(), InputError> {
        let id = row.id(c_school)?;
        let capacity = row.parse::<u32>(c_capacity, "a capacity (0 or more)")?;
        if let Some(first) = school_row.insert(id.to_owned(), school_ids.len() as u32) {
            return Err(row.error(
                c_school,
                format!(
                    "'{}' appears twice (first on line {})",
                    clip(id),
                    school_lines[first as usize]
                ),
            ));
        }
        school_ids.push(id.to_owned());
        capacities.push(capacity);
        school_lines.push(row.line());
        Ok(())
    })?;
    if school_ids.is_empty() {
        return Err(InputError::file(
            schools.name(),
            "has no rows: expected one row per school (school,capacity)",
        ));
    }
    let (school_order, schools_by_id) = canonical(school_ids.len(), |i| &school_ids[i]);
    // File row -> canonical index, for the other files.
    let school_index: HashMap<&str, u32> = school_ids
        .iter()
        .enumerate()
        .map(|(row, id)| (id.as_str(), school_order[row]))
        .collect();

    // students.csv
    let mut common = Applications::new(
        students,
        "student",
        "school",
        schools.name(),
        school_ids.len(),
    )?;
    let mut list: Vec<Student> = Vec::with_capacity(students.count_rows());
    students.for_each_row(|row| -> Result<(), InputError> {
        let common = common.read(&row, |k| &list[k as usize].id, &school_index)?;
        list.push(Student {
            id: common.id.to_owned(),
            lottery: common.lottery,
            choices: common.choices,
        });
        Ok(())
    })?;
    if list.is_empty() {
        return Err(InputError::file(
            students.name(),
            "has no rows: expected one row per student (student,lottery,choices)",
        ));
    }
    let (student_order, students_by_id) = canonical(list.len(), |i| &list[i].id);

    // priorities.csv
    let class_what = format!("a priority class (0 highest, at most {MAX_CLASS})");
    let c_school = priorities.column("school")?;
    let c_student = priorities.column("student")?;
    let c_priority = priorities.column("priority")?;
    let mut prio: Vec<(Priority, u64)> = Vec::with_capacity(priorities.count_rows());
    priorities.for_each_row(|row| -> Result<(), InputError> {
        let name = row.text(c_school);
        let Some(&school) = school_index.get(name) else {
            row.id(c_school)?;
            return Err(row.error(
                c_school,
                format!(
                    "unknown school '{}' (not in {})",
                    clip(name),
                    schools.name()
                ),
            ));
        };
        let name = row.text(c_student);
        let Some(student) = common.find(name, |k| &list[k as usize].id) else {
            row.id(c_student)?;
            return Err(row.error(
                c_student,
                format!(
                    "unknown student '{}' (not in {})",
                    clip(name),
                    students.name()
                ),
            ));
        };
        let class = row.parse::<u32>(c_priority, &class_what)?;
        if class > MAX_CLASS {
            return Err(row.error(
                c_priority,
                format!("expected {class_what}, found '{class}'"),
            ));
        }
        prio.push((
            Priority {
                school,
                student: student_order[student as usize],
                class,
            },
            row.line(),
        ));
        Ok(())
    })?;
    sort_by_school(&mut prio, school_ids.len());
    if let Some(pair) = prio
        .windows(2)
        .filter(|w| (w[0].0.school, w[0].0.student) == (w[1].0.school, w[1].0.student))
        .min_by_key(|w| w[1].1)
    {
        let (p, line) = pair[1];
        return Err(InputError::at(
            priorities.name(),
            line,
            "student",
            format!(
                "school '{}' already lists student '{}' (line {})",
                clip(&school_ids[schools_by_id[p.school as usize] as usize]),
                clip(&list[students_by_id[p.student as usize] as usize].id),
                pair[0].1
            ),
        ));
    }

    // reserves.csv
    let mut reserve_rows: Vec<(Reserve, u64)> = Vec::new();
    if let Some(table) = reserves {
        let c_school = table.column("school")?;
        let c_class = table.column("class")?;
        let c_seats = table.column("seats")?;
        let mut reserved: HashMap<u32, u64> = HashMap::new();
        let mut rows: HashMap<(u32, u32), u64> = HashMap::new();
        table.for_each_row(|row| -> Result<(), InputError> {
            let name = row.id(c_school)?;
            let school = *school_index.get(name).ok_or_else(|| {
                row.error(
                    c_school,
                    format!("unknown school '{}' (not in {})", clip(name), schools.name()),
                )
            })?;
            let class = row.parse::<u32>(c_class, &class_what)?;
            if class > MAX_CLASS {
                return Err(row.error(c_class, format!("expected {class_what}, found '{class}'")));
            }
            let seats = row.parse::<u32>(c_seats, "a number of seats (0 or more)")?;
            if let Some(first) = rows.insert((school, class), row.line()) {
                return Err(row.error(
                    c_class,
                    format!(
                        "school '{}' already reserves seats for class {class} (line {first})",
                        clip(name)
                    ),
                ));
            }
            let total = reserved.entry(school).or_default();
            *total += u64::from(seats);
            let capacity = capacities[schools_by_id[school as usize] as usize];
            if *total > u64::from(capacity) {
                return Err(row.error(
                    c_seats,
                    format!(
                        "school '{}' would reserve {total} seats, more than its capacity {capacity}",
                        clip(name)
                    ),
                ));
            }
            reserve_rows.push((
                Reserve {
                    school,
                    class,
                    seats,
                },
                row.line(),
            ));
            Ok(())
        })?;
    }
    let mut reserves: Vec<Reserve> = reserve_rows.into_iter().map(|(r, _)| r).collect();
    reserves.sort_unstable();

    let schools_out = schools_by_id
        .iter()
        .map(|&row| School {
            id: std::mem::take(&mut school_ids[row as usize]),
            capacity: capacities[row as usize],
        })
        .collect();
    let lottery_given = common.lottery_given();
    let mut slots: Vec<Student> = list;
    let students_out = students_by_id
        .iter()
        .map(|&row| std::mem::replace(&mut slots[row as usize], empty_student()))
        .collect();
    Ok(SchoolFiles {
        input: SchoolInput {
            schools: schools_out,
            students: students_out,
            priorities: prio.into_iter().map(|(p, _)| p).collect(),
            reserves,
            lottery_given,
        },
        student_order,
        school_order,
    })
}

/// Sorts priority rows by (school, student, line): a counting sort by school, then each school's
/// rows (a few hundred) by student and line.
fn sort_by_school(rows: &mut Vec<(Priority, u64)>, schools: usize) {
    let mut start = vec![0usize; schools + 1];
    for (p, _) in rows.iter() {
        start[p.school as usize + 1] += 1;
    }
    for j in 0..schools {
        start[j + 1] += start[j];
    }
    let mut fill = start.clone();
    let mut sorted = vec![
        (
            Priority {
                school: 0,
                student: 0,
                class: 0
            },
            0u64
        );
        rows.len()
    ];
    for row in rows.iter() {
        let slot = &mut fill[row.0.school as usize];
        sorted[*slot] = *row;
        *slot += 1;
    }
    for j in 0..schools {
        sorted[start[j]..start[j + 1]].sort_unstable_by_key(|(p, line)| (p.student, *line));
    }
    *rows = sorted;
}

fn empty_student() -> Student {
    Student {
        id: String::new(),
        lottery: None,
        choices: Vec::new(),
    }
}
