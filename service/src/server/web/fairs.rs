//! The fair administrators' pages: their windows, a submission of `fairs.csv` and
//! `applicants.csv`, closing, running (mechanism, precedence, beacon), the results (placed per
//! tier, the rank distribution as a chart, cutoffs, waitlists, CSV downloads), the mechanisms
//! side by side on one window, re-offers of stalls given back, and a run's verification. Every
//! action is one call of the `Fairs` API with the session's token.

use std::fmt::Write as _;
use std::sync::Arc;

use allot_engine::fair::{FAIR_TABLES, FairTables, read_tables};
use allot_engine::input::Table;
use axum::extract::{Form, Multipart, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::i18n::{Lang, text};
use super::pages::{checked, esc, failed, page, problem, signed_in};
use super::windows::{
    Admin, CompareRow, GiveBackWords, GivenBack, Upload, beacon, compare_table, give_back_form,
    live, runs_list, runs_of, window_facts, window_of, windows_table,
};
use super::{Session, Web, windows};
use crate::proto::v1 as pb;
use crate::proto::v1::fairs_client::FairsClient;
use crate::rpc::allocation::fair_tables;
use crate::server::allocation::fairs::submissions;
use crate::server::allocation::windows::Codes;

/// Rows of a table shown on a page (the CSV downloads have them all).
const SHOWN_ROWS: usize = 100;
/// The largest upload: two CSV files of a national window.
pub(super) const MAX_UPLOAD: usize = 64 << 20;

#[derive(Debug, Default, Deserialize)]
pub(super) struct FairQuery {
    lang: Option<String>,
    #[serde(default)]
    window: String,
    #[serde(default)]
    run: String,
}

fn api(web: &Web) -> FairsClient<super::GatedChannel> {
    FairsClient::new(web.channel.clone())
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20)
}

/// 303 to `to`.
pub(super) fn see_other(to: &str) -> Response {
    let location = HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/fairs"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// A URL's query value.
pub(super) fn q(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Whether the session may act on windows (auditors read them only: no forms).
fn admin(session: &Session) -> bool {
    session
        .caller
        .roles
        .contains(crate::server::access::Role::FairAdmin)
}

pub(super) fn csrf_field(session: &Session) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&session.csrf)
    )
}

/// `GET /fairs`: the windows and the submission form (role fair-admin; auditors read).
pub(super) async fn windows(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<FairQuery>,
) -> Response {
    let (lang, session) = match signed_in(&web, &headers, query.lang.clone(), "/fairs") {
        Ok(signed) => signed,
        Err(page) => return *page,
    };
    let t = |k| text(lang.0, k);
    let listed = match api(&web)
        .list_windows(web.request(&session, pb::ListWindowsRequest {}))
        .await
    {
        Ok(answer) => answer.into_inner(),
        Err(status) => return failed(&status, lang, "/fairs", &session),
    };
    let mut body = windows_table(lang.0, "/fairs", &listed.windows, "pools");
    if !admin(&session) {
        return page(
            StatusCode::OK,
            lang,
            "/fairs",
            Some(&session),
            t("fairs"),
            &body,
        );
    }
    let _ = write!(
        body,
        "<h2>{}</h2><p id=\"upload-help\">{}</p><form method=\"post\" action=\"/fairs/submit\" \
         enctype=\"multipart/form-data\">{}<label for=\"window\">{}</label>\
         <input id=\"window\" name=\"window\" required aria-describedby=\"upload-help\">\
         <label for=\"fairs-csv\">fairs.csv</label><input id=\"fairs-csv\" name=\"fairs\" type=\"file\" accept=\".csv,text/csv\" required>\
         <label for=\"applicants-csv\">applicants.csv</label><input id=\"applicants-csv\" name=\"applicants\" type=\"file\" accept=\".csv,text/csv\" required>\
         <button type=\"submit\">{}</button></form>",
        t("submit-title"),
        t("submit-help"),
        csrf_field(&session),
        t("window"),
        t("submit"),
    );
    page(
        StatusCode::OK,
        lang,
        "/fairs",
        Some(&session),
        t("fairs"),
        &body,
    )
}

