//! `allot fair ...` end to end: the bad-input table (exact error, nothing written, nothing
//! logged), a run with its files and log entries, verify, explain, withdraw, compare.

use std::path::PathBuf;
use std::process::{Command, Output};

use allot_engine::log::{Decision, Log};
use sha2::{Digest as _, Sha256};

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new(fairs: &[u8], applicants: &[u8]) -> Case {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fairs.csv"), fairs).unwrap();
        std::fs::write(dir.path().join("applicants.csv"), applicants).unwrap();
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

    fn run(&self, extra: &[&str]) -> Output {
        let mut args = vec![
            "fair",
            "run",
            "--fairs",
            "fairs.csv",
            "--applicants",
            "applicants.csv",
            "--out",
            "out",
        ];
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

    /// The kinds of the decisions after the applications received (which come first).
    fn log_kinds(&self) -> Vec<&'static str> {
        let received = self.received() as usize;
        let log = Log::open_read_only(self.path("data")).unwrap();
        let kinds = log.entries(0..log.size()).unwrap();
        let kinds = kinds.map(|e| e.unwrap().decode().unwrap().record.decision.name());
        kinds.skip(received).collect()
    }

    /// How many items (pools and applications) the log received, each its own decision, and
    /// checks they are the files' rows.
    fn received(&self) -> u64 {
        let log = Log::open_read_only(self.path("data")).unwrap();
        let kinds = log.entries(0..log.size()).unwrap();
        let kinds = kinds.map(|e| e.unwrap().decode().unwrap().record.decision.name());
        let received = kinds.take_while(|k| *k == "ApplicationSubmitted").count() as u64;
        let rows = |name| {
            std::fs::read_to_string(self.path(name))
                .unwrap()
                .lines()
                .count()
                - 1
        };
        assert_eq!(
            received,
            (rows("fairs.csv") + rows("applicants.csv")) as u64
        );
        received
    }

    /// Entry `n` after the applications received, as a command-line argument.
    fn after(&self, n: u64) -> String {
        (self.received() + n).to_string()
    }
}

