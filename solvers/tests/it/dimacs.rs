//! DIMACS reader and writer: round trip, malformed files, no panics.

use allot_solvers::dimacs;
use allot_solvers::mcf::{INFINITE_CAPACITY, Network, NodeId};
use proptest::prelude::*;

/// Parses `input` and compares the error message (or `ok N M`) with `expect`.
#[track_caller]
fn check(input: &str, expect: &str) {
    let got = match dimacs::parse(input.as_bytes()) {
        Ok(net) => format!("ok {} {}", net.node_count(), net.arc_count()),
        Err(e) => e.to_string(),
    };
    assert_eq!(got, expect, "input:\n{input}");
}

#[test]
fn well_formed_files() {
    check(
        "c hello\n\np min 2 1\nn 1 3\nn 2 -3\na 1 2 0 5 7\n",
        "ok 2 1",
    );
    // Tabs, CRLF line ends, no final newline, comment lines anywhere, signs.
    check(
        "p\tmin 2 1\r\nc mid\r\nn 1 +3\r\nn 2 -3\r\na 1 2 0 5 -7",
        "ok 2 1",
    );
    let net =
        dimacs::parse(b"p min 3 2\nn 2 -4\nn 1 4\na 1 2 1 5 7\na 2 3 0 9223372036854775807 -1\n")
            .unwrap();
    assert_eq!(net.supplies(), &[4, -4, 0]);
    let arcs: Vec<_> = net
        .arcs()
        .map(|a| (a.from.0, a.to.0, a.lower, a.upper, a.cost))
        .collect();
    assert_eq!(
        arcs,
        vec![(0, 1, 1, 5, 7), (1, 2, 0, INFINITE_CAPACITY, -1)]
    );
}

#[test]
fn malformed_files_name_line_and_field() {
    check(
        "p min 2 1\na 1 2 0 5 x\n",
        "line 2: arc cost: not an integer: 'x'",
    );
    check("p min 2 1\na 1 2 0 5\n", "line 2: arc cost: missing");
    check(
        "p min 2 1\na 1 2 0 5 1 9\n",
        "line 2: unexpected text after the last field: '9'",
    );
    check(
        "p min 2 1\na 1 3 0 5 1\n",
        "line 2: arc target: node 3 is not in 1..=2",
    );
    check(
        "p min 2 1\na 0 2 0 5 1\n",
        "line 2: arc source: node 0 is not in 1..=2",
    );
    check(
        "p min 2 1\na -1 2 0 5 1\n",
        "line 2: arc source: node -1 is not in 1..=2",
    );
    check(
        "p min 2 1\na 1 2 0 1e3 1\n",
        "line 2: arc capacity: not an integer: '1e3'",
    );
    check(
        "p min 2 1\na 1 2 99999999999999999999 5 1\n",
        "line 2: arc lower bound: out of range: '99999999999999999999'",
    );
    check("p min 2 1\nn 1\n", "line 2: node supply: missing");
    check(
        "p min 2 1\nn 3 1\n",
        "line 2: node id: node 3 is not in 1..=2",
    );
    check(
        "p min 2 0\nn 1 1\nn 1 2\n",
        "line 3: node 1 is listed twice (first on line 2)",
    );
    check(
        "c no problem line\n",
        "line 1: no problem line 'p min NODES ARCS'",
    );
    check("", "line 1: no problem line 'p min NODES ARCS'");
    check(
        "n 1 2\np min 2 0\n",
        "line 1: 'n' line before the problem line 'p min NODES ARCS'",
    );
    check(
        "a 1 2 0 1 1\n",
        "line 1: 'a' line before the problem line 'p min NODES ARCS'",
    );
    check(
        "p min 2 0\np min 2 0\n",
        "line 2: a second problem line (the first is on line 1)",
    );
    check(
        "p max 2 0\n",
        "line 1: problem type: expected 'min', found 'max'",
    );
    check("p\n", "line 1: problem type: missing");
    check("p min\n", "line 1: problem node count: missing");
    check("p min 2\n", "line 1: problem arc count: missing");
    check(
        "p min -2 0\n",
        "line 1: problem node count: out of range: '-2'",
    );
    check(
        "p min 2 0 7\n",
        "line 1: unexpected text after the last field: '7'",
    );
    check(
        "p min 9999999999 0\n",
        "line 1: problem node count: 9999999999 is more than the limit of 1073741823",
    );
    // Found by fuzzing: 20 bytes made the reader fill 12 GB of node arrays.
    check(
        "p min 1000000000 0\n",
        "line 1: problem node count: 1000000000 is more than a file of this size can use \
         (at most 1048576, the larger of 1048576 and the file's length in bytes)",
    );
    check(
        "p min 2 1\na 1 2 0 -1 5\n",
        "line 2: arc capacity: -1 is negative",
    );
    check(
        "p min 2 1\na 1 2 3 2 5\n",
        "line 2: arc lower bound: 3 is above the capacity 2",
    );
    // Up to the limit, isolated nodes are fine.
    check("p min 1048576 0\n", "ok 1048576 0");
    check(
        "p min 2 2\na 1 2 0 1 1\n",
        "line 1: the problem line declares 2 arcs but the file has 1",
    );
    check(
        "c\np min 2 1\na 1 2 0 1 1\na 1 2 0 1 1\n",
        "line 4: more arcs than the 1 declared on line 2",
    );
    check(
        "p min 2 0\nx 1 2\n",
        "line 2: unknown line type 'x' (expected c, p, n or a)",
    );
    check(
        "p min 2 0\nac 1 2\n",
        "line 2: unknown line type 'ac' (expected c, p, n or a)",
    );
    check(
        "p min 2 0\n\u{e9} 1\n",
        "line 2: unknown line type '\u{e9}' (expected c, p, n or a)",
    );
}

