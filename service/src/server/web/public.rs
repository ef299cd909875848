//! The citizens' pages, without sign-in: a lookup of one's own application in a window (its
//! history, the outcome, why nothing better, the cutoffs) with a receipt that the page checks
//! in the browser, and every window's published cutoffs. They call the API's public methods
//! (`LookUp`, `GetCutoffs`) through the same gate, without a token.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::Web;
use super::i18n::{Lang, text};
use super::pages::{LangQuery, esc, language, page, problem};
use crate::proto::v1 as pb;
use crate::proto::v1::fairs_client::FairsClient;
use crate::proto::v1::schools_client::SchoolsClient;

/// Rows of a cutoffs page (a national window has tens of thousands of pools).
const CUTOFF_ROWS: usize = 200;

#[derive(Debug, Default, Deserialize)]
pub(super) struct LookUpForm {
    lang: Option<String>,
    #[serde(default)]
    domain: String,
    #[serde(default)]
    window: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    code: String,
}

/// Which allocation a page is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Domain {
    Fairs,
    Schools,
}

impl Domain {
    fn parse(s: &str) -> Domain {
        if s == "schools" {
            Domain::Schools
        } else {
            Domain::Fairs
        }
    }

    fn code(self) -> &'static str {
        match self {
            Domain::Fairs => "fairs",
            Domain::Schools => "schools",
        }
    }
}

fn lookup_form(lang: Lang, f: &LookUpForm, error: Option<(&'static str, &str)>) -> String {
    let t = |k| text(lang, k);
    let domain = Domain::parse(&f.domain);
    let mut html = String::new();
    if let Some((field, what)) = error {
        let _ = write!(
            html,
            "<p class=\"error\" role=\"alert\" id=\"lookup-error\">{}: {}</p>",
            t(field),
            esc(what)
        );
    }
    let described = if error.is_some() {
        " aria-describedby=\"lookup-error\""
    } else {
        ""
    };
    let checked = |d: Domain| if d == domain { " checked" } else { "" };
    // A POST, so that the code is never in a URL (history, logs, Referer). It changes nothing
    // and carries no session, so there is nothing for a forged form to abuse.
    let _ = write!(
        html,
        "<form method=\"post\" action=\"/results\"><fieldset><legend>{what}</legend>\
         <label class=\"choice\"><input type=\"radio\" name=\"domain\" value=\"fairs\"{f}> {fairs}</label>\
         <label class=\"choice\"><input type=\"radio\" name=\"domain\" value=\"schools\"{s}> {schools}</label>\
         </fieldset>\
         <label for=\"window\">{window}</label><input id=\"window\" name=\"window\" required value=\"{wv}\"{described}>\
         <label for=\"id\">{id}</label><input id=\"id\" name=\"id\" required autocomplete=\"off\" value=\"{iv}\"{described}>\
         <label for=\"code\">{code}</label><input id=\"code\" name=\"code\" type=\"password\" autocomplete=\"off\" aria-describedby=\"code-help\">\
         <p id=\"code-help\">{code_help}</p><button type=\"submit\">{go}</button></form>",
        what = t("allocation"),
        f = checked(Domain::Fairs),
        s = checked(Domain::Schools),
        fairs = t("fair-stalls"),
        schools = t("school-seats"),
        window = t("window"),
        wv = esc(&f.window),
        id = t("applicant-id"),
        iv = esc(&f.id),
        code = t("code"),
        code_help = t("code-help"),
        go = t("look-up"),
    );
    html
}

/// `GET /results`: the lookup form (no sign-in).
pub(super) async fn results_form(headers: HeaderMap, Query(f): Query<LookUpForm>) -> Response {
    let lang = language(&headers, &LangQuery::of(f.lang.clone()));
    let body = format!(
        "<p>{}</p>{}",
        text(lang.0, "lookup-intro"),
        lookup_form(lang.0, &f, None)
    );
    page(
        StatusCode::OK,
        lang,
        "/results",
        None,
        text(lang.0, "results"),
        &body,
    )
}

/// `POST /results`: one applicant's result, or the form again naming the field at fault.
pub(super) async fn results(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Form(f): Form<LookUpForm>,
) -> Response {
    let lang = language(&headers, &LangQuery::of(f.lang.clone()));
    let t = |k| text(lang.0, k);
    let request = pb::LookUpRequest {
        window: f.window.trim().to_owned(),
        id: f.id.trim().to_owned(),
        code: f.code.clone(),
    };
    let domain = Domain::parse(&f.domain);
    let answer = match domain {
        Domain::Fairs => FairsClient::new(web.channel.clone())
            .look_up(request)
            .await
            .map(|a| fair_result(lang.0, &a.into_inner())),
        Domain::Schools => SchoolsClient::new(web.channel.clone())
            .look_up(request)
            .await
            .map(|a| school_result(lang.0, &a.into_inner())),
    };
    match answer {
        Ok(body) => page(StatusCode::OK, lang, "/results", None, t("results"), &body),
        Err(status) => {
            let (http, field) = match status.code() {
                tonic::Code::NotFound | tonic::Code::InvalidArgument => {
                    let field = lookup_field(&status);
                    (StatusCode::NOT_FOUND, field)
                }
                tonic::Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "server-busy"),
                _ => (StatusCode::SERVICE_UNAVAILABLE, "server-error"),
            };
            let what = problem(&status);
            let body = lookup_form(lang.0, &f, Some((field, &what)));
            page(http, lang, "/results", None, t("results"), &body)
        }
    }
}