/// Runs `allot fair run` on the two files (with `extra` arguments) and checks that it fails
/// with `expect` as its message, writes no output folder and logs nothing (no data folder).
#[track_caller]
fn check(fairs: &str, applicants: &[u8], extra: &[&str], expect: &str) {
    let case = Case::new(fairs.as_bytes(), applicants);
    let out = case.run(extra);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded, expected: {expect}");
    let first = stderr.lines().next().unwrap_or_default();
    assert_eq!(first.strip_prefix("error: ").unwrap_or(first), expect);
    assert!(!case.path("out").exists(), "an output folder was written");
    assert!(!case.path("data").exists(), "the data folder was created");
    let leftovers: Vec<_> = std::fs::read_dir(case.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "fairs.csv" && n != "applicants.csv")
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

const FAIRS: &str = "fair,district,category,stalls\nF1,D1,dairy,2\nF1,D1,*,1\nF2,D2,honey,1\n";
const HEAD: &str = "applicant,category,tier,lottery,choices\n";

fn apps(rows: &str) -> Vec<u8> {
    format!("{HEAD}{rows}").into_bytes()
}

#[test]
fn bad_input_is_reported_with_file_line_and_field() {
    let a = &apps("a1,dairy,0,1,F1;F2\n");
    // fairs.csv
    check(
        "fair,district,category,stalls\nF1,D1,dairy,-3\n",
        a,
        &[],
        "fairs.csv:2: stalls: expected a number of stalls (0 or more), found '-3'",
    );
    check(
        "fair,district,category,stalls\nF1,D1,dairy,two\n",
        a,
        &[],
        "fairs.csv:2: stalls: expected a number of stalls (0 or more), found 'two'",
    );
    check(
        "fair,district,category\nF1,D1,dairy\n",
        a,
        &[],
        "fairs.csv:1: stalls: missing column (the header has: fair,district,category)",
    );
    check("", a, &[], "fairs.csv: is empty: expected a header row");
    check(
        "fair,district,category,stalls\n",
        a,
        &[],
        "fairs.csv: has no rows: expected one row per stall pool (fair,district,category,stalls)",
    );
    check(
        "fair,district,category,stalls\nF1,D1,dairy,2\nF1,D9,*,1\n",
        a,
        &[],
        "fairs.csv:3: district: fair 'F1' is in district 'D1' on line 2, not 'D9'",
    );
    check(
        "fair,district,category,stalls\nF1,D1,dairy,2\nF1,D1,*,1\nF1,D1,dairy,4\n",
        a,
        &[],
        "fairs.csv:4: category: fair 'F1' already has a 'dairy' row (line 2)",
    );
    check(
        "fair,district,category,stalls\nF1,,dairy,2\n",
        a,
        &[],
        "fairs.csv:2: district: empty, expected an id",
    );
    check(
        "fair,district,category,stalls\nF1,D1,dairy,2,9\n",
        a,
        &[],
        "fairs.csv:2: has 5 fields, the header has 4",
    );
    // applicants.csv
    check(
        FAIRS,
        &apps("a1,dairy,0,1,F1;F9\n"),
        &[],
        "applicants.csv:2: choices: unknown fair 'F9' (not in fairs.csv)",
    );
    check(
        FAIRS,
        &apps("a1,dairy,0,1,F1\na2,dairy,1,2,F2\na1,honey,2,3,F2\n"),
        &[],
        "applicants.csv:4: applicant: 'a1' appears twice (first on line 2)",
    );
    check(
        FAIRS,
        &apps("a1,dairy,0,1,F1;F2;F1\n"),
        &[],
        "applicants.csv:2: choices: fair 'F1' is listed twice",
    );
    check(
        FAIRS,
        &apps("a1,dairy,3,1,F1\n"),
        &[],
        "applicants.csv:2: tier: expected a tier (0 local farmer, 1 regional producer, 2 other), found '3'",
    );
    check(
        FAIRS,
        &apps("a1,dairy,-1,1,F1\n"),
        &[],
        "applicants.csv:2: tier: expected a tier (0 local farmer, 1 regional producer, 2 other), found '-1'",
    );
    check(
        FAIRS,
        b"applicant,category,tier,lottery\na1,dairy,0,1\n",
        &[],
        "applicants.csv:1: choices: missing column (the header has: applicant,category,tier,lottery)",
    );
    check(
        FAIRS,
        b"applicant,category,tier,lottery,choices\na1,dairy,0,1,F1\na2,d\xe9,0,2,F1\n",
        &[],
        "applicants.csv:3: not UTF-8 (bad byte at column 5)",
    );
    check(
        FAIRS,
        b"",
        &[],
        "applicants.csv: is empty: expected a header row",
    );
    check(
        FAIRS,
        HEAD.as_bytes(),
        &[],
        "applicants.csv: has no rows: expected one row per application",
    );
    check(
        FAIRS,
        &apps("a1,*,0,1,F1\n"),
        &[],
        "applicants.csv:2: category: '*' is not a category of goods (it marks open stalls in fairs.csv)",
    );
    check(
        FAIRS,
        &apps("a1,dairy,0,7,F1\na2,honey,1,7,F2\n"),
        &[],
        "applicants.csv:3: lottery: 7 is also the lottery number of 'a1' (line 2); lottery numbers must be distinct",
    );
    check(
        FAIRS,
        &apps("a1,dairy,0,1099511627776,F1\n"),
        &[],
        "applicants.csv:2: lottery: expected a lottery number (0 to 1099511627775), found '1099511627776'",
    );
    check(
        FAIRS,
        &apps("a1,dairy,0,,F1\n"),
        &[],
        "applicants.csv:2: lottery: empty, expected a lottery number (0 to 1099511627775)",
    );
    check(
        FAIRS,
        &apps("a1,dairy,0,1,\n"),
        &[],
        "applicants.csv:2: choices: empty, expected fair ids separated by ';'",
    );
    check(
        FAIRS,
        &apps("a1,dairy,0,1,F1;;F2\n"),
        &[],
        "applicants.csv:2: choices: choice 2: empty, expected an id",
    );
    // The lottery's source.
    check(
        FAIRS,
        b"applicant,category,tier,choices\na1,dairy,0,F1\n",
        &[],
        "the input has no lottery numbers (no `lottery` column), so they are drawn from a public \
         beacon value published after the window closed: give it with --beacon HEX",
    );
    check(
        FAIRS,
        &apps("a1,dairy,0,1,F1\n"),
        &["--beacon", "00ff"],
        "the input has its own lottery numbers (a `lottery` column): a beacon is only used when \
         they are drawn; remove the column or the --beacon option",
    );
    check(
        FAIRS,
        b"applicant,category,tier,choices\na1,dairy,0,F1\n",
        &["--beacon", "xyz"],
        "--beacon: expected an even number of hex digits, found 'xyz'",
    );
}

#[test]
fn a_missing_file_is_named() {
    let case = Case::new(FAIRS.as_bytes(), b"");
    std::fs::remove_file(case.path("applicants.csv")).unwrap();
    let out = case.run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: applicants.csv: cannot read: No such file"),
        "{stderr}"
    );
    assert!(!case.path("data").exists() && !case.path("out").exists());
}

const SMALL_FAIRS: &str =
    "fair,district,category,stalls\nF1,D1,dairy,1\nF1,D1,*,1\nF2,D2,dairy,1\n";
const SMALL_APPS: &str = "applicant,category,tier,lottery,choices\n\
                          y,dairy,1,0,F1;F2\nx,dairy,0,5,F1;F2\nw,honey,2,1,F1\nv,dairy,2,2,F2;F1\n";

