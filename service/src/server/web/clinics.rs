//! The clinics' actions: a doctor's absence and the re-offers it caused, and the re-balancing of
//! a queue of referrals (`requests.csv`, as `allot appointments rebalance` reads it) with its
//! summary against the greedy baseline. Each is one call of the `Appointments` API with the
//! session's token. (The inventory and the heat map are in `pages`.)

use std::fmt::Write as _;
use std::sync::Arc;

use allot_engine::appointments::inputs::request_rows;
use allot_engine::input::Table;
use axum::extract::{Form, Multipart, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::i18n::{Lang, text};
use super::pages::{LangQuery, checked, esc, failed, language, page, problem, signed_in};
use super::{Session, Web};
use crate::proto::v1 as pb;
use crate::proto::v1::appointments_client::AppointmentsClient;
use allot_engine::appointments::Zone;

/// The largest `requests.csv` upload (a week of a city's referrals).
pub(super) const MAX_QUEUE: usize = 64 << 20;
/// Rows of a table shown on a page.
const SHOWN_ROWS: usize = 100;

fn api(web: &Web) -> AppointmentsClient<super::GatedChannel> {
    AppointmentsClient::new(web.channel.clone())
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20)
}

/// A time as the city's local `YYYY-MM-DD HH:MM` (empty without a time or a schedule).
fn local(zone: Option<&Zone>, t: Option<&prost_types::Timestamp>) -> String {
    match (zone, t) {
        (Some(zone), Some(_)) => crate::render::appointments::local_time(t, zone)
            .to_string()
            .replace('T', " "),
        _ => String::new(),
    }
}

