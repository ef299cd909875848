//! The console's pages: HTML written here, every value escaped ([`esc`]).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::i18n::{Lang, text};
use super::{LANG_COOKIE, Session, Web};
use crate::proto::v1 as pb;
use crate::proto::v1::audit_client::AuditClient;

pub use allot_scenarios::html::esc;

#[derive(Debug, Default, Deserialize)]
pub(super) struct LangQuery {
    lang: Option<String>,
}

impl LangQuery {
    pub(super) fn of(lang: Option<String>) -> LangQuery {
        LangQuery { lang }
    }
}

/// The page's language: `?lang=`, the cookie, then the browser's; and whether to remember a
/// `?lang=` choice.
pub(super) fn language(headers: &HeaderMap, query: &LangQuery) -> (Lang, bool) {
    if let Some(chosen) = query.lang.as_deref().and_then(Lang::parse) {
        return (chosen, true);
    }
    if let Some(kept) = super::cookie(headers, LANG_COOKIE).and_then(Lang::parse) {
        return (kept, false);
    }
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    (Lang::from_accept(accept), false)
}

/// A whole page: the layout around `body`, with the session's sign-out form when signed in.
pub(super) fn page(
    status: StatusCode,
    (lang, remember): (Lang, bool),
    path: &str,
    session: Option<&Session>,
    title: &str,
    body: &str,
) -> Response {
    let t = |k| text(lang, k);
    let mut html = String::with_capacity(body.len() + 2048);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · allot</title><link rel=\"stylesheet\" href=\"/assets/style.css\"></head>\
         <body><a class=\"skip\" href=\"#main\">{skip}</a><header><span class=\"name\">allot</span>\
         <a href=\"{path}?lang={other}\" lang=\"{other}\">{switch}</a>",
        lang = lang.code(),
        title = esc(title),
        skip = t("skip"),
        path = esc(path),
        other = lang.other().code(),
        switch = t("language"),
    );
    if let Some(s) = session {
        let _ = write!(
            html,
            "<span>{} <strong>{}</strong></span><form class=\"inline\" method=\"post\" \
             action=\"/sign-out\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button class=\"plain\" type=\"submit\">{}</button></form>",
            t("signed-in-as"),
            esc(&s.caller.name),
            esc(&s.csrf),
            t("sign-out"),
        );
    }
    let _ = writeln!(
        html,
        "</header><main id=\"main\"><h1>{}</h1>{body}</main></body></html>",
        esc(title)
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Nothing of another origin, no framing: the pages need neither.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if remember
        && let Ok(value) = HeaderValue::from_str(&format!(
            "{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000",
            lang.code()
        ))
    {
        headers.append(header::SET_COOKIE, value);
    }
    response
}

/// A page that says one sentence (an error), with `status`.
pub(super) fn sentence(
    status: StatusCode,
    lang: (Lang, bool),
    path: &str,
    session: Option<&Session>,
    what: &str,
) -> Response {
    let body = format!("<p class=\"error\" role=\"alert\">{}</p>", esc(what));
    page(status, lang, path, session, text(lang.0, "title"), &body)
}

fn sign_in_form(lang: Lang, error: Option<&str>) -> String {
    let t = |k| text(lang, k);
    let error = error
        .map(|e| {
            format!(
                "<p class=\"error\" role=\"alert\" id=\"token-error\">{}</p>",
                esc(e)
            )
        })
        .unwrap_or_default();
    let described = if error.is_empty() {
        "token-help"
    } else {
        "token-help token-error"
    };
    format!(
        "{error}<form method=\"post\" action=\"/sign-in\"><label for=\"token\">{label}</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required \
         aria-describedby=\"{described}\"><p id=\"token-help\">{help}</p>\
         <button type=\"submit\">{go}</button></form>",
        label = t("token"),
        help = t("token-help"),
        go = t("sign-in"),
    )
}

