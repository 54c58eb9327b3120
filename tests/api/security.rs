//! The defects of issue 10, each replayed as a client would, and the front door.
//!
//! Every test here failed before its fix (see the issue's closing note for the
//! run against the code before the change).

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::Method;
use serde_json::{json, Value};

use crate::dual;
use crate::helpers::{png, spawn_app, spawn_app_with, today, Backend, Resp, TestApp};

dual!(
    a_recorder_sees_only_their_own_patients_of_a_shared_household,
    a_patient_given_to_another_recorder_leaves_the_old_recorders_lists,
    a_subscription_that_starts_tomorrow_gives_no_access_today,
    an_idempotent_replay_passes_authentication_and_authorization_again,
    idempotency_needs_a_caller_stores_no_tokens_and_expires,
    requests_over_the_rate_limit_get_429_and_health_still_answers,
    a_username_is_throttled_after_five_failures_and_every_attempt_is_audited,
    multipart_forms_are_bounded_like_json,
    an_image_bomb_is_refused_before_it_is_decoded,
    forwarded_headers_count_only_from_trusted_proxies,
    documents_download_as_sandboxed_attachments,
    every_response_carries_security_headers_and_cors_only_for_listed_origins,
    password_changes_and_resets_revoke_sessions,
    profiles_are_edited_by_admins_and_their_owners,
    metrics_are_for_admins_or_a_private_listener,
);

/// Two recorders, one household with one patient each, one other household.
struct Household {
    app: TestApp,
    a: (String, String),
    b: (String, String),
    family: String,
    pa: String,
    pb: String,
    sub_a: String,
    package: String,
}

async fn household(app: TestApp) -> Household {
    let a = app.recorder(1).await;
    let b = app.recorder(2).await;
    let package = app.package().await;
    let family = app.family("张家").await;
    let pa = app.patient(&family, "张奶奶").await;
    let pb = app.patient(&family, "张爷爷").await;
    let sub_a = app.subscribe(&pa, &package, &a.0).await;
    app.subscribe(&pb, &package, &b.0).await;
    Household {
        app,
        a,
        b,
        family,
        pa,
        pb,
        sub_a,
        package,
    }
}

async fn a_recorder_sees_only_their_own_patients_of_a_shared_household(backend: Backend) {
    let h = household(spawn_app(backend).await).await;
    let app = &h.app;
    // Recorder B writes a note about their patient.
    app.record(&h.b.1, &h.pb, "B的私密护理记录").await;

    let d = app.get(&format!("/families/{}", h.family), &h.a.1).await.ok();
    let patients = d.data()["patients"].as_array().unwrap();
    assert_eq!(patients.len(), 1, "A sees only A's patient: {}", d.body);
    assert_eq!(patients[0]["id"], h.pa.as_str());
    let text = d.body.to_string();
    assert!(
        !text.contains("张爷爷") && !text.contains(&h.pb),
        "B's patient leaked: {text}"
    );
    assert!(!text.contains("B的私密护理记录"), "B's note leaked: {text}");

    // Counted nowhere A could read it either.
    let l = app.get("/families", &h.a.1).await.ok();
    assert_eq!(l.data()["families"][0]["patient_count"], 1, "{}", l.body);
    assert_eq!(l.data()["families"][0]["active_subscriptions"], 1, "{}", l.body);
    // Searching for B's patient by name does not find the household for A.
    let s = app
        .get("/families?search=%E5%BC%A0%E7%88%B7%E7%88%B7", &h.a.1) // 张爷爷
        .await
        .ok();
    assert_eq!(s.data()["total"], 0, "{}", s.body);
    app.get(&format!("/patients/{}", h.pb), &h.a.1)
        .await
        .err(404, "not_found");
    app.get(&format!("/patients/{}/health-records", h.pb), &h.a.1)
        .await
        .err(404, "not_found");

    // The admin still sees the whole household.
    let d = app.get(&format!("/families/{}", h.family), &app.admin_token).await.ok();
    assert_eq!(d.data()["patients"].as_array().unwrap().len(), 2);
    let l = app.get("/families", &app.admin_token).await.ok();
    assert_eq!(l.data()["families"][0]["patient_count"], 2);
    assert_eq!(l.data()["families"][0]["active_subscriptions"], 2);
}

