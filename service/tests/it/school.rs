//! `allot school ...` end to end: the bad-input table (exact error, nothing written, nothing
//! logged), a run with its files and log entries, verify, explain, reserves, compare.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The input files of one case; `None` leaves a file out.
struct Files<'a> {
    schools: &'a [u8],
    students: &'a [u8],
    priorities: &'a [u8],
    reserves: Option<&'a [u8]>,
}

const SCHOOLS: &[u8] = b"school,capacity\nA,1\nB,2\n";
const STUDENTS: &[u8] = b"student,lottery,choices\nx,3,A;B\ny,1,A\nz,2,B;A\n";
const PRIORITIES: &[u8] = b"school,student,priority\nA,x,0\n";

fn base() -> Files<'static> {
    Files {
        schools: SCHOOLS,
        students: STUDENTS,
        priorities: PRIORITIES,
        reserves: None,
    }
}

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new(files: &Files<'_>) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let write =
            |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).unwrap();
        write("schools.csv", files.schools);
        write("students.csv", files.students);
        write("priorities.csv", files.priorities);
        if let Some(r) = files.reserves {
            write("reserves.csv", r);
        }
        Case { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn allot(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_allot"))
            .args(args)
            .arg("--data")
            .arg(self.path("data"))
            .current_dir(self.dir.path())
            .env_remove("ALLOT_ACTOR")
            .output()
            .unwrap()
    }

    fn input_args(&self) -> Vec<&'static str> {
        let mut args = vec![
            "--schools",
            "schools.csv",
            "--students",
            "students.csv",
            "--priorities",
            "priorities.csv",
        ];
        if self.path("reserves.csv").exists() {
            args.extend(["--reserves", "reserves.csv"]);
        }
        args
    }

    fn run(&self, extra: &[&str]) -> Output {
        let mut args = vec!["school", "run"];
        args.extend(self.input_args());
        args.extend(["--out", "out"]);
        args.extend_from_slice(extra);
        self.allot(&args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.allot(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// Runs `allot school run` and checks that it fails with `expect`, writes no output folder and
/// logs nothing (no data folder).
#[track_caller]
fn check(files: Files<'_>, extra: &[&str], expect: &str) {
    let case = Case::new(&files);
    let out = case.run(extra);
    assert!(!out.status.success(), "succeeded, expected: {expect}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    assert_eq!(first.strip_prefix("error: ").unwrap_or(first), expect);
    assert!(!case.path("out").exists(), "an output folder was written");
    assert!(!case.path("data").exists(), "the data folder was created");
}

#[test]
fn bad_input_is_reported_with_file_line_and_field() {
    check(
        Files {
            schools: b"school,capacity\nA,1\nB,-2\n",
            ..base()
        },
        &[],
        "schools.csv:3: capacity: expected a capacity (0 or more), found '-2'",
    );
    check(
        Files {
            schools: b"school,capacity\nA,1\nA,2\n",
            ..base()
        },
        &[],
        "schools.csv:3: school: 'A' appears twice (first on line 2)",
    );
    check(
        Files {
            schools: b"school\nA\n",
            ..base()
        },
        &[],
        "schools.csv:1: capacity: missing column (the header has: school)",
    );
    check(
        Files {
            schools: b"",
            ..base()
        },
        &[],
        "schools.csv: is empty: expected a header row",
    );
    check(
        Files {
            students: b"student,lottery,choices\nx,3,A;C\n",
            ..base()
        },
        &[],
        "students.csv:2: choices: unknown school 'C' (not in schools.csv)",
    );
    check(
        Files {
            students: b"student,lottery,choices\nx,3,A\nx,4,B\n",
            ..base()
        },
        &[],
        "students.csv:3: student: 'x' appears twice (first on line 2)",
    );
    check(
        Files {
            students: b"student,lottery,choices\nx,3,A;B;A\n",
            ..base()
        },
        &[],
        "students.csv:2: choices: school 'A' is listed twice",
    );
    check(
        Files {
            students: b"student,lottery,choices\nx,3,A\ny,3,B\n",
            ..base()
        },
        &[],
        "students.csv:3: lottery: 3 is also the lottery number of 'x' (line 2); lottery numbers must be distinct",
    );
    check(
        Files {
            students: b"student,lottery,choices\nx,-3,A\n",
            ..base()
        },
        &[],
        "students.csv:2: lottery: expected a lottery number (0 to 1099511627775), found '-3'",
    );
    check(
        Files {
            students: b"student,lottery,choices\nx,3,\n",
            ..base()
        },
        &[],
        "students.csv:2: choices: empty, expected school ids separated by ';'",
    );
    check(
        Files {
            students: b"student,lottery,choices\nx,3,A\ny,4,\xffB\n",
            ..base()
        },
        &[],
        "students.csv:3: not UTF-8 (bad byte at column 5)",
    );
    check(
        Files {
            students: b"student,lottery,choices\n",
            ..base()
        },
        &[],
        "students.csv: has no rows: expected one row per student (student,lottery,choices)",
    );
    check(
        Files {
            priorities: b"school,student,priority\nA,w,0\n",
            ..base()
        },
        &[],
        "priorities.csv:2: student: unknown student 'w' (not in students.csv)",
    );
    check(
        Files {
            priorities: b"school,student,priority\nQ,x,0\n",
            ..base()
        },
        &[],
        "priorities.csv:2: school: unknown school 'Q' (not in schools.csv)",
    );
    check(
        Files {
            priorities: b"school,student,priority\nA,x,0\nB,x,1\nA,x,1\n",
            ..base()
        },
        &[],
        "priorities.csv:4: student: school 'A' already lists student 'x' (line 2)",
    );
    check(
        Files {
            priorities: b"school,student,priority\nA,x,high\n",
            ..base()
        },
        &[],
        "priorities.csv:2: priority: expected a priority class (0 highest, at most 8388607), found 'high'",
    );
    check(
        Files {
            priorities: b"school,student,priority\nA,,0\n",
            ..base()
        },
        &[],
        "priorities.csv:2: student: empty, expected an id",
    );
    check(
        Files {
            priorities: b"school,student\nA,x\n",
            ..base()
        },
        &[],
        "priorities.csv:1: priority: missing column (the header has: school,student)",
    );
    check(
        Files {
            reserves: Some(b"school,class,seats\nB,1,2\nB,0,1\n"),
            ..base()
        },
        &[],
        "reserves.csv:3: seats: school 'B' would reserve 3 seats, more than its capacity 2",
    );
    check(
        Files {
            reserves: Some(b"school,class,seats\nB,1,1\nB,1,1\n"),
            ..base()
        },
        &[],
        "reserves.csv:3: class: school 'B' already reserves seats for class 1 (line 2)",
    );
    check(
        Files {
            reserves: Some(b"school,class,seats\nC,1,1\n"),
            ..base()
        },
        &[],
        "reserves.csv:2: school: unknown school 'C' (not in schools.csv)",
    );
    check(
        Files {
            reserves: Some(b"school,class,seats\nB,1,1\n"),
            ..base()
        },
        &["--mechanism", "ttc"],
        "ttc does not support seat reserves (da, school-da and boston do): with reserves a \
         school has no single priority order to trade or waive with",
    );
    check(
        base(),
        &["--tie-breaking", "multiple"],
        "multiple tie-breaking draws one number per (student, school) from a beacon value; the \
         students' lottery column gives one per student: remove the column, or use single \
         tie-breaking",
    );
    check(
        Files {
            students: b"student,choices\nx,A\n",
            ..base()
        },
        &[],
        "the input has no lottery numbers (no `lottery` column), so they are drawn from a public \
         beacon value published after the window closed: give it with --beacon HEX",
    );
}

#[test]
fn run_writes_the_results_and_logs_every_assignment() {
    let case = Case::new(&base());
    let out = case.run(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // By hand: x has class 0 at A and takes it; y (class 1 at A) loses A; z gets B.
    assert_eq!(
        std::fs::read_to_string(case.path("out/assignment.csv")).unwrap(),
        "student,school,rank\nx,A,1\ny,,\nz,B,1\n"
    );
    assert_eq!(
        std::fs::read_to_string(case.path("out/cutoffs.csv")).unwrap(),
        "school,capacity,assigned,class,lottery\nA,1,1,0,3\nB,2,1,,\n"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(case.path("out/summary.json")).unwrap()).unwrap();
    for key in [
        "mechanism",
        "students",
        "assigned",
        "rank_counts",
        "unassigned",
        "blocking_pairs",
        "justified_envy",
        "solve_seconds",
        "outcome_digest",
    ] {
        assert!(summary.get(key).is_some(), "summary.json lacks {key}");
    }
    assert_eq!(summary["mechanism"], "da");
    assert_eq!(summary["assigned"], 2);
    assert_eq!(summary["unassigned"], 1);
    assert_eq!(summary["rank_counts"], serde_json::json!({"1": 2}));
    assert_eq!(summary["blocking_pairs"], 0);
    let run = summary["run_index"].to_string();
    assert!(case.ok(&["school", "verify", &run]).contains("verifies"));

    let text = case.ok(&["school", "explain", "y"]);
    assert_eq!(
        text.lines().skip(1).collect::<Vec<_>>(),
        [
            "You have no seat.",
            "- A (your choice 1): its 1 seat went to students ahead of you; the last admitted has \
             priority class 0 and lottery number 3: priority class 0 comes before priority class \
             1 (no priority listed), whatever the lottery. You have priority class 1 (no \
             priority listed) and lottery number 1 there.",
        ]
    );

    // By hand: x gives A back; A's waitlist is y (holding nothing) and not z (holding B, its
    // first choice), so y takes A and, having held nothing, ends the chain.
    let at = summary["run_index"].as_u64().unwrap();
    assert_eq!(
        case.ok(&["school", "withdraw", "x"])
            .lines()
            .collect::<Vec<_>>(),
        [
            format!("entry {}: x gave back its seat at A", at + 1),
            format!("entry {}: the seat at A left by x goes to y", at + 2),
        ]
    );
    let text = case.ok(&["school", "explain", "y"]);
    assert!(
        text.contains(
            "You have a seat at A (your choice 1), offered after the run when a seat there was \
             given back."
        ),
        "{text}"
    );
    assert!(
        case.ok(&["school", "explain", "x"])
            .contains("You gave your seat back.")
    );
    let out = case.allot(&["school", "withdraw", "x"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: 'x' has already given its seat back"
    );
    case.ok(&[
        "school",
        "results",
        "--out",
        &case.path("now").display().to_string(),
    ]);
    assert_eq!(
        std::fs::read_to_string(case.path("now/assignment.csv")).unwrap(),
        "student,school,rank\nx,,\ny,A,1\nz,B,1\n"
    );
    assert!(case.ok(&["school", "verify", &run]).contains("verifies"));

    // Boston: z ranks B first and keeps it; everyone else as before, the rounds explained.
    let boston = Case::new(&base());
    let out = boston.run(&["--mechanism", "boston"]);
    assert!(out.status.success());
    let text = boston.ok(&["school", "explain", "y"]);
    assert!(
        text.contains("- A (your choice 1): it filled in round 1, your round for it"),
        "{text}"
    );
}

#[test]
fn reserves_and_their_order_reach_the_results() {
    let files = Files {
        schools: b"school,capacity\nX,2\n",
        students: b"student,lottery,choices\nw,5,X\no,1,X\n",
        priorities: b"school,student,priority\nX,w,1\n",
        reserves: Some(b"school,class,seats\nX,1,1\n"),
    };
    let reserved_first = Case::new(&files);
    assert!(reserved_first.run(&[]).status.success());
    assert_eq!(
        std::fs::read_to_string(reserved_first.path("out/assignment.csv")).unwrap(),
        "student,school,rank\nw,X,1\no,X,1\n"
    );
    assert_eq!(
        std::fs::read_to_string(reserved_first.path("out/block_cutoffs.csv")).unwrap(),
        "school,block,eligible,seats,class,lottery\nX,1,class 1,1,1,5\nX,2,open,1,2,1\n"
    );
    let open_first = Case::new(&files);
    assert!(
        open_first
            .run(&["--reserve-order", "open-first"])
            .status
            .success()
    );
    assert_eq!(
        std::fs::read_to_string(open_first.path("out/assignment.csv")).unwrap(),
        "student,school,rank\nw,X,1\no,,\n"
    );
    let text = open_first.ok(&["school", "explain", "o"]);
    assert!(
        text.contains("its 1 seat reserved for class 1: you are not eligible"),
        "{text}"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(open_first.path("out/summary.json")).unwrap())
            .unwrap();
    let run = summary["run_index"].to_string();
    assert!(
        open_first
            .ok(&["school", "verify", &run])
            .contains("verifies")
    );
}

#[test]
fn compare_puts_mechanisms_side_by_side() {
    let case = Case::new(&base());
    let mut args = vec!["school", "compare"];
    args.extend(case.input_args());
    let text = case.ok(&args);
    let header: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(header, ["da", "school-da", "ttc", "boston", "eada"]);
    assert!(!case.path("data").exists(), "compare logs nothing");
    args.extend(["--draws", "10", "--json", "--mechanisms", "da,ttc"]);
    let json: serde_json::Value = serde_json::from_str(case.ok(&args).trim()).unwrap();
    assert_eq!(json["draws"], 10);
    assert_eq!(json["mechanisms"]["da"]["blocking pairs"]["max"], 0.0);
    assert!(
        json["mechanisms"]["ttc"]["assigned"]["mean"]
            .as_f64()
            .is_some()
    );
}
