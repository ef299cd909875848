//! DIMACS min-cost-flow files (`.min`): reader and writer.
//!
//! ```text
//! c a comment
//! p min NODES ARCS
//! n ID SUPPLY            (nodes not listed have supply 0)
//! a SRC DST LOW CAP COST
//! ```
//! Node ids in the file run from 1 to NODES; in the [`Network`] they are 0-based. The reader works on
//! bytes, never panics, and reports the first problem with its 1-based line number and the field.
//! A capacity of `i64::MAX` stands for [`INFINITE_CAPACITY`](crate::mcf::INFINITE_CAPACITY).

use std::fmt;
use std::io::{self, Write};
use std::path::Path;

use crate::mcf::{MAX_ARCS, MAX_NODES, Network, NodeId};

/// How many nodes a problem line may declare whatever the file's size (more need a file at
/// least as long, in bytes, as the number of nodes).
pub const NODES_WITHOUT_LINES: usize = 1 << 20;

/// A field of a DIMACS line, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    ProblemType,
    NodeCount,
    ArcCount,
    NodeId,
    Supply,
    ArcSource,
    ArcTarget,
    LowerBound,
    Capacity,
    ArcCost,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::ProblemType => "problem type",
            Field::NodeCount => "problem node count",
            Field::ArcCount => "problem arc count",
            Field::NodeId => "node id",
            Field::Supply => "node supply",
            Field::ArcSource => "arc source",
            Field::ArcTarget => "arc target",
            Field::LowerBound => "arc lower bound",
            Field::Capacity => "arc capacity",
            Field::ArcCost => "arc cost",
        })
    }
}

/// What is wrong on a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("{0}: missing")]
    Missing(Field),
    #[error("{field}: not an integer: '{text}'")]
    NotInteger { field: Field, text: String },
    #[error("{field}: out of range: '{text}'")]
    OutOfRange { field: Field, text: String },
    #[error("{field}: node {id} is not in 1..={nodes}")]
    NodeOutOfRange { field: Field, id: i64, nodes: usize },
    #[error("unexpected text after the last field: '{0}'")]
    Trailing(String),
    #[error("problem type: expected 'min', found '{0}'")]
    NotMin(String),
    #[error("a second problem line (the first is on line {first})")]
    DuplicateProblem { first: usize },
    #[error("'{0}' line before the problem line 'p min NODES ARCS'")]
    BeforeProblem(char),
    #[error("no problem line 'p min NODES ARCS'")]
    MissingProblem,
    #[error("unknown line type '{0}' (expected c, p, n or a)")]
    UnknownLine(String),
    #[error("node {id} is listed twice (first on line {first})")]
    DuplicateNode { id: i64, first: usize },
    #[error("more arcs than the {declared} declared on line {problem_line}")]
    TooManyArcs {
        declared: usize,
        problem_line: usize,
    },
    #[error("the problem line declares {declared} arcs but the file has {found}")]
    TooFewArcs { declared: usize, found: usize },
    #[error("{field}: {count} is more than the limit of {limit}")]
    TooLarge {
        field: Field,
        count: u64,
        limit: usize,
    },
    #[error(
        "problem node count: {nodes} is more than a file of this size can use (at most {limit}, \
         the larger of {NODES_WITHOUT_LINES} and the file's length in bytes)"
    )]
    NodesBeyondFile { nodes: usize, limit: usize },
    #[error("arc capacity: {0} is negative")]
    NegativeCapacity(i64),
    #[error("arc lower bound: {lower} is above the capacity {upper}")]
    LowerAboveCapacity { lower: i64, upper: i64 },
    #[error("{field}: cannot allocate room for {count}")]
    Allocation { field: Field, count: usize },
}

/// A DIMACS parse error at a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    pub line: usize,
    pub kind: ErrorKind,
}

/// Reading a DIMACS file failed. The message names the file and includes the cause (so the cause
/// is not also chained as a `source`, which would print it twice).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {error}")]
    Io { path: String, error: io::Error },
    #[error("{path}: {error}")]
    Parse { path: String, error: ParseError },
}

/// Reads and parses the file at `path`.
pub fn read_file(path: &Path) -> Result<Network, ReadError> {
    let bytes = std::fs::read(path).map_err(|error| ReadError::Io {
        path: path.display().to_string(),
        error,
    })?;
    parse(&bytes).map_err(|error| ReadError::Parse {
        path: path.display().to_string(),
        error,
    })
}