/// `GET /`: the sign-in form, or the signed-in official's pages.
pub(super) async fn home(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<LangQuery>,
) -> Response {
    let lang = language(&headers, &query);
    let t = |k| text(lang.0, k);
    let Some(session) = web.session(&headers) else {
        return page(
            StatusCode::OK,
            lang,
            "/",
            None,
            t("sign-in"),
            &sign_in_form(lang.0, None),
        );
    };
    let roles = session.caller.roles;
    let mut links = String::new();
    if roles.contains(super::super::access::Role::FairAdmin)
        || roles.contains(super::super::access::Role::Auditor)
    {
        let _ = write!(links, "<li><a href=\"/fairs\">{}</a></li>", t("fairs"));
    }
    if roles.contains(super::super::access::Role::SchoolAdmin)
        || roles.contains(super::super::access::Role::Auditor)
    {
        let _ = write!(links, "<li><a href=\"/schools\">{}</a></li>", t("schools"));
    }
    if roles.contains(super::super::access::Role::Planner) {
        let _ = write!(
            links,
            "<li><a href=\"/planning\">{}</a></li>",
            t("planning")
        );
    }
    if roles.contains(super::super::access::Role::ClinicSystem) {
        let _ = write!(links, "<li><a href=\"/clinics\">{}</a></li>", t("clinics"));
    }
    if roles.contains(super::super::access::Role::Auditor) {
        let _ = write!(links, "<li><a href=\"/audit\">{}</a></li>", t("audit"));
    }
    let body = if links.is_empty() {
        format!("<p>{}</p>", t("no-pages"))
    } else {
        format!("<h2>{}</h2><ul>{links}</ul>", t("your-pages"))
    };
    let body = format!(
        "<p>{}: {}</p>{body}<p><a href=\"/results\">{}</a></p>",
        t("roles"),
        esc(&roles.to_string()),
        t("results")
    );
    page(StatusCode::OK, lang, "/", Some(&session), t("title"), &body)
}

#[derive(Debug, Deserialize)]
pub(super) struct SignIn {
    #[serde(default)]
    token: String,
}

