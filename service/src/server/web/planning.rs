//! The planners' pages: a simulation started from one of the examples or an uploaded scenario
//! file (the `Scenarios.Simulate` stream, with the session's token), a progress bar while it
//! runs (the page refreshes itself: no script), the report with its charts, and two reports'
//! figures side by side. The server keeps the last [`KEPT`] simulations in memory.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Multipart, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::i18n::text;
use super::pages::{LangQuery, checked, esc, language, page, problem, sentence, signed_in};
use super::{Session, Web};
use crate::proto::v1 as pb;
use crate::proto::v1::scenarios_client::ScenariosClient;

/// Simulations kept for their reports.
const KEPT: usize = 20;
/// The largest scenario file (the API's own limit).
pub(super) const MAX_SCENARIO: usize = 1 << 20;

/// The examples shipped with allot (`scenarios/examples/`) that generate their city (the
/// others read CSV folders beside them, which a server does not have), by name.
const EXAMPLES: [(&str, &str); 2] = [
    (
        "small-city",
        include_str!("../../../../scenarios/examples/small-city.toml"),
    ),
    (
        "moscow-week",
        include_str!("../../../../scenarios/examples/moscow-week.toml"),
    ),
];

/// A simulation started from the console.
#[derive(Debug, Clone, Default)]
pub struct Simulation {
    id: u64,
    /// Who started it (only they see it).
    owner: String,
    /// The example's or the file's name.
    name: String,
    runs: u32,
    progress: Option<pb::SimulationProgress>,
    result: Option<Result<pb::SimulationResult, String>>,
}

/// The simulations of every session, newest last.
#[derive(Debug, Default)]
pub struct Simulations {
    next: u64,
    list: Vec<Simulation>,
}

fn lock(s: &Mutex<Simulations>) -> std::sync::MutexGuard<'_, Simulations> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct PlanQuery {
    lang: Option<String>,
    id: Option<u64>,
    a: Option<u64>,
    b: Option<u64>,
}

/// The session's simulation `id`, if it started it.
fn find(web: &Web, session: &Session, id: Option<u64>) -> Option<Simulation> {
    let all = lock(&web.simulations);
    all.list
        .iter()
        .find(|s| Some(s.id) == id && s.owner == session.caller.name)
        .cloned()
}

/// `GET /planning`: start a simulation; the earlier ones.
pub(super) async fn planning(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<PlanQuery>,
) -> Response {
    let path = "/planning";
    let (lang, session) = match signed_in(&web, &headers, query.lang.clone(), path) {
        Ok(signed) => signed,
        Err(page) => return *page,
    };
    let t = |k| text(lang.0, k);
    if !session
        .caller
        .roles
        .contains(super::super::access::Role::Planner)
    {
        return sentence(
            StatusCode::FORBIDDEN,
            lang,
            path,
            Some(&session),
            t("forbidden"),
        );
    }
    let mut options = String::new();
    for (name, _) in EXAMPLES {
        let _ = write!(options, "<option value=\"{name}\">{name}.toml</option>");
    }
    let mut body = format!(
        "<h2>{}</h2><form method=\"post\" action=\"/planning/run\" enctype=\"multipart/form-data\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"example\">{}</label><select id=\"example\" name=\"example\">{options}</select>\
         <label for=\"scenario\">{}</label><input id=\"scenario\" name=\"scenario\" type=\"file\" accept=\".toml\" aria-describedby=\"scenario-help\">\
         <p id=\"scenario-help\">{}</p>\
         <label for=\"runs\">{}</label><input id=\"runs\" name=\"runs\" inputmode=\"numeric\" value=\"3\">\
         <button type=\"submit\">{}</button></form>",
        t("simulate-title"),
        esc(&session.csrf),
        t("example"),
        t("scenario-file"),
        t("scenario-help"),
        t("runs-per-variant"),
        t("simulate"),
    );
    let mine: Vec<Simulation> = lock(&web.simulations)
        .list
        .iter()
        .filter(|s| s.owner == session.caller.name)
        .cloned()
        .collect();
    if !mine.is_empty() {
        let _ = write!(
            body,
            "<h2>{}</h2><form method=\"get\" action=\"/planning/compare\"><table><thead><tr>\
             <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">A</th><th scope=\"col\">B</th></tr></thead><tbody>",
            t("earlier"),
            t("simulation"),
            t("runs-per-variant"),
            t("state"),
        );
        for s in mine.iter().rev() {
            let state = match &s.result {
                None => t("running"),
                Some(Ok(_)) => t("finished"),
                Some(Err(_)) => t("failed"),
            };
            let _ = write!(
                body,
                "<tr><td><a href=\"/planning/simulation?id={id}\">#{id} {}</a></td><td>{}</td><td>{state}</td>\
                 <td><input type=\"radio\" name=\"a\" value=\"{id}\" aria-label=\"A: #{id}\"></td>\
                 <td><input type=\"radio\" name=\"b\" value=\"{id}\" aria-label=\"B: #{id}\"></td></tr>",
                esc(&s.name),
                s.runs,
                id = s.id,
            );
        }
        let _ = write!(
            body,
            "</tbody></table><button type=\"submit\">{}</button></form>",
            t("side-by-side")
        );
    }
    page(
        StatusCode::OK,
        lang,
        path,
        Some(&session),
        t("planning"),
        &body,
    )
}

