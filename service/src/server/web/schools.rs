//! The school enrolment officers' pages, as the fairs' ([`super::fairs`]) on the `Schools` API:
//! windows, an upload of `schools.csv`, `students.csv`, `priorities.csv` (and `reserves.csv`),
//! closing, running (mechanism, tie-breaking, beacon), the results (assigned, the rank
//! distribution, cutoffs, CSV downloads), DA, TTC, Boston and EADA side by side, and a run's
//! verification.

use std::fmt::Write as _;
use std::sync::Arc;

use allot_engine::input::Table;
use allot_engine::school::{SCHOOL_TABLES, SchoolTables, read_tables};
use axum::extract::{Form, Multipart, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::fairs::{csrf_field, q, rank_chart, refused_action, run_id, see_other};
use super::i18n::{Lang, text};
use super::pages::{LangQuery, checked, esc, failed, language, page, problem, signed_in};
use super::windows::{
    Admin, CompareRow, GiveBackWords, GivenBack, Upload, beacon, compare_table, give_back_form,
    live, runs_list, runs_of, window_facts, window_of, windows_table,
};
use super::{Session, Web, windows};
use crate::proto::v1 as pb;
use crate::proto::v1::schools_client::SchoolsClient;
use crate::rpc::allocation::school_tables;
use crate::server::allocation::schools::submissions;
use crate::server::allocation::windows::Codes;

const BASE: &str = "/schools";
/// Rows of a table shown on a page (the CSV downloads have them all).
const SHOWN_ROWS: usize = 100;
/// The mechanisms compared side by side.
const COMPARED: [(&str, pb::SchoolMechanism); 4] = [
    ("da", pb::SchoolMechanism::StudentDa),
    ("ttc", pb::SchoolMechanism::Ttc),
    ("boston", pb::SchoolMechanism::ImmediateAcceptance),
    ("eada", pb::SchoolMechanism::Eada),
];

#[derive(Debug, Default, Deserialize)]
pub(super) struct SchoolQuery {
    lang: Option<String>,
    #[serde(default)]
    window: String,
    #[serde(default)]
    run: String,
}

fn api(web: &Web) -> SchoolsClient<super::GatedChannel> {
    SchoolsClient::new(web.channel.clone())
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20)
}

fn admin(session: &Session) -> bool {
    session
        .caller
        .roles
        .contains(crate::server::access::Role::SchoolAdmin)
}

fn mechanism_name(lang: Lang, m: &str) -> &'static str {
    match m {
        "da" => text(lang, "school-da"),
        "school-da" => text(lang, "school-proposing-da"),
        "ttc" => text(lang, "school-ttc"),
        "boston" => text(lang, "school-boston"),
        "eada" => text(lang, "school-eada"),
        _ => text(lang, "mech-other"),
    }
}

/// `GET /schools`: the windows and the upload form.
pub(super) async fn windows(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<SchoolQuery>,
) -> Response {
    let (lang, session) = match signed_in(&web, &headers, query.lang.clone(), BASE) {
        Ok(signed) => signed,
        Err(page) => return *page,
    };
    let t = |k| text(lang.0, k);
    let listed = match api(&web)
        .list_windows(web.request(&session, pb::ListWindowsRequest {}))
        .await
    {
        Ok(answer) => answer.into_inner(),
        Err(status) => return failed(&status, lang, BASE, &session),
    };
    let mut body = windows_table(lang.0, BASE, &listed.windows, "schools-count");
    if admin(&session) {
        let _ = write!(
            body,
            "<h2>{}</h2><p id=\"upload-help\">{}</p><form method=\"post\" action=\"{BASE}/submit\" enctype=\"multipart/form-data\">{}\
             <label for=\"window\">{}</label><input id=\"window\" name=\"window\" required aria-describedby=\"upload-help\">\
             <label for=\"schools-csv\">schools.csv</label><input id=\"schools-csv\" name=\"schools\" type=\"file\" accept=\".csv,text/csv\" required>\
             <label for=\"students-csv\">students.csv</label><input id=\"students-csv\" name=\"students\" type=\"file\" accept=\".csv,text/csv\" required>\
             <label for=\"priorities-csv\">priorities.csv</label><input id=\"priorities-csv\" name=\"priorities\" type=\"file\" accept=\".csv,text/csv\" required>\
             <label for=\"reserves-csv\">reserves.csv</label><input id=\"reserves-csv\" name=\"reserves\" type=\"file\" accept=\".csv,text/csv\">\
             <button type=\"submit\">{}</button></form>",
            t("submit-title"),
            t("school-submit-help"),
            csrf_field(&session),
            t("window"),
            t("submit"),
        );
    }
    page(
        StatusCode::OK,
        lang,
        BASE,
        Some(&session),
        t("schools"),
        &body,
    )
}