/// `POST /fairs/submit`: reads the two files as the command line does, then submits them in one
/// stream (all or nothing); the window's page, or the form's error naming the file, line and
/// field.
pub(super) async fn submit(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    form: Multipart,
) -> Response {
    let lang = super::pages::language(&headers, &super::pages::LangQuery::default());
    let t = |k| text(lang.0, k);
    let mut upload = Upload::read(form).await;
    let (csrf, window) = (
        upload.field("csrf").to_owned(),
        upload.field("window").to_owned(),
    );
    let session = match checked(&web, &headers, &csrf, "/fairs") {
        Ok(session) => session,
        Err(refused) => return *refused,
    };
    let refuse = |what: String| {
        let body = format!(
            "<p class=\"error\" role=\"alert\">{}</p><p><a href=\"/fairs\">{}</a></p>",
            esc(&what),
            t("back")
        );
        page(
            StatusCode::BAD_REQUEST,
            lang,
            "/fairs",
            Some(&session),
            t("fairs"),
            &body,
        )
    };
    if let Some(e) = &upload.error {
        return refuse(format!("{}: {e}", t("upload-failed")));
    }
    let (Some((fairs_name, fairs)), Some((applicants_name, applicants))) = (
        upload.files.remove("fairs"),
        upload.files.remove("applicants"),
    ) else {
        return refuse(t("both-files").to_owned());
    };
    let read = Table::from_bytes(fairs_name, fairs).and_then(|fairs| {
        let applicants = Table::from_bytes(applicants_name, applicants)?;
        let files = read_tables(&fairs, &applicants)?;
        // The optional `code` column: each applicant's second factor for the public lookup.
        let mut codes = Codes::new();
        if let Some(column) = applicants.optional_column("code") {
            let id = applicants.column("applicant")?;
            applicants.for_each_row(|row| -> Result<(), allot_engine::input::InputError> {
                let code = row.text(column).trim();
                if !code.is_empty() {
                    codes.insert(row.text(id).trim().to_owned(), code.to_owned());
                }
                Ok(())
            })?;
        }
        Ok((files.input, codes))
    });
    let (input, codes) = match read {
        Ok(read) => read,
        Err(e) => return refuse(e.to_string()),
    };
    let messages = submissions(&window, &input, &codes);
    let stream = tokio_stream::iter(messages);
    match api(&web)
        .submit_applications(web.request(&session, stream))
        .await
    {
        Ok(_) => see_other(&format!("/fairs/window?window={}", q(&window))),
        Err(status) if status.code() == tonic::Code::InvalidArgument => {
            refuse(format!("{}: {}", t("window"), problem(&status)))
        }
        Err(status) => failed(&status, lang, "/fairs", &session),
    }
}

fn mechanism_name(lang: Lang, m: &str) -> &'static str {
    match m {
        "da" => text(lang, "mech-da"),
        "welfare" => text(lang, "mech-welfare"),
        "rsd" => text(lang, "mech-rsd"),
        _ => text(lang, "mech-other"),
    }
}

