//! `report.html`: one self-contained page (inline CSS, inline SVG charts, no external resources):
//! the setup, a table of every metric per variant with its 95% confidence interval, and charts —
//! baseline against variants with CI bars for every metric, utilisation by district, waiting
//! days, and the fair and school rank distributions.
//!
//! Every chart is a `<figure class="chart" data-chart="NAME">` holding one `<svg>`. A short
//! inline script checks after loading that every chart has drawn something and records the
//! count in `<body data-charts="N" data-rendered="ok">` (or logs a console error): the headless
//! browser test reads both.

use std::fmt::Write as _;

use crate::report::{Estimate, Report};

const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// Escapes text for HTML and SVG (element content and quoted attributes).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let a = x.abs();
    if a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// A finite upper bound for an axis (at least something above zero).
fn axis_max(values: impl Iterator<Item = f64>) -> f64 {
    let m = values.filter(|v| v.is_finite()).fold(0.0, f64::max);
    if m > 0.0 { m * 1.08 } else { 1.0 }
}

fn svg_open(w: f64, h: f64) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" role=\"img\">"
    )
}

fn figure(out: &mut String, name: &str, title: &str, svg: &str) {
    let _ = writeln!(
        out,
        "<figure class=\"chart\" data-chart=\"{}\"><figcaption>{}</figcaption>{svg}</figure>",
        esc(name),
        esc(title)
    );
}

/// Horizontal bars, one per variant, with the confidence interval as a whisker.
fn bars_ci(items: &[(String, Estimate)], unit: &str) -> String {
    let (label_w, plot_w, row_h) = (190.0, 360.0, 22.0);
    let h = 24.0 + row_h * items.len() as f64;
    let max = axis_max(items.iter().map(|(_, e)| e.ci95_high.max(e.mean)));
    let min = items
        .iter()
        .map(|(_, e)| e.ci95_low.min(e.mean))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::min);
    let span = max - min;
    let x = |v: f64| label_w + (v.clamp(min, max) - min) / span * plot_w;
    let mut s = svg_open(label_w + plot_w + 80.0, h);
    for (i, (name, e)) in items.iter().enumerate() {
        let y = 4.0 + row_h * i as f64;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"lbl\">{}</text>",
            label_w - 6.0,
            y + 14.0,
            esc(name)
        );
        let (x0, x1) = (x(0.0_f64.max(min)), x(e.mean));
        let _ = write!(
            s,
            "<rect class=\"bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {} {}</title></rect>",
            x0.min(x1),
            y + 3.0,
            (x1 - x0).abs().max(1.0),
            row_h - 8.0,
            colour(i),
            esc(name),
            fmt_num(e.mean),
            esc(unit)
        );
        let (lo, hi) = (x(e.ci95_low), x(e.ci95_high));
        let yc = y + row_h / 2.0 - 1.0;
        let _ = write!(
            s,
            "<path class=\"ci\" d=\"M{lo:.1} {yc:.1}H{hi:.1}M{lo:.1} {:.1}V{:.1}M{hi:.1} {:.1}V{:.1}\" stroke=\"#222\" fill=\"none\"/>",
            yc - 5.0,
            yc + 5.0,
            yc - 5.0,
            yc + 5.0
        );
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"val\">{}</text>",
            hi.max(x1) + 4.0,
            y + 14.0,
            fmt_num(e.mean)
        );
    }
    s.push_str("</svg>");
    s
}