/// `POST /planning/run`: starts the simulation in the background; its page.
pub(super) async fn run(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    form: Multipart,
) -> Response {
    let path = "/planning";
    let lang = language(&headers, &LangQuery::default());
    let t = |k| text(lang.0, k);
    let mut upload = super::windows::Upload::read(form).await;
    let csrf = upload.field("csrf").to_owned();
    let (example, runs) = (
        upload.field("example").to_owned(),
        upload.field("runs").to_owned(),
    );
    let file = upload.files.remove("scenario");
    let session = match checked(&web, &headers, &csrf, path) {
        Ok(session) => session,
        Err(refused) => return *refused,
    };
    let refuse = |what: String| {
        let body = format!(
            "<p class=\"error\" role=\"alert\">{}</p><p><a href=\"/planning\">{}</a></p>",
            esc(&what),
            t("back")
        );
        page(
            StatusCode::BAD_REQUEST,
            lang,
            path,
            Some(&session),
            t("planning"),
            &body,
        )
    };
    let Ok(runs) = runs.parse::<u32>() else {
        return refuse(format!("{}: {}", t("runs-per-variant"), t("not-number")));
    };
    let (name, toml) = match file {
        Some((name, bytes)) => match String::from_utf8(bytes) {
            Ok(text) => (
                if name.is_empty() {
                    "scenario.toml".to_owned()
                } else {
                    name
                },
                text,
            ),
            Err(_) => return refuse(format!("{}: {}", t("scenario-file"), t("not-utf8"))),
        },
        None => match EXAMPLES.iter().find(|(n, _)| *n == example) {
            Some((n, text)) => (format!("{n}.toml"), (*text).to_owned()),
            None => return refuse(format!("{}: {}", t("example"), t("pick-one"))),
        },
    };
    let request = pb::SimulateRequest {
        scenario_toml: toml,
        runs,
        seed: None,
        include_html: true,
    };
    let mut api = ScenariosClient::new(web.channel.clone()).max_decoding_message_size(256 << 20);
    // The first answer tells a bad scenario (INVALID_ARGUMENT naming its line) at once.
    let mut stream = match api.simulate(web.request(&session, request)).await {
        Ok(stream) => stream.into_inner(),
        Err(status) if status.code() == tonic::Code::InvalidArgument => {
            return refuse(format!("{name}: {}", problem(&status)));
        }
        Err(status) => return super::pages::failed(&status, lang, path, &session),
    };
    let id = {
        let mut all = lock(&web.simulations);
        all.next += 1;
        let id = all.next;
        all.list.push(Simulation {
            id,
            owner: session.caller.name.clone(),
            name,
            runs,
            ..Default::default()
        });
        let excess = all.list.len().saturating_sub(KEPT);
        all.list.drain(..excess);
        id
    };
    let simulations = web.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        let update = |f: &mut dyn FnMut(&mut Simulation)| {
            let mut all = lock(&simulations.simulations);
            if let Some(s) = all.list.iter_mut().find(|s| s.id == id) {
                f(s);
            }
        };
        loop {
            match stream.message().await {
                Ok(Some(pb::SimulateResponse { event: Some(event) })) => match event {
                    pb::simulate_response::Event::Progress(p) => {
                        update(&mut |s| s.progress = Some(p.clone()))
                    }
                    pb::simulate_response::Event::Result(r) => {
                        update(&mut |s| s.result = Some(Ok(r.clone())));
                        break;
                    }
                },
                Ok(Some(_)) => {}
                Ok(None) => {
                    update(&mut |s| {
                        s.result
                            .get_or_insert(Err("the simulation ended without a result".into()));
                    });
                    break;
                }
                Err(status) => {
                    update(&mut |s| s.result = Some(Err(problem(&status))));
                    break;
                }
            }
        }
        tracing::info!(
            simulation = id,
            seconds = started.elapsed().as_secs_f64(),
            "console simulation ended"
        );
    });
    let location = format!("/planning/simulation?id={id}");
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(&location).unwrap_or(HeaderValue::from_static("/planning")),
        )],
    )
        .into_response()
}