/// `GET /fairs/window?window=`: its counts, close and run forms, and its runs.
pub(super) async fn window(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<FairQuery>,
) -> Response {
    let path = "/fairs/window";
    let (lang, session) = match signed_in(&web, &headers, query.lang.clone(), path) {
        Ok(signed) => signed,
        Err(page) => return *page,
    };
    let t = |k| text(lang.0, k);
    let found = window_of::<FairPages>(&web, &session, &query.window).await;
    let w = match windows::found(found, (lang, path, &session), &query.window) {
        Ok(w) => w,
        Err(page) => return *page,
    };
    let name = esc(&w.window);
    let mut body = window_facts(lang.0, &w, "pools");
    match w.closed_index {
        _ if !admin(&session) => {}
        None => {
            let _ = write!(
                body,
                "<h2>{}</h2><p>{}</p><form method=\"post\" action=\"/fairs/close\">{}\
                 <input type=\"hidden\" name=\"window\" value=\"{name}\"><button type=\"submit\">{}</button></form>",
                t("close-title"),
                t("close-help"),
                csrf_field(&session),
                t("close"),
            );
        }
        Some(_) => {
            let beacon = format!(
                "<label for=\"beacon-source\">{}</label><input id=\"beacon-source\" name=\"beacon_source\" value=\"drand:quicknet\">\
                 <label for=\"beacon-round\">{}</label><input id=\"beacon-round\" name=\"beacon_round\" inputmode=\"numeric\" value=\"0\">\
                 <label for=\"beacon-value\">{}</label><input id=\"beacon-value\" name=\"beacon_value\" aria-describedby=\"beacon-help\">\
                 <p id=\"beacon-help\">{}</p>\
                 <label for=\"precedence\">{}</label><select id=\"precedence\" name=\"precedence\">\
                 <option value=\"own\">{}</option><option value=\"open\">{}</option></select>",
                t("beacon-source"),
                t("beacon-round"),
                t("beacon-value"),
                t("beacon-help"),
                t("precedence"),
                t("own-first"),
                t("open-first"),
            );
            let _ = write!(
                body,
                "<h2>{}</h2><form method=\"post\" action=\"/fairs/run\">{}<input type=\"hidden\" name=\"window\" value=\"{name}\">\
                 <label for=\"mechanism\">{}</label><select id=\"mechanism\" name=\"mechanism\">\
                 <option value=\"da\">{}</option><option value=\"welfare\">{}</option><option value=\"rsd\">{}</option></select>\
                 {beacon}<button type=\"submit\">{}</button></form>",
                t("run-title"),
                csrf_field(&session),
                t("mechanism"),
                t("mech-da"),
                t("mech-welfare"),
                t("mech-rsd"),
                t("run"),
            );
            let _ = write!(
                body,
                "<h2>{}</h2><p>{}</p><form method=\"post\" action=\"/fairs/compare\">{}<input type=\"hidden\" name=\"window\" value=\"{name}\">\
                 {}<button type=\"submit\">{}</button></form>",
                t("compare-title"),
                t("compare-help"),
                csrf_field(&session),
                beacon
                    .replace("id=\"", "id=\"c-")
                    .replace("for=\"", "for=\"c-")
                    .replace("aria-describedby=\"", "aria-describedby=\"c-"),
                t("compare-run"),
            );
        }
    }
    body.push_str(&runs_list(lang.0, "/fairs", &w, mechanism_name, "placed"));
    let title = format!("{}: {}", t("window"), w.window);
    live(
        page(StatusCode::OK, lang, path, Some(&session), &title, &body),
        &w,
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct WindowForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    window: String,
    #[serde(default)]
    mechanism: String,
    #[serde(default)]
    precedence: String,
    #[serde(default)]
    beacon_source: String,
    #[serde(default)]
    beacon_round: String,
    #[serde(default)]
    beacon_value: String,
}

/// A refused close or run of a fair window.
fn closing_failed(
    status: &tonic::Status,
    lang: (Lang, bool),
    session: &Session,
    window: &str,
) -> Response {
    refused_action("/fairs", status, lang, session, window)
}

/// A refused action on a window of the pages under `base` (`/fairs`, `/schools`): the window's
/// page link and the reason (409 for a window not in the state the action needs).
pub(super) fn refused_action(
    base: &str,
    status: &tonic::Status,
    lang: (Lang, bool),
    session: &Session,
    window: &str,
) -> Response {
    let t = |k| text(lang.0, k);
    if status.code() != tonic::Code::FailedPrecondition
        && status.code() != tonic::Code::InvalidArgument
    {
        return failed(status, lang, base, session);
    }
    let body = format!(
        "<p class=\"error\" role=\"alert\">{}</p><p><a href=\"{base}/window?window={}\">{}</a></p>",
        esc(&problem(status)),
        q(window),
        t("back")
    );
    let code = if status.code() == tonic::Code::FailedPrecondition {
        StatusCode::CONFLICT
    } else {
        StatusCode::BAD_REQUEST
    };
    page(code, lang, base, Some(session), t("back"), &body)
}

/// The run request of a form, or the field at fault.
fn run_request(
    form: &WindowForm,
    mechanism: &str,
    lang: Lang,
) -> Result<pb::RunFairAllocationRequest, String> {
    let t = |k| text(lang, k);
    let mechanism = match mechanism {
        "da" => pb::FairMechanism::Da,
        "welfare" => pb::FairMechanism::Welfare,
        "rsd" => pb::FairMechanism::Rsd,
        _ => return Err(format!("{}: {}", t("mechanism"), t("pick-one"))),
    };
    let precedence = if form.precedence == "open" {
        pb::PoolPrecedence::OpenFirst
    } else {
        pb::PoolPrecedence::OwnCategoryFirst
    };
    let beacon = beacon(
        lang,
        &form.beacon_source,
        &form.beacon_round,
        &form.beacon_value,
    )?;
    Ok(pb::RunFairAllocationRequest {
        window: form.window.clone(),
        mechanism: mechanism as i32,
        beacon,
        precedence: precedence as i32,
        request_id: String::new(),
    })
}

/// `POST /fairs/run`: one mechanism; then its results.
pub(super) async fn run(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Form(form): Form<WindowForm>,
) -> Response {
    let session = match checked(&web, &headers, &form.csrf, "/fairs") {
        Ok(session) => session,
        Err(refused) => return *refused,
    };
    let lang = super::pages::language(&headers, &super::pages::LangQuery::default());
    let request = match run_request(&form, &form.mechanism, lang.0) {
        Ok(request) => request,
        Err(what) => {
            let status = tonic::Status::invalid_argument(what);
            return closing_failed(&status, lang, &session, &form.window);
        }
    };
    match api(&web)
        .run_allocation(web.request(&session, request))
        .await
    {
        Ok(ran) => see_other(&format!(
            "/fairs/run?run={}",
            hex::encode(ran.into_inner().run_id)
        )),
        Err(status) => closing_failed(&status, lang, &session, &form.window),
    }
}

/// `POST /fairs/compare`: the three mechanisms on the window, same beacon and precedence; then
/// them side by side.
pub(super) async fn compare_run(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Form(form): Form<WindowForm>,
) -> Response {
    let session = match checked(&web, &headers, &form.csrf, "/fairs") {
        Ok(session) => session,
        Err(refused) => return *refused,
    };
    let lang = super::pages::language(&headers, &super::pages::LangQuery::default());
    for mechanism in ["da", "welfare", "rsd"] {
        let request = match run_request(&form, mechanism, lang.0) {
            Ok(request) => request,
            Err(what) => {
                let status = tonic::Status::invalid_argument(what);
                return closing_failed(&status, lang, &session, &form.window);
            }
        };
        if let Err(status) = api(&web)
            .run_allocation(web.request(&session, request))
            .await
        {
            return closing_failed(&status, lang, &session, &form.window);
        }
    }
    see_other(&format!("/fairs/compare?window={}", q(&form.window)))
}

/// The run named by `?run=` (hex), or the page saying what is wrong with it.
pub(super) fn run_id(
    lang: (Lang, bool),
    session: &Session,
    path: &str,
    run: &str,
) -> Result<Vec<u8>, Box<Response>> {
    hex::decode(run.trim())
        .ok()
        .filter(|id| id.len() == 32)
        .ok_or_else(|| {
            let what = format!("{}: {}", text(lang.0, "run-id"), text(lang.0, "bad-run-id"));
            Box::new(super::pages::sentence(
                StatusCode::BAD_REQUEST,
                lang,
                path,
                Some(session),
                &what,
            ))
        })
}

/// The rank distribution as a bar chart (server-side SVG, its figures in a table too).
pub(super) fn rank_chart(lang: Lang, rank_counts: &[pb::RankCount]) -> String {
    let t = |k| text(lang, k);
    let max = rank_counts
        .iter()
        .map(|r| r.count)
        .max()
        .unwrap_or(0)
        .max(1);
    let (bar, gap, height) = (28usize, 8usize, 160usize);
    let width = 40 + rank_counts.len() * (bar + gap);
    let mut svg = format!(
        "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" role=\"img\" aria-labelledby=\"rank-caption\">",
        height + 30
    );
    for (k, r) in rank_counts.iter().enumerate() {
        let h = (r.count as f64 / max as f64 * height as f64).round() as usize;
        let x = 40 + k * (bar + gap);
        let _ = write!(
            svg,
            "<rect class=\"bar\" x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{h}\"><title>{} {}: {}</title></rect>\
             <text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
            height - h,
            t("choice"),
            r.rank,
            r.count,
            x + bar / 2,
            height + 16,
            r.rank
        );
    }
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"12\" font-size=\"12\">{max}</text></svg><figcaption id=\"rank-caption\">{}</figcaption></figure>",
        t("rank-chart")
    );
    svg
}