/// The form's field a refused lookup names.
fn lookup_field(status: &tonic::Status) -> &'static str {
    let field = tonic_types::StatusExt::get_details_bad_request(status)
        .and_then(|b| b.field_violations.into_iter().next())
        .map(|v| v.field)
        .unwrap_or_default();
    match field.rsplit('.').next() {
        Some("window") => "window",
        _ => "applicant-id",
    }
}

/// The group names of the fair tiers, plural, in quotes.
pub(super) fn tier_name(lang: Lang, tier: u32) -> &'static str {
    match tier {
        0 => text(lang, "tier-0"),
        1 => text(lang, "tier-1"),
        _ => text(lang, "tier-2"),
    }
}

/// Why the applicant did not get one better-ranked fair, in plain words.
fn fair_reason(lang: Lang, own: &pb::FairPriority, choice: &pb::FairChoiceExplanation) -> String {
    let mut out = String::new();
    for pool in &choice.pools {
        let which = if pool.category == "*" {
            text(lang, "open-pool").to_owned()
        } else {
            format!("{} «{}»", text(lang, "category"), esc(&pool.category))
        };
        let Some(cut) = &pool.cutoff else {
            // Not full (the welfare mechanism may leave a better pool with room): the engine's
            // own sentence says what giving it would have cost.
            let _ = write!(out, "<li>{}</li>", esc(&choice.reason));
            continue;
        };
        let fair = esc(&choice.fair);
        let sentence = match (lang, cut.tier.cmp(&own.tier)) {
            (Lang::En, std::cmp::Ordering::Less) => format!(
                "The last stall of {which} at {fair} went to an applicant of the group {} (lottery {}). That group is served before yours, {}.",
                tier_name(lang, cut.tier),
                cut.lottery,
                tier_name(lang, own.tier)
            ),
            (Lang::Ru, std::cmp::Ordering::Less) => format!(
                "Последнее место ({which}) на ярмарке {fair} получил заявитель из группы {} (жребий {}). Эта группа обслуживается раньше вашей — {}.",
                tier_name(lang, cut.tier),
                cut.lottery,
                tier_name(lang, own.tier)
            ),
            (Lang::En, _) => format!(
                "The last stall of {which} at {fair} went to an applicant of your own group, {}, with lottery number {}; yours is {}, and lower numbers are served first.",
                tier_name(lang, cut.tier),
                cut.lottery,
                own.lottery
            ),
            (Lang::Ru, _) => format!(
                "Последнее место ({which}) на ярмарке {fair} получил заявитель из вашей же группы, {}, с номером жребия {}; ваш номер {}, а меньшие номера обслуживаются первыми.",
                tier_name(lang, cut.tier),
                cut.lottery,
                own.lottery
            ),
        };
        let _ = write!(out, "<li>{sentence}</li>");
    }
    out
}