/// `POST /schools/submit`: the files read as the command line reads them, submitted in one
/// stream (all or nothing).
pub(super) async fn submit(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    form: Multipart,
) -> Response {
    let lang = language(&headers, &LangQuery::default());
    let t = |k| text(lang.0, k);
    let mut upload = Upload::read(form).await;
    let (csrf, window) = (
        upload.field("csrf").to_owned(),
        upload.field("window").to_owned(),
    );
    let session = match checked(&web, &headers, &csrf, BASE) {
        Ok(session) => session,
        Err(refused) => return *refused,
    };
    let refuse = |what: String| {
        let body = format!(
            "<p class=\"error\" role=\"alert\">{}</p><p><a href=\"{BASE}\">{}</a></p>",
            esc(&what),
            t("back")
        );
        page(
            StatusCode::BAD_REQUEST,
            lang,
            BASE,
            Some(&session),
            t("schools"),
            &body,
        )
    };
    if let Some(e) = &upload.error {
        return refuse(format!("{}: {e}", t("upload-failed")));
    }
    let mut file = |name: &str| upload.files.remove(name);
    let (Some(schools), Some(students), Some(priorities), reserves) = (
        file("schools"),
        file("students"),
        file("priorities"),
        file("reserves"),
    ) else {
        return refuse(t("three-files").to_owned());
    };
    let read = (|| {
        let schools = Table::from_bytes(schools.0, schools.1)?;
        let students = Table::from_bytes(students.0, students.1)?;
        let priorities = Table::from_bytes(priorities.0, priorities.1)?;
        let reserves = reserves.map(|(n, b)| Table::from_bytes(n, b)).transpose()?;
        let files = read_tables(&schools, &students, &priorities, reserves.as_ref())?;
        let mut codes = Codes::new();
        if let Some(column) = students.optional_column("code") {
            let id = students.column("student")?;
            students.for_each_row(|row| -> Result<(), allot_engine::input::InputError> {
                let code = row.text(column).trim();
                if !code.is_empty() {
                    codes.insert(row.text(id).trim().to_owned(), code.to_owned());
                }
                Ok(())
            })?;
        }
        Ok::<_, allot_engine::input::InputError>((files.input, codes))
    })();
    let (input, codes) = match read {
        Ok(read) => read,
        Err(e) => return refuse(e.to_string()),
    };
    let stream = tokio_stream::iter(submissions(&window, &input, &codes));
    match api(&web)
        .submit_applications(web.request(&session, stream))
        .await
    {
        Ok(_) => see_other(&format!("{BASE}/window?window={}", q(&window))),
        Err(status) if status.code() == tonic::Code::InvalidArgument => {
            refuse(format!("{}: {}", t("window"), problem(&status)))
        }
        Err(status) => failed(&status, lang, BASE, &session),
    }
}

