//! The `Fairs` and `Schools` answers as people read them: a run, its verification, the changes
//! a withdrawal made, and mechanisms compared side by side.

use std::fmt::Write as _;

use allot_engine::allocation::Comparison;
use allot_engine::log::Timestamp;
use serde_json::{Map, Value, json};

use crate::proto::v1 as pb;

/// `#INDEX (id PREFIX)`, as the engine labels runs.
pub fn run_label(run: &pb::RunRecord) -> String {
    let id = hex::encode(&run.run_id);
    format!("#{} (id {})", run.log_index, &id[..id.len().min(12)])
}

/// An instant of the API as the log prints it (UTC).
pub fn instant(t: Option<&prost_types::Timestamp>) -> String {
    let micros = t.map_or(0, |t| {
        u64::try_from(t.seconds).unwrap_or(0) * 1_000_000
            + u64::try_from(t.nanos / 1000).unwrap_or(0)
    });
    Timestamp::from_unix_micros(micros).to_string()
}

/// A run's figures in one line, e.g. `da: placed 3 of 4 applicants on 3 stalls (given
/// lottery), solve 0.0001 s`.
pub trait RunFigures {
    fn figures(&self, run: &pb::RunRecord) -> String;
}

/// Whether a run's lottery numbers were given or drawn.
fn lottery(run: &pb::RunRecord) -> &'static str {
    if run.seed.is_empty() {
        "given"
    } else {
        "drawn"
    }
}

impl RunFigures for pb::FairRunSummary {
    fn figures(&self, run: &pb::RunRecord) -> String {
        format!(
            "{}: placed {} of {} applicants on {} stalls ({} lottery), solve {:.4} s",
            run.mechanism,
            run.assigned,
            run.participants,
            run.places,
            lottery(run),
            self.solve_seconds
        )
    }
}

impl RunFigures for pb::SchoolRunSummary {
    fn figures(&self, run: &pb::RunRecord) -> String {
        let tie_breaking = run.parameters.get("tie_breaking");
        format!(
            "{}: assigned {} of {} students to {} seats ({} lottery, {} tie-breaking), solve {:.4} s",
            run.mechanism,
            run.assigned,
            run.participants,
            run.places,
            lottery(run),
            tie_breaking.map_or("single", String::as_str),
            self.solve_seconds
        )
    }
}

/// A run's verification: what was run, then one line per check.
pub fn verification(domain: &str, run: &pb::RunRecord, v: &pb::RunVerification) -> String {
    let mut out = format!(
        "run {}: {domain} {} run of {} participants, logged {} by {}\n",
        run_label(run),
        run.mechanism,
        run.participants,
        instant(run.time.as_ref()),
        run.actor
    );
    for check in &v.results {
        let mark = if check.ok { "ok  " } else { "FAIL" };
        let _ = writeln!(out, "{mark} {:<15} {}", check.name, check.detail);
    }
    out
}

/// The changes a withdrawal logged: the place given back, then each re-offer down the
/// waitlist.
/// An application's history, one step per line with its log entry.
pub fn application_status(status: &pb::ApplicationStatus) -> String {
    use pb::application_step::Kind;
    let mut out = format!("{} in window {}\n", status.key, status.window);
    for step in &status.steps {
        let run = || hex::encode(&step.run_id[..step.run_id.len().min(4)]);
        let what = match step.kind() {
            Kind::Received => "received".to_owned(),
            Kind::Amended => "amended".to_owned(),
            Kind::Withdrawn => "withdrawn".to_owned(),
            Kind::InClosedSet => "in the closed set (the window's commitment)".to_owned(),
            Kind::Placed => format!(
                "run {}: placed at {} (choice {})",
                run(),
                step.place,
                step.rank
            ),
            Kind::Waitlisted => format!("run {}: waitlisted", run()),
            Kind::Unplaced => format!("run {}: unplaced", run()),
            Kind::Offered => format!("run {}: offered {}", run(), step.place),
            Kind::GivenBack => format!("run {}: gave back {}", run(), step.place),
            Kind::Accepted => format!("run {}: accepted {}", run(), step.place),
            Kind::Unspecified => "unknown step".to_owned(),
        };
        out += &format!("  entry {:>8}  {what}\n", step.log_index);
    }
    out
}