/// Parses a DIMACS min-cost-flow problem.
pub fn parse(input: &[u8]) -> Result<Network, ParseError> {
    let mut network = Network::new();
    // (line of the p line, declared arcs)
    let mut problem: Option<(usize, usize)> = None;
    // Line on which each node's supply was given (0: not given); allocated once `p` is known.
    let mut supply_line: Vec<u32> = Vec::new();
    let mut line_no = 0usize;
    let mut rest = input;
    while !rest.is_empty() {
        line_no += 1;
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        // Arc lines are nearly all of a file: parse the plain ones in one pass, and leave anything
        // unusual (including every error) to the general path below.
        if let (Some((_, declared)), Some(arc)) = (problem, plain_arc(line))
            && network.arc_count() < declared
        {
            let nodes = network.node_count() as i64;
            let [from, to, lower, upper, cost] = arc;
            if (1..=nodes).contains(&from)
                && (1..=nodes).contains(&to)
                && bounds_problem(lower, upper).is_none()
            {
                network.add_arc_with_lower(
                    NodeId((from - 1) as u32),
                    NodeId((to - 1) as u32),
                    lower,
                    upper,
                    cost,
                );
                continue;
            }
        }
        let err = |kind| ParseError {
            line: line_no,
            kind,
        };
        let mut t = Tokens { line, pos: 0 };
        let Some(kind) = t.next() else { continue };
        match kind {
            b"c" => continue,
            b"p" => {
                if let Some((first, _)) = problem {
                    return Err(err(ErrorKind::DuplicateProblem { first }));
                }
                let ty = t
                    .next()
                    .ok_or(err(ErrorKind::Missing(Field::ProblemType)))?;
                if ty != b"min" {
                    return Err(err(ErrorKind::NotMin(show(ty))));
                }
                let nodes = t.count(Field::NodeCount, MAX_NODES).map_err(err)?;
                // Every node a line names takes at least two bytes of the file; the others are
                // isolated. A few bytes must not make the reader (and the solver) allocate
                // gigabytes for them.
                let limit = input.len().max(NODES_WITHOUT_LINES);
                if nodes > limit {
                    return Err(err(ErrorKind::NodesBeyondFile { nodes, limit }));
                }
                let arcs = t.count(Field::ArcCount, MAX_ARCS).map_err(err)?;
                t.end().map_err(err)?;
                let alloc = |field, count| err(ErrorKind::Allocation { field, count });
                supply_line
                    .try_reserve_exact(nodes)
                    .map_err(|_| alloc(Field::NodeCount, nodes))?;
                supply_line.resize(nodes, 0);
                // Reserve for the arcs, but not more than the input could hold (a bogus count in a
                // small file must not allocate gigabytes).
                let room = arcs.min(input.len() / 10 + 1);
                network =
                    Network::try_with_capacity(nodes, room).ok_or(alloc(Field::ArcCount, room))?;
                network
                    .add_nodes(nodes)
                    .map_err(|_| alloc(Field::NodeCount, nodes))?;
                problem = Some((line_no, arcs));
            }
            b"n" => {
                if problem.is_none() {
                    return Err(err(ErrorKind::BeforeProblem('n')));
                }
                let nodes = network.node_count();
                let id = t.node(Field::NodeId, nodes).map_err(err)?;
                let supply = t.int(Field::Supply).map_err(err)?;
                t.end().map_err(err)?;
                let first = supply_line[id - 1];
                if first != 0 {
                    return Err(err(ErrorKind::DuplicateNode {
                        id: id as i64,
                        first: first as usize,
                    }));
                }
                supply_line[id - 1] = u32::try_from(line_no).unwrap_or(u32::MAX);
                let _ = network.set_supply(NodeId((id - 1) as u32), supply);
            }
            b"a" => {
                let Some((problem_line, declared)) = problem else {
                    return Err(err(ErrorKind::BeforeProblem('a')));
                };
                if network.arc_count() == declared {
                    return Err(err(ErrorKind::TooManyArcs {
                        declared,
                        problem_line,
                    }));
                }
                let nodes = network.node_count();
                let from = t.node(Field::ArcSource, nodes).map_err(err)?;
                let to = t.node(Field::ArcTarget, nodes).map_err(err)?;
                let lower = t.int(Field::LowerBound).map_err(err)?;
                let upper = t.int(Field::Capacity).map_err(err)?;
                let cost = t.int(Field::ArcCost).map_err(err)?;
                t.end().map_err(err)?;
                if let Some(kind) = bounds_problem(lower, upper) {
                    return Err(err(kind));
                }
                network.add_arc_with_lower(
                    NodeId((from - 1) as u32),
                    NodeId((to - 1) as u32),
                    lower,
                    upper,
                    cost,
                );
            }
            other => return Err(err(ErrorKind::UnknownLine(show(other)))),
        }
    }
    let Some((problem_line, declared)) = problem else {
        return Err(ParseError {
            line: line_no.max(1),
            kind: ErrorKind::MissingProblem,
        });
    };
    if network.arc_count() != declared {
        return Err(ParseError {
            line: problem_line,
            kind: ErrorKind::TooFewArcs {
                declared,
                found: network.arc_count(),
            },
        });
    }
    Ok(network)
}