/// `GET /schools/window?window=`.
pub(super) async fn window(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<SchoolQuery>,
) -> Response {
    let path = "/schools/window";
    let (lang, session) = match signed_in(&web, &headers, query.lang.clone(), path) {
        Ok(signed) => signed,
        Err(page) => return *page,
    };
    let t = |k| text(lang.0, k);
    let found = window_of::<SchoolPages>(&web, &session, &query.window).await;
    let w = match windows::found(found, (lang, path, &session), &query.window) {
        Ok(w) => w,
        Err(page) => return *page,
    };
    let name = esc(&w.window);
    let mut body = window_facts(lang.0, &w, "schools-count");
    let beacon = |prefix: &str| {
        format!(
            "<label for=\"{prefix}beacon-source\">{}</label><input id=\"{prefix}beacon-source\" name=\"beacon_source\" value=\"drand:quicknet\">\
             <label for=\"{prefix}beacon-round\">{}</label><input id=\"{prefix}beacon-round\" name=\"beacon_round\" inputmode=\"numeric\" value=\"0\">\
             <label for=\"{prefix}beacon-value\">{}</label><input id=\"{prefix}beacon-value\" name=\"beacon_value\" aria-describedby=\"{prefix}beacon-help\">\
             <p id=\"{prefix}beacon-help\">{}</p>\
             <label for=\"{prefix}tie-breaking\">{}</label><select id=\"{prefix}tie-breaking\" name=\"tie_breaking\">\
             <option value=\"single\">{}</option><option value=\"multiple\">{}</option></select>",
            t("beacon-source"),
            t("beacon-round"),
            t("beacon-value"),
            t("school-beacon-help"),
            t("tie-breaking"),
            t("tie-single"),
            t("tie-multiple"),
        )
    };
    match w.closed_index {
        _ if !admin(&session) => {}
        None => {
            let _ = write!(
                body,
                "<h2>{}</h2><p>{}</p><form method=\"post\" action=\"{BASE}/close\">{}\
                 <input type=\"hidden\" name=\"window\" value=\"{name}\"><button type=\"submit\">{}</button></form>",
                t("close-title"),
                t("close-help"),
                csrf_field(&session),
                t("close"),
            );
        }
        Some(_) => {
            let mut options = String::new();
            for (code, _) in COMPARED {
                let _ = write!(
                    options,
                    "<option value=\"{code}\">{}</option>",
                    mechanism_name(lang.0, code)
                );
            }
            let _ = write!(
                body,
                "<h2>{}</h2><form method=\"post\" action=\"{BASE}/run\">{}<input type=\"hidden\" name=\"window\" value=\"{name}\">\
                 <label for=\"mechanism\">{}</label><select id=\"mechanism\" name=\"mechanism\">{options}</select>{}\
                 <button type=\"submit\">{}</button></form>\
                 <h2>{}</h2><p>{}</p><form method=\"post\" action=\"{BASE}/compare\">{}<input type=\"hidden\" name=\"window\" value=\"{name}\">{}\
                 <button type=\"submit\">{}</button></form>",
                t("run-title"),
                csrf_field(&session),
                t("mechanism"),
                beacon(""),
                t("run"),
                t("compare-title"),
                t("school-compare-help"),
                csrf_field(&session),
                beacon("c-"),
                t("compare-run"),
            );
        }
    }
    body.push_str(&runs_list(lang.0, BASE, &w, mechanism_name, "seats-given"));
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
    tie_breaking: String,
    #[serde(default)]
    beacon_source: String,
    #[serde(default)]
    beacon_round: String,
    #[serde(default)]
    beacon_value: String,
}

fn run_request(
    form: &WindowForm,
    mechanism: &str,
    lang: Lang,
) -> Result<pb::RunSchoolAllocationRequest, String> {
    let t = |k| text(lang, k);
    let Some((_, mechanism)) = COMPARED.iter().find(|(code, _)| *code == mechanism) else {
        return Err(format!("{}: {}", t("mechanism"), t("pick-one")));
    };
    let tie_breaking = if form.tie_breaking == "multiple" {
        pb::TieBreaking::Multiple
    } else {
        pb::TieBreaking::Single
    };
    let beacon = beacon(
        lang,
        &form.beacon_source,
        &form.beacon_round,
        &form.beacon_value,
    )?;
    Ok(pb::RunSchoolAllocationRequest {
        window: form.window.clone(),
        mechanism: *mechanism as i32,
        tie_breaking: tie_breaking as i32,
        beacon,
        ..Default::default()
    })
}

/// `POST /schools/run`.
pub(super) async fn run(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Form(form): Form<WindowForm>,
) -> Response {
    let session = match checked(&web, &headers, &form.csrf, BASE) {
        Ok(session) => session,
        Err(refused) => return *refused,
    };
    let lang = language(&headers, &LangQuery::default());
    let request = match run_request(&form, &form.mechanism, lang.0) {
        Ok(request) => request,
        Err(what) => {
            let status = tonic::Status::invalid_argument(what);
            return refused_action(BASE, &status, lang, &session, &form.window);
        }
    };
    match api(&web)
        .run_allocation(web.request(&session, request))
        .await
    {
        Ok(ran) => see_other(&format!(
            "{BASE}/run?run={}",
            hex::encode(ran.into_inner().run_id)
        )),
        Err(status) => refused_action(BASE, &status, lang, &session, &form.window),
    }
}