async fn a_patient_given_to_another_recorder_leaves_the_old_recorders_lists(backend: Backend) {
    let h = household(spawn_app(backend).await).await;
    let app = &h.app;
    let tomorrow = (today() + chrono::Duration::days(1)).to_string();
    let visit = app
        .post(
            "/appointments",
            &h.a.1,
            json!({"patient_id": h.pa, "scheduled_date": tomorrow, "scheduled_time": "10:00", "notes": "量血压"}),
        )
        .await
        .ok()
        .id();
    assert_eq!(app.get("/appointments", &h.a.1).await.ok().data()["total"], 1);

    // The patient moves to recorder B.
    app.post(
        &format!("/subscriptions/{}/status", h.sub_a),
        &app.admin_token,
        json!({"status": "cancelled"}),
    )
    .await
    .ok();
    app.subscribe(&h.pa, &h.package, &h.b.0).await;

    let l = app.get("/appointments", &h.a.1).await.ok();
    assert_eq!(l.data()["total"], 0, "A's list still shows the patient: {}", l.body);
    assert!(!l.body.to_string().contains("张奶奶"));
    app.get(&format!("/appointments/{visit}"), &h.a.1)
        .await
        .err(404, "not_found");
    app.post(&format!("/appointments/{visit}/confirm"), &h.a.1, json!({}))
        .await
        .err(404, "not_found");
    let bookings = app.get("/hospital-appointments", &h.a.1).await.ok();
    assert_eq!(bookings.data()["total"], 0);
    let n = app.get("/notifications", &h.a.1).await.ok();
    assert!(!n.body.to_string().contains(&h.pa), "{}", n.body);
    app.get(&format!("/families/{}", h.family), &h.a.1)
        .await
        .err(404, "not_found");
}

async fn a_subscription_that_starts_tomorrow_gives_no_access_today(backend: Backend) {
    let app = spawn_app(backend).await;
    let (rid, token) = app.recorder(1).await;
    let package = app.package().await;
    let family = app.family("刘家").await;
    let patient = app.patient(&family, "刘奶奶").await;
    let tomorrow = (today() + chrono::Duration::days(1)).to_string();
    app.post(
        "/subscriptions",
        &app.admin_token,
        json!({"patient_id": patient, "package_id": package, "recorder_id": rid, "start_date": tomorrow}),
    )
    .await
    .ok();

    assert_eq!(app.get("/families", &token).await.ok().data()["total"], 0);
    app.get(&format!("/families/{family}"), &token)
        .await
        .err(404, "not_found");
    app.get(&format!("/patients/{patient}"), &token)
        .await
        .err(404, "not_found");
    app.get(&format!("/patients/{patient}/health-records"), &token)
        .await
        .err(404, "not_found");
    let before = app.event_count().await;
    app.post(
        "/health-records",
        &token,
        json!({"patient_id": patient, "visit_date": today().to_string(), "visit_time": "08:00",
               "vital_signs": {"blood_pressure": "120/80"}}),
    )
    .await
    .err(404, "not_found");
    assert_eq!(app.event_count().await, before, "nothing written");
    // The admin sees the subscription as it is: not yet running.
    let p = app.get(&format!("/patients/{patient}"), &app.admin_token).await.ok();
    assert_eq!(p.data()["current_subscription"]["start_date"], tomorrow.as_str());
}

async fn send_keyed(app: &TestApp, method: Method, path: &str, token: Option<&str>, body: Value, key: &str) -> Resp {
    app.send(method, path, token, Some(body), &[("Idempotency-Key", key)])
        .await
}