fn forms(lang: Lang, session: &Session) -> String {
    let t = |k| text(lang, k);
    format!(
        "<h2>{}</h2><form method=\"post\" action=\"/clinics/absence\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"doctor\">{}</label><input id=\"doctor\" name=\"doctor\" required>\
         <label for=\"from\">{}</label><input id=\"from\" name=\"from\" type=\"datetime-local\" required>\
         <label for=\"until\">{}</label><input id=\"until\" name=\"until\" type=\"datetime-local\" required>\
         <button type=\"submit\">{}</button></form>\
         <h2>{}</h2><p id=\"queue-help\">{}</p><form method=\"post\" action=\"/clinics/rebalance\" enctype=\"multipart/form-data\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"requests\">requests.csv</label><input id=\"requests\" name=\"requests\" type=\"file\" accept=\".csv,text/csv\" required aria-describedby=\"queue-help\">\
         <label class=\"choice\"><input type=\"checkbox\" name=\"commit\" value=\"1\"> {}</label>\
         <button type=\"submit\">{}</button></form>",
        t("absence-title"),
        t("doctor"),
        t("absent-from"),
        t("absent-until"),
        t("mark-absence"),
        t("rebalance-title"),
        t("rebalance-help"),
        t("commit-bookings"),
        t("rebalance"),
        csrf = esc(&session.csrf),
    )
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ActionsQuery {
    lang: Option<String>,
}

/// `GET /clinics/actions`: the absence and re-balancing forms.
pub(super) async fn actions(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<ActionsQuery>,
) -> Response {
    let path = "/clinics/actions";
    let (lang, session) = match signed_in(&web, &headers, query.lang, path) {
        Ok(signed) => signed,
        Err(page) => return *page,
    };
    // Asks the API so that the page is refused as its actions would be.
    let probe = api(&web)
        .get_inventory(web.request(&session, pb::GetInventoryRequest::default()))
        .await;
    if let Err(status) = probe {
        return failed(&status, lang, path, &session);
    }
    let body = forms(lang.0, &session);
    page(
        StatusCode::OK,
        lang,
        path,
        Some(&session),
        text(lang.0, "clinic-actions"),
        &body,
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct AbsenceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    doctor: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
}

/// `POST /clinics/absence`: marks it; the slots it made unavailable and the re-offers it caused.
pub(super) async fn absence(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Form(form): Form<AbsenceForm>,
) -> Response {
    let path = "/clinics/absence";
    let session = match checked(&web, &headers, &form.csrf, path) {
        Ok(session) => session,
        Err(refused) => return *refused,
    };
    let lang = language(&headers, &LangQuery::default());
    let t = |k| text(lang.0, k);
    let again = |field: &str, what: &str| {
        let body = format!(
            "<p class=\"error\" role=\"alert\">{field}: {}</p>{}",
            esc(what),
            forms(lang.0, &session)
        );
        page(
            StatusCode::BAD_REQUEST,
            lang,
            path,
            Some(&session),
            t("clinic-actions"),
            &body,
        )
    };
    let (Some(from), Some(until)) = (
        web.local_timestamp(&form.from),
        web.local_timestamp(&form.until),
    ) else {
        return again(t("absent-from"), t("bad-time"));
    };
    let request = pb::MarkAbsenceRequest {
        doctor_id: form.doctor.trim().to_owned(),
        from: Some(from),
        until: Some(until),
        request_id: String::new(),
    };
    let done = match api(&web).mark_absence(web.request(&session, request)).await {
        Ok(answer) => answer.into_inner(),
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::InvalidArgument | tonic::Code::NotFound
            ) =>
        {
            return again(t("doctor"), &problem(&status));
        }
        Err(status) => return failed(&status, lang, path, &session),
    };
    let zone = web.zone();
    let mut body = format!(
        "<p role=\"status\">{}: {} · {}: {} · {}: {}</p><h2>{}</h2>\
         <div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"{}\"><table><thead><tr>\
         <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        t("unavailable-slots"),
        done.unavailable_slots,
        t("freed-bookings"),
        done.freed_bookings,
        t("ended-holds"),
        done.ended_holds,
        t("re-offers"),
        t("re-offers"),
        t("appointment"),
        t("patient"),
        t("freed-slot"),
        t("offered-slot"),
        t("offer-expires"),
    );
    for r in &done.re_offers {
        let offered = r.offer.as_ref().and_then(|o| o.slot.as_ref());
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td><td>{}</td></tr>",
            esc(&r.appointment_id),
            esc(&r.patient_id),
            esc(&r.from_slot),
            esc(offered.map_or("", |s| s.id.as_str())),
            esc(offered.map_or("", |s| s.clinic.as_str())),
            local(zone.as_ref(), r.expires.as_ref()),
        );
    }
    body.push_str("</tbody></table></div>");
    if !done.cancelled_appointments.is_empty() {
        let _ = write!(body, "<h2>{}</h2><ul>", t("cancelled-contact"));
        for a in &done.cancelled_appointments {
            let _ = write!(body, "<li>{}</li>", esc(a));
        }
        body.push_str("</ul>");
    }
    let _ = write!(
        body,
        "<p><a href=\"/clinics/actions\">{}</a></p>",
        t("back")
    );
    page(
        StatusCode::OK,
        lang,
        path,
        Some(&session),
        t("absence-title"),
        &body,
    )
}