/// The application's history up to the window's close, then the steps of the published run
/// (`run`, the latest) only: earlier runs of the window (a comparison, say) are not its result.
fn steps(
    lang: Lang,
    status: Option<&pb::ApplicationStatus>,
    run: Option<&pb::RunRecord>,
) -> String {
    use pb::application_step::Kind;
    let mut html = format!("<h2>{}</h2><ol class=\"steps\">", text(lang, "history"));
    let published = run.map(|r| &r.run_id[..]);
    let steps = status.map(|s| &s.steps[..]).unwrap_or_default();
    for s in steps
        .iter()
        .filter(|s| s.run_id.is_empty() || Some(&s.run_id[..]) == published)
    {
        let key = match s.kind() {
            Kind::Received => "step-received",
            Kind::Amended => "step-amended",
            Kind::Withdrawn => "step-withdrawn",
            Kind::InClosedSet => "step-closed",
            Kind::Placed => "step-placed",
            Kind::Waitlisted => "step-waitlisted",
            Kind::Unplaced => "step-unplaced",
            Kind::Offered => "step-offered",
            Kind::GivenBack => "step-given-back",
            Kind::Accepted => "step-accepted",
            Kind::Unspecified => "step-other",
        };
        let place = if s.place.is_empty() {
            String::new()
        } else {
            format!(": <strong>{}</strong>", esc(&s.place))
        };
        let _ = write!(
            html,
            "<li>{}{place} <span class=\"muted\">({} {})</span></li>",
            text(lang, key),
            text(lang, "log-entry"),
            s.log_index
        );
    }
    html.push_str("</ol>");
    html
}

/// The receipt and the button that checks it here, in the browser (`verify.js`).
fn receipt(lang: Lang, r: Option<&pb::PublicReceipt>) -> String {
    let t = |k| text(lang, k);
    let Some(r) = r else {
        return String::new();
    };
    if r.tlog_proof.is_empty() {
        return format!(
            "<h2>{}</h2><p>{} {}</p>",
            t("receipt-title"),
            t("receipt-pending"),
            r.log_index
        );
    }
    format!(
        "<h2>{title}</h2><p>{what}</p><label for=\"receipt\">{label}</label>\
         <textarea id=\"receipt\" rows=\"8\" spellcheck=\"false\" data-key=\"{key}\" \
         data-ok=\"{ok}\" data-bad=\"{bad}\" data-no-crypto=\"{nocrypto}\">{proof}</textarea>\
         <p>{keylabel}: <code>{key}</code></p>\
         <button type=\"button\" id=\"check-receipt\">{check}</button>\
         <p id=\"receipt-result\" role=\"status\" aria-live=\"polite\"></p>\
         <script src=\"/assets/verify.js\"></script>",
        title = t("receipt-title"),
        what = t("receipt-proves"),
        label = t("receipt-label"),
        key = esc(&r.verifier_key),
        ok = esc(t("receipt-ok")),
        bad = esc(t("receipt-bad")),
        nocrypto = esc(t("receipt-no-crypto")),
        proof = esc(&r.tlog_proof),
        keylabel = t("verifier-key"),
        check = t("check-receipt"),
    )
}

/// A lookup's page: what `outcome` says (none before the window was run), then the window's
/// cutoffs link, the history and the receipt.
fn lookup_page(
    lang: Lang,
    domain: Domain,
    (status, run, proof): (
        Option<&pb::ApplicationStatus>,
        Option<&pb::RunRecord>,
        Option<&pb::PublicReceipt>,
    ),
    outcome: Option<String>,
) -> String {
    let t = |k| text(lang, k);
    let mut html = match outcome {
        None => format!("<p class=\"outcome\">{}</p>", t("not-run-yet")),
        Some(outcome) => {
            let window = status.map_or("", |s| s.window.as_str());
            format!(
                "{outcome}<p><a href=\"/cutoffs?domain={}&amp;window={}\">{}</a></p>",
                domain.code(),
                esc(window),
                t("all-cutoffs")
            )
        }
    };
    html.push_str(&steps(lang, status, run));
    html.push_str(&receipt(lang, proof));
    html
}

fn fair_result(lang: Lang, a: &pb::FairLookUp) -> String {
    let parts = (a.status.as_ref(), a.run.as_ref(), a.receipt.as_ref());
    let outcome = a.explained.as_ref().map(|e| fair_outcome(lang, a.tier, e));
    lookup_page(lang, Domain::Fairs, parts, outcome)
}

