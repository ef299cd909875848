//! `allot mcf`: the last line is the JSON summary; bad files and infeasible problems fail with a
//! message on stderr.

use std::process::Command;

/// Runs `allot mcf` on `input` (written to a file); returns exit success, stdout and stderr.
fn run(input: &str, extra: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("problem.min");
    std::fs::write(&path, input).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_allot"))
        .arg("mcf")
        .args(extra)
        .arg(&path)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

/// Checks the outcome of `allot mcf` on `input`: for success, the JSON line without its time;
/// for failure, the first line of stderr.
#[track_caller]
fn check(input: &str, expect: &str) {
    let (ok, stdout, stderr) = run(input, &[]);
    let got = if ok {
        let last = stdout.lines().last().unwrap_or_default();
        let mut json: serde_json::Value = serde_json::from_str(last).unwrap();
        assert!(
            json["solve_seconds"].as_f64().is_some_and(|s| s >= 0.0),
            "{last}"
        );
        json.as_object_mut().unwrap().remove("solve_seconds");
        json.to_string()
    } else {
        stderr.lines().next().unwrap_or_default().to_string()
    };
    // The temporary path differs per run; compare what follows it.
    let got = got
        .split_once(".min: ")
        .map_or(got.clone(), |(_, rest)| rest.to_string());
    assert_eq!(got, expect);
}

const TRANSPORT: &str = "p min 4 4\nn 1 3\nn 2 2\nn 3 -4\nn 4 -1\n\
                         a 1 3 0 100 1\na 1 4 0 100 4\na 2 3 0 100 3\na 2 4 0 100 2\n";

#[test]
fn solves_and_prints_one_json_line_last() {
    check(
        TRANSPORT,
        r#"{"arcs":4,"cost":8,"nodes":4,"status":"optimal"}"#,
    );
    let (ok, stdout, _) = run(TRANSPORT, &[]);
    assert!(ok);
    let last = stdout.lines().last().unwrap();
    assert!(
        last.starts_with(r#"{"status":"optimal","cost":8,"solve_seconds":"#),
        "{last}"
    );
}

#[test]
fn prints_the_flow_on_request() {
    let (ok, stdout, _) = run(TRANSPORT, &["--flow"]);
    assert!(ok);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[..4], ["s 8", "f 1 3 3", "f 2 3 1", "f 2 4 1"]);
    assert_eq!(lines.len(), 5);
}

#[test]
fn failures_exit_non_zero_with_a_message() {
    check(
        "p min 2 1\nn 1 5\nn 2 -5\na 1 2 0 3 1\n",
        "infeasible: 2 units of demand cannot be met (node 2 is short)",
    );
    check(
        "p min 2 1\na 1 2 0 5 x\n",
        "line 2: arc cost: not an integer: 'x'",
    );
    check(
        "p min 2 1\nn 1 1\na 1 2 0 5 1\n",
        "supplies sum to 1, not to zero",
    );
    let inf = i64::MAX;
    check(
        &format!("p min 2 2\na 1 2 0 {inf} -1\na 2 1 0 {inf} 0\n"),
        "unbounded: a cycle of negative cost has infinite capacity",
    );
}