/// Vertical grouped bars: one group per category, one bar per series, with CI whiskers.
fn grouped(categories: &[String], series: &[(String, Vec<Estimate>)], y_label: &str) -> String {
    let n = series.len().max(1) as f64;
    let group_w = (n * 9.0 + 8.0).max(24.0);
    let (left, top, plot_h) = (50.0, 10.0, 200.0);
    let w = left + group_w * categories.len() as f64 + 20.0;
    let legend_h = 18.0 * series.len() as f64;
    let h = top + plot_h + 40.0 + legend_h;
    let max = axis_max(
        series
            .iter()
            .flat_map(|(_, v)| v.iter().map(|e| e.ci95_high.max(e.mean))),
    );
    let y = |v: f64| top + plot_h - v.clamp(0.0, max) / max * plot_h;
    let mut s = svg_open(w, h);
    axes(&mut s, (left, top), (w - 10.0, top + plot_h), max, y_label);
    for (c, cat) in categories.iter().enumerate() {
        let gx = left + group_w * c as f64 + 4.0;
        for (k, (name, values)) in series.iter().enumerate() {
            let Some(e) = values.get(c) else { continue };
            let bx = gx + 9.0 * k as f64;
            let top_y = y(e.mean);
            let _ = write!(
                s,
                "<rect class=\"bar\" x=\"{bx:.1}\" y=\"{top_y:.1}\" width=\"7\" height=\"{:.1}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                (top + plot_h - top_y).max(0.5),
                colour(k),
                esc(name),
                esc(cat),
                fmt_num(e.mean)
            );
            let _ = write!(
                s,
                "<path class=\"ci\" d=\"M{cx:.1} {:.1}V{:.1}\" stroke=\"#222\" fill=\"none\"/>",
                y(e.ci95_high),
                y(e.ci95_low),
                cx = bx + 3.5
            );
        }
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"val\" text-anchor=\"middle\">{}</text>",
            gx + group_w / 2.0 - 4.0,
            top + plot_h + 14.0,
            esc(cat)
        );
    }
    legend(
        &mut s,
        series.iter().map(|(n, _)| n.as_str()),
        top + plot_h + 30.0,
    );
    s.push_str("</svg>");
    s
}

/// The y axis from 0 to `max` and the x axis of a plot from `(left, top)` to `(right, bottom)`.
fn axes(
    s: &mut String,
    (left, top): (f64, f64),
    (right, bottom): (f64, f64),
    max: f64,
    y_label: &str,
) {
    let _ = write!(
        s,
        "<path d=\"M{left} {top}V{bottom}H{right}\" stroke=\"#888\" fill=\"none\"/><text x=\"4\" y=\"{top}\" class=\"val\">{}</text><text x=\"4\" y=\"{bottom}\" class=\"val\">0</text><text x=\"{left}\" y=\"{top}\" class=\"lbl\" dx=\"6\" dy=\"10\">{}</text>",
        fmt_num(max),
        esc(y_label),
    );
}

fn legend<'a>(s: &mut String, names: impl Iterator<Item = &'a str>, y0: f64) {
    for (k, name) in names.enumerate() {
        let y = y0 + 18.0 * k as f64;
        let _ = write!(
            s,
            "<rect x=\"50\" y=\"{y:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"68\" y=\"{:.1}\" class=\"lbl\">{}</text>",
            colour(k),
            y + 10.0,
            esc(name)
        );
    }
}

/// One line (with dots) per series over many points, e.g. districts.
fn lines(points: usize, series: &[(String, Vec<f64>)], y_label: &str, x_label: &str) -> String {
    let (left, top, plot_w, plot_h) = (50.0, 10.0, 640.0, 200.0);
    let legend_h = 18.0 * series.len() as f64;
    let h = top + plot_h + 40.0 + legend_h;
    let w = left + plot_w + 20.0;
    let max = axis_max(series.iter().flat_map(|(_, v)| v.iter().copied()));
    let x = |i: usize| left + plot_w * (i as f64 + 0.5) / points.max(1) as f64;
    let y = |v: f64| top + plot_h - v.clamp(0.0, max) / max * plot_h;
    let mut s = svg_open(w, h);
    axes(
        &mut s,
        (left, top),
        (left + plot_w, top + plot_h),
        max,
        y_label,
    );
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" class=\"lbl\" text-anchor=\"middle\">{}</text>",
        left + plot_w / 2.0,
        top + plot_h + 16.0,
        esc(x_label)
    );
    for (k, (_, values)) in series.iter().enumerate() {
        let mut d = String::new();
        for (i, &v) in values.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1} {:.1}",
                if i == 0 { "M" } else { "L" },
                x(i),
                y(v)
            );
        }
        let _ = write!(
            s,
            "<path class=\"line\" d=\"{d}\" stroke=\"{}\" stroke-width=\"1.5\" fill=\"none\"/>",
            colour(k)
        );
        for (i, &v) in values.iter().enumerate() {
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"{}\"/>",
                x(i),
                y(v),
                colour(k)
            );
        }
    }
    legend(
        &mut s,
        series.iter().map(|(n, _)| n.as_str()),
        top + plot_h + 30.0,
    );
    s.push_str("</svg>");
    s
}