/// `POST /schools/compare`: DA, TTC, Boston and EADA on the window, same beacon.
pub(super) async fn compare_run(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Form(form): Form<WindowForm>,
) -> Response {
    let session = match checked(&web, &headers, &form.csrf, BASE) {
        Ok(session) => session,
        Err(refused) => return *refused,
    };
    let lang = language(&headers, &LangQuery::default());
    for (mechanism, _) in COMPARED {
        let request = match run_request(&form, mechanism, lang.0) {
            Ok(request) => request,
            Err(what) => {
                let status = tonic::Status::invalid_argument(what);
                return refused_action(BASE, &status, lang, &session, &form.window);
            }
        };
        if let Err(status) = api(&web)
            .run_allocation(web.request(&session, request))
            .await
        {
            return refused_action(BASE, &status, lang, &session, &form.window);
        }
    }
    see_other(&format!("{BASE}/compare?window={}", q(&form.window)))
}

/// `GET /schools/run?run=`.
pub(super) async fn run_page(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<SchoolQuery>,
) -> Response {
    let path = "/schools/run";
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
        match windows::results::<SchoolPages>(&web, &session, id.clone()).await {
            Ok(r) => r,
            Err(status) => return failed(&status, lang, path, &session),
        };
    let run_hex = hex::encode(&id);
    let mut body = format!(
        "<p>{} <a href=\"{BASE}/window?window={}\">{}</a> · {} · {} {}</p>\
         <table><tr><th scope=\"row\">{}</th><td>{}</td></tr><tr><th scope=\"row\">{}</th><td>{}</td></tr>\
         <tr><th scope=\"row\">{}</th><td>{}</td></tr><tr><th scope=\"row\">{}</th><td>{}</td></tr>\
         <tr><th scope=\"row\">{}</th><td>{}</td></tr></table>",
        t("window"),
        q(&record.window),
        esc(&record.window),
        mechanism_name(lang.0, &record.mechanism),
        t("log-entry"),
        record.log_index,
        t("students"),
        summary.students,
        t("seats-given"),
        summary.assigned,
        t("no-seat"),
        summary.unassigned,
        t("blocking-pairs"),
        summary.blocking_pairs,
        t("justified-envy"),
        summary.justified_envy,
    );
    let _ = write!(
        body,
        "<h2>{}</h2>{}",
        t("school-rank-distribution"),
        rank_chart(lang.0, &summary.rank_counts)
    );
    let _ = write!(
        body,
        "<h2>{}</h2><div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"{}\"><table><thead><tr>\
         <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        t("cutoffs"),
        t("cutoffs"),
        t("place"),
        t("places"),
        t("given"),
        t("last-admitted")
    );
    for c in tables.cutoffs.iter().take(SHOWN_ROWS) {
        let last = c.cutoff.map_or_else(
            || t("not-full").to_owned(),
            |(class, lottery)| format!("{} {class}, {} {lottery}", t("class"), t("lottery")),
        );
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.school),
            c.capacity,
            c.assigned,
            esc(&last)
        );
    }
    let _ = write!(
        body,
        "</tbody></table></div><p>{} {} / {}</p><h2>{}</h2><ul>",
        t("rows-shown"),
        tables.cutoffs.len().min(SHOWN_ROWS),
        tables.cutoffs.len(),
        t("downloads")
    );
    for name in SCHOOL_TABLES {
        if name == "block_cutoffs.csv" && tables.blocks.is_empty() {
            continue;
        }
        let _ = write!(
            body,
            "<li><a href=\"{BASE}/download?run={run_hex}&amp;table={name}\" download=\"{}-{name}\">{name}</a></li>",
            esc(&record.window)
        );
    }
    let _ = write!(
        body,
        "</ul><p><a href=\"{BASE}/verify?run={run_hex}\">{}</a></p>",
        t("verify-run")
    );
    if admin(&session) {
        body.push_str(&give_back_form::<SchoolPages>(lang.0, &session, &run_hex));
    }
    let title = format!("{}: {}", t("run-results"), record.window);
    page(StatusCode::OK, lang, path, Some(&session), &title, &body)
}