/// `POST /sign-in`: a session for a known token (303 to `/`), or the form again with why (401).
pub(super) async fn sign_in(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    let lang = language(&headers, &LangQuery::default());
    match web.sign_in(form.token.trim()) {
        Some((id, _)) => {
            let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
            response
                .headers_mut()
                .insert(header::SET_COOKIE, web.session_cookie(Some(&id)));
            response
        }
        None => {
            let form = sign_in_form(lang.0, Some(text(lang.0, "bad-token")));
            page(
                StatusCode::UNAUTHORIZED,
                lang,
                "/",
                None,
                text(lang.0, "sign-in"),
                &form,
            )
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct Csrf {
    #[serde(default)]
    csrf: String,
}

/// The session of a POST whose form carries its CSRF token, or the page refusing it.
pub(super) fn checked(
    web: &Web,
    headers: &HeaderMap,
    csrf: &str,
    path: &str,
) -> Result<Session, Box<Response>> {
    let lang = language(headers, &LangQuery::default());
    let Some(session) = web.session(headers) else {
        return Err(Box::new(sentence(
            StatusCode::UNAUTHORIZED,
            lang,
            path,
            None,
            text(lang.0, "signed-out"),
        )));
    };
    let matches: bool = {
        use sha2::Digest as _;
        // Compared as digests: no early exit on the first differing byte of the token itself.
        sha2::Sha256::digest(csrf.as_bytes()) == sha2::Sha256::digest(session.csrf.as_bytes())
    };
    if !matches {
        return Err(Box::new(sentence(
            StatusCode::FORBIDDEN,
            lang,
            path,
            Some(&session),
            text(lang.0, "csrf"),
        )));
    }
    Ok(session)
}

/// `POST /sign-out`: ends the session (its form's CSRF token needed).
pub(super) async fn sign_out(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Form(form): Form<Csrf>,
) -> Response {
    if let Err(refused) = checked(&web, &headers, &form.csrf, "/") {
        return *refused;
    }
    web.sign_out(&headers);
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, web.session_cookie(None));
    response
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct AuditQuery {
    lang: Option<String>,
    entry: Option<String>,
}

/// What a failed call says, without the API's field path (`request.index: ...`), which means
/// nothing on a page.
pub(super) fn problem(status: &tonic::Status) -> String {
    tonic_types::StatusExt::get_details_bad_request(status)
        .and_then(|b| b.field_violations.into_iter().next())
        .map_or_else(|| status.message().to_owned(), |v| v.description)
}

/// A failed call as a page: 403 for PERMISSION_DENIED, 401 for UNAUTHENTICATED, else the
/// status's message in a sentence.
pub(super) fn failed(
    status: &tonic::Status,
    lang: (Lang, bool),
    path: &str,
    session: &Session,
) -> Response {
    let t = |k| text(lang.0, k);
    match status.code() {
        tonic::Code::PermissionDenied => sentence(
            StatusCode::FORBIDDEN,
            lang,
            path,
            Some(session),
            t("forbidden"),
        ),
        tonic::Code::Unauthenticated => {
            sentence(StatusCode::UNAUTHORIZED, lang, path, None, t("signed-out"))
        }
        tonic::Code::InvalidArgument | tonic::Code::NotFound | tonic::Code::OutOfRange => {
            let what = format!("{}: {}", t("server-error"), problem(status));
            sentence(StatusCode::BAD_REQUEST, lang, path, Some(session), &what)
        }
        _ => {
            let what = format!("{}: {}", t("server-error"), problem(status));
            sentence(
                StatusCode::SERVICE_UNAVAILABLE,
                lang,
                path,
                Some(session),
                &what,
            )
        }
    }
}

/// A signed-in page's language and session, or the page saying to sign in (401).
pub(super) fn signed_in(
    web: &Web,
    headers: &HeaderMap,
    lang: Option<String>,
    path: &str,
) -> Result<((Lang, bool), Session), Box<Response>> {
    let lang = language(headers, &LangQuery { lang });
    match web.session(headers) {
        Some(session) => Ok((lang, session)),
        None => {
            let why = text(lang.0, "signed-out");
            Err(Box::new(sentence(
                StatusCode::UNAUTHORIZED,
                lang,
                path,
                None,
                why,
            )))
        }
    }
}

/// `GET /audit`: the latest signed checkpoint and, with `?entry=N`, that entry's inclusion
/// proof and receipt (role auditor).
pub(super) async fn audit(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<AuditQuery>,
) -> Response {
    let (lang, session) = match signed_in(&web, &headers, query.lang.clone(), "/audit") {
        Ok(signed) => signed,
        Err(page) => return *page,
    };
    let t = |k| text(lang.0, k);
    let mut api = AuditClient::new(web.channel.clone());
    let head = match api
        .get_checkpoint(web.request(&session, pb::GetCheckpointRequest::default()))
        .await
    {
        Ok(answer) => answer.into_inner(),
        Err(status) => return failed(&status, lang, "/audit", &session),
    };
    let checkpoint = head.checkpoint.unwrap_or_default();
    let mut body = format!(
        "<h2>{}</h2><table><tr><th scope=\"row\">{}</th><td>{}</td></tr>\
         <tr><th scope=\"row\">{}</th><td>{}</td></tr><tr><th scope=\"row\">{}</th><td>{}</td></tr>\
         <tr><th scope=\"row\">{}</th><td><code>{}</code></td></tr>\
         <tr><th scope=\"row\">{}</th><td><code>{}</code></td></tr></table><pre tabindex=\"0\">{}</pre>",
        t("checkpoint"),
        t("origin"),
        esc(&checkpoint.origin),
        t("tree-size"),
        checkpoint.tree_size,
        t("log-size"),
        head.log_size,
        t("root-hash"),
        hex::encode(&checkpoint.root_hash),
        t("verifier-key"),
        esc(&head.verifier_key),
        esc(&checkpoint.note),
    );
    if let Some(cosigned) = &head.cosigned {
        // Every signature line but the log's own is a witness's cosignature.
        let signatures = cosigned
            .note
            .lines()
            .filter(|l| l.starts_with('\u{2014}'))
            .count();
        let _ = write!(
            body,
            "<h2>{}</h2><p>{}: {} · {}: {}</p><pre tabindex=\"0\">{}</pre>",
            t("cosigned"),
            t("tree-size"),
            cosigned.tree_size,
            t("cosignatures"),
            signatures.saturating_sub(1),
            esc(&cosigned.note),
        );
    }
    body.push_str(&growth(&web, &session, &mut api, head.log_size, lang.0).await);
    let entry = query.entry.as_deref().unwrap_or("");
    let _ = write!(
        body,
        "<form method=\"get\" action=\"/audit\"><label for=\"entry\">{}</label>\
         <input id=\"entry\" name=\"entry\" inputmode=\"numeric\" value=\"{}\">\
         <button type=\"submit\">{}</button></form>",
        t("entry"),
        esc(entry),
        t("prove"),
    );
    if !entry.is_empty() {
        match entry.trim().parse::<u64>() {
            Err(_) => {
                let _ = write!(
                    body,
                    "<p class=\"error\" role=\"alert\">{}: «{}»</p>",
                    t("bad-entry"),
                    esc(entry)
                );
            }
            Ok(index) => {
                let request = pb::GetInclusionProofRequest {
                    index,
                    ..Default::default()
                };
                match api
                    .get_inclusion_proof(web.request(&session, request))
                    .await
                {
                    Ok(proof) => {
                        let proof = proof.into_inner();
                        let leaf = proof.entry.as_ref().map_or(&[][..], |e| &e.leaf_hash[..]);
                        let path: String = proof
                            .path
                            .iter()
                            .map(|h| format!("<li><code>{}</code></li>", hex::encode(h)))
                            .collect();
                        let _ = write!(
                            body,
                            "<h2>{} {index}</h2><p>{}: <code>{}</code></p><h3>{}</h3><ol>{path}</ol>\
                             <h3>{}</h3><pre tabindex=\"0\">{}</pre>",
                            t("entry"),
                            t("leaf-hash"),
                            hex::encode(leaf),
                            t("path"),
                            t("receipt"),
                            esc(&proof.tlog_proof),
                        );
                    }
                    Err(status) => {
                        // The entry field is the one at fault: its label, then the problem.
                        let _ = write!(
                            body,
                            "<p class=\"error\" role=\"alert\">{}: {}</p>",
                            t("entry"),
                            esc(&problem(&status))
                        );
                    }
                }
            }
        }
    }
    page(
        StatusCode::OK,
        lang,
        "/audit",
        Some(&session),
        t("audit"),
        &body,
    )
}

/// Points of the log's growth chart.
const GROWTH_POINTS: u64 = 40;

/// The log's growth: entries against time, from the times of [`GROWTH_POINTS`] entries spread
/// evenly over the log (read with `GetEntry`, so as cheap at a billion entries as at a
/// thousand), as an SVG line.
async fn growth(
    web: &Web,
    session: &Session,
    api: &mut AuditClient<super::GatedChannel>,
    size: u64,
    lang: Lang,
) -> String {
    let t = |k| text(lang, k);
    if size < 2 {
        return String::new();
    }
    let steps = GROWTH_POINTS.min(size);
    let mut points = Vec::new();
    for k in 0..steps {
        let index = k * (size - 1) / (steps - 1);
        let request = pb::GetEntryRequest { index };
        let Ok(answer) = api.get_entry(web.request(session, request)).await else {
            continue;
        };
        let time = answer
            .into_inner()
            .entry
            .and_then(|e| e.decoded)
            .and_then(|d| d.time)
            .map(|t| t.seconds);
        if let Some(seconds) = time {
            points.push((seconds, index + 1));
        }
    }
    let (Some(first), Some(last)) = (points.first().copied(), points.last().copied()) else {
        return String::new();
    };
    let (w, h, pad) = (600.0, 160.0, 8.0);
    let span = (last.0 - first.0).max(1) as f64;
    let x = |s: i64| pad + (s - first.0) as f64 / span * (w - 2.0 * pad);
    let y = |n: u64| h - pad - n as f64 / last.1 as f64 * (h - 2.0 * pad);
    let line: Vec<String> = points
        .iter()
        .map(|&(s, n)| format!("{:.1},{:.1}", x(s), y(n)))
        .collect();
    let day = |s: i64| {
        jiff::Timestamp::from_second(s)
            .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default()
    };
    format!(
        "<h2>{}</h2><figure><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" class=\"growth\" role=\"img\" \
         aria-labelledby=\"growth-caption\"><polyline class=\"line\" points=\"{}\"/></svg>\
         <figcaption id=\"growth-caption\">{}: {} ({}) → {} ({})</figcaption></figure>",
        t("growth"),
        line.join(" "),
        t("growth-caption"),
        first.1,
        day(first.0),
        last.1,
        day(last.0),
    )
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct PageQuery {
    lang: Option<String>,
    page: Option<String>,
}

/// The colour of a utilisation from 0 to 1 (five steps, light to dark, readable with the text
/// in the cells' titles; the legend repeats them, as `.h0`..`.h4` in style.css).
const HEAT: [&str; 5] = ["#eef4fb", "#bcd4ee", "#7fa9d9", "#3f78bd", "#1a4a8a"];

fn heat(used: u32, available: u32) -> &'static str {
    if available == 0 {
        return "#d9d9d9";
    }
    let share = f64::from(used) / f64::from(available);
    HEAT[((share * 5.0) as usize).min(4)]
}

/// `GET /clinics`: the inventory by status and a clinic x day load heat map, 40 clinics a page
/// (role clinic-system).
pub(super) async fn clinics(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    use crate::proto::v1::appointments_client::AppointmentsClient;
    let (lang, session) = match signed_in(&web, &headers, query.lang.clone(), "/clinics") {
        Ok(signed) => signed,
        Err(page) => return *page,
    };
    let t = |k| text(lang.0, k);
    let mut api = AppointmentsClient::new(web.channel.clone());
    let inventory = match api
        .get_inventory(web.request(&session, pb::GetInventoryRequest::default()))
        .await
    {
        Ok(answer) => answer.into_inner(),
        Err(status) => return failed(&status, lang, "/clinics", &session),
    };
    let request = pb::ListClinicsRequest {
        page_size: 40,
        page_token: query.page.clone().unwrap_or_default(),
        with_load: true,
        ..Default::default()
    };
    let page_of = match api.list_clinics(web.request(&session, request)).await {
        Ok(answer) => answer.into_inner(),
        Err(status) => return failed(&status, lang, "/clinics", &session),
    };
    let mut body = format!(
        "<h2>{}</h2><table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        t("inventory"),
        t("status"),
        t("count"),
    );
    for (key, n) in [
        ("free", inventory.free),
        ("busy-tentative", inventory.busy_tentative),
        ("busy", inventory.busy),
        ("busy-unavailable", inventory.busy_unavailable),
    ] {
        let _ = write!(
            body,
            "<tr><th scope=\"row\">{}</th><td>{n}</td></tr>",
            t(key)
        );
    }
    body.push_str("</tbody></table>");
    let first = inventory.first_day.parse::<jiff::civil::Date>().ok();
    let day = |d: usize| {
        first
            .and_then(|f| f.checked_add(jiff::Span::new().days(d as i64)).ok())
            .map_or_else(|| format!("+{d}"), |x| x.to_string())
    };
    let days = inventory.days as usize;
    let (cell, label) = (18usize, 90usize);
    let width = label + cell * days;
    let height = cell * (page_of.clinics.len() + 1);
    let _ = write!(
        body,
        "<h2>{}</h2><p id=\"heat-help\">{}</p><div class=\"heat\" tabindex=\"0\" role=\"region\" \
         aria-labelledby=\"heat-help\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" \
         height=\"{height}\" role=\"img\" aria-label=\"{}\">",
        t("heat-map"),
        t("heat-map-help"),
        t("heat-map"),
    );
    for d in 0..days {
        let _ = write!(
            body,
            "<text x=\"{}\" y=\"13\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
            label + d * cell + cell / 2,
            day(d).get(8..10).unwrap_or("")
        );
    }
    for (row, c) in page_of.clinics.iter().enumerate() {
        let y = cell * (row + 1);
        let _ = write!(
            body,
            "<text x=\"0\" y=\"{}\" font-size=\"11\">{}</text>",
            y + 13,
            esc(&c.id)
        );
        for (d, l) in c.load.iter().enumerate() {
            let _ = write!(
                body,
                "<rect x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{} {}: {}/{}</title></rect>",
                label + d * cell,
                cell - 1,
                cell - 1,
                heat(l.used, l.available),
                esc(&c.id),
                day(d),
                l.used,
                l.available,
            );
        }
    }
    body.push_str("</svg></div>");
    let _ = write!(body, "<p>{}: ", t("legend"));
    // Classes, not `style=`: the pages' CSP allows no inline style.
    for i in 0..HEAT.len() {
        let _ = write!(
            body,
            "<span class=\"swatch h{i}\"></span> {}-{}% ",
            i * 20,
            (i + 1) * 20
        );
    }
    body.push_str("</p>");
    let _ = write!(
        body,
        "<p><a href=\"/clinics/actions\">{}</a></p>",
        t("clinic-actions")
    );
    if !page_of.next_page_token.is_empty() {
        let _ = write!(
            body,
            "<p><a href=\"/clinics?page={}\">{}</a></p>",
            esc(&page_of.next_page_token),
            t("next-page")
        );
    }
    page(
        StatusCode::OK,
        lang,
        "/clinics",
        Some(&session),
        t("clinics"),
        &body,
    )
}

/// A run's verification: the verdict, then every check the re-run made.
pub(super) fn verification(lang: Lang, v: &pb::RunVerification, back: &str) -> String {
    let t = |k| text(lang, k);
    let (class, verdict) = if v.ok {
        ("ok", t("verified"))
    } else {
        ("error", t("not-verified"))
    };
    let mut body = format!(
        "<p class=\"{class}\" role=\"status\">{verdict}</p><table><thead><tr><th scope=\"col\">{}</th>\
         <th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        t("check"),
        t("result"),
        t("found")
    );
    for c in &v.results {
        let _ = write!(
            body,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td></tr>",
            esc(&c.name),
            if c.ok { t("passed") } else { t("failed") },
            esc(&c.detail)
        );
    }
    let _ = write!(
        body,
        "</tbody></table><p>{}: <code>{}</code></p><p><a href=\"{}\">{}</a></p>",
        t("outcome-digest"),
        hex::encode(&v.recomputed_outcome_digest),
        esc(back),
        t("back")
    );
    body
}

/// `GET /favicon.ico`: none (an empty answer, so browsers log no error).
pub(super) async fn favicon() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// `GET /assets/style.css`.
pub(super) async fn style() -> Response {
    asset(include_str!("assets/style.css"), "text/css; charset=utf-8")
}

/// `GET /assets/verify.js`: the receipt check of the results page.
pub(super) async fn verify_js() -> Response {
    asset(
        include_str!("assets/verify.js"),
        "text/javascript; charset=utf-8",
    )
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

pub(super) async fn not_found(headers: HeaderMap) -> Response {
    let lang = language(&headers, &LangQuery::default());
    let what = match lang.0 {
        Lang::En => "There is no such page.",
        Lang::Ru => "Такой страницы нет.",
    };
    sentence(StatusCode::NOT_FOUND, lang, "/", None, what)
}