/// A fair outcome and why no better-ranked fair.
fn fair_outcome(lang: Lang, tier: u32, explained: &pb::ExplainFairOutcomeResponse) -> String {
    let t = |k| text(lang, k);
    let mut html = String::new();
    let got = explained.outcome.clone().unwrap_or_default();
    let own = got.priority.unwrap_or_default();
    if got.fair.is_empty() {
        let _ = write!(html, "<p class=\"outcome\">{}</p>", t("fair-unplaced"));
    } else {
        let category = if got.category == "*" {
            t("open-pool").to_owned()
        } else {
            format!("{} «{}»", t("category"), esc(&got.category))
        };
        let _ = write!(
            html,
            "<p class=\"outcome\">{} <strong>{}</strong> ({}, {} {}).</p>",
            t("fair-placed"),
            esc(&got.fair),
            category,
            t("your-choice"),
            got.rank
        );
    }
    let _ = write!(
        html,
        "<p>{}: {} · {}: {}</p>",
        t("your-group"),
        tier_name(lang, tier),
        t("your-lottery"),
        own.lottery
    );
    if !explained.better_choices.is_empty() {
        let _ = write!(html, "<h2>{}</h2>", t("why-not-better"));
        for c in &explained.better_choices {
            let _ = write!(
                html,
                "<h3>{} {}: {}</h3><ul>{}</ul>",
                t("your-choice"),
                c.rank,
                esc(&c.fair),
                fair_reason(lang, &own, c)
            );
        }
        let _ = write!(html, "<p>{}</p>", t("tier-order"));
    }
    html
}

/// Why the student did not get one better-ranked school, in plain words: the last seat's
/// priority against the student's own. Where the mechanism is not stable (TTC, Boston, EADA) a
/// student may miss a school whose last seat went to a lower priority: the engine's own
/// sentence says so.
fn school_reason(lang: Lang, c: &pb::SchoolChoiceExplanation) -> String {
    let own = c.own_priority.unwrap_or_default();
    let Some(cut) = c.cutoff.as_ref().and_then(|c| c.cutoff) else {
        return format!("<span lang=\"en\">{}</span>", esc(&c.reason));
    };
    let school = esc(&c.school);
    match (lang, cut.priority_class.cmp(&own.priority_class)) {
        (Lang::En, std::cmp::Ordering::Less) => format!(
            "The last seat at {school} went to a student of priority class {} (lottery {}), a class served before yours, class {}.",
            cut.priority_class, cut.lottery, own.priority_class
        ),
        (Lang::Ru, std::cmp::Ordering::Less) => format!(
            "Последнее место в школе {school} получил ученик класса приоритета {} (жребий {}), а этот класс обслуживается раньше вашего, класса {}.",
            cut.priority_class, cut.lottery, own.priority_class
        ),
        (Lang::En, std::cmp::Ordering::Equal) if cut.lottery < own.lottery => format!(
            "The last seat at {school} went to a student of your own priority class, {}, with lottery number {}; yours is {}, and lower numbers are served first.",
            cut.priority_class, cut.lottery, own.lottery
        ),
        (Lang::Ru, std::cmp::Ordering::Equal) if cut.lottery < own.lottery => format!(
            "Последнее место в школе {school} получил ученик вашего же класса приоритета, {}, с номером жребия {}; ваш номер {}, а меньшие номера обслуживаются первыми.",
            cut.priority_class, cut.lottery, own.lottery
        ),
        _ => format!("<span lang=\"en\">{}</span>", esc(&c.reason)),
    }
}

fn school_result(lang: Lang, a: &pb::SchoolLookUp) -> String {
    let parts = (a.status.as_ref(), a.run.as_ref(), a.receipt.as_ref());
    let outcome = a.explained.as_ref().map(|e| school_outcome(lang, e));
    lookup_page(lang, Domain::Schools, parts, outcome)
}