/// A window's commitment.
pub fn closed(window: &str, closed: &pb::ApplicationSetCommitment) -> String {
    format!(
        "window {window}: {} applications, closed at entry {} (set digest {})\n",
        closed.applications,
        closed.log_index,
        hex::encode(&closed.set_digest)
    )
}

/// Where a run's decisions are (`closed_at`: the window's commitment, unless the run names it).
pub fn logged_run(run: &pb::RunRecord, closed_at: u64, outcomes: &str) -> String {
    let seed = run.seed_index.map(|i| format!(", seed drawn at entry {i}"));
    format!(
        "logged: window closed at entry {}{}, run at entry {} with its {} {outcomes}\nrun id {}\n",
        run.closed_index.unwrap_or(closed_at),
        seed.unwrap_or_default(),
        run.log_index,
        run.participants,
        hex::encode(&run.run_id)
    )
}

/// A place accepted.
pub fn accepted(participant: &str, run: &pb::RunRecord, a: &pb::AcceptPlaceResponse) -> String {
    let run = run_label(run);
    format!(
        "{participant} accepted {} in run {run} (entry {})\n",
        a.place, a.log_index
    )
}

/// Receipts, one line each: key, entry, leaf hash.
pub fn receipts(receipts: &[pb::ApplicationReceipt]) -> String {
    let mut out = String::new();
    for r in receipts {
        out += &format!(
            "{} at entry {} (leaf {})\n",
            r.key,
            r.log_index,
            hex::encode(&r.leaf_hash)
        );
    }
    out
}

/// A place given back and its re-offers, one line each; `what` names the place ("stall").
pub fn changes(changes: &[pb::PlaceChange], what: &str) -> String {
    let mut out = String::new();
    for c in changes {
        let _ = if c.from.is_empty() {
            writeln!(
                out,
                "entry {}: {} gave back its {what} at {}",
                c.log_index, c.participant, c.place
            )
        } else {
            writeln!(
                out,
                "entry {}: the {what} at {} left by {} goes to {}",
                c.log_index, c.place, c.from, c.participant
            )
        };
    }
    if changes.len() == 1 {
        let _ = writeln!(
            out,
            "nobody on the waitlist wanted the {what}: it stays free"
        );
    }
    out
}

/// A comparison as a table: one column per mechanism; with draws, each figure's mean and
/// 5th-95th percentiles.
pub fn comparison_text(c: &Comparison) -> String {
    let columns = c.distributions();
    let mut out = match c.draws {
        None => format!("{}, one allocation per mechanism\n", c.title),
        Some(n) => format!(
            "{}, {n} lottery draws per mechanism: mean [5th-95th percentile]\n",
            c.title
        ),
    };
    let width = 26;
    let cell = if c.draws.is_some() { 28 } else { 12 };
    let _ = write!(out, "{:width$}", "");
    for (name, _) in &columns {
        let _ = write!(out, "{name:>cell$}");
    }
    out.push('\n');
    for (f, label) in c.labels.iter().enumerate() {
        let _ = write!(out, "{label:width$}");
        for (_, figures) in &columns {
            let d = figures[f];
            let text = match (c.draws, label == "solve seconds") {
                (None, true) => format!("{:.4}", d.mean),
                (None, false) => format!("{}", d.mean),
                (Some(_), true) => format!("{:.4} [{:.4}-{:.4}]", d.mean, d.p5, d.p95),
                (Some(_), false) => format!("{:.1} [{}-{}]", d.mean, d.p5, d.p95),
            };
            let _ = write!(out, "{text:>cell$}");
        }
        out.push('\n');
    }
    out
}

/// A comparison as one JSON object: per mechanism, each figure (with draws, its distribution).
pub fn comparison_json(c: &Comparison) -> Value {
    let mechanisms: Map<String, Value> = (c.distributions().into_iter())
        .map(|(name, figures)| {
            let figures: Map<String, Value> = (c.labels.iter().zip(figures))
                .map(|(label, d)| {
                    let value = match c.draws {
                        None => json!(d.mean),
                        Some(_) => json!(d),
                    };
                    (label.trim().to_owned(), value)
                })
                .collect();
            (name.to_owned(), figures.into())
        })
        .collect();
    json!({ "title": c.title, "draws": c.draws, "mechanisms": mechanisms })
}
