//! Side by side: allot's student-proposing deferred acceptance against the C++ reference `da_ref`
//! on one school CSV folder (as written by `../shared/anchors/gen/school_gen.py`). Times the
//! solve only (median of `--runs`), checks the two assignments are identical, prints the ratio,
//! with `--mechanisms` also times the other mechanisms on the same market (and checks that
//! efficiency-adjusted DA by improvement cycles equals Tang and Yu's rounds), and with `--reserves`
//! times deferred acceptance with walk-zone reserves (see `school_gen::walk_zone_reserves`)
//! against plain deferred acceptance.
//!
//! ```sh
//! cargo run --release -p allot-benches --bin da_side_by_side -- DIR --runs 7 --mechanisms --reserves
//! ```

use std::collections::HashMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use allot_benches::school_csv;
use allot_scenarios::school_gen::{WALK_ZONE_CLASS, walk_zone_reserves};
use allot_solvers::matching::{self, Outcome, ReservedOutcome, Reserves, SerialOrder};
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
    /// Also time the mechanisms with walk-zone reserves (every fifth school reserves half its
    /// seats for priority class 1), reserved seats first and last, against plain DA.
    #[arg(long)]
    reserves: bool,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Median solve seconds of `solve` over `runs` runs, and the last outcome.
fn time<T>(runs: usize, mut solve: impl FnMut() -> T) -> (f64, T) {
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
        // Efficiency-adjusted DA by improvement cycles (the mechanism above) against Tang and
        // Yu's rounds of DA, its oracle: the same outcome, seat for seat.
        let (fast_t, fast) = time(runs, || {
            matching::efficiency_adjusted_deferred_acceptance(market)
        });
        let (rounds_t, rounds) = time(1, || {
            matching::efficiency_adjusted_deferred_acceptance_by_rounds(market)
        });
        let same = fast.matching().assignment() == rounds.matching().assignment()
            && fast.cutoffs() == rounds.cutoffs();
        println!(
            "EADA: improvement cycles {fast_t:.4}s ({:.2} x DA), Tang-Yu rounds {rounds_t:.4}s \
             ({:.1} x DA); outcomes {}",
            fast_t / ours,
            rounds_t / ours,
            if same { "identical" } else { "DIFFER" }
        );
        if !same {
            bail!("efficiency-adjusted DA by cycles differs from Tang and Yu's rounds");
        }
    }
    if args.reserves {
        reserves(market, args.runs)?;
    }
    if differ > 0 {
        bail!("{differ} students differ from the reference");
    }
    Ok(())
}

/// Outcome summary with reserves: also the students placed at a reserving school who are in its
/// walk zone, and the blocking pairs and rejected holds with respect to the reserves.
fn reserved_summary(outcome: &ReservedOutcome<'_>) -> Result<String> {
    let (m, reserves) = (outcome.matching(), outcome.reserves());
    let walk = (0..m.market().num_students() as u32)
        .filter(|&i| {
            m.school_of(i)
                .is_some_and(|s| s % 5 == 0 && reserves.class(i, s) == Some(WALK_ZONE_CLASS))
        })
        .count();
    Ok(format!(
        "{} walk_zone_at_reserving={walk} blocking={} rejected_holds={}",
        summary(outcome.outcome()),
        reserves.blocking_pairs(m)?.len(),
        reserves.rejected_holds(m)?.len()
    ))
}

/// Times the mechanisms with walk-zone reserves against the same mechanisms without them, in
/// the same run: round robin over the variants, `runs` times, median per variant (so background
/// load drifts over all of them alike).
fn reserves(market: &matching::Market, runs: usize) -> Result<()> {
    let walk_first = walk_zone_reserves(market, true);
    let walk_last = walk_zone_reserves(market, false);
    let no_reserved_block = Reserves::with_key_classes(market, [])?;
    type Solve<'a> = Box<dyn Fn() + 'a>;
    let plain_variants: [(&str, Solve<'_>); 3] = [
        (
            "student-proposing DA",
            Box::new(|| drop(black_box(matching::deferred_acceptance(market)))),
        ),
        (
            "school-proposing DA",
            Box::new(|| {
                drop(black_box(matching::school_proposing_deferred_acceptance(
                    market,
                )))
            }),
        ),
        (
            "immediate acceptance",
            Box::new(|| drop(black_box(matching::immediate_acceptance(market)))),
        ),
    ];
    let precedences = [
        ("no reserved block", &no_reserved_block),
        ("walk zone first", &walk_first),
        ("walk zone last", &walk_last),
    ];
    let mut variants: Vec<(usize, &str, Solve<'_>)> = Vec::new();
    for (name, r) in precedences {
        variants.push((
            0,
            name,
            Box::new(move || drop(black_box(matching::deferred_acceptance_with_reserves(r)))),
        ));
        variants.push((
            1,
            name,
            Box::new(move || {
                drop(black_box(
                    matching::school_proposing_deferred_acceptance_with_reserves(r),
                ))
            }),
        ));
        variants.push((
            2,
            name,
            Box::new(move || drop(black_box(matching::immediate_acceptance_with_reserves(r)))),
        ));
    }
    let mut plain_times = vec![Vec::new(); plain_variants.len()];
    let mut times = vec![Vec::new(); variants.len()];
    for _ in 0..runs.max(1) {
        for (k, (_, solve)) in plain_variants.iter().enumerate() {
            let t0 = Instant::now();
            solve();
            plain_times[k].push(t0.elapsed().as_secs_f64());
        }
        for (k, (_, _, solve)) in variants.iter().enumerate() {
            let t0 = Instant::now();
            solve();
            times[k].push(t0.elapsed().as_secs_f64());
        }
    }
    let plain: Vec<f64> = plain_times.into_iter().map(median).collect();
    let plain_da = matching::deferred_acceptance(market);
    println!(
        "| mechanism | reserves | solve s | x plain DA | x same mechanism without reserves | outcome |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (k, (name, _)) in plain_variants.iter().enumerate() {
        let outcome = match k {
            0 => summary(&plain_da),
            1 => summary(&matching::school_proposing_deferred_acceptance(market)),
            _ => summary(&matching::immediate_acceptance(market).outcome),
        };
        println!(
            "| {name} | none | {:.4} | {:.2} | 1.00 | {outcome} |",
            plain[k],
            plain[k] / plain[0]
        );
    }
    for ((mechanism, name, _), t) in variants.iter().zip(times) {
        let t = median(t);
        let r = precedences.iter().find(|p| p.0 == *name).expect("listed").1;
        let outcome = match mechanism {
            0 => {
                let o = matching::deferred_acceptance_with_reserves(r);
                let same = o.outcome() == &plain_da;
                format!("{} same_as_plain={same}", reserved_summary(&o)?)
            }
            1 => {
                reserved_summary(&matching::school_proposing_deferred_acceptance_with_reserves(r))?
            }
            _ => reserved_summary(&matching::immediate_acceptance_with_reserves(r).outcome)?,
        };
        println!(
            "| {} | {name} | {t:.4} | {:.2} | {:.2} | {outcome} |",
            plain_variants[*mechanism].0,
            t / plain[0],
            t / plain[*mechanism]
        );
    }
    println!(
        "plain DA judged with walk zone first: blocking={} rejected_holds={}",
        walk_first.blocking_pairs(plain_da.matching())?.len(),
        walk_first.rejected_holds(plain_da.matching())?.len()
    );
    Ok(())
}