/// `GET /fairs/run?run=`: the results of one run.
pub(super) async fn run_page(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<FairQuery>,
) -> Response {
    let path = "/fairs/run";
    let (lang, session) = match signed_in(&web, &headers, query.lang.clone(), path) {
        Ok(signed) => signed,
        Err(page) => return *page,
    };
    let t = |k| text(lang.0, k);
    let id = match run_id(lang, &session, path, &query.run) {
        Ok(id) => id,
        Err(page) => return *page,
    };
    let (record, summary, tables) =
        match windows::results::<FairPages>(&web, &session, id.clone()).await {
            Ok(r) => r,
            Err(status) => return failed(&status, lang, path, &session),
        };
    let run_hex = hex::encode(&id);
    let mut body = format!(
        "<p>{} <a href=\"/fairs/window?window={}\">{}</a> · {} · {} {}</p>",
        t("window"),
        q(&record.window),
        esc(&record.window),
        mechanism_name(lang.0, &record.mechanism),
        t("log-entry"),
        record.log_index
    );
    let _ = write!(
        body,
        "<h2>{}</h2><table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        t("placed-per-tier"),
        t("group"),
        t("applications"),
        t("placed")
    );
    for k in 0..3 {
        let _ = write!(
            body,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td></tr>",
            super::public::tier_name(lang.0, k as u32),
            summary.applicants_per_tier.get(k).copied().unwrap_or(0),
            summary.placed_per_tier.get(k).copied().unwrap_or(0)
        );
    }
    let _ = write!(
        body,
        "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td></tr></tbody></table><p>{}: {:.1}% · {}: {}</p>",
        t("all"),
        summary.applicants,
        summary.placed,
        t("fill-rate"),
        summary.fill_rate * 100.0,
        t("rank2-sum"),
        summary.rank2_sum
    );
    let _ = write!(
        body,
        "<h2>{}</h2>{}",
        t("rank-distribution"),
        rank_chart(lang.0, &summary.rank_counts)
    );
    let _ = write!(
        body,
        "<h2>{}</h2><div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"{}\"><table><thead><tr>\
         <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        t("cutoffs"),
        t("cutoffs"),
        t("place"),
        t("pool"),
        t("places"),
        t("given"),
        t("last-admitted")
    );
    for c in tables.cutoffs.iter().take(SHOWN_ROWS) {
        let last = c.cutoff.map_or_else(
            || t("not-full").to_owned(),
            |(tier, lottery)| {
                format!(
                    "{}, {} {lottery}",
                    super::public::tier_name(lang.0, tier),
                    t("lottery")
                )
            },
        );
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.fair),
            esc(&c.category),
            c.stalls,
            c.placed,
            esc(&last)
        );
    }
    body.push_str("</tbody></table></div>");
    let _ = write!(
        body,
        "<p>{} {} / {} · {}: {}</p><h2>{}</h2><ul>",
        t("rows-shown"),
        tables.cutoffs.len().min(SHOWN_ROWS),
        tables.cutoffs.len(),
        t("waitlist-places"),
        tables.waitlist.len(),
        t("downloads")
    );
    for name in FAIR_TABLES {
        let _ = write!(
            body,
            "<li><a href=\"/fairs/download?run={run_hex}&amp;table={name}\" download=\"{}-{name}\">{name}</a></li>",
            esc(&record.window)
        );
    }
    let _ = write!(
        body,
        "</ul><p><a href=\"/fairs/verify?run={run_hex}\">{}</a></p>",
        t("verify-run")
    );
    if !admin(&session) {
        let title = format!("{}: {}", t("run-results"), record.window);
        return page(StatusCode::OK, lang, path, Some(&session), &title, &body);
    }
    body.push_str(&give_back_form::<FairPages>(lang.0, &session, &run_hex));
    let title = format!("{}: {}", t("run-results"), record.window);
    page(StatusCode::OK, lang, path, Some(&session), &title, &body)
}