/// A school outcome and why no better-ranked school.
fn school_outcome(lang: Lang, explained: &pb::ExplainSchoolOutcomeResponse) -> String {
    let t = |k| text(lang, k);
    let got = explained.outcome.clone().unwrap_or_default();
    let mut html = if got.school.is_empty() {
        format!("<p class=\"outcome\">{}</p>", t("school-unplaced"))
    } else {
        format!(
            "<p class=\"outcome\">{} <strong>{}</strong> ({} {}).</p>",
            t("school-placed"),
            esc(&got.school),
            t("your-choice"),
            got.rank
        )
    };
    if !explained.better_choices.is_empty() {
        let _ = write!(html, "<h2>{}</h2><ul>", t("why-not-better"));
        for c in &explained.better_choices {
            let _ = write!(
                html,
                "<li><strong>{} {}: {}</strong>. {}</li>",
                t("your-choice"),
                c.rank,
                esc(&c.school),
                school_reason(lang, c)
            );
        }
        let _ = write!(html, "</ul><p>{}</p>", t("class-order"));
    }
    html
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct CutoffsQuery {
    lang: Option<String>,
    #[serde(default)]
    domain: String,
    #[serde(default)]
    window: String,
    from: Option<usize>,
}

/// `GET /cutoffs?window=`: the cutoffs of a window's latest run, as published (no sign-in).
pub(super) async fn cutoffs(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(q): Query<CutoffsQuery>,
) -> Response {
    let lang = language(&headers, &LangQuery::of(q.lang.clone()));
    let t = |k| text(lang.0, k);
    let domain = Domain::parse(&q.domain);
    let form = format!(
        "<form method=\"get\" action=\"/cutoffs\"><input type=\"hidden\" name=\"domain\" value=\"{}\">\
         <label for=\"window\">{}</label><input id=\"window\" name=\"window\" required value=\"{}\">\
         <button type=\"submit\">{}</button></form>",
        domain.code(),
        t("window"),
        esc(&q.window),
        t("show")
    );
    if q.window.trim().is_empty() {
        return page(StatusCode::OK, lang, "/cutoffs", None, t("cutoffs"), &form);
    }
    let request = pb::GetCutoffsRequest {
        window: q.window.trim().to_owned(),
    };
    // Rows as (place, pool, places, given, last admitted).
    let rows: Result<Vec<[String; 5]>, tonic::Status> = match domain {
        Domain::Fairs => FairsClient::new(web.channel.clone())
            .get_cutoffs(request)
            .await
            .map(|a| {
                a.into_inner()
                    .cutoffs
                    .into_iter()
                    .map(|c| {
                        let pool = if c.category == "*" {
                            t("open-pool").to_owned()
                        } else {
                            c.category.clone()
                        };
                        let last = c.cutoff.map_or_else(
                            || t("not-full").to_owned(),
                            |p| {
                                format!(
                                    "{}, {} {}",
                                    tier_name(lang.0, p.tier),
                                    t("lottery"),
                                    p.lottery
                                )
                            },
                        );
                        [
                            c.fair,
                            pool,
                            c.stalls.to_string(),
                            c.admitted.to_string(),
                            last,
                        ]
                    })
                    .collect()
            }),
        Domain::Schools => SchoolsClient::new(web.channel.clone())
            .get_cutoffs(request)
            .await
            .map(|a| {
                a.into_inner()
                    .cutoffs
                    .into_iter()
                    .map(|c| {
                        let last = c.cutoff.map_or_else(
                            || t("not-full").to_owned(),
                            |p| {
                                format!(
                                    "{} {}, {} {}",
                                    t("class"),
                                    p.priority_class,
                                    t("lottery"),
                                    p.lottery
                                )
                            },
                        );
                        [
                            c.school,
                            String::new(),
                            c.capacity.to_string(),
                            c.admitted.to_string(),
                            last,
                        ]
                    })
                    .collect()
            }),
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(status) => {
            let body = format!(
                "<p class=\"error\" role=\"alert\">{}: {}</p>{form}",
                t("window"),
                esc(&problem(&status))
            );
            return page(
                StatusCode::NOT_FOUND,
                lang,
                "/cutoffs",
                None,
                t("cutoffs"),
                &body,
            );
        }
    };
    let from = q.from.unwrap_or(0).min(rows.len());
    let to = (from + CUTOFF_ROWS).min(rows.len());
    let mut body = form;
    let _ = write!(
        body,
        "<p>{}</p><div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-label=\"{}\"><table><thead><tr>\
         <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
         <th scope=\"col\">{}</th></tr></thead><tbody>",
        t("cutoffs-help"),
        t("cutoffs"),
        t("place"),
        t("pool"),
        t("places"),
        t("given"),
        t("last-admitted")
    );
    for r in &rows[from..to] {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r[0]),
            esc(&r[1]),
            r[2],
            r[3],
            esc(&r[4])
        );
    }
    body.push_str("</tbody></table></div>");
    let _ = write!(
        body,
        "<p>{} {}-{} / {}",
        t("rows"),
        from + 1,
        to,
        rows.len()
    );
    if to < rows.len() {
        let _ = write!(
            body,
            " · <a href=\"/cutoffs?domain={}&amp;window={}&amp;from={to}\">{}</a>",
            domain.code(),
            esc(q.window.trim()),
            t("next-rows")
        );
    }
    body.push_str("</p>");
    page(StatusCode::OK, lang, "/cutoffs", None, t("cutoffs"), &body)
}
