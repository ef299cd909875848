//! The web console over real HTTP: sign-in and its cookie, roles, CSRF, escaping, languages, and
//! the audit page against the gRPC API. (The pages in a real Chromium come with the rest of the
//! console.)

use allot_service::proto::v1 as pb;
use allot_service::server::access::Role;

use super::Harness;

async fn console() -> (Harness, String, reqwest::Client) {
    let h = Harness::with(12, |c| c.web_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let base = format!("http://{}", h.web_addr().expect("the console is served"));
    let _ = allot_service::witness::http_client(std::time::Duration::from_secs(5));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    (h, base, http)
}

/// One form field, URL-encoded.
fn form(name: &str, value: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair(name, value)
        .finish()
}

/// Signs in with `token`: the session cookie (`name=value`) and the `Set-Cookie` header.
async fn sign_in(http: &reqwest::Client, base: &str, token: &str) -> (String, String) {
    let answer = http
        .post(format!("{base}/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form("token", token))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()["location"], "/");
    let set = answer.headers()["set-cookie"].to_str().unwrap().to_owned();
    (set.split(';').next().unwrap().to_owned(), set)
}

async fn get(http: &reqwest::Client, url: &str, cookie: Option<&str>) -> (u16, String) {
    let mut request = http.get(url);
    if let Some(c) = cookie {
        request = request.header("cookie", c);
    }
    let answer = request.send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// The CSRF token of the page's sign-out form.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with its CSRF token")
        + 19;
    page[at..at + 64].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_roles_csrf_and_escaping() {
    let (h, base, http) = console().await;
    // Signed out: the sign-in form, posted (the token never in a URL), in the browser's language.
    let (status, page) = get(&http, &format!("{base}/"), None).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<form method=\"post\" action=\"/sign-in\">"),
        "{page}"
    );
    assert!(page.contains("type=\"password\""));
    let ru = http
        .get(format!("{base}/"))
        .header("accept-language", "ru-RU,ru;q=0.9,en;q=0.8")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        ru.contains("<html lang=\"ru\">") && ru.contains("Войти"),
        "{ru}"
    );
    let switched = http
        .get(format!("{base}/?lang=en"))
        .header("accept-language", "ru")
        .send()
        .await
        .unwrap();
    assert!(
        switched.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("allot_lang=en")
    );
    assert!(
        switched
            .text()
            .await
            .unwrap()
            .contains("<html lang=\"en\">")
    );

    // An unknown token: 401 with a sentence, no session.
    let bad = http
        .post(format!("{base}/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form("token", "allot_nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert!(bad.headers().get("set-cookie").is_none());
    assert!(
        bad.text()
            .await
            .unwrap()
            .contains("not known to the server")
    );

    // The auditor: a session cookie that scripts cannot read and other sites do not send.
    let auditor = h.token(Role::Auditor).to_owned();
    let (cookie, set) = sign_in(&http, &base, &auditor).await;
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "plain HTTP here: {set}");
    assert!(!set.contains(&auditor));
    let (status, home) = get(&http, &format!("{base}/"), Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(home.contains("href=\"/audit\""));
    assert!(
        !home.contains(&auditor),
        "the token is never written to a page"
    );

    // The audit page agrees with the gRPC API.
    let head = h
        .audit(Some(&auditor))
        .await
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    let checkpoint = head.checkpoint.unwrap();
    let (status, audit) = get(&http, &format!("{base}/audit"), Some(&cookie)).await;
    assert_eq!(status, 200, "{audit}");
    assert!(
        audit.contains(&format!("<td>{}</td>", checkpoint.tree_size)),
        "{audit}"
    );
    assert!(audit.contains(&hex::encode(&checkpoint.root_hash)));
    let (_, proof) = get(&http, &format!("{base}/audit?entry=3"), Some(&cookie)).await;
    let grpc = h
        .audit(Some(&auditor))
        .await
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            index: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for sibling in &grpc.path {
        assert!(
            proof.contains(&hex::encode(sibling)),
            "the audit path is shown"
        );
    }
    assert!(proof.contains(&hex::encode(&grpc.entry.unwrap().leaf_hash)));
    // Whatever is typed is shown as text.
    let (_, typed) = get(
        &http,
        &format!("{base}/audit?entry=%3Cscript%3Ealert(1)%3C/script%3E"),
        Some(&cookie),
    )
    .await;
    assert!(!typed.contains("<script>"), "{typed}");
    assert!(typed.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

    // Another role's page: 403.
    let (clinic, _) = sign_in(&http, &base, h.token(Role::ClinicSystem)).await;
    let (status, refused) = get(&http, &format!("{base}/audit"), Some(&clinic)).await;
    assert_eq!(status, 403, "{refused}");
    assert!(!refused.contains("href=\"/audit\">"));

    // Sign-out needs the page's CSRF token; then the session is gone.
    let no_csrf = http
        .post(format!("{base}/sign-out"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form("csrf", &"0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403);
    assert_eq!(
        get(&http, &format!("{base}/audit"), Some(&cookie)).await.0,
        200,
        "still signed in"
    );
    let token = csrf(&home);
    let out = http
        .post(format!("{base}/sign-out"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form("csrf", &token))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        get(&http, &format!("{base}/audit"), Some(&cookie)).await.0,
        401
    );
    // A page that does not exist.
    assert_eq!(get(&http, &format!("{base}/nope"), None).await.0, 404);
}

/// The clinics' page: the inventory by status and the heat map agree with bookings the test
/// made and counts itself (a fresh city: nothing else is held or booked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heat_map_counts_the_bookings_made() {
    let h = Harness::city_with(0.02, |c| {
        c.web_listen = Some("127.0.0.1:0".parse().unwrap())
    })
    .await;
    let base = format!("http://{}", h.web_addr().unwrap());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let booked_slots = book_near(&h, "H", (55.75, 37.62), 6).await;
    let mut booked = std::collections::BTreeMap::<(String, String), u32>::new();
    for slot in &booked_slots {
        *booked
            .entry((slot.clinic.clone(), day_of(slot)))
            .or_default() += 1;
    }
    let (cookie, _) = sign_in(&http, &base, h.token(Role::ClinicSystem)).await;
    let (status, page) = get(&http, &format!("{base}/clinics"), Some(&cookie)).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!(
            "<th scope=\"row\">booked</th><td>{}</td>",
            booked_slots.len()
        )),
        "booked count in the inventory"
    );
    for ((clinic, day), n) in &booked {
        let cell = format!("<title>{clinic} {day}: {n}/");
        assert!(page.contains(&cell), "{cell} in the heat map");
    }
    // One cell per clinic and day (a city this small fits one page).
    let cells = page.matches("<rect ").count();
    assert_eq!(
        cells,
        h.schedule().clinics.len() * h.schedule().days as usize
    );
    assert!(page.len() < 200 << 10, "the page is {} bytes", page.len());
    // Other roles may not.
    let (auditor, _) = sign_in(&http, &base, h.token(Role::Auditor)).await;
    assert_eq!(
        get(&http, &format!("{base}/clinics"), Some(&auditor))
            .await
            .0,
        403
    );
}

/// Books the best `n` therapist slots for a patient at `home`, each for patient `PREFIX{i}`: the
/// slots booked.
async fn book_near(h: &Harness, prefix: &str, (lat, lon): (f64, f64), n: u32) -> Vec<pb::Slot> {
    let mut grpc = h.clinic().await;
    let found = grpc
        .find_slots(pb::FindSlotsRequest {
            patient: Some(pb::Patient {
                id: format!("{prefix}0"),
                home: Some(pb::Location { lat, lon }),
                ..Default::default()
            }),
            specialty: "therapist".into(),
            count: n,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut slots = Vec::new();
    for (i, p) in found.proposals.iter().enumerate() {
        let slot = p.slot.clone().unwrap();
        grpc.book(pb::BookRequest {
            target: Some(pb::book_request::Target::SlotId(slot.id.clone())),
            patient: Some(pb::Patient {
                id: format!("{prefix}{i}"),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
        slots.push(slot);
    }
    slots
}

/// A slot's local day: its id is `DOCTOR@YYYY-MM-DDTHH:MM`.
fn day_of(slot: &pb::Slot) -> String {
    slot.id.rsplit_once('@').unwrap().1[..10].to_owned()
}

/// The browser to drive, or `None` to skip (failing instead under `ALLOT_REQUIRE_CHROMIUM=1`):
/// Debian's `chromium` and the pinned `playwright-core` (`npm ci --prefix service/tests/web`).
fn chromium() -> Option<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web");
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .map(|name| std::process::Command::new("which").arg(name).output())
        .filter_map(Result::ok)
        .find(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let ready = dir.join("node_modules/playwright-core").exists() && chromium.is_some();
    if !ready {
        let why = "needs chromium and `npm ci --prefix service/tests/web`";
        if std::env::var("ALLOT_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1") {
            panic!("ALLOT_REQUIRE_CHROMIUM=1 but the browser test {why}");
        }
        eprintln!(
            "SKIPPED: the browser test {why}; set ALLOT_REQUIRE_CHROMIUM=1 to make this fail"
        );
    }
    chromium.filter(|_| ready)
}

/// Runs `service/tests/web/SCRIPT` with `args`; its output, which must end in `OK`.
async fn node(script: &str, args: &[&str], chromium: &str, out: &std::path::Path) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web");
    let run = tokio::process::Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .args(["--chromium", chromium])
        .arg("--out")
        .arg(out)
        .output();
    let run = tokio::time::timeout(std::time::Duration::from_secs(240), run)
        .await
        .expect("the browser test finished in 4 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success() && stdout.trim().ends_with("OK"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    stdout
}

/// A small fair window's files: 4 fairs of 2 pools (`food`, `*`) of 2 stalls, and 24 applicants
/// (one id holding markup) each with a code; the applicants' ids and codes.
fn fair_files(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut fairs = String::from("fair,district,category,stalls\n");
    for f in 1..=4 {
        fairs.push_str(&format!("F{f},D{},food,2\nF{f},D{},*,2\n", f % 2, f % 2));
    }
    let mut applicants = String::from("applicant,category,tier,choices,code\n");
    let mut people = Vec::new();
    for i in 0..24 {
        let id = if i == 5 {
            "<script>alert(1)</script>".to_owned()
        } else {
            format!("A{i}")
        };
        let code = format!("code-{i:04}-x");
        let choices = ["F1;F2;F3", "F2;F1", "F3;F4;F1", "F4"][i % 4];
        let csv_id = if id.contains(',') || id.contains('"') {
            format!("\"{id}\"")
        } else {
            id.clone()
        };
        applicants.push_str(&format!("{csv_id},food,{},{choices},{code}\n", i % 3));
        people.push((id, code));
    }
    std::fs::write(dir.join("fairs.csv"), fairs).unwrap();
    std::fs::write(dir.join("applicants.csv"), applicants).unwrap();
    people
}

/// The same window as `SubmitApplications` messages (what the console's upload sends).
fn fair_messages(
    window: &str,
    people: &[(String, String)],
) -> Vec<pb::SubmitFairApplicationsRequest> {
    let pools = (1..=4)
        .flat_map(|f| {
            ["food", "*"].map(|category| pb::StallPool {
                fair: format!("F{f}"),
                district: format!("D{}", f % 2),
                category: category.into(),
                stalls: 2,
            })
        })
        .collect();
    let applicants = people
        .iter()
        .enumerate()
        .map(|(i, (id, code))| pb::FairApplicant {
            id: id.clone(),
            category: "food".into(),
            tier: Some((i % 3) as u32),
            lottery: None,
            choices: ["F1;F2;F3", "F2;F1", "F3;F4;F1", "F4"][i % 4]
                .split(';')
                .map(str::to_owned)
                .collect(),
            second_factor: code.clone(),
        })
        .collect();
    vec![pb::SubmitFairApplicationsRequest {
        window: window.into(),
        pools,
        applicants,
        amend: false,
    }]
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    body: String,
    cookie: Option<&str>,
) -> (u16, String) {
    let mut request = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(c) = cookie {
        request = request.header("cookie", c);
    }
    let answer = request.send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// The text of a page's alert.
fn alert(page: &str) -> &str {
    let at = page.find("role=\"alert\"").expect("an alert");
    let from = at + page[at..].find('>').unwrap() + 1;
    &page[from..from + page[from..].find('<').unwrap()]
}

/// A multipart form body of `(name, file name, content)` parts, and its content type.
fn multipart(parts: &[(&str, Option<&str>, &str)]) -> (String, String) {
    let boundary = "XbOuNdArY";
    let mut body = String::new();
    for (name, file, content) in parts {
        match file {
            Some(f) => body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/csv\r\n\r\n{content}\r\n"
            )),
            None => body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{content}\r\n"
            )),
        }
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (body, format!("multipart/form-data; boundary={boundary}"))
}

/// The school officers' pages over HTTP: upload, close, DA, TTC, Boston and EADA side by side,
/// a run's downloads and verification, and a student's public lookup equal to the API's outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_school_window_from_upload_to_the_public_lookup() {
    let (h, base, http) = console().await;
    let (cookie, _) = sign_in(&http, &base, h.token(Role::SchoolAdmin)).await;
    let (_, listing) = get(&http, &format!("{base}/schools"), Some(&cookie)).await;
    let token = csrf(&listing);
    let schools = "school,capacity\nS1,2\nS2,2\nS3,1\n";
    let mut students = String::from("student,choices,code\n");
    let mut priorities = String::from("school,student,priority\n");
    for i in 0..8 {
        let choices = ["S1;S2;S3", "S2;S1", "S3;S1", "S1"][i % 4];
        students.push_str(&format!("P{i},{choices},family-{i:04}\n"));
        priorities.push_str(&format!("S1,P{i},{}\n", i % 2));
    }
    let (body, kind) = multipart(&[
        ("csrf", None, &token),
        ("window", None, "sch-1"),
        ("schools", Some("schools.csv"), schools),
        ("students", Some("students.csv"), &students),
        ("priorities", Some("priorities.csv"), &priorities),
    ]);
    let answer = http
        .post(format!("{base}/schools/submit"))
        .header("cookie", &cookie)
        .header("content-type", kind)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303, "{}", answer.text().await.unwrap());
    let (status, _) = post(
        &http,
        &format!("{base}/schools/close"),
        format!("window=sch-1&csrf={token}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 303);
    let (status, page) = post(
        &http,
        &format!("{base}/schools/compare"),
        format!("window=sch-1&csrf={token}&tie_breaking=single&beacon_source=t&beacon_round=1&beacon_value=00112233445566778899aabbccddeeff"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 303, "{page}");
    let (status, page) = get(
        &http,
        &format!("{base}/schools/compare?window=sch-1"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        page.matches("<th scope=\"col\"><a href=\"/schools/run?run=")
            .count(),
        4
    );
    let mut api = h.schools().await;
    let listed = api
        .list_windows(pb::ListWindowsRequest {})
        .await
        .unwrap()
        .into_inner();
    let runs = &listed.windows[0].runs;
    let mechanisms: Vec<&str> = runs.iter().map(|r| r.mechanism.as_str()).collect();
    assert_eq!(mechanisms, ["da", "ttc", "boston", "eada"]);
    let run = hex::encode(&runs[3].run_id);
    let (status, csv) = get(
        &http,
        &format!("{base}/schools/download?run={run}&table=assignment.csv"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 200);
    assert!(csv.starts_with("student,school,rank\n"), "{csv}");
    assert_eq!(csv.lines().count(), 9);
    let (status, page) = get(
        &http,
        &format!("{base}/schools/verify?run={run}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("Verified"), "{page}");
    // The public lookup shows the latest run's (EADA's) outcome.
    h.auditor()
        .await
        .get_checkpoint(pb::GetCheckpointRequest { refresh: true })
        .await
        .unwrap();
    for i in 0..8 {
        let outcome = school_outcome(&mut api, &runs[3].run_id, format!("P{i}")).await;
        let (status, page) = post(
            &http,
            &format!("{base}/results"),
            format!("domain=schools&window=sch-1&id=P{i}&code=family-{i:04}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        if outcome.school.is_empty() {
            assert!(page.contains("not given a seat"), "{page}");
        } else {
            assert!(
                page.contains(&format!("a seat at <strong>{}</strong>", outcome.school)),
                "{page}"
            );
        }
        assert!(
            page.contains(&format!("index {}", outcome.log_index)),
            "the receipt proves the outcome"
        );
        // Every school ranked above the one given is explained, first choice first.
        let first = ["S1", "S2", "S3", "S1"][i % 4];
        if outcome.rank != 1 {
            let why = format!("<strong>your choice no. 1: {first}</strong>");
            assert!(page.contains(&why), "{why} in {page}");
        }
        // In Russian too, without the English words.
        let (status, ru) = post(
            &http,
            &format!("{base}/results"),
            format!("domain=schools&window=sch-1&id=P{i}&code=family-{i:04}&lang=ru"),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            ru.contains("Ваша квитанция") && !ru.contains("your choice"),
            "{ru}"
        );
        if outcome.rank != 1 {
            assert!(ru.contains(&format!("ваш выбор № 1: {first}")), "{ru}");
        }
    }
    // A seat given back from the run's page: refused without the CSRF token and for an unknown
    // student (named in the page), then re-offered; the page lists the API's changes and the
    // student it went to sees the new seat and a receipt of the re-offer's entry.
    let (status, page) = get(
        &http,
        &format!("{base}/schools/run?run={run}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("action=\"/schools/withdraw\""), "{page}");
    // An S1 seat: P3 and P7 list S1 alone and cannot both hold it, so somebody waits for it.
    let mut holder = None;
    for i in 0..8 {
        let o = school_outcome(&mut api, &runs[3].run_id, format!("P{i}")).await;
        if o.school == "S1" && holder.is_none() {
            holder = Some((o.student.clone(), o));
        }
    }
    let (holder, before) = holder.expect("S1 is given");
    let give_back = |csrf: &str, who: &str| format!("run={run}&participant={who}&csrf={csrf}");
    let url = format!("{base}/schools/withdraw");
    let (status, _) = post(&http, &url, give_back("00", &holder), Some(&cookie)).await;
    assert_eq!(status, 403);
    let (status, page) = post(&http, &url, give_back(&token, "nobody"), Some(&cookie)).await;
    assert_eq!(status, 409, "{page}");
    assert!(
        page.contains("Student id: ") && page.contains("nobody"),
        "{page}"
    );
    let (status, page) = post(&http, &url, give_back(&token, &holder), Some(&cookie)).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!("Given back: <strong>{}</strong>", before.school)),
        "{page}"
    );
    let history = api
        .get_application_status(pb::GetApplicationStatusRequest {
            window: "sch-1".into(),
            id: holder.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let given = history.steps.last().unwrap();
    assert_eq!(given.kind(), pb::application_step::Kind::GivenBack);
    assert!(
        page.contains(&format!("entry {} · {holder}", given.log_index)),
        "{page}"
    );
    let mover = (0..8).map(|i| format!("P{i}")).find_map(|id| {
        page.contains(&format!("Re-offered to <strong>{id}</strong>"))
            .then_some(id)
    });
    h.auditor()
        .await
        .get_checkpoint(pb::GetCheckpointRequest { refresh: true })
        .await
        .unwrap();
    {
        let mover = mover.expect("somebody waited for S1");
        let now = school_outcome(&mut api, &runs[3].run_id, mover.clone()).await;
        assert_eq!(now.school, before.school);
        assert!(
            page.contains(&format!("entry {} · {mover}", now.log_index)),
            "{page}"
        );
        let k: usize = mover[1..].parse().unwrap();
        let (_, public) = post(
            &http,
            &format!("{base}/results"),
            format!("domain=schools&window=sch-1&id={mover}&code=family-{k:04}"),
            None,
        )
        .await;
        assert!(public.contains(&format!("a seat at <strong>{}</strong>", now.school)));
        assert!(
            public.contains(&format!("index {}", now.log_index)),
            "{public}"
        );
    }
    // A fair officer may not.
    let (fairs, _) = sign_in(&http, &base, h.token(Role::FairAdmin)).await;
    assert_eq!(
        get(&http, &format!("{base}/schools"), Some(&fairs)).await.0,
        403
    );
    let (status, _) = post(&http, &url, give_back(&token, &holder), Some(&fairs)).await;
    assert!(status == 403, "{status}");
}

/// A student's outcome in a school run, from the API.
async fn school_outcome(
    api: &mut allot_service::proto::v1::schools_client::SchoolsClient<
        allot_service::rpc::client::Authorized,
    >,
    run_id: &[u8],
    student: impl Into<String>,
) -> pb::GetSchoolOutcomeResponse {
    let request = pb::GetSchoolOutcomeRequest {
        run_id: run_id.to_vec(),
        student: student.into(),
    };
    api.get_outcome(request).await.unwrap().into_inner()
}

/// The public page: a lookup needs the application's code, an unknown id and a wrong code read
/// alike, the outcome shown is the API's, the receipt is the outcome's entry, ids are escaped;
/// the officials' fair pages keep their roles and CSRF.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_lookup_needs_the_code_and_tells_nothing_else() {
    let (h, base, http) = console().await;
    let dir = tempfile::TempDir::new().unwrap();
    let people = fair_files(dir.path());
    let window = "pub-1";
    let mut fairs = h.fairs().await;
    fairs
        .submit_applications(tokio_stream::iter(fair_messages(window, &people)))
        .await
        .unwrap();
    // Not run yet: received, with the application's receipt.
    let (status, page) = post(
        &http,
        &format!("{base}/results"),
        format!("domain=fairs&window={window}&id=A1&code=code-0001-x"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("has not been run yet"), "{page}");
    // Without a session, closing is refused and nothing happens.
    let (status, _) = post(
        &http,
        &format!("{base}/fairs/close"),
        format!("window={window}"),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (cookie, _) = sign_in(&http, &base, h.token(Role::FairAdmin)).await;
    let (_, listing) = get(&http, &format!("{base}/fairs"), Some(&cookie)).await;
    let (status, _) = post(
        &http,
        &format!("{base}/fairs/close"),
        format!("window={window}&csrf=00"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 403, "a close without the session's CSRF token");
    let listed = fairs
        .list_windows(pb::ListWindowsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.windows[0].closed_index, None, "still open");
    let token = csrf(&listing);
    // While open, the window's page reloads itself; once closed, it does not.
    let refresh = |http: &reqwest::Client| {
        let request = http
            .get(format!("{base}/fairs/window?window={window}"))
            .header("cookie", &cookie);
        async move {
            let answer = request.send().await.unwrap();
            assert_eq!(answer.status(), 200);
            answer
                .headers()
                .get("refresh")
                .map(|v| v.to_str().unwrap().to_owned())
        }
    };
    assert_eq!(refresh(&http).await.as_deref(), Some("10"));
    let (status, _) = post(
        &http,
        &format!("{base}/fairs/close"),
        format!("window={window}&csrf={token}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(refresh(&http).await, None);
    let (status, page) = post(
        &http,
        &format!("{base}/fairs/run"),
        format!("window={window}&csrf={token}&mechanism=da&precedence=own&beacon_source=test&beacon_round=7&beacon_value=00112233445566778899aabbccddeeff"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 303, "{page}");
    h.auditor()
        .await
        .get_checkpoint(pb::GetCheckpointRequest { refresh: true })
        .await
        .unwrap();
    let run = fairs
        .list_windows(pb::ListWindowsRequest {})
        .await
        .unwrap()
        .into_inner()
        .windows[0]
        .runs[0]
        .run_id
        .clone();
    let lookup = |id: &str, code: &str| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("domain", "fairs")
            .append_pair("window", window)
            .append_pair("id", id)
            .append_pair("code", code)
            .finish()
    };
    let mut placed = 0;
    for (id, code) in &people {
        let outcome = fairs
            .get_outcome(pb::GetFairOutcomeRequest {
                run_id: run.clone(),
                applicant: id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let (status, page) = post(&http, &format!("{base}/results"), lookup(id, code), None).await;
        assert_eq!(status, 200, "{id}: {page}");
        if outcome.fair.is_empty() {
            assert!(page.contains("You were not given a stall"), "{id}: {page}");
        } else {
            placed += 1;
            let shown = format!(
                "You were given a stall at <strong>{}</strong>",
                outcome.fair
            );
            assert!(page.contains(&shown), "{id}: {shown} in {page}");
            assert!(page.contains(&format!("your choice no. {}", outcome.rank)));
        }
        // The receipt proves the outcome's entry, with the entry's own bytes.
        let entry = h
            .auditor()
            .await
            .get_entry(pb::GetEntryRequest {
                index: outcome.log_index,
            })
            .await
            .unwrap()
            .into_inner()
            .entry
            .unwrap();
        use base64::Engine as _;
        let extra = format!(
            "extra {}",
            base64::engine::general_purpose::STANDARD.encode(&entry.data)
        );
        assert!(
            page.contains(&extra),
            "{id}: the receipt carries entry {}",
            outcome.log_index
        );
        assert!(page.contains(&format!("index {}", outcome.log_index)));
        assert!(
            !page.contains("<script>alert"),
            "markup in an id is shown as text"
        );
    }
    assert!(placed > 0 && placed < people.len(), "{placed} placed");
    // A wrong code, no code and an unknown id read the same.
    let (s1, wrong) = post(
        &http,
        &format!("{base}/results"),
        lookup("A1", "code-9999-x"),
        None,
    )
    .await;
    let (s2, none) = post(&http, &format!("{base}/results"), lookup("A1", ""), None).await;
    let (s3, unknown) = post(
        &http,
        &format!("{base}/results"),
        lookup("Z9", "code-0001-x"),
        None,
    )
    .await;
    assert_eq!((s1, s2, s3), (404, 404, 404));
    assert_eq!(alert(&wrong), alert(&unknown));
    assert_eq!(alert(&none), alert(&unknown));
    assert!(
        !wrong.contains("code-9999-x"),
        "the code typed is not written back"
    );
    // The published cutoffs, public; the window's list is not.
    let (status, page) = get(
        &http,
        &format!("{base}/cutoffs?domain=fairs&window={window}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page.matches("<tr><td>F").count(), 8, "one row per pool");
    let anonymous = allot_service::rpc::client::fairs(
        h.channel().await,
        allot_service::rpc::client::Bearer::new(None).unwrap(),
    );
    let mut anonymous = anonymous;
    assert_eq!(
        anonymous
            .list_windows(pb::ListWindowsRequest {})
            .await
            .unwrap_err()
            .code(),
        tonic::Code::Unauthenticated
    );
    let found = anonymous
        .look_up(pb::LookUpRequest {
            window: window.into(),
            id: "A0".into(),
            code: "code-0000-x".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.tier, 0);
    // A stall given back from the run's page goes down its pool's waitlist, as the API says.
    let mut holder = None;
    for (id, _) in &people {
        let o = fairs
            .get_outcome(pb::GetFairOutcomeRequest {
                run_id: run.clone(),
                applicant: id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if !o.fair.is_empty() && holder.is_none() {
            holder = Some(o);
        }
    }
    let before = holder.unwrap();
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("run", &hex::encode(&run))
        .append_pair("participant", &before.applicant)
        .append_pair("csrf", &token)
        .finish();
    let (status, page) = post(
        &http,
        &format!("{base}/fairs/withdraw"),
        form,
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let given = format!(
        "Given back: <strong>{} ({})</strong>",
        before.fair, before.category
    );
    assert!(page.contains(&given), "{page}");
    let after = fairs
        .get_outcome(pb::GetFairOutcomeRequest {
            run_id: run.clone(),
            applicant: before.applicant.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.fair, "");
    assert!(
        page.contains(&format!("entry {} · ", after.log_index)),
        "{page}"
    );
    // Another role's pages: 403.
    let (clinic, _) = sign_in(&http, &base, h.token(Role::ClinicSystem)).await;
    assert_eq!(
        get(&http, &format!("{base}/fairs"), Some(&clinic)).await.0,
        403
    );
    // A bad upload names the file, line and field, and submits nothing.
    let boundary = "XbOuNdArY";
    let part = |name: &str, file: Option<&str>, body: &str| match file {
        Some(f) => format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/csv\r\n\r\n{body}\r\n"
        ),
        None => format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{body}\r\n"
        ),
    };
    let body = [
        part("csrf", None, &token),
        part("window", None, "bad-1"),
        part(
            "fairs",
            Some("fairs.csv"),
            "fair,district,category,stalls\nF1,D1,food,many\n",
        ),
        part(
            "applicants",
            Some("applicants.csv"),
            "applicant,category,tier,choices\nA1,food,0,F1\n",
        ),
        format!("--{boundary}--\r\n"),
    ]
    .concat();
    let answer = http
        .post(format!("{base}/fairs/submit"))
        .header("cookie", &cookie)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let page = answer.text().await.unwrap();
    assert!(
        alert(&page).starts_with("fairs.csv:2: stalls:"),
        "{}",
        alert(&page)
    );
    let listed = fairs
        .list_windows(pb::ListWindowsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.windows.iter().all(|w| w.window != "bad-1"),
        "nothing submitted"
    );
}

/// A fair administrator's whole path in a real Chromium (`fairs.mjs`): upload the files, close,
/// run the three mechanisms and compare them, a run's results, chart, downloads and
/// verification; then a citizen, keyboard only, looks their result up and checks the receipt in
/// the browser (WebCrypto), which fails once one byte of it is changed. axe on every page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fair_window_and_a_citizens_receipt_in_chromium() {
    let Some(chromium) = chromium() else {
        return;
    };
    let h = Harness::with(12, |c| {
        c.web_listen = Some("127.0.0.1:0".parse().unwrap());
        c.checkpoint_interval = std::time::Duration::from_millis(200);
    })
    .await;
    let base = format!("http://{}", h.web_addr().unwrap());
    let dir = tempfile::TempDir::new().unwrap();
    let people = fair_files(dir.path());
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/web-artifacts");
    let (who, code) = &people[1];
    let stdout = node(
        "fairs.mjs",
        &[
            "--base",
            &base,
            "--token",
            h.token(Role::FairAdmin),
            "--files",
            dir.path().to_str().unwrap(),
            "--window",
            "e2e-1",
            "--applicant",
            who,
            "--code",
            code,
        ],
        &chromium,
        &out,
    )
    .await;
    // What the citizen saw is the API's outcome in the window's latest run (the third).
    let mut fairs = h.fairs().await;
    let listed = fairs
        .list_windows(pb::ListWindowsRequest {})
        .await
        .unwrap()
        .into_inner();
    let runs = &listed.windows[0].runs;
    let mechanisms: Vec<&str> = runs.iter().map(|r| r.mechanism.as_str()).collect();
    assert_eq!(mechanisms, ["da", "welfare", "rsd"]);
    let outcome = fairs
        .get_outcome(pb::GetFairOutcomeRequest {
            run_id: runs[2].run_id.clone(),
            applicant: who.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let seen = stdout
        .lines()
        .find_map(|l| l.strip_prefix("OUTCOME "))
        .expect("the outcome line");
    if outcome.fair.is_empty() {
        assert!(seen.contains("not given a stall"), "{seen}");
    } else {
        assert!(
            seen.contains(&format!("stall at {}", outcome.fair)),
            "{seen} vs {outcome:?}"
        );
    }
    for page in [
        "fairs",
        "window",
        "compare",
        "run",
        "verify",
        "results-form",
        "result",
        "cutoffs",
    ] {
        assert!(
            out.join(format!("{page}.png")).exists(),
            "a screenshot of {page}"
        );
    }
}

/// The console in a real headless Chromium (Debian's), driven by Playwright with axe-core's
/// audit (`service/tests/web/console.mjs`): keyboard-only sign-in, the audit page and a proof,
/// at 1280 and 375 px, no serious or critical accessibility finding, no console error, no
/// horizontal scroll. Screenshots are kept in `target/web-artifacts/`. Needs `node` with
/// `npm ci --prefix service/tests/web` and `chromium`; `.ci/run` provides both, and with
/// `ALLOT_REQUIRE_CHROMIUM=1` a missing one fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_chromium_is_keyboard_usable_and_accessible() {
    let Some(chromium) = chromium() else {
        return;
    };
    let h = Harness::city_with(0.02, |c| {
        c.web_listen = Some("127.0.0.1:0".parse().unwrap())
    })
    .await;
    let base = format!("http://{}", h.web_addr().unwrap());
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/web-artifacts");
    let token = h.all.clone();
    // A booking for the absence to displace, and a queue of referrals near it to re-balance.
    let clinic = &h.schedule().clinics[0];
    let home = (clinic.location.lat, clinic.location.lon);
    let slot = book_near(&h, "E", home, 1).await.remove(0);
    let day = day_of(&slot);
    let files = tempfile::TempDir::new().unwrap();
    let requests = files.path().join("requests.csv");
    let mut csv = String::from("request,patient,district,specialty,earliest\n");
    for i in 0..5 {
        csv.push_str(&format!("R{i},Q{i},{},therapist,{day}\n", slot.district));
    }
    std::fs::write(&requests, csv).unwrap();
    let stdout = node(
        "console.mjs",
        &[
            "--base",
            &base,
            "--token",
            &token,
            "--doctor",
            &slot.doctor,
            "--day",
            &day,
            "--requests",
            requests.to_str().unwrap(),
        ],
        &chromium,
        &out,
    )
    .await;
    // The absence's re-offer is the API's: the appointment it lists is the displaced one.
    let absence = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ABSENCE "))
        .unwrap();
    let appointments = h
        .clinic()
        .await
        .list_appointments(pb::ListAppointmentsRequest {
            patient_id: "E0".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let displaced = &appointments.appointments[0];
    assert!(
        absence.contains(&displaced.id),
        "{absence} names {}",
        displaced.id
    );
    let plan = stdout
        .lines()
        .find_map(|l| l.strip_prefix("REBALANCE "))
        .unwrap();
    assert!(plan.contains("referrals given a slot 5 5"), "{plan}");
    for page in [
        "sign-in",
        "home",
        "audit",
        "clinics",
        "clinic-actions",
        "absence",
        "rebalance",
        "simulation",
        "simulation-done",
        "report",
        "simulations-compared",
    ] {
        assert!(
            out.join(format!("{page}.png")).exists(),
            "a screenshot of {page}"
        );
    }
}