/// A CSV download of `window`'s file `name`, its rows written by `write`.
pub(super) fn csv_download(
    window: &str,
    name: &str,
    write: impl FnOnce(&mut csv::Writer<Vec<u8>>) -> csv::Result<()>,
) -> Response {
    let mut csv = csv::Writer::from_writer(Vec::new());
    if write(&mut csv).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let bytes = csv.into_inner().unwrap_or_default();
    let disposition = format!(
        "attachment; filename=\"{}-{name}\"",
        window.replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_',
            "_"
        )
    );
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// `GET /fairs/compare?window=`: every run of the window side by side.
pub(super) async fn compare(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<FairQuery>,
) -> Response {
    let path = "/fairs/compare";
    let (lang, session) = match signed_in(&web, &headers, query.lang.clone(), path) {
        Ok(signed) => signed,
        Err(page) => return *page,
    };
    let t = |k| text(lang.0, k);
    let found = window_of::<FairPages>(&web, &session, &query.window).await;
    let w = match windows::found(found, (lang, path, &session), &query.window) {
        Ok(w) => w,
        Err(page) => return *page,
    };
    let columns = match runs_of::<FairPages>(&web, (lang, path, &session), &w).await {
        Ok(columns) => columns,
        Err(page) => return *page,
    };
    let tier = |k: usize| {
        move |_: &pb::RunRecord, s: &pb::FairRunSummary| {
            s.placed_per_tier.get(k).copied().unwrap_or(0).to_string()
        }
    };
    let (tier0, tier1, tier2) = (tier(0), tier(1), tier(2));
    let placed_in = |k: u32| format!("{} {}", t("placed"), super::public::tier_name(lang.0, k));
    let rows: [CompareRow<'_, pb::FairRunSummary>; 8] = [
        (t("placed").to_owned(), &|_, s| s.placed.to_string()),
        (placed_in(0), &tier0),
        (placed_in(1), &tier1),
        (placed_in(2), &tier2),
        (t("first-choice").to_owned(), &|_, s| {
            let first = s.rank_counts.iter().find(|r| r.rank == 1);
            first.map_or(0, |r| r.count).to_string()
        }),
        (t("rank2-sum").to_owned(), &|_, s| s.rank2_sum.to_string()),
        (t("fill-rate").to_owned(), &|_, s| {
            format!("{:.1}%", s.fill_rate * 100.0)
        }),
        // A property of the mechanism, not of the figures: DA and RSD are strategy-proof.
        (t("strategy-proof").to_owned(), &|r, _| {
            let yes = matches!(r.mechanism.as_str(), "da" | "rsd");
            (if yes { t("yes") } else { t("no") }).to_owned()
        }),
    ];
    let body = format!(
        "<p>{}</p>{}",
        t("compare-explained"),
        compare_table(lang.0, "/fairs", &columns, mechanism_name, &rows)
    );
    let title = format!("{}: {}", t("compare-title"), w.window);
    page(StatusCode::OK, lang, path, Some(&session), &title, &body)
}