async fn an_idempotent_replay_passes_authentication_and_authorization_again(backend: Backend) {
    let h = household(spawn_app(backend).await).await;
    let app = &h.app;
    let record = app.record(&h.a.1, &h.pa, "初次记录").await;
    let amend = json!({"reason_code": "typo", "changes": {"notes": "更正：血压偏高需复查"}});
    let path = format!("/health-records/{record}/amendments");
    let first = send_keyed(app, Method::POST, &path, Some(&h.a.1), amend.clone(), "amend-1")
        .await
        .ok();
    assert!(first.body.to_string().contains("血压偏高需复查"));
    let again = send_keyed(app, Method::POST, &path, Some(&h.a.1), amend.clone(), "amend-1")
        .await
        .ok();
    assert_eq!(again.headers["idempotent-replayed"], "true");

    // The recorder loses the patient: the replay is refused like a new request.
    app.post(
        &format!("/subscriptions/{}/status", h.sub_a),
        &app.admin_token,
        json!({"status": "paused"}),
    )
    .await
    .ok();
    let r = send_keyed(app, Method::POST, &path, Some(&h.a.1), amend.clone(), "amend-1")
        .await
        .err(404, "not_found");
    assert!(!r.body.to_string().contains("血压偏高"), "{}", r.body);

    // After logout: 401, not the stored answer.
    let token = app.login("recorder2", "recorder-pass").await;
    let keyed = |t: String| {
        let body = json!({"patient_id": h.pb, "scheduled_date": (today() + chrono::Duration::days(2)).to_string(),
                          "scheduled_time": "09:00"});
        async move { send_keyed(app, Method::POST, "/appointments", Some(&t), body, "visit-1").await }
    };
    keyed(token.clone()).await.ok();
    app.send(Method::POST, "/auth/logout", Some(&token), None, &[])
        .await
        .ok();
    keyed(token.clone()).await.err(401, "unauthorized");

    // After a suspension: 401 with every token the user had.
    let fresh = app.login("recorder2", "recorder-pass").await;
    keyed(fresh.clone()).await.ok();
    app.patch(
        &format!("/users/{}/status", h.b.0),
        &app.admin_token,
        json!({"status": "suspended"}),
    )
    .await
    .ok();
    keyed(fresh).await.err(401, "unauthorized");
}

async fn idempotency_rows(app: &TestApp) -> i64 {
    use carelog::store::Backend as B;
    match app.state.store.backend() {
        B::Postgres(pool) => sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys")
            .fetch_one(pool)
            .await
            .unwrap(),
        B::Sqlite(carelog::store::SqliteDb { read: pool, .. }) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys")
                .fetch_one(pool)
                .await
                .unwrap()
        }
    }
}