/// `GET /planning/simulation?id=`: the progress bar while it runs (refreshing every second),
/// then the variants' figures and the report.
pub(super) async fn simulation(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<PlanQuery>,
) -> Response {
    let path = "/planning/simulation";
    let (lang, session) = match signed_in(&web, &headers, query.lang.clone(), path) {
        Ok(signed) => signed,
        Err(page) => return *page,
    };
    let t = |k| text(lang.0, k);
    let Some(s) = find(&web, &session, query.id) else {
        return sentence(
            StatusCode::NOT_FOUND,
            lang,
            path,
            Some(&session),
            t("no-simulation"),
        );
    };
    let title = format!("{} #{} · {}", t("simulation"), s.id, s.name);
    let body = match &s.result {
        None => {
            let (done, total, phase) = s.progress.as_ref().map_or((0, 0, String::new()), |p| {
                (p.done, p.total, p.phase.clone())
            });
            let mut response = page(
                StatusCode::OK,
                lang,
                path,
                Some(&session),
                &title,
                &format!(
                    "<label for=\"progress\">{}</label><progress id=\"progress\" max=\"{}\" value=\"{done}\">{done}/{total}</progress>\
                     <p role=\"status\">{done} / {total} · {}</p><p>{}</p>",
                    t("progress"),
                    total.max(1),
                    esc(&phase),
                    t("refreshes")
                ),
            );
            response
                .headers_mut()
                .insert(header::REFRESH, HeaderValue::from_static("1"));
            return response;
        }
        Some(Err(why)) => format!(
            "<p class=\"error\" role=\"alert\">{}: {}</p>",
            t("failed"),
            esc(why)
        ),
        Some(Ok(result)) => {
            let mut html = format!(
                "<p role=\"status\">{}</p><p><a href=\"/planning/report?id={}\">{}</a></p>",
                t("finished"),
                s.id,
                t("open-report")
            );
            html.push_str(&figures(&[(&s, result)]));
            html
        }
    };
    page(StatusCode::OK, lang, path, Some(&session), &title, &body)
}

/// The variants' metrics of one or more simulations, side by side: a column per variant, a row
/// per metric (by name; "–" where a variant has not that metric).
fn figures(columns: &[(&Simulation, &pb::SimulationResult)]) -> String {
    // The same variant of each simulation next to each other: baseline A, baseline B, ...
    let most = columns
        .iter()
        .map(|(_, r)| r.variants.len())
        .max()
        .unwrap_or(0);
    let variants: Vec<(u64, &pb::VariantReport)> = (0..most)
        .flat_map(|k| {
            columns
                .iter()
                .filter_map(move |(s, r)| r.variants.get(k).map(|v| (s.id, v)))
        })
        .collect();
    let mut names: Vec<(&str, &str)> = Vec::new();
    for (_, v) in &variants {
        for m in &v.metrics {
            if !names.iter().any(|(n, _)| *n == m.name) {
                names.push((&m.name, &m.unit));
            }
        }
    }
    let mut html = String::from(
        "<div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"metrics\"><table class=\"compare\"><thead><tr><th scope=\"col\">metric</th>",
    );
    for (id, v) in &variants {
        let _ = write!(html, "<th scope=\"col\">#{id} {}</th>", esc(&v.name));
    }
    html.push_str("</tr></thead><tbody>");
    for (name, unit) in names {
        let _ = write!(
            html,
            "<tr><th scope=\"row\">{} ({})</th>",
            esc(name),
            esc(unit)
        );
        for (_, v) in &variants {
            match v.metrics.iter().find(|m| m.name == name) {
                Some(m) => {
                    let _ = write!(
                        html,
                        "<td>{:.3}<br><span class=\"muted\">[{:.3}, {:.3}]</span></td>",
                        m.mean, m.ci95_low, m.ci95_high
                    );
                }
                None => html.push_str("<td>–</td>"),
            }
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table></div>");
    html
}

/// `GET /planning/report?id=`: the simulation's own HTML report (its charts and their script),
/// sandboxed: it runs in an origin of its own, without the console's cookies.
pub(super) async fn report(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<PlanQuery>,
) -> Response {
    let path = "/planning/report";
    let (lang, session) = match signed_in(&web, &headers, query.lang.clone(), path) {
        Ok(signed) => signed,
        Err(page) => return *page,
    };
    let Some(Simulation {
        result: Some(Ok(result)),
        ..
    }) = find(&web, &session, query.id)
    else {
        return sentence(
            StatusCode::NOT_FOUND,
            lang,
            path,
            Some(&session),
            text(lang.0, "no-simulation"),
        );
    };
    let mut response = result.report_html.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "sandbox allow-scripts; default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:",
        ),
    );
    response
}

/// `GET /planning/compare?a=&b=`: two simulations' figures side by side.
pub(super) async fn compare(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<PlanQuery>,
) -> Response {
    let path = "/planning/compare";
    let (lang, session) = match signed_in(&web, &headers, query.lang.clone(), path) {
        Ok(signed) => signed,
        Err(page) => return *page,
    };
    let t = |k| text(lang.0, k);
    let (Some(a), Some(b)) = (find(&web, &session, query.a), find(&web, &session, query.b)) else {
        return sentence(
            StatusCode::BAD_REQUEST,
            lang,
            path,
            Some(&session),
            t("pick-two"),
        );
    };
    let (Some(Ok(ra)), Some(Ok(rb))) = (&a.result, &b.result) else {
        return sentence(
            StatusCode::CONFLICT,
            lang,
            path,
            Some(&session),
            t("not-finished"),
        );
    };
    let body = format!(
        "<p>{}</p>{}",
        t("compare-simulations"),
        figures(&[(&a, ra), (&b, rb)])
    );
    page(
        StatusCode::OK,
        lang,
        path,
        Some(&session),
        t("side-by-side"),
        &body,
    )
}