/// Why an arc's bounds cannot be solved, if they cannot (the solver would refuse them later, by
/// arc number; here the error names the line).
fn bounds_problem(lower: i64, upper: i64) -> Option<ErrorKind> {
    if upper < 0 {
        Some(ErrorKind::NegativeCapacity(upper))
    } else if lower > upper {
        Some(ErrorKind::LowerAboveCapacity { lower, upper })
    } else {
        None
    }
}

/// Writes `network` in DIMACS format (nodes with supply 0 get no `n` line).
pub fn write<W: Write>(network: &Network, out: W) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    writeln!(out, "c written by allot")?;
    writeln!(
        out,
        "p min {} {}",
        network.node_count(),
        network.arc_count()
    )?;
    for (v, &b) in network.supplies().iter().enumerate() {
        if b != 0 {
            writeln!(out, "n {} {}", v + 1, b)?;
        }
    }
    for a in network.arcs() {
        writeln!(
            out,
            "a {} {} {} {} {}",
            a.from.index() + 1,
            a.to.index() + 1,
            a.lower,
            a.upper,
            a.cost
        )?;
    }
    out.flush()
}

/// Writes a flow on `network` in DIMACS solution format: `s COST`, then `f SRC DST FLOW` for each
/// arc with nonzero flow, in the network's arc order.
pub fn write_flow<W: Write>(
    network: &Network,
    cost: i64,
    flow: &[i64],
    mut out: W,
) -> io::Result<()> {
    writeln!(out, "s {cost}")?;
    for (arc, &f) in network.arcs().zip(flow) {
        if f != 0 {
            writeln!(out, "f {} {} {f}", arc.from.index() + 1, arc.to.index() + 1)?;
        }
    }
    Ok(())
}

/// `network` as a DIMACS string.
pub fn to_string(network: &Network) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write(network, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The five numbers of an arc line `a SRC DST LOW CAP COST` with single-space-or-tab separators
/// and plain (optionally negative) decimal integers; `None` for anything else.
fn plain_arc(line: &[u8]) -> Option<[i64; 5]> {
    let [b'a', b' ' | b'\t', ..] = line else {
        return None;
    };
    let mut pos = 1;
    let mut out = [0i64; 5];
    for slot in &mut out {
        while let Some(b' ' | b'\t') = line.get(pos) {
            pos += 1;
        }
        let negative = line.get(pos) == Some(&b'-');
        pos += usize::from(negative);
        let start = pos;
        let mut value: i64 = 0;
        while let Some(&b) = line.get(pos) {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            value = value.checked_mul(10)?.checked_add(i64::from(digit))?;
            pos += 1;
        }
        // A number must have digits and end at a separator or the end of the line.
        if pos == start || !matches!(line.get(pos), None | Some(b' ' | b'\t' | b'\r')) {
            return None;
        }
        *slot = if negative { -value } else { value };
    }
    line[pos..]
        .iter()
        .all(u8::is_ascii_whitespace)
        .then_some(out)
}

/// A token for an error message: lossy UTF-8, cut to a readable length.
fn show(token: &[u8]) -> String {
    const MAX: usize = 40;
    let text = String::from_utf8_lossy(&token[..token.len().min(MAX)]).into_owned();
    if token.len() > MAX {
        text + "..."
    } else {
        text
    }
}

/// Whitespace-separated tokens of one line.
struct Tokens<'a> {
    line: &'a [u8],
    pos: usize,
}