/// `GET /schools/compare?window=`: every run of the window side by side.
pub(super) async fn compare(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<SchoolQuery>,
) -> Response {
    let path = "/schools/compare";
    let (lang, session) = match signed_in(&web, &headers, query.lang.clone(), path) {
        Ok(signed) => signed,
        Err(page) => return *page,
    };
    let t = |k| text(lang.0, k);
    let found = window_of::<SchoolPages>(&web, &session, &query.window).await;
    let w = match windows::found(found, (lang, path, &session), &query.window) {
        Ok(w) => w,
        Err(page) => return *page,
    };
    let columns = match runs_of::<SchoolPages>(&web, (lang, path, &session), &w).await {
        Ok(columns) => columns,
        Err(page) => return *page,
    };
    let rows: [CompareRow<'_, pb::SchoolRunSummary>; 5] = [
        (t("seats-given").to_owned(), &|_, s| s.assigned.to_string()),
        (t("first-choice").to_owned(), &|_, s| {
            let first = s.rank_counts.iter().find(|r| r.rank == 1);
            first.map_or(0, |r| r.count).to_string()
        }),
        (t("blocking-pairs").to_owned(), &|_, s| {
            s.blocking_pairs.to_string()
        }),
        (t("justified-envy").to_owned(), &|_, s| {
            s.justified_envy.to_string()
        }),
        // Properties of the mechanisms (for students), not of the figures.
        (t("strategy-proof").to_owned(), &|r, _| {
            let yes = matches!(r.mechanism.as_str(), "da" | "ttc");
            (if yes { t("yes") } else { t("no") }).to_owned()
        }),
    ];
    let body = format!(
        "<p>{}</p>{}",
        t("school-compare-explained"),
        compare_table(lang.0, BASE, &columns, mechanism_name, &rows)
    );
    let title = format!("{}: {}", t("compare-title"), w.window);
    page(StatusCode::OK, lang, path, Some(&session), &title, &body)
}

/// The `Schools` API for the shared handlers of [`super::windows`].
pub(super) struct SchoolPages;

impl Admin for SchoolPages {
    const BASE: &'static str = "/schools";
    const TABLES: &'static [&'static str] = &SCHOOL_TABLES;
    const GIVE_BACK: GiveBackWords = GiveBackWords {
        title: "seat-re-offer-title",
        help: "seat-re-offer-help",
        participant: "student-id",
        button: "give-seat-back",
        nobody: "nobody-waiting-seat",
    };
    type Summary = pb::SchoolRunSummary;
    type Tables = SchoolTables;

    async fn list(web: &Web, session: &Session) -> Result<Vec<pb::WindowSummary>, tonic::Status> {
        let request = web.request(session, pb::ListWindowsRequest {});
        Ok(api(web).list_windows(request).await?.into_inner().windows)
    }

    async fn close(web: &Web, session: &Session, window: String) -> Result<(), tonic::Status> {
        let request = web.request(session, pb::CloseSchoolApplicationsRequest { window });
        api(web).close_applications(request).await.map(drop)
    }

    async fn verify(
        web: &Web,
        session: &Session,
        run_id: Vec<u8>,
    ) -> Result<pb::RunVerification, tonic::Status> {
        let request = web.request(session, pb::VerifySchoolRunRequest { run_id });
        let answer = api(web).verify(request).await?.into_inner();
        Ok(answer.verification.unwrap_or_default())
    }

    type Results = pb::SchoolResults;

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
    ) -> Result<Vec<pb::SchoolResults>, tonic::Status> {
        let request = web.request(session, pb::GetSchoolResultsRequest { run_id });
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

    fn tables(parts: Vec<pb::SchoolResults>) -> (pb::SchoolRunSummary, SchoolTables) {
        school_tables(parts)
    }

    fn write_csv(
        tables: &SchoolTables,
        name: &str,
        w: &mut csv::Writer<Vec<u8>>,
    ) -> csv::Result<()> {
        tables.write_csv(name, w)
    }

    async fn give_back(
        web: &Web,
        session: &Session,
        run_id: Vec<u8>,
        student: String,
    ) -> Result<GivenBack, tonic::Status> {
        let request = pb::WithdrawSchoolSeatRequest {
            run_id,
            student,
            request_id: String::new(),
        };
        let answer = api(web)
            .withdraw(web.request(session, request))
            .await?
            .into_inner();
        Ok(GivenBack {
            place: answer.school,
            re_offered_to: answer.re_offered_to.map(|o| o.student),
            changes: answer.changes,
        })
    }
}
