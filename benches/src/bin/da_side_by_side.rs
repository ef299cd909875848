//! Side by side: allot's student-proposing deferred acceptance against the C++ reference `da_ref`
//! on one school CSV folder (as written by `../shared/anchors/gen/school_gen.py`). Times the
//! solve only (median of `--runs`), checks the two assignments are identical, prints the ratio,
//! and with `--mechanisms` also times the other mechanisms on the same market.
//!
//! ```sh
//! cargo run --release -p allot-benches --bin da_side_by_side -- DIR --runs 7 --mechanisms
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use allot_benches::school_csv;
use allot_solvers::matching::{self, Outcome, SerialOrder};
use anyhow::{Context, Result, bail};
use clap::Parser;

/// Compare allot's DA with the C++ reference on a school CSV folder.
#[derive(Debug, Parser)]
struct Args {
    /// Folder with schools.csv, students.csv and priorities.csv.
    dir: PathBuf,
    /// Solves per side; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// The reference binary (default: ~/.cache/allot-anchors/da_ref).
    #[arg(long, env = "DA_REF")]
    da_ref: Option<PathBuf>,
    /// Also time the other mechanisms on the same market.
    #[arg(long)]
    mechanisms: bool,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Median solve seconds of `solve` over `runs` runs, and the last outcome.
fn time<'m>(runs: usize, mut solve: impl FnMut() -> Outcome<'m>) -> (f64, Outcome<'m>) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs.max(1) {
        let t0 = Instant::now();
        let outcome = solve();
        times.push(t0.elapsed().as_secs_f64());
        last = Some(outcome);
    }
    (median(times), last.expect("at least one run"))
}

fn summary(outcome: &Outcome<'_>) -> String {
    let m = outcome.matching();
    let n = m.market().num_students() as u32;
    let rank_sum: u64 = (0..n)
        .filter_map(|i| m.position_of(i))
        .map(|p| u64::from(p) + 1)
        .sum();
    format!("matched={} rank_sum={rank_sum}", m.num_matched())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let da_ref = match args.da_ref {
        Some(path) => path,
        None => PathBuf::from(std::env::var("HOME").context("HOME")?)
            .join(".cache/allot-anchors/da_ref"),
    };
    let t0 = Instant::now();
    let instance = school_csv::read(&args.dir)?;
    let market = &instance.market;
    println!(
        "instance {}: {} students, {} schools, {} choices; read in {:.2}s",
        args.dir.display(),
        market.num_students(),
        market.num_schools(),
        market.preferences().num_entries(),
        t0.elapsed().as_secs_f64()
    );

    let (ours, outcome) = time(args.runs, || matching::deferred_acceptance(market));
    let out = std::env::temp_dir().join(format!("da_side_by_side-{}.csv", std::process::id()));
    let mut theirs = Vec::new();
    for _ in 0..args.runs.max(1) {
        let run = Command::new(&da_ref)
            .arg(&args.dir)
            .arg(&out)
            .output()
            .with_context(|| format!("running {}", da_ref.display()))?;
        let stdout = String::from_utf8_lossy(&run.stdout);
        let seconds = stdout
            .split("seconds=")
            .nth(1)
            .and_then(|s| s.trim().parse::<f64>().ok())
            .with_context(|| format!("unexpected da_ref output: {stdout}"))?;
        theirs.push(seconds);
    }
    let theirs = median(theirs);
    let mut reference = HashMap::new();
    for row in csv::Reader::from_path(&out)?.records() {
        let row = row?;
        reference.insert(row[0].to_string(), row[1].to_string());
    }
    std::fs::remove_file(&out).ok();
    let mut differ = 0usize;
    for (i, name) in instance.students.iter().enumerate() {
        let ours = outcome
            .matching()
            .school_of(i as u32)
            .map(|s| instance.schools[s as usize].as_str());
        if reference.get(name).map(String::as_str) != Some(ours.unwrap_or("")) {
            differ += 1;
        }
    }
    println!("allot DA   {ours:.4}s  {}", summary(&outcome));
    println!("C++ da_ref {theirs:.4}s");
    println!(
        "DA: {differ} differing assignments; allot/da_ref solve time {:.2} (median of {})",
        ours / theirs,
        args.runs
    );

    if args.mechanisms {
        let order = SerialOrder::by_keys(&instance.lotteries)?;
        let runs = args.runs.clamp(1, 5);
        let mut rows = vec![("deferred acceptance".to_string(), ours, summary(&outcome))];
        for mechanism in matching::Mechanism::ALL.into_iter().skip(1) {
            let (t, o) = time(runs, || mechanism.run(market));
            rows.push((format!("{mechanism:?}"), t, summary(&o)));
        }
        let (t, o) = time(runs, || {
            matching::serial_dictatorship(market, &order).expect("order matches")
        });
        rows.push(("serial dictatorship (lottery order)".into(), t, summary(&o)));
        println!("| mechanism | solve s | x DA | outcome |");
        println!("| --- | --- | --- | --- |");
        for (name, t, s) in rows {
            println!("| {name} | {t:.4} | {:.1} | {s} |", t / ours);
        }
    }
    if differ > 0 {
        bail!("{differ} students differ from the reference");
    }
    Ok(())
}
