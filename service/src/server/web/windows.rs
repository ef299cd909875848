//! What the fair and school administrators' pages share: the windows' table, a window's facts
//! and runs, the mechanisms side by side, a beacon from a form, and multipart forms read whole.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::Multipart;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;

use super::fairs::{csrf_field, csv_download, q, refused_action, run_id, see_other};
use super::i18n::{Lang, text};
use super::pages::{LangQuery, checked, esc, failed, language, page, problem, signed_in};
use super::{Session, Web};
use crate::proto::v1 as pb;

/// A multipart form read whole: its text fields, its files (name, bytes) by field, and why it
/// stopped short, if it did.
#[derive(Debug, Default)]
pub(super) struct Upload {
    pub fields: HashMap<String, String>,
    pub files: HashMap<String, (String, Vec<u8>)>,
    pub error: Option<String>,
}

impl Upload {
    pub async fn read(mut form: Multipart) -> Upload {
        let mut upload = Upload::default();
        loop {
            match form.next_field().await {
                Ok(Some(field)) => {
                    let name = field.name().unwrap_or("").to_owned();
                    let file = field.file_name().map(str::to_owned);
                    match field.bytes().await {
                        Ok(bytes) => match file {
                            Some(file) if !bytes.is_empty() => {
                                let file = if file.is_empty() {
                                    format!("{name}.csv")
                                } else {
                                    file
                                };
                                upload.files.insert(name, (file, bytes.to_vec()));
                            }
                            Some(_) => {}
                            None => {
                                let text = String::from_utf8_lossy(&bytes).trim().to_owned();
                                upload.fields.insert(name, text);
                            }
                        },
                        Err(e) => {
                            upload.error = Some(e.body_text());
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    upload.error = Some(e.body_text());
                    break;
                }
            }
        }
        upload
    }

    /// A text field ("" when absent).
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }
}

/// The domain's windows as a table: name, places, applications, state, runs.
pub(super) fn windows_table(
    lang: Lang,
    base: &str,
    windows: &[pb::WindowSummary],
    places: &'static str,
) -> String {
    let t = |k| text(lang, k);
    let mut body = format!(
        "<h2>{}</h2><div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"{}\"><table><thead><tr>\
         <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
         <th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        t("windows"),
        t("windows"),
        t("window"),
        t(places),
        t("applications"),
        t("state"),
        t("runs"),
    );
    for w in windows {
        let state = if w.closed_index.is_some() {
            t("closed")
        } else {
            t("open")
        };
        let _ = write!(
            body,
            "<tr><td><a href=\"{base}/window?window={}\">{}</a></td><td>{}</td><td>{}</td><td>{state}</td><td>{}</td></tr>",
            q(&w.window),
            esc(&w.window),
            w.places,
            w.applications,
            w.runs.len()
        );
    }
    body.push_str("</tbody></table></div>");
    if windows.is_empty() {
        let _ = write!(body, "<p>{}</p>", t("no-windows"));
    }
    body
}

/// Seconds between two reloads of an open window's page.
const LIVE_SECONDS: &str = "10";

/// An open window's page reloads itself (its counts live while applications arrive); its only
/// form is a button, so a reload loses nothing typed.
pub(super) fn live(mut page: Response, w: &pb::WindowSummary) -> Response {
    if w.closed_index.is_none() {
        page.headers_mut()
            .insert(header::REFRESH, HeaderValue::from_static(LIVE_SECONDS));
    }
    page
}

/// A window's counts and state (and, while open, that they are live).
pub(super) fn window_facts(lang: Lang, w: &pb::WindowSummary, places: &'static str) -> String {
    let t = |k| text(lang, k);
    let live = if w.closed_index.is_none() {
        format!("<p role=\"status\">{}</p>", t("live-counts"))
    } else {
        String::new()
    };
    live + &format!(
        "<table><tr><th scope=\"row\">{}</th><td>{}</td></tr><tr><th scope=\"row\">{}</th><td>{}</td></tr>\
         <tr><th scope=\"row\">{}</th><td>{}</td></tr></table>",
        t(places),
        w.places,
        t("applications"),
        w.applications,
        t("state"),
        match w.closed_index {
            Some(i) => format!("{} ({} {i})", t("closed"), t("log-entry")),
            None => t("open").to_owned(),
        },
    )
}

/// A window's runs, with a link to them side by side.
pub(super) fn runs_list(
    lang: Lang,
    base: &str,
    w: &pb::WindowSummary,
    mechanism: fn(Lang, &str) -> &'static str,
    placed: &'static str,
) -> String {
    let t = |k| text(lang, k);
    if w.runs.is_empty() {
        return String::new();
    }
    let mut body = format!("<h2>{}</h2><ul>", t("runs"));
    for r in &w.runs {
        let _ = write!(
            body,
            "<li><a href=\"{base}/run?run={}\">{} · {} {}</a> · {} {} / {}</li>",
            hex::encode(&r.run_id),
            mechanism(lang, &r.mechanism),
            t("log-entry"),
            r.log_index,
            t(placed),
            r.assigned,
            r.participants,
        );
    }
    let _ = write!(
        body,
        "</ul><p><a href=\"{base}/compare?window={}\">{}</a></p>",
        q(&w.window),
        t("compare-title")
    );
    body
}

/// One row of a comparison: its label and each run's cell.
pub(super) type CompareRow<'a, S> = (String, &'a dyn Fn(&pb::RunRecord, &S) -> String);