/// `POST /clinics/rebalance`: the queue's optimal assignment (booked with `commit`) and its
/// figures beside the greedy baseline's.
pub(super) async fn rebalance(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    form: Multipart,
) -> Response {
    let path = "/clinics/rebalance";
    let lang = language(&headers, &LangQuery::default());
    let t = |k| text(lang.0, k);
    let mut upload = super::windows::Upload::read(form).await;
    let (csrf, commit) = (
        upload.field("csrf").to_owned(),
        !upload.field("commit").is_empty(),
    );
    let file = upload.files.remove("requests");
    let session = match checked(&web, &headers, &csrf, path) {
        Ok(session) => session,
        Err(refused) => return *refused,
    };
    let refuse = |what: String| {
        let body = format!(
            "<p class=\"error\" role=\"alert\">{}</p>{}",
            esc(&what),
            forms(lang.0, &session)
        );
        page(
            StatusCode::BAD_REQUEST,
            lang,
            path,
            Some(&session),
            t("clinic-actions"),
            &body,
        )
    };
    let Some((name, bytes)) = file else {
        return refuse(format!("requests.csv: {}", t("choose-file")));
    };
    let rows = match Table::from_bytes(name.clone(), bytes).and_then(|table| request_rows(&table)) {
        Ok(rows) => rows,
        Err(e) => return refuse(e.to_string()),
    };
    let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
    let request = pb::RebalanceRequest {
        requests: crate::rpc::queue(rows),
        commit,
        ..Default::default()
    };
    let done = match api(&web).rebalance(web.request(&session, request)).await {
        Ok(answer) => answer.into_inner(),
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::InvalidArgument | tonic::Code::NotFound
            ) =>
        {
            // `request.requests[7].district: ...` names the file's row.
            let what = problem(&status);
            let field = tonic_types::StatusExt::get_details_bad_request(&status)
                .and_then(|b| b.field_violations.into_iter().next())
                .map(|v| v.field)
                .unwrap_or_default();
            let row = field
                .split_once("requests[")
                .and_then(|(_, rest)| rest.split_once(']'))
                .and_then(|(k, _)| k.parse::<usize>().ok())
                .and_then(|k| lines.get(k));
            return match row {
                Some(line) => refuse(format!("{name}:{line}: {what}")),
                None => refuse(format!("{name}: {what}")),
            };
        }
        Err(status) => return failed(&status, lang, path, &session),
    };
    let zone = web.zone();
    let stats = |s: Option<&pb::RebalanceStats>| s.cloned().unwrap_or_default();
    let (o, g) = (stats(done.optimised.as_ref()), stats(done.greedy.as_ref()));
    let mut body = format!(
        "<p role=\"status\">{}</p><table class=\"compare\"><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        if commit {
            t("booked-now")
        } else {
            t("plan-only")
        },
        t("figure"),
        t("optimised"),
        t("greedy"),
    );
    let rows: [(&str, String, String); 7] = [
        (
            t("assigned"),
            o.assigned.to_string(),
            g.assigned.to_string(),
        ),
        (
            t("unassigned"),
            o.unassigned.to_string(),
            g.unassigned.to_string(),
        ),
        (
            t("cost"),
            format!("{:.0}", o.cost),
            format!("{:.0}", g.cost),
        ),
        (
            t("max-utilisation"),
            format!("{:.1}%", o.max_utilisation * 100.0),
            format!("{:.1}%", g.max_utilisation * 100.0),
        ),
        (
            t("wait-p50"),
            format!("{:.1}", o.waiting_days_p50),
            format!("{:.1}", g.waiting_days_p50),
        ),
        (
            t("wait-p95"),
            format!("{:.1}", o.waiting_days_p95),
            format!("{:.1}", g.waiting_days_p95),
        ),
        (
            t("travel"),
            format!("{:.2}", o.mean_travel_km),
            format!("{:.2}", g.mean_travel_km),
        ),
    ];
    for (label, a, b) in rows {
        let _ = write!(
            body,
            "<tr><th scope=\"row\">{label}</th><td>{a}</td><td>{b}</td></tr>"
        );
    }
    let _ = write!(
        body,
        "</tbody></table><p>{}: {:.2} s</p><h2>{}</h2><div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"{}\"><table><thead><tr>\
         <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        t("solve-time"),
        done.seconds,
        t("assignments"),
        t("assignments"),
        t("referral"),
        t("clinic"),
        t("slot"),
        t("starts"),
    );
    for a in done.assignments.iter().take(SHOWN_ROWS) {
        let slot = a.slot.clone().unwrap_or_default();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.request_id),
            esc(&slot.clinic),
            esc(&slot.id),
            local(zone.as_ref(), slot.start.as_ref()),
        );
    }
    let _ = write!(
        body,
        "</tbody></table></div><p>{} {} / {}</p><p><a href=\"/clinics/actions\">{}</a></p>",
        t("rows-shown"),
        done.assignments.len().min(SHOWN_ROWS),
        done.assignments.len(),
        t("back")
    );
    page(
        StatusCode::OK,
        lang,
        path,
        Some(&session),
        t("rebalance-title"),
        &body,
    )
}