async fn idempotency_needs_a_caller_stores_no_tokens_and_expires(backend: Backend) {
    let app = spawn_app_with(backend, &[("CARELOG_IDEMPOTENCY_TTL_SECS", "2".into())]).await;
    let family = json!({"family_name": "赵家", "primary_address": "赵家路1号", "contact_phone": "13912345678"});
    let rows = idempotency_rows(&app).await;

    // Anonymous, or with a bad token: 401 and no row.
    send_keyed(&app, Method::POST, "/families", None, family.clone(), "anon-1")
        .await
        .err(401, "unauthorized");
    send_keyed(
        &app,
        Method::POST,
        "/families",
        Some("not-a-token"),
        family.clone(),
        "anon-2",
    )
    .await
    .err(401, "unauthorized");
    // A huge body without credentials is refused before it is read.
    let huge = "x".repeat(8 * 1024 * 1024);
    let r = app
        .client
        .post(app.url("/families"))
        .header("Idempotency-Key", "anon-3")
        .header("Content-Type", "application/json")
        .body(format!("{{\"family_name\":\"{huge}\"}}"))
        .send()
        .await;
    if let Ok(r) = r {
        // The server may answer and close before the client has sent it all.
        assert_eq!(r.status().as_u16(), 401);
    }
    // With credentials, the body is capped by the JSON limit (1 MiB), not 64 MiB.
    let big = json!({"family_name": "x".repeat(2 * 1024 * 1024)});
    send_keyed(&app, Method::POST, "/families", Some(&app.admin_token), big, "big-1")
        .await
        .err(413, "payload_too_large");
    assert_eq!(
        idempotency_rows(&app).await,
        rows,
        "nothing reserved for refused requests"
    );

    // Logins are never stored or replayed: each answer is a new session.
    let login = json!({"username": "admin", "password": crate::helpers::ADMIN_PASSWORD});
    let l1 = send_keyed(&app, Method::POST, "/auth/login", None, login.clone(), "login-1")
        .await
        .ok();
    let l2 = send_keyed(&app, Method::POST, "/auth/login", None, login.clone(), "login-1")
        .await
        .ok();
    assert!(l2.headers.get("idempotent-replayed").is_none());
    assert_ne!(l1.data()["access_token"], l2.data()["access_token"]);
    assert_eq!(idempotency_rows(&app).await, rows, "no auth response stored");

    // A stored response answers repeats while its key lives, then expires.
    let created = send_keyed(
        &app,
        Method::POST,
        "/families",
        Some(&app.admin_token),
        family.clone(),
        "fam-1",
    )
    .await
    .ok();
    let replayed = send_keyed(
        &app,
        Method::POST,
        "/families",
        Some(&app.admin_token),
        family.clone(),
        "fam-1",
    )
    .await
    .ok();
    assert_eq!(replayed.headers["idempotent-replayed"], "true");
    assert_eq!(replayed.id(), created.id());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let late = send_keyed(
        &app,
        Method::POST,
        "/families",
        Some(&app.admin_token),
        family.clone(),
        "fam-1",
    )
    .await;
    assert!(late.headers.get("idempotent-replayed").is_none(), "{}", late.body);
    let purged = carelog::idempotency::purge_expired(&app.state.store, 0).await.unwrap();
    assert!(purged >= 1);
}