/// Runs side by side: a column per run (linked), a row per figure.
pub(super) fn compare_table<S>(
    lang: Lang,
    base: &str,
    columns: &[(pb::RunRecord, S)],
    mechanism: fn(Lang, &str) -> &'static str,
    rows: &[CompareRow<'_, S>],
) -> String {
    let t = |k| text(lang, k);
    let mut body = format!(
        "<div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"{}\"><table class=\"compare\"><thead><tr><th scope=\"col\">{}</th>",
        t("compare-title"),
        t("figure")
    );
    for (record, _) in columns {
        let _ = write!(
            body,
            "<th scope=\"col\"><a href=\"{base}/run?run={}\">{}</a><br><span class=\"muted\">{} {}</span></th>",
            hex::encode(&record.run_id),
            mechanism(lang, &record.mechanism),
            t("log-entry"),
            record.log_index
        );
    }
    body.push_str("</tr></thead><tbody>");
    for (label, cell) in rows {
        let _ = write!(body, "<tr><th scope=\"row\">{label}</th>");
        for (record, s) in columns {
            let _ = write!(body, "<td>{}</td>", cell(record, s));
        }
        body.push_str("</tr>");
    }
    body.push_str("</tbody></table></div>");
    body
}

/// The beacon a run form gives (`beacon_source`, `beacon_round`, `beacon_value` in hex), none
/// when the value is empty, or the field at fault.
pub(super) fn beacon(
    lang: Lang,
    source: &str,
    round: &str,
    value: &str,
) -> Result<Option<pb::Beacon>, String> {
    let t = |k| text(lang, k);
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let bytes =
        hex::decode(value).map_err(|_| format!("{}: {}", t("beacon-value"), t("not-hex")))?;
    let round = round
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("{}: {}", t("beacon-round"), t("not-number")))?;
    Ok(Some(pb::Beacon {
        source: source.trim().to_owned(),
        round,
        value: bytes,
    }))
}

/// The window `window_of` found, or the page saying why not (404 for no such window).
pub(super) fn found(
    found: Result<Option<pb::WindowSummary>, tonic::Status>,
    (lang, path, session): ((Lang, bool), &str, &Session),
    window: &str,
) -> Result<pb::WindowSummary, Box<Response>> {
    let t = |k| text(lang.0, k);
    match found {
        Ok(Some(w)) => Ok(w),
        Ok(None) => {
            let what = format!("{}: «{window}» — {}", t("window"), t("no-such-window"));
            Err(Box::new(super::pages::sentence(
                StatusCode::NOT_FOUND,
                lang,
                path,
                Some(session),
                &what,
            )))
        }
        Err(status) => Err(Box::new(failed(&status, lang, path, session))),
    }
}

/// An allocation domain's API as the administrators' pages call it: what their generic
/// handlers ([`close`], [`verify`], [`download`]) and lookups need.
pub(super) trait Admin: Send + Sync + 'static {
    /// Where the domain's pages are (`/fairs`).
    const BASE: &'static str;
    /// The CSV files a run publishes.
    const TABLES: &'static [&'static str];
    type Summary: Send;
    type Tables: Send;

    fn list(
        web: &Web,
        session: &Session,
    ) -> impl Future<Output = Result<Vec<pb::WindowSummary>, tonic::Status>> + Send;
    fn close(
        web: &Web,
        session: &Session,
        window: String,
    ) -> impl Future<Output = Result<(), tonic::Status>> + Send;
    fn verify(
        web: &Web,
        session: &Session,
        run_id: Vec<u8>,
    ) -> impl Future<Output = Result<pb::RunVerification, tonic::Status>> + Send;
    /// One message of a run's `GetResults` stream.
    type Results: Send;
    /// A run's record (`GetRun`).
    fn run_record(
        web: &Web,
        session: &Session,
        run_id: Vec<u8>,
    ) -> impl Future<Output = Result<pb::RunRecord, tonic::Status>> + Send;
    /// A run's results messages: all of them, or only the first (which holds the figures).
    fn results_messages(
        web: &Web,
        session: &Session,
        run_id: Vec<u8>,
        all: bool,
    ) -> impl Future<Output = Result<Vec<Self::Results>, tonic::Status>> + Send;
    /// The figures and tables of a run's results messages.
    fn tables(parts: Vec<Self::Results>) -> (Self::Summary, Self::Tables);
    fn write_csv(
        tables: &Self::Tables,
        name: &str,
        w: &mut csv::Writer<Vec<u8>>,
    ) -> csv::Result<()>;
    /// The words of the give-back form and page (text keys).
    const GIVE_BACK: GiveBackWords;
    /// A participant gives its place back after run `run_id`.
    fn give_back(
        web: &Web,
        session: &Session,
        run_id: Vec<u8>,
        participant: String,
    ) -> impl Future<Output = Result<GivenBack, tonic::Status>> + Send;
}