/// The rank distribution chart of fairs (`fairs == true`) or schools, if any variant has it.
fn ranks(out: &mut String, report: &Report, fairs: bool) {
    let details: Vec<(String, &crate::report::AllocationDetail)> = report
        .variants
        .iter()
        .filter_map(|v| {
            let d = if fairs {
                v.fairs.as_ref()
            } else {
                v.schools.as_ref()
            };
            d.map(|d| (v.name.clone(), d))
        })
        .collect();
    if details.is_empty() {
        return;
    }
    let longest = details
        .iter()
        .map(|(_, d)| d.rank_shares.len())
        .max()
        .unwrap_or(0);
    let mut categories: Vec<String> = (1..=longest).map(|r| r.to_string()).collect();
    categories.push("none".into());
    let series: Vec<(String, Vec<Estimate>)> = details
        .iter()
        .map(|(name, d)| {
            let zero = Estimate {
                mean: 0.0,
                ci95_low: 0.0,
                ci95_high: 0.0,
            };
            let mut v: Vec<Estimate> = (0..longest)
                .map(|r| d.rank_shares.get(r).copied().unwrap_or(zero))
                .collect();
            v.push(d.unplaced_share);
            (name.clone(), v)
        })
        .collect();
    let (name, title) = if fairs {
        (
            "fair-ranks",
            "Fairs: share of applicants placed at their r-th choice (and not placed)",
        )
    } else {
        (
            "school-ranks",
            "Schools: share of students assigned their r-th choice (and unassigned)",
        )
    };
    figure(out, name, title, &grouped(&categories, &series, "share"));
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}\
h1{font-size:22px}h2{font-size:18px;margin-top:32px}table{border-collapse:collapse;font-size:12px}\
.table{overflow-x:auto;max-width:100%}td,th{border:1px solid #ddd;padding:3px 6px;text-align:right;white-space:nowrap}th:first-child,td:first-child{text-align:left}\
figure.chart{display:inline-block;vertical-align:top;margin:8px 12px 16px 0}\
figcaption{font-weight:600;margin-bottom:4px}svg .lbl{font-size:11px}svg .val{font-size:10px;fill:#444}\
.ci-text{color:#666}";

const SCRIPT: &str = "(function(){var figs=document.querySelectorAll('figure.chart');var ok=figs.length>0;\
figs.forEach(function(f){var s=f.querySelector('svg');var b=s&&s.getBBox();\
if(!s||!b||b.width<=0||b.height<=0||s.querySelectorAll('rect,path,circle').length<2){ok=false;\
console.error('chart not drawn: '+f.getAttribute('data-chart'));}});\
document.body.setAttribute('data-charts',String(figs.length));\
document.body.setAttribute('data-rendered',ok?'ok':'failed');})();";

/// Renders the report.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n<p>Master seed {}, {} runs per variant; means with 95% confidence intervals.</p><ul>",
        esc(&report.scenario),
        esc(&report.scenario),
        report.seed,
        report.runs
    );
    for line in &report.setup {
        let _ = write!(out, "<li>{}</li>", esc(line));
    }
    out.push_str(
        "</ul>\n<h2>Metrics</h2><div class=\"table\"><table><tr><th>metric</th><th>unit</th>",
    );
    for v in &report.variants {
        let _ = write!(out, "<th>{}</th>", esc(&v.name));
    }
    out.push_str("</tr>\n");
    let names: Vec<(String, String)> = report
        .variants
        .first()
        .map(|b| {
            b.metrics
                .iter()
                .map(|m| (m.name.clone(), m.unit.clone()))
                .collect()
        })
        .unwrap_or_default();
    for (name, unit) in &names {
        let _ = write!(out, "<tr><td>{}</td><td>{}</td>", esc(name), esc(unit));
        for v in &report.variants {
            match v.metric(name) {
                Some(m) => {
                    let _ = write!(
                        out,
                        "<td>{} <span class=\"ci-text\">[{}, {}]</span></td>",
                        fmt_num(m.mean),
                        fmt_num(m.ci95_low),
                        fmt_num(m.ci95_high)
                    );
                }
                None => out.push_str("<td>–</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n");

    // Distributions.
    let with_appts: Vec<_> = report
        .variants
        .iter()
        .filter_map(|v| v.appointments.as_ref().map(|a| (v.name.clone(), a)))
        .collect();
    if !with_appts.is_empty() {
        out.push_str("<h2>Appointments</h2>\n");
        let districts: Vec<String> = with_appts[0]
            .1
            .districts
            .iter()
            .map(|d| d.district.clone())
            .collect();
        let series: Vec<(String, Vec<f64>)> = with_appts
            .iter()
            .map(|(n, a)| {
                (
                    n.clone(),
                    a.districts.iter().map(|d| d.utilisation.mean).collect(),
                )
            })
            .collect();
        figure(
            &mut out,
            "district-utilisation",
            &format!(
                "Utilisation by district ({} districts, {} to {}): booked share of available slots",
                districts.len(),
                districts.first().map_or("", |s| s.as_str()),
                districts.last().map_or("", |s| s.as_str())
            ),
            &lines(districts.len(), &series, "utilisation", "district"),
        );
        // Up to the day after the last one where any variant has a visible share (0.1% or more).
        let longest = with_appts
            .iter()
            .map(|(_, a)| a.waiting_days.len())
            .max()
            .unwrap_or(0);
        let days = with_appts
            .iter()
            .filter_map(|(_, a)| a.waiting_days.iter().rposition(|e| e.mean >= 0.001))
            .max()
            .map_or(1, |d| d + 2)
            .min(longest);
        let categories: Vec<String> = (0..days).map(|d| d.to_string()).collect();
        let series: Vec<(String, Vec<Estimate>)> = with_appts
            .iter()
            .map(|(n, a)| {
                (
                    n.clone(),
                    a.waiting_days[..days.min(a.waiting_days.len())].to_vec(),
                )
            })
            .collect();
        figure(
            &mut out,
            "waiting-days",
            "Waiting days: share of booked requests by days from request to visit",
            &grouped(&categories, &series, "share"),
        );
    }
    if report
        .variants
        .iter()
        .any(|v| v.fairs.is_some() || v.schools.is_some())
    {
        out.push_str("<h2>Rank distributions</h2>\n");
        ranks(&mut out, report, true);
        ranks(&mut out, report, false);
    }
    out.push_str("<h2>Baseline and variants</h2>\n");
    for (name, unit) in &names {
        let items: Vec<(String, Estimate)> = report
            .variants
            .iter()
            .filter_map(|v| v.metric(name).map(|m| (v.name.clone(), m.estimate())))
            .collect();
        figure(
            &mut out,
            &format!("metric-{name}"),
            &format!("{name} ({unit})"),
            &bars_ci(&items, unit),
        );
    }
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body></html>\n");
    out
}

/// The names of the charts [`render`] draws for `report`, in page order.
pub fn chart_names(report: &Report) -> Vec<String> {
    let mut names = Vec::new();
    if report.variants.iter().any(|v| v.appointments.is_some()) {
        names.push("district-utilisation".to_owned());
        names.push("waiting-days".to_owned());
    }
    if report.variants.iter().any(|v| v.fairs.is_some()) {
        names.push("fair-ranks".to_owned());
    }
    if report.variants.iter().any(|v| v.schools.is_some()) {
        names.push("school-ranks".to_owned());
    }
    if let Some(b) = report.variants.first() {
        names.extend(b.metrics.iter().map(|m| format!("metric-{}", m.name)));
    }
    names
}
