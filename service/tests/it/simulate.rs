//! `allot simulate`: writes report.json and report.html into a new folder, all or nothing; bad
//! scenarios fail with file:line: field before anything runs.

use std::path::Path;
use std::process::Command;

fn simulate(scenario: &Path, out: &Path, extra: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_allot"))
        .arg("simulate")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .args(extra)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (o.status.success(), text(o.stdout), text(o.stderr))
}

const SCENARIO: &str = r#"
name = "cli"
seed = 4
[city]
generate = { seed = 1, scale = 0.01 }
[period]
days = 2
[[variant]]
name = "fewer seats"
school_capacity = [{ factor = 0.5 }]
"#;

#[test]
fn writes_both_reports_the_same_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, SCENARIO).unwrap();
    let mut json = Vec::new();
    for threads in ["1", "2"] {
        let out = dir.path().join(format!("out-{threads}"));
        let (ok, stdout, stderr) = simulate(&file, &out, &["--runs", "3", "--threads", threads]);
        assert!(ok, "{stderr}");
        assert!(stdout.contains("2 variants x 3 runs"), "{stdout}");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(report["variants"][1]["name"], "fewer seats");
        assert_eq!(report["runs"], 3);
        let html = std::fs::read_to_string(out.join("report.html")).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
        json.push(std::fs::read(out.join("report.json")).unwrap());
        // Nothing else left behind (no temporary folder).
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }
    assert_eq!(json[0], json[1]);
}

#[test]
fn bad_scenarios_and_outputs_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[city]\ngenerate = { seed = 1, scale = 0.01 }\n[[variant]]\nname = \"x\"\nclose_clinics = [\"C0404\"]\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let (ok, _, stderr) = simulate(&file, &out, &["--runs", "2"]);
    assert!(!ok);
    assert!(
        stderr.contains("bad.toml:5: variant[0].close_clinics: no clinic 'C0404'"),
        "{stderr}"
    );
    assert!(!out.exists());
    // An output folder that is not empty is refused before any run.
    std::fs::write(&file, SCENARIO).unwrap();
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "mine").unwrap();
    let (ok, _, stderr) = simulate(&file, &out, &["--runs", "2"]);
    assert!(!ok && stderr.contains("not empty"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(out.join("keep.txt")).unwrap(),
        "mine"
    );
    assert!(!out.join("report.json").exists());
    // A missing file names itself.
    let (ok, _, stderr) = simulate(&dir.path().join("nope.toml"), &dir.path().join("o2"), &[]);
    assert!(!ok && stderr.contains("nope.toml: cannot read"), "{stderr}");
}
