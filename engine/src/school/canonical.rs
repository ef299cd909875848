//! The canonical encoding of a school application set (its SHA-256 is the set digest the
//! window's closing commits to, and the run's input digest).
//!
//! With the log's codec (integers big-endian, strings with a `u32` length):
//!
//! ```text
//! str  "allot/schools/input/v1"
//! u32  number of schools, then per school, sorted by id (bytes): str id, u32 capacity
//! u8   1 if the students carry lottery numbers, else 0
//! u32  number of students, then per student, sorted by id (bytes):
//!        str id, [u64 lottery, only when carried],
//!        u32 number of choices, then per choice, best first: u32 index of the school above
//! u32  number of priorities, then per (school, student) pair, sorted by school index, then
//!        student index: u32 school index, u32 student index, u32 class
//! u32  number of reserves, then per reserve, sorted by school index, then class:
//!        u32 school index, u32 class, u32 seats
//! ```
//!
//! The file order of rows is not part of it.

use allot_solvers::matching::MAX_CLASS;

use super::{Priority, Reserve, School, SchoolInput, Student};
use crate::allocation::canonical::{
    Choices, Problem, invalid, lottery, lottery_flag, next_id, write_lottery,
};
use crate::log::codec::{Reader, Writer};

const TAG: &[u8] = b"allot/schools/input/v1";

pub(super) fn encode(input: &SchoolInput) -> Vec<u8> {
    let entries: usize = input.students.iter().map(|s| s.choices.len()).sum();
    let mut w = Writer::with_capacity(
        64 + input.schools.len() * 16
            + input.students.len() * 24
            + entries * 4
            + input.priorities.len() * 12,
    );
    w.bytes(TAG);
    w.u32(input.schools.len() as u32);
    for s in &input.schools {
        w.bytes(s.id.as_bytes());
        w.u32(s.capacity);
    }
    w.u8(u8::from(input.lottery_given));
    w.u32(input.students.len() as u32);
    for s in &input.students {
        w.bytes(s.id.as_bytes());
        write_lottery(&mut w, s.lottery);
        Choices::write(&mut w, &s.choices);
    }
    w.u32(input.priorities.len() as u32);
    for p in &input.priorities {
        w.u32(p.school);
        w.u32(p.student);
        w.u32(p.class);
    }
    w.u32(input.reserves.len() as u32);
    for r in &input.reserves {
        w.u32(r.school);
        w.u32(r.class);
        w.u32(r.seats);
    }
    w.into_bytes()
}

pub(super) fn decode(bytes: &[u8]) -> Result<SchoolInput, String> {
    decode_checked(bytes).map_err(|e| e.to_string())
}

fn decode_checked(bytes: &[u8]) -> Result<SchoolInput, Problem> {
    let mut r = Reader::new(bytes);
    if r.bytes("tag")? != TAG {
        return Err(invalid("not a school application set (unknown tag)".into()));
    }
    let nschools = r.u32("schools")?;
    let mut schools: Vec<School> = Vec::new();
    for _ in 0..nschools {
        let id = next_id(&mut r, "school", schools.last().map(|l| l.id.as_str()))?;
        let capacity = r.u32("capacity")?;
        schools.push(School { id, capacity });
    }
    let lottery_given = lottery_flag(&mut r)?;
    let nstudents = r.u32("students")?;
    let mut students: Vec<Student> = Vec::new();
    let mut lists = Choices::new(schools.len());
    for i in 0..nstudents {
        let id = next_id(&mut r, "student", students.last().map(|l| l.id.as_str()))?;
        let lottery = lottery(&mut r, lottery_given, &id)?;
        let choices = lists.read(&mut r, i, &id)?;
        students.push(Student {
            id,
            lottery,
            choices,
        });
    }
    let npriorities = r.u32("priorities")?;
    let mut priorities: Vec<Priority> = Vec::new();
    for _ in 0..npriorities {
        let p = Priority {
            school: r.u32("priority school")?,
            student: r.u32("priority student")?,
            class: r.u32("priority class")?,
        };
        if p.school as usize >= schools.len() || p.student as usize >= students.len() {
            return Err(invalid(format!("priority {p:?} is out of range")));
        }
        if p.class > MAX_CLASS {
            return Err(invalid(format!("priority class {} is too large", p.class)));
        }
        if priorities
            .last()
            .is_some_and(|l| (l.school, l.student) >= (p.school, p.student))
        {
            return Err(invalid(format!("priority {p:?} is out of order")));
        }
        priorities.push(p);
    }
    let nreserves = r.u32("reserves")?;
    let mut reserves: Vec<Reserve> = Vec::new();
    for _ in 0..nreserves {
        let v = Reserve {
            school: r.u32("reserve school")?,
            class: r.u32("reserve class")?,
            seats: r.u32("reserve seats")?,
        };
        if v.school as usize >= schools.len() || v.class > MAX_CLASS {
            return Err(invalid(format!("reserve {v:?} is out of range")));
        }
        if reserves
            .last()
            .is_some_and(|l| (l.school, l.class) >= (v.school, v.class))
        {
            return Err(invalid(format!("reserve {v:?} is out of order")));
        }
        reserves.push(v);
    }
    r.finish("reserves")?;
    Ok(SchoolInput {
        schools,
        students,
        priorities,
        reserves,
        lottery_given,
    })
}