/// The `Fairs` API for the shared handlers of [`super::windows`].
pub(super) struct FairPages;

impl Admin for FairPages {
    const BASE: &'static str = "/fairs";
    const TABLES: &'static [&'static str] = &FAIR_TABLES;
    const GIVE_BACK: GiveBackWords = GiveBackWords {
        title: "re-offer-title",
        help: "re-offer-help",
        participant: "applicant-id",
        button: "give-back",
        nobody: "nobody-waiting",
    };
    type Summary = pb::FairRunSummary;
    type Tables = FairTables;

    async fn list(web: &Web, session: &Session) -> Result<Vec<pb::WindowSummary>, tonic::Status> {
        let request = web.request(session, pb::ListWindowsRequest {});
        Ok(api(web).list_windows(request).await?.into_inner().windows)
    }

    async fn close(web: &Web, session: &Session, window: String) -> Result<(), tonic::Status> {
        let request = web.request(session, pb::CloseFairApplicationsRequest { window });
        api(web).close_applications(request).await.map(drop)
    }

    async fn verify(
        web: &Web,
        session: &Session,
        run_id: Vec<u8>,
    ) -> Result<pb::RunVerification, tonic::Status> {
        let request = web.request(session, pb::VerifyFairRunRequest { run_id });
        let answer = api(web).verify(request).await?.into_inner();
        Ok(answer.verification.unwrap_or_default())
    }

    type Results = pb::FairResults;

    async fn run_record(
        web: &Web,
        session: &Session,
        run_id: Vec<u8>,
    ) -> Result<pb::RunRecord, tonic::Status> {
        let run = pb::GetRunRequest {
            run: hex::encode(&run_id),
        };
        Ok(api(web)
            .get_run(web.request(session, run))
            .await?
            .into_inner())
    }

    async fn results_messages(
        web: &Web,
        session: &Session,
        run_id: Vec<u8>,
        all: bool,
    ) -> Result<Vec<pb::FairResults>, tonic::Status> {
        let request = web.request(session, pb::GetFairResultsRequest { run_id });
        let mut stream = api(web).get_results(request).await?.into_inner();
        let mut parts = Vec::new();
        while let Some(part) = stream.message().await? {
            parts.push(part);
            if !all {
                break;
            }
        }
        Ok(parts)
    }

    fn tables(parts: Vec<pb::FairResults>) -> (pb::FairRunSummary, FairTables) {
        fair_tables(parts)
    }

    fn write_csv(tables: &FairTables, name: &str, w: &mut csv::Writer<Vec<u8>>) -> csv::Result<()> {
        tables.write_csv(name, w)
    }

    async fn give_back(
        web: &Web,
        session: &Session,
        run_id: Vec<u8>,
        applicant: String,
    ) -> Result<GivenBack, tonic::Status> {
        let request = pb::WithdrawFairStallRequest {
            run_id,
            applicant,
            request_id: String::new(),
        };
        let answer = api(web)
            .withdraw(web.request(session, request))
            .await?
            .into_inner();
        Ok(GivenBack {
            place: format!("{} ({})", answer.fair, answer.category),
            re_offered_to: answer.re_offered_to.map(|o| o.applicant),
            changes: answer.changes,
        })
    }
}