/// The text keys of a domain's give-back form and page.
pub(super) struct GiveBackWords {
    pub title: &'static str,
    pub help: &'static str,
    /// The participant id field's label.
    pub participant: &'static str,
    pub button: &'static str,
    /// When nobody waiting took the place.
    pub nobody: &'static str,
}

/// A place given back: where (as shown), the logged changes, and who was offered it.
pub(super) struct GivenBack {
    pub place: String,
    pub changes: Vec<pb::PlaceChange>,
    pub re_offered_to: Option<String>,
}

/// The form on a run's page where an administrator gives a participant's place back.
pub(super) fn give_back_form<A: Admin>(lang: Lang, session: &Session, run_hex: &str) -> String {
    let t = |k| text(lang, k);
    let words = &A::GIVE_BACK;
    format!(
        "<h2>{}</h2><p>{}</p><form method=\"post\" action=\"{}/withdraw\">{}\
         <input type=\"hidden\" name=\"run\" value=\"{run_hex}\"><label for=\"participant\">{}</label>\
         <input id=\"participant\" name=\"participant\" required><button type=\"submit\">{}</button></form>",
        t(words.title),
        t(words.help),
        A::BASE,
        csrf_field(session),
        t(words.participant),
        t(words.button),
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct GiveBackForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    run: String,
    #[serde(default)]
    participant: String,
}

/// `POST {BASE}/withdraw`: a participant gives its place back; the re-offers it caused.
pub(super) async fn withdraw<A: Admin>(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Form(form): Form<GiveBackForm>,
) -> Response {
    let path = &format!("{}/withdraw", A::BASE);
    let session = match checked(&web, &headers, &form.csrf, path) {
        Ok(session) => session,
        Err(refused) => return *refused,
    };
    let lang = language(&headers, &LangQuery::default());
    let t = |k| text(lang.0, k);
    let words = &A::GIVE_BACK;
    let id = match run_id(lang, &session, path, &form.run) {
        Ok(id) => id,
        Err(page) => return *page,
    };
    let back = format!("{}/run?run={}", A::BASE, hex::encode(&id));
    let participant = form.participant.trim().to_owned();
    let answer = match A::give_back(&web, &session, id, participant).await {
        Ok(answer) => answer,
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::NotFound
                    | tonic::Code::FailedPrecondition
                    | tonic::Code::InvalidArgument
            ) =>
        {
            let body = format!(
                "<p class=\"error\" role=\"alert\">{}: {}</p><p><a href=\"{back}\">{}</a></p>",
                t(words.participant),
                esc(&problem(&status)),
                t("back")
            );
            let code = StatusCode::CONFLICT;
            return page(code, lang, path, Some(&session), t(words.title), &body);
        }
        Err(status) => return failed(&status, lang, path, &session),
    };
    let mut body = format!(
        "<p>{} <strong>{}</strong></p><ol>",
        t("given-back"),
        esc(&answer.place)
    );
    for c in &answer.changes {
        let _ = write!(
            body,
            "<li>{} {} · {} · {}</li>",
            t("log-entry"),
            c.log_index,
            esc(&c.participant),
            esc(&c.place)
        );
    }
    body.push_str("</ol>");
    let _ = match &answer.re_offered_to {
        Some(to) => write!(
            body,
            "<p>{} <strong>{}</strong></p>",
            t("re-offered-to"),
            esc(to)
        ),
        None => write!(body, "<p>{}</p>", t(words.nobody)),
    };
    let _ = write!(body, "<p><a href=\"{back}\">{}</a></p>", t("back"));
    page(
        StatusCode::OK,
        lang,
        path,
        Some(&session),
        t(words.title),
        &body,
    )
}