#[test]
fn read_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.min");
    std::fs::write(&path, "p min 1 0\nn 1 x\n").unwrap();
    let err = dimacs::read_file(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: line 2: node supply: not an integer: 'x'",
            path.display()
        )
    );
    let missing = dir.path().join("missing.min");
    let err = dimacs::read_file(&missing).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("cannot read {}: ", missing.display())),
        "{err}"
    );
}

/// Any network whose arcs point at existing nodes, with values anywhere in i64 (bounds that some
/// flow satisfies).
fn any_network() -> impl Strategy<Value = Network> {
    (0usize..6).prop_flat_map(|n| {
        let value = prop_oneof![
            -5i64..=5,
            any::<i64>(),
            Just(INFINITE_CAPACITY),
            Just(i64::MIN)
        ];
        let arcs = if n == 0 {
            Just(Vec::new()).boxed()
        } else {
            proptest::collection::vec(
                (0..n, 0..n, value.clone(), value.clone(), value.clone()),
                0..10,
            )
            .boxed()
        };
        (arcs, proptest::collection::vec(value, n)).prop_map(move |(arcs, supplies)| {
            let mut net = Network::new();
            net.add_nodes(n).unwrap();
            for (v, b) in supplies.into_iter().enumerate() {
                net.set_supply(NodeId(v as u32), b).unwrap();
            }
            for (u, v, l, c, w) in arcs {
                // The reader refuses bounds no flow satisfies (a negative capacity, a lower bound
                // above the capacity), naming the line.
                let c = c.saturating_abs();
                let l = l.min(c);
                net.add_arc_with_lower(NodeId(u as u32), NodeId(v as u32), l, c, w);
            }
            net
        })
    })
}

proptest! {
    #[test]
    fn round_trip(net in any_network()) {
        let text = dimacs::to_string(&net);
        prop_assert_eq!(dimacs::parse(text.as_bytes()), Ok(net));
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = dimacs::parse(&bytes);
    }

    #[test]
    fn never_panics_on_damaged_files(
        net in any_network(),
        cuts in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        // Overwrite a few bytes of a valid file: errors or not, the reader must return.
        let mut bytes = dimacs::to_string(&net).into_bytes();
        for (at, b) in cuts {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let _ = dimacs::parse(&bytes);
    }
}