#[test]
fn run_writes_the_results_and_logs_every_outcome() {
    let case = Case::new(SMALL_FAIRS.as_bytes(), SMALL_APPS.as_bytes());
    let out = case.run(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "no progress display without a terminal"
    );
    let printed = String::from_utf8(out.stdout.clone()).unwrap();
    let window = printed
        .split_whitespace()
        .skip_while(|w| *w != "window")
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    // By hand: x (tier 0) takes F1's dairy stall, y (tier 1) F1's open stall, v (tier 2) F2's
    // dairy stall; w (honey, tier 2) finds F1's open stall taken by y.
    let assignment = std::fs::read_to_string(case.path("out/assignment.csv")).unwrap();
    assert_eq!(
        assignment,
        "applicant,fair,category,rank\ny,F1,*,1\nx,F1,dairy,1\nw,,,\nv,F2,dairy,1\n"
    );
    let cutoffs = std::fs::read_to_string(case.path("out/cutoffs.csv")).unwrap();
    assert_eq!(
        cutoffs,
        "fair,district,category,stalls,placed,tier,lottery\n\
         F1,D1,dairy,1,1,0,5\nF1,D1,*,1,1,1,0\nF2,D2,dairy,1,1,2,2\n"
    );
    let waitlist = std::fs::read_to_string(case.path("out/waitlist.csv")).unwrap();
    assert_eq!(
        waitlist,
        "fair,category,position,applicant,tier,lottery\nF1,dairy,1,y,1,0\nF1,*,1,w,2,1\n"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(case.path("out/summary.json")).unwrap()).unwrap();
    for key in [
        "mechanism",
        "applicants",
        "placed",
        "placed_per_tier",
        "rank_counts",
        "fill_rate",
        "seed",
        "solve_seconds",
        "outcome_digest",
        "run_index",
        "run_id",
    ] {
        assert!(summary.get(key).is_some(), "summary.json lacks {key}");
    }
    assert_eq!(summary["mechanism"], "da");
    assert_eq!(summary["placed"], 3);
    assert_eq!(summary["placed_per_tier"], serde_json::json!([1, 1, 1]));
    assert_eq!(summary["rank_counts"], serde_json::json!({"1": 3}));
    assert_eq!(summary["fill_rate"], 1.0);
    assert_eq!(summary["run_index"], case.received() + 5);
    assert_eq!(
        case.log_kinds(),
        [
            "ApplicationsClosed",
            "Outcome",
            "Outcome",
            "Outcome",
            "Outcome",
            "AllocationRun"
        ]
    );
    let run_id = summary["run_id"].as_str().unwrap().to_owned();

    // Verify by index and by id prefix.
    let verified = case.ok(&["fair", "verify", &case.after(5)]);
    assert!(verified.contains("verifies"), "{verified}");
    assert_eq!(verified.lines().filter(|l| l.starts_with("ok ")).count(), 6);
    case.ok(&["fair", "verify", &run_id[..10]]);
    let out = case.allot(&["fair", "verify", "3"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no fair run is entry 3;"), "{stderr}");

    // Results are never overwritten, and a refused run logs nothing.
    let again = case.run(&[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists and is not empty"));
    assert_eq!(case.log_kinds().len(), 6);

    // Explain: w's only fair is full of applicants ahead of it.
    let text = case.ok(&["fair", "explain", "w"]);
    assert_eq!(
        text.lines().skip(1).collect::<Vec<_>>(),
        [
            "You have no stall.",
            "- F1 (your choice 1):",
            "    its open stalls (1, any category) went to applicants ahead of you; the last one \
             admitted is an applicant of tier 1 (regional producer) with lottery number 0: tier 1 \
             (regional producer) comes before tier 2 (other), whatever the lottery.",
        ]
    );
    let text = case.ok(&["fair", "explain", "x"]);
    assert!(text.contains("That is your first choice"), "{text}");

    // Withdraw: x gives back F1's dairy stall; y (first on its waitlist) moves up to it from
    // F1's open stall, which goes to w (first on that waitlist, holding nothing): the chain ends.
    let text = case.ok(&["fair", "withdraw", "x"]);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            format!("entry {}: x gave back its stall at F1", case.after(6)),
            format!(
                "entry {}: the stall at F1 left by x goes to y",
                case.after(7)
            ),
            format!(
                "entry {}: the stall at F1 left by y goes to w",
                case.after(8)
            ),
        ]
    );
    let text = case.ok(&["fair", "explain", "w"]);
    assert!(
        text.contains("You have a stall at F1 (your choice 1), in its open pool."),
        "{text}"
    );
    let text = case.ok(&["fair", "explain", "x"]);
    assert!(text.contains("You gave your stall back."), "{text}");
    let out = case.allot(&["fair", "withdraw", "x"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: 'x' has already given its stall back"
    );
    assert!(
        case.ok(&["fair", "verify", &case.after(5)])
            .contains("verifies")
    );

    // y accepts the stall it moved up to; x, who gave its stall back, has none to accept; y's
    // history, step by step with the entries above.

    let text = case.ok(&["fair", "accept", "y"]);
    assert!(text.starts_with("y accepted F1 in run "), "{text}");
    let again = case.ok(&["fair", "accept", "y"]);
    assert_eq!(again, text, "accepting again answers the first acceptance");
    let refused = case.allot(&["fair", "accept", "x"]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("'x' holds no place in run"), "{message}");
    let text = case.ok(&["fair", "status", "y", "--window", &window]);
    let steps: Vec<String> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().skip(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        text.lines().next().unwrap(),
        format!("applicant:y in window {window}")
    );
    assert_eq!(steps[0], "received");
    assert_eq!(steps[1], "in the closed set (the window's commitment)");
    assert!(steps[2].ends_with("placed at F1 (choice 1)"), "{text}");
    assert!(steps[3].ends_with("offered F1"), "{text}");
    assert!(steps[4].ends_with("accepted F1"), "{text}");
    assert!(
        text.contains(&format!("entry {:>8}", case.after(7))),
        "{text}"
    );
}

#[test]
fn a_drawn_lottery_commits_before_the_seed() {
    let apps = "applicant,category,tier,choices\ny,dairy,1,F1;F2\nx,dairy,0,F1\nw,honey,2,F1\n";
    let case = Case::new(SMALL_FAIRS.as_bytes(), apps.as_bytes());
    // A beacon value has 16 to 512 bytes (the API's rule, which the data folder follows too).
    let out = case.run(&[
        "--beacon",
        "c0ffee00112233445566778899aabbcc",
        "--beacon-source",
        "drand",
        "--beacon-round",
        "9",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(case.path("out/summary.json")).unwrap()).unwrap();
    let input = hex::decode(summary["input_digest"].as_str().unwrap()).unwrap();
    let mut h = Sha256::new();
    h.update(&input);
    h.update(hex::decode("c0ffee00112233445566778899aabbcc").unwrap());
    assert_eq!(summary["seed"], hex::encode(h.finalize()));
    assert_eq!(summary["lottery"], "drawn");
    assert_eq!(case.log_kinds()[..2], ["ApplicationsClosed", "SeedDrawn"]);
    let log = Log::open_read_only(case.path("data")).unwrap();
    let Decision::SeedDrawn(seed) = log.entry(case.received() + 1).unwrap().record.decision else {
        panic!("entry 1 is not the seed")
    };
    assert_eq!(
        (seed.beacon_source.as_str(), seed.beacon_round),
        ("drand", 9)
    );
    assert!(
        case.ok(&["fair", "verify", &case.after(5)])
            .contains("verifies")
    );
}

#[test]
fn welfare_explains_what_another_stall_would_cost() {
    // Both tier 0; x (better lottery) listed F1 then F2, y only F1: welfare places both, x at F2.
    let fairs = "fair,district,category,stalls\nF1,D,a,1\nF2,D,a,1\n";
    let apps = "applicant,category,tier,lottery,choices\nx,a,0,0,F1;F2\ny,a,0,1,F1\n";
    let case = Case::new(fairs.as_bytes(), apps.as_bytes());
    let out = case.run(&["--mechanism", "welfare"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = case.ok(&["fair", "explain", "x"]);
    assert!(
        text.contains(
            "- F1 (your choice 1): giving you a stall there would leave 1 fewer applicant of tier \
             0 (local farmer) with a stall"
        ),
        "{text}"
    );
}

#[test]
fn compare_puts_mechanisms_side_by_side() {
    let case = Case::new(SMALL_FAIRS.as_bytes(), SMALL_APPS.as_bytes());
    let text = case.ok(&[
        "fair",
        "compare",
        "--fairs",
        "fairs.csv",
        "--applicants",
        "applicants.csv",
    ]);
    let header = text.lines().nth(1).unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["da", "welfare", "rsd"]
    );
    let placed: Vec<&str> = text.lines().nth(2).unwrap().split_whitespace().collect();
    assert_eq!(placed, ["placed", "3", "3", "3"]);
    assert!(!case.path("data").exists(), "compare logs nothing");

    let json = case.ok(&[
        "fair",
        "compare",
        "--fairs",
        "fairs.csv",
        "--applicants",
        "applicants.csv",
        "--draws",
        "20",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["draws"], 20);
    let da = &v["mechanisms"]["da"];
    assert_eq!(da["placed"]["min"], 3.0);
    assert_eq!(da["tier 0 (local farmer)"]["mean"], 1.0);
}