/// A run's record and figures (the first message of its results only).
pub(super) async fn summary<A: Admin>(
    web: &Web,
    session: &Session,
    run_id: Vec<u8>,
) -> Result<(pb::RunRecord, A::Summary), tonic::Status> {
    let record = A::run_record(web, session, run_id.clone()).await?;
    let first = A::results_messages(web, session, run_id, false).await?;
    Ok((record, A::tables(first).0))
}

/// A run's record, figures and tables, read whole.
pub(super) async fn results<A: Admin>(
    web: &Web,
    session: &Session,
    run_id: Vec<u8>,
) -> Result<(pb::RunRecord, A::Summary, A::Tables), tonic::Status> {
    let record = A::run_record(web, session, run_id.clone()).await?;
    let parts = A::results_messages(web, session, run_id, true).await?;
    let (summary, tables) = A::tables(parts);
    Ok((record, summary, tables))
}

/// The window named `window`, if the domain has it.
pub(super) async fn window_of<A: Admin>(
    web: &Web,
    session: &Session,
    window: &str,
) -> Result<Option<pb::WindowSummary>, tonic::Status> {
    let listed = A::list(web, session).await?;
    Ok(listed.into_iter().find(|w| w.window == window))
}

/// The figures of every run of `w`, oldest first, or the page saying why not.
pub(super) async fn runs_of<A: Admin>(
    web: &Web,
    (lang, path, session): ((Lang, bool), &str, &Session),
    w: &pb::WindowSummary,
) -> Result<Vec<(pb::RunRecord, A::Summary)>, Box<Response>> {
    let mut columns = Vec::new();
    for r in &w.runs {
        match summary::<A>(web, session, r.run_id.clone()).await {
            Ok(column) => columns.push(column),
            Err(status) => return Err(Box::new(failed(&status, lang, path, session))),
        }
    }
    Ok(columns)
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RunQuery {
    lang: Option<String>,
    #[serde(default)]
    run: String,
    #[serde(default)]
    table: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct CloseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    window: String,
}

/// `POST BASE/close`: closes the window; its page again.
pub(super) async fn close<A: Admin>(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Form(form): Form<CloseForm>,
) -> Response {
    let session = match checked(&web, &headers, &form.csrf, A::BASE) {
        Ok(session) => session,
        Err(refused) => return *refused,
    };
    let lang = language(&headers, &LangQuery::default());
    match A::close(&web, &session, form.window.clone()).await {
        Ok(()) => see_other(&format!("{}/window?window={}", A::BASE, q(&form.window))),
        Err(status) => refused_action(A::BASE, &status, lang, &session, &form.window),
    }
}

/// `GET BASE/verify?run=`: the run re-run from the log and its stored inputs.
pub(super) async fn verify<A: Admin>(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<RunQuery>,
) -> Response {
    let path = format!("{}/verify", A::BASE);
    let (lang, session) = match signed_in(&web, &headers, query.lang.clone(), &path) {
        Ok(signed) => signed,
        Err(page) => return *page,
    };
    let id = match run_id(lang, &session, &path, &query.run) {
        Ok(id) => id,
        Err(page) => return *page,
    };
    let v = match A::verify(&web, &session, id.clone()).await {
        Ok(v) => v,
        Err(status) => return failed(&status, lang, &path, &session),
    };
    let back = format!("{}/run?run={}", A::BASE, hex::encode(&id));
    let body = super::pages::verification(lang.0, &v, &back);
    let title = text(lang.0, "verify-run");
    page(StatusCode::OK, lang, &path, Some(&session), title, &body)
}

/// `GET BASE/download?run=&table=`: one of the run's CSV files, as the CLI writes it.
pub(super) async fn download<A: Admin>(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<RunQuery>,
) -> Response {
    let path = format!("{}/download", A::BASE);
    let (lang, session) = match signed_in(&web, &headers, query.lang.clone(), &path) {
        Ok(signed) => signed,
        Err(page) => return *page,
    };
    let id = match run_id(lang, &session, &path, &query.run) {
        Ok(id) => id,
        Err(page) => return *page,
    };
    let Some(name) = A::TABLES.iter().copied().find(|n| *n == query.table) else {
        let what = format!("table: {}", A::TABLES.join(", "));
        return super::pages::sentence(StatusCode::BAD_REQUEST, lang, &path, Some(&session), &what);
    };
    let (record, _, tables) = match results::<A>(&web, &session, id).await {
        Ok(r) => r,
        Err(status) => return failed(&status, lang, &path, &session),
    };
    csv_download(&record.window, name, |w| A::write_csv(&tables, name, w))
}