async fn requests_over_the_rate_limit_get_429_and_health_still_answers(backend: Backend) {
    let app = spawn_app_with(backend, &[("CARELOG_RATE_LIMIT_PER_MINUTE", "20".into())]).await;
    // spawn_app logged in once; use up what is left of the minute.
    let mut limited = None;
    for n in 0..40 {
        let r = app.get("/auth/me", &app.admin_token).await;
        if r.status.as_u16() == 429 {
            limited = Some((n, r));
            break;
        }
        r.ok();
    }
    let (n, r) = limited.expect("no 429 within 40 requests");
    assert!(n >= 15, "limited after only {n} requests");
    let r = r.err(429, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    // Probes are exempt.
    for _ in 0..5 {
        let h = app.client.get(format!("{}/health", app.base)).send().await.unwrap();
        assert_eq!(h.status().as_u16(), 200);
    }
}

async fn a_username_is_throttled_after_five_failures_and_every_attempt_is_audited(backend: Backend) {
    let app = spawn_app_with(backend, &[("CARELOG_LOGIN_WINDOW_SECS", "10".into())]).await;
    let (_, auditor) = app.staff("auditor", 1).await;
    let (rid, _) = app.recorder(7).await;
    let attempt = |password: &'static str| {
        app.send(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "recorder7", "password": password})),
            &[("User-Agent", "guesser/1.0")],
        )
    };
    for _ in 0..5 {
        attempt("wrong-guess-1").await.err(401, "unauthorized");
    }
    let r = attempt("wrong-guess-1").await.err(429, "rate_limited");
    assert!(r.headers.contains_key("retry-after"));
    // Even the right password waits for the window.
    attempt("recorder-pass").await.err(429, "rate_limited");
    // Other usernames are not affected.
    app.login("admin", crate::helpers::ADMIN_PASSWORD).await;

    let l = app.get("/audit/logins?username=recorder7", &auditor).await.ok();
    let attempts = l.data()["attempts"].as_array().unwrap().clone();
    let outcomes: Vec<&str> = attempts.iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(
        outcomes,
        [
            "succeeded",
            "failed",
            "failed",
            "failed",
            "failed",
            "failed",
            "throttled",
            "throttled"
        ],
        "{}",
        l.body
    );
    let failed = &attempts[1];
    assert_eq!(failed["reason"], "wrong_password");
    assert!(failed["user_id"].is_null(), "actor unknown");
    assert_eq!(failed["ip"], "127.0.0.1");
    assert_eq!(failed["user_agent"], "guesser/1.0");
    assert!(!l.body.to_string().contains("recorder7"), "username only hashed");
    // Unknown usernames are recorded too; recorders may not read the trail.
    attempt_unknown(&app).await;
    let all = app.get("/audit/logins", &auditor).await.ok();
    assert!(all.data()["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["reason"] == "unknown_user"));
    let (_, other) = app.recorder(8).await;
    app.get("/audit/logins", &other).await.err(403, "forbidden");
    let _ = rid;

    // When the window has passed, the right password works again.
    tokio::time::sleep(Duration::from_secs(10)).await;
    attempt("recorder-pass").await.ok();
}

async fn attempt_unknown(app: &TestApp) {
    app.send(
        Method::POST,
        "/auth/login",
        None,
        Some(json!({"username": "nobody-here", "password": "whatever-1"})),
        &[],
    )
    .await
    .err(401, "unauthorized");
}

async fn multipart_record(app: &TestApp, token: &str, form: Form) -> Resp {
    app.multipart("/health-records", token, form).await
}

/// A record form with `n` small photos.
fn with_photos(mut form: Form, n: usize) -> Form {
    let photo = png(8, 8);
    for i in 0..n {
        let part = Part::bytes(photo.clone())
            .file_name(format!("p{i}.png"))
            .mime_str("image/png")
            .unwrap();
        form = form.part("photos", part);
    }
    form
}

fn record_form(patient: &str) -> Form {
    Form::new()
        .text("patient_id", patient.to_string())
        .text("visit_date", today().to_string())
        .text("visit_time", "09:00")
        .text("vital_signs", r#"{"blood_pressure":"120/80"}"#)
}

async fn multipart_forms_are_bounded_like_json(backend: Backend) {
    let h = household(spawn_app(backend).await).await;
    let app = &h.app;
    let photo = png(8, 8);
    let before = app.event_count().await;
    let form = with_photos(record_form(&h.pa), 10);
    multipart_record(app, &h.a.1, form).await.err(400, "validation_failed");
    // Sixty photos stop the read at the file limit, long before decoding.
    let form = with_photos(record_form(&h.pa), 60);
    multipart_record(app, &h.a.1, form).await.err(413, "payload_too_large");
    // Hundreds of small text parts: the part limit.
    let mut form = record_form(&h.pa);
    for n in 0..300 {
        form = form.text(format!("f{n}"), "x");
    }
    multipart_record(app, &h.a.1, form).await.err(413, "payload_too_large");
    // An upload form carries one file.
    let form = Form::new()
        .text("type", "image")
        .part("file", Part::bytes(photo.clone()).file_name("a.png"))
        .part("file", Part::bytes(photo.clone()).file_name("b.png"));
    app.multipart("/files/upload", &h.a.1, form)
        .await
        .err(413, "payload_too_large");
    assert_eq!(app.event_count().await, before, "nothing was written");
    // Nine photos are fine.
    let form = with_photos(record_form(&h.pa), 9);
    multipart_record(app, &h.a.1, form).await.ok();
}

/// A valid PNG whose header claims `w`×`h` pixels, a few hundred bytes long.
fn png_bomb(w: u32, h: u32) -> Vec<u8> {
    let mut bytes = png(4, 4);
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32fast::hash(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

async fn an_image_bomb_is_refused_before_it_is_decoded(backend: Backend) {
    let h = household(spawn_app(backend).await).await;
    let app = &h.app;
    let before = app.event_count().await;
    let bombs = (0..4).map(|n| {
        let form = Form::new().text("type", "image").part(
            "file",
            Part::bytes(png_bomb(9000, 9000)).file_name(format!("bomb{n}.png")),
        );
        app.client
            .post(app.url("/files/upload"))
            .bearer_auth(&h.a.1)
            .multipart(form)
            .send()
    });
    for r in futures::future::join_all(bombs).await {
        assert_eq!(r.unwrap().status().as_u16(), 413);
    }
    let form = record_form(&h.pa).part("photos", Part::bytes(png_bomb(9000, 9000)).file_name("bomb.png"));
    multipart_record(app, &h.a.1, form).await.err(413, "payload_too_large");
    assert_eq!(app.event_count().await, before);
}

async fn latest_event(app: &TestApp, aggregate: &str) -> Value {
    let r = app
        .get(&format!("/audit/events?aggregate_id={aggregate}"), &app.admin_token)
        .await
        .ok();
    r.data()["events"].as_array().unwrap().last().unwrap().clone()
}

async fn forwarded_headers_count_only_from_trusted_proxies(backend: Backend) {
    let forged = [
        ("X-Forwarded-For", "203.0.113.9"),
        ("X-Real-IP", "203.0.113.10"),
        ("Forwarded", "for=203.0.113.11"),
    ];
    let family = json!({"family_name": "钱家", "primary_address": "钱家路1号", "contact_phone": "13912345678"});
    // Untrusted (the default): the peer address is what the trail shows.
    let app = spawn_app(backend).await;
    let id = app
        .send(
            Method::POST,
            "/families",
            Some(&app.admin_token),
            Some(family.clone()),
            &forged,
        )
        .await
        .ok()
        .id();
    assert_eq!(latest_event(&app, &id).await["ip"], "127.0.0.1");
    let patient = app.patient(&id, "钱奶奶").await;
    app.send(
        Method::GET,
        &format!("/patients/{patient}"),
        Some(&app.admin_token),
        None,
        &forged,
    )
    .await
    .ok();
    let log = app
        .get(&format!("/audit/access?patient_id={patient}"), &app.admin_token)
        .await
        .ok();
    assert_eq!(log.data()["entries"][0]["ip"], "127.0.0.1", "{}", log.body);

    // Behind a trusted proxy, its X-Forwarded-For names the client.
    let app = spawn_app_with(backend, &[("CARELOG_TRUSTED_PROXIES", "127.0.0.1/32".into())]).await;
    let id = app
        .send(
            Method::POST,
            "/families",
            Some(&app.admin_token),
            Some(family),
            &[("X-Forwarded-For", "198.51.100.1, 203.0.113.9")],
        )
        .await
        .ok()
        .id();
    assert_eq!(latest_event(&app, &id).await["ip"], "203.0.113.9");
}

async fn documents_download_as_sandboxed_attachments(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, token) = app.recorder(1).await;
    let pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n".to_vec();
    let form = Form::new()
        .text("type", "document")
        .part("file", Part::bytes(pdf).file_name("report.pdf"));
    let up = app.multipart("/files/upload", &token, form).await.ok().body;
    let id = up["data"]["file_id"].as_str().unwrap();
    let r = app
        .client
        .get(app.url(&format!("/files/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let disposition = r.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));

    if backend == Backend::Embedded {
        use std::os::unix::fs::PermissionsExt;
        let dir = app._dir.path();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir), 0o700, "data dir");
        for f in std::fs::read_dir(dir).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            if name.ends_with(".db") || name.contains(".db-") || name == "jwt_secret" || name == "master_key" {
                assert_eq!(mode(&f.path()), 0o600, "{name}");
            }
        }
        assert_eq!(mode(&dir.join("uploads")), 0o700, "uploads");
    }
}

async fn every_response_carries_security_headers_and_cors_only_for_listed_origins(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[("CARELOG_CORS_ORIGINS", "https://admin.carelog.example".into())],
    )
    .await;
    for (path, token) in [
        ("/auth/me", Some(app.admin_token.as_str())),
        ("/no-such-route", None),
        ("/families", None),
    ] {
        let mut req = app.client.get(app.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        // HSTS is on by default with servers (behind TLS), off when embedded.
        assert_eq!(
            h.get("strict-transport-security").is_some(),
            backend == Backend::Servers,
            "{path}"
        );
    }
    let health = app.client.get(format!("{}/health", app.base)).send().await.unwrap();
    assert_eq!(health.headers()["x-frame-options"], "DENY");

    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url("/families"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type, idempotency-key",
            )
            .send()
    };
    let ok = preflight("https://admin.carelog.example").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://admin.carelog.example"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // Without CARELOG_CORS_ORIGINS: no CORS headers at all; HSTS when asked for.
    let plain = spawn_app_with(backend, &[("CARELOG_HSTS", "true".into())]).await;
    let r = plain
        .client
        .get(plain.url("/auth/me"))
        .bearer_auth(&plain.admin_token)
        .header("Origin", "https://admin.carelog.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert_eq!(
        r.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
}

async fn password_changes_and_resets_revoke_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let (rid, phone_session) = app.recorder(1).await;
    let laptop = app.login("recorder1", "recorder-pass").await;

    // The policy names new_password.
    for weak in ["short1", "onlyletters", "12345678"] {
        let r = app
            .post(
                "/auth/password",
                &phone_session,
                json!({"old_password": "recorder-pass", "new_password": weak}),
            )
            .await
            .err(400, "validation_failed");
        assert!(r.body["details"]["new_password"].is_string(), "{weak}");
    }
    let r = app
        .post(
            "/auth/password",
            &phone_session,
            json!({"old_password": "wrong-old-1", "new_password": "new-pass-2024"}),
        )
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["old_password"].is_string());

    app.post(
        "/auth/password",
        &phone_session,
        json!({"old_password": "recorder-pass", "new_password": "new-pass-2024"}),
    )
    .await
    .ok();
    app.get("/auth/me", &phone_session).await.ok();
    app.get("/auth/me", &laptop).await.err(401, "unauthorized");
    app.send(
        Method::POST,
        "/auth/login",
        None,
        Some(json!({"username": "recorder1", "password": "recorder-pass"})),
        &[],
    )
    .await
    .err(401, "unauthorized");
    let again = app.login("recorder1", "new-pass-2024").await;

    // An admin reset ends every session, the user's own included.
    app.post(
        &format!("/users/{rid}/password"),
        &app.admin_token,
        json!({"new_password": "weak"}),
    )
    .await
    .err(400, "validation_failed");
    app.post(
        &format!("/users/{rid}/password"),
        &phone_session,
        json!({"new_password": "reset-pass-77"}),
    )
    .await
    .err(403, "forbidden");
    app.post(
        &format!("/users/{rid}/password"),
        &app.admin_token,
        json!({"new_password": "reset-pass-77"}),
    )
    .await
    .ok();
    app.get("/auth/me", &phone_session).await.err(401, "unauthorized");
    app.get("/auth/me", &again).await.err(401, "unauthorized");
    app.login("recorder1", "reset-pass-77").await;
}

async fn profiles_are_edited_by_admins_and_their_owners(backend: Backend) {
    let app = spawn_app(backend).await;
    let (rid, rtoken) = app.recorder(1).await;
    let (did, _) = app.staff("doctor", 1).await;

    let r = app
        .patch(
            &format!("/users/{rid}"),
            &app.admin_token,
            json!({"name": "王记录员", "recorder": {"cert_expiry_date": "2027-06-30", "is_on_duty": false,
                   "work_area": "静安区"}}),
        )
        .await
        .ok();
    assert_eq!(r.data()["name"], "王记录员");
    assert_eq!(r.data()["recorder"]["cert_expiry_date"], "2027-06-30");
    assert_eq!(r.data()["recorder"]["is_on_duty"], false);
    assert_eq!(r.data()["recorder"]["work_area"], "静安区");
    let d = app
        .patch(
            &format!("/users/{did}"),
            &app.admin_token,
            json!({"doctor": {"is_available": false, "title": "主任医师"}}),
        )
        .await
        .ok();
    assert_eq!(d.data()["doctor"]["is_available"], false);
    assert_eq!(d.data()["doctor"]["title"], "主任医师");
    // A profile section of another role, a bad date, a recorder editing: refused.
    app.patch(
        &format!("/users/{rid}"),
        &app.admin_token,
        json!({"doctor": {"is_available": true}}),
    )
    .await
    .err(400, "validation_failed");
    let bad = app
        .patch(
            &format!("/users/{rid}"),
            &app.admin_token,
            json!({"recorder": {"cert_expiry_date": "2027-02-30"}}),
        )
        .await
        .err(400, "validation_failed");
    assert!(bad.body["details"]["recorder.cert_expiry_date"].is_string());
    app.patch(&format!("/users/{rid}"), &rtoken, json!({"name": "x"}))
        .await
        .err(403, "forbidden");
    // The admin's phone is taken.
    app.patch(
        &format!("/users/{rid}"),
        &app.admin_token,
        json!({"phone": "13800000000"}),
    )
    .await
    .err(409, "conflict");

    // Users change their own name and avatar, nothing else.
    let me = app
        .patch(
            "/auth/me",
            &rtoken,
            json!({"name": "小王", "avatar": "https://cdn.example/a.png"}),
        )
        .await
        .ok();
    assert_eq!(me.data()["name"], "小王");
    assert_eq!(me.data()["avatar"], "https://cdn.example/a.png");
    app.patch("/auth/me", &rtoken, json!({"role": "admin"}))
        .await
        .err(400, "validation_failed");
    assert_eq!(app.get("/auth/me", &rtoken).await.ok().data()["role"], "recorder");
}

async fn metrics_are_for_admins_or_a_private_listener(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, rtoken) = app.recorder(1).await;
    let get = |token: Option<&str>| {
        let mut req = app.client.get(format!("{}/metrics", app.base));
        if let Some(t) = token {
            req = req.bearer_auth(t.to_string());
        }
        req.send()
    };
    assert_eq!(get(None).await.unwrap().status().as_u16(), 401);
    assert_eq!(get(Some(&rtoken)).await.unwrap().status().as_u16(), 403);
    let r = get(Some(&app.admin_token)).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    assert!(text.contains("carelog_http_request_duration_seconds_bucket"), "{text}");
    assert!(text.contains("route=\"/api/v1/auth/me\"") || text.contains("route=\"/api/v1/users\""));
    assert!(text.contains("carelog_commands_total"));
    assert!(text.contains("carelog_projection_lag_events"));
    assert!(text.contains("carelog_projection_lag_seconds"));
    assert!(
        text.contains("carelog_db_pool_connections{pool=\"read\",state=\"open\"}"),
        "{text}"
    );
    assert!(
        text.contains("carelog_db_pool_connections{pool=\"events\",state=\"idle\"}"),
        "{text}"
    );

    // On its own listener (kept private by the operator), no token is asked for,
    // and the API listener no longer serves it.
    let private = spawn_app_with(backend, &[("CARELOG_METRICS_BIND", "127.0.0.1:0".into())]).await;
    let port = private.metrics_port.expect("metrics listener");
    let r = private
        .client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("carelog_event_store_head"));
    let r = private
        .client
        .get(format!("{}/metrics", private.base))
        .bearer_auth(&private.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
