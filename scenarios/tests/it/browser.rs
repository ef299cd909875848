//! report.html in headless Chromium: it renders, every chart is drawn, no console error.
//!
//! Needs a `chromium` (or `chromium-browser`, `google-chrome`) binary. CI (`.ci/run`) installs it
//! and sets ALLOT_REQUIRE_CHROMIUM=1, which makes a missing browser a failure; elsewhere the test
//! says it is skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{run, scenario};

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in [
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// The browser, or `None` after saying the test is skipped; with ALLOT_REQUIRE_CHROMIUM=1 a
/// missing browser fails the test.
fn browser_or_skip() -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        if std::env::var("ALLOT_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1") {
            panic!("ALLOT_REQUIRE_CHROMIUM=1 but no chromium binary on PATH (or in $CHROMIUM)");
        }
        eprintln!("SKIPPED: no chromium on PATH; set ALLOT_REQUIRE_CHROMIUM=1 to make this fail");
    }
    found
}

/// Loads `html` from a file in headless Chromium; the DOM after the page's scripts ran, and
/// the browser's log (page console messages included).
fn render(browser: &Path, html: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, html).unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "chromium failed: {}\n{log}",
        out.status
    );
    (String::from_utf8_lossy(&out.stdout).into_owned(), log)
}

#[test]
fn report_html_renders_every_chart_without_console_errors() {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    let s = scenario(
        r#"
name = "browser <check> & \"quotes\""
seed = 3
[city]
generate = { seed = 2, scale = 0.02 }
[period]
days = 2
[[variant]]
name = "close <C0001>"
close_clinics = ["C0001"]
[[variant]]
name = "rsd"
fair_mechanism = "rsd"
"#,
    );
    let report = run(&s, 3, 2);
    let html = allot_scenarios::html::render(&report);
    let (dom, log) = render(&browser, &html);
    let charts = allot_scenarios::html::chart_names(&report);
    assert!(charts.len() > 20, "{charts:?}");
    // The page's script ran after layout: every chart drew something with a size.
    assert!(
        dom.contains(&format!("data-charts=\"{}\"", charts.len())),
        "chart count missing from the rendered DOM:\n{}",
        &dom[..dom.len().min(2000)]
    );
    assert!(dom.contains("data-rendered=\"ok\""), "{log}");
    for name in &charts {
        let tag = format!("data-chart=\"{name}\"");
        assert!(dom.contains(&tag), "chart {name} missing");
    }
    for must in [
        "district-utilisation",
        "waiting-days",
        "fair-ranks",
        "school-ranks",
    ] {
        assert!(charts.iter().any(|c| c == must), "{must}");
    }
    // Chromium logs page console messages as `CONSOLE(...)` / `Uncaught` lines on stderr.
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains(":ERROR:CONSOLE"))
        .collect();
    assert!(errors.is_empty(), "console messages: {errors:#?}");
}

#[test]
fn a_broken_chart_is_reported_by_the_page_itself() {
    // The check the browser test relies on can fail: a chart without marks logs a console error.
    let Some(browser) = browser_or_skip() else {
        return;
    };
    let s = scenario("seed = 1\n[city]\ncsv = \"fairs-city\"\n");
    let report = run(&s, 2, 1);
    let html = allot_scenarios::html::render(&report)
        .replacen("<rect class=\"bar\"", "<g class=\"bar\"", 1000)
        .replacen("<path class=\"ci\"", "<g class=\"ci\"", 1000)
        .replace("</rect>", "</g>");
    let (dom, log) = render(&browser, &html);
    assert!(dom.contains("data-rendered=\"failed\""), "{dom}");
    assert!(log.contains("chart not drawn"), "{log}");
}