impl<'a> Tokens<'a> {
    fn next(&mut self) -> Option<&'a [u8]> {
        let line = self.line;
        let start = self.pos
            + line[self.pos..]
                .iter()
                .position(|b| !b.is_ascii_whitespace())?;
        let len = line[start..]
            .iter()
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(line.len() - start);
        self.pos = start + len;
        Some(&line[start..start + len])
    }

    fn int(&mut self, field: Field) -> Result<i64, ErrorKind> {
        let token = self.next().ok_or(ErrorKind::Missing(field))?;
        parse_int(token).map_err(|overflow| {
            let text = show(token);
            if overflow {
                ErrorKind::OutOfRange { field, text }
            } else {
                ErrorKind::NotInteger { field, text }
            }
        })
    }

    /// A 1-based node id in `1..=nodes`.
    fn node(&mut self, field: Field, nodes: usize) -> Result<usize, ErrorKind> {
        let id = self.int(field)?;
        if id < 1 || id as u64 > nodes as u64 {
            return Err(ErrorKind::NodeOutOfRange { field, id, nodes });
        }
        Ok(id as usize)
    }

    fn count(&mut self, field: Field, limit: usize) -> Result<usize, ErrorKind> {
        let token = self.next().ok_or(ErrorKind::Missing(field))?;
        let value = parse_int(token).map_err(|overflow| {
            let text = show(token);
            if overflow {
                ErrorKind::OutOfRange { field, text }
            } else {
                ErrorKind::NotInteger { field, text }
            }
        })?;
        if value < 0 {
            return Err(ErrorKind::OutOfRange {
                field,
                text: show(token),
            });
        }
        if value as u64 > limit as u64 {
            return Err(ErrorKind::TooLarge {
                field,
                count: value as u64,
                limit,
            });
        }
        Ok(value as usize)
    }

    fn end(&mut self) -> Result<(), ErrorKind> {
        match self.next() {
            Some(token) => Err(ErrorKind::Trailing(show(token))),
            None => Ok(()),
        }
    }
}

/// Parses an optionally signed decimal integer. `Err(true)` on overflow, `Err(false)` on bad syntax.
fn parse_int(token: &[u8]) -> Result<i64, bool> {
    let (negative, digits) = match token {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, token),
    };
    if digits.is_empty() {
        return Err(false);
    }
    // Accumulate negatively so that i64::MIN parses.
    let mut value: i64 = 0;
    let mut overflow = false;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Err(false);
        }
        match value
            .checked_mul(10)
            .and_then(|v| v.checked_sub(i64::from(d)))
        {
            Some(v) => value = v,
            None => overflow = true,
        }
    }
    if overflow {
        return Err(true);
    }
    if negative {
        Ok(value)
    } else {
        value.checked_neg().ok_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::{Field, Tokens, parse_int, plain_arc};
    use proptest::prelude::*;

    proptest! {
        /// Whatever the fast path accepts, the general tokenizer reads the same way.
        #[test]
        fn fast_arc_path_agrees_with_the_tokenizer(
            line in "a[ \t]{1,2}(-?[0-9]{1,20}[ \t]{1,2}){4}[-+x]?[0-9]{1,20}[ \t\r]{0,2}x?",
        ) {
            if let Some(fast) = plain_arc(line.as_bytes()) {
                let mut t = Tokens { line: line.as_bytes(), pos: 1 };
                let mut slow = [0i64; 5];
                for (slot, field) in slow.iter_mut().zip([
                    Field::ArcSource, Field::ArcTarget, Field::LowerBound, Field::Capacity, Field::ArcCost,
                ]) {
                    *slot = t.int(field).unwrap();
                }
                prop_assert!(t.end().is_ok());
                prop_assert_eq!(fast, slow);
            }
        }
    }

    #[test]
    fn integers() {
        assert_eq!(parse_int(b"0"), Ok(0));
        assert_eq!(parse_int(b"-17"), Ok(-17));
        assert_eq!(parse_int(b"+5"), Ok(5));
        assert_eq!(parse_int(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_int(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_int(b"9223372036854775808"), Err(true));
        assert_eq!(parse_int(b"-9223372036854775809"), Err(true));
        assert_eq!(parse_int(b"99999999999999999999999"), Err(true));
        assert_eq!(parse_int(b"1x"), Err(false));
        assert_eq!(parse_int(b"-"), Err(false));
        assert_eq!(parse_int(b""), Err(false));
    }
}
