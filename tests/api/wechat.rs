//! WeChat login, binding and push, against a test double of the WeChat API
//! (a local HTTP server speaking the documented protocol: `code2session`,
//! the access token, subscribe messages). The database and carelog are real.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use reqwest::Method;
use serde_json::{json, Value};

use domain::push::PushStatus;
use projections::wechat::PushRow;

use crate::dual;
use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp};

dual!(
    a_bound_wechat_account_logs_in_and_an_unbound_one_is_told_so,
    an_openid_is_bound_to_one_account_at_most,
    an_order_request_reaches_its_doctor_on_wechat_exactly_once,
    the_evening_visit_reminder_reaches_a_bound_recorder_once,
    a_failed_push_is_retried_and_sent_once_without_delaying_the_command,
    an_access_token_wechat_calls_invalid_is_fetched_again,
    without_wechat_settings_login_is_not_found_and_nothing_is_pushed,
);

const APP_ID: &str = "wx-test-app";
const APP_SECRET: &str = "wx-test-secret";
const TEMPLATE: &str = "tmpl-order-request";
const REMINDER_TEMPLATE: &str = "tmpl-visit-reminder";

/// What the double knows and what it was sent.
#[derive(Default)]
struct WechatState {
    /// Login code → openid.
    codes: HashMap<String, String>,
    tokens_issued: u32,
    /// Subscribe messages accepted.
    sent: Vec<Value>,
    /// Sends to refuse (errcode -1, "system busy") before accepting.
    fail_sends: u32,
    /// Sends refused so far.
    failed: u32,
    /// Access tokens up to this number are invalid (errcode 40001).
    revoked_up_to: u32,
}

#[derive(Clone)]
struct Double {
    base: String,
    state: Arc<Mutex<WechatState>>,
}

impl Double {
    async fn start() -> Self {
        let state = Arc::new(Mutex::new(WechatState::default()));
        let data = web::Data::from(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/sns/jscode2session", web::get().to(code2session))
                .route("/cgi-bin/token", web::get().to(token))
                .route("/cgi-bin/message/subscribe/send", web::post().to(send))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Double {
            base: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    /// A login code for `openid`.
    fn code(&self, code: &str, openid: &str) -> String {
        self.state.lock().unwrap().codes.insert(code.into(), openid.into());
        code.into()
    }

    fn sent(&self) -> Vec<Value> {
        self.state.lock().unwrap().sent.clone()
    }

    fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CARELOG_WECHAT_APP_ID", APP_ID.into()),
            ("CARELOG_WECHAT_APP_SECRET", APP_SECRET.into()),
            ("CARELOG_WECHAT_API_BASE", self.base.clone()),
            ("CARELOG_WECHAT_TEMPLATE_ORDER_REQUEST", TEMPLATE.into()),
            ("CARELOG_WECHAT_TEMPLATE_VISIT_REMINDER", REMINDER_TEMPLATE.into()),
            ("CARELOG_WECHAT_PUSH_RETRY_SECS", "1".into()),
        ]
    }
}

fn credentials_ok(q: &HashMap<String, String>) -> bool {
    q.get("appid").map(String::as_str) == Some(APP_ID) && q.get("secret").map(String::as_str) == Some(APP_SECRET)
}

async fn code2session(s: web::Data<Mutex<WechatState>>, q: web::Query<HashMap<String, String>>) -> HttpResponse {
    if !credentials_ok(&q) || q.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return HttpResponse::Ok().json(json!({"errcode": 40013, "errmsg": "invalid appid"}));
    }
    let code = q.get("js_code").cloned().unwrap_or_default();
    match s.lock().unwrap().codes.get(&code) {
        Some(openid) => HttpResponse::Ok().json(json!({"openid": openid, "session_key": "sk-secret"})),
        None => HttpResponse::Ok().json(json!({"errcode": 40029, "errmsg": "invalid code"})),
    }
}

async fn token(s: web::Data<Mutex<WechatState>>, q: web::Query<HashMap<String, String>>) -> HttpResponse {
    if !credentials_ok(&q) || q.get("grant_type").map(String::as_str) != Some("client_credential") {
        return HttpResponse::Ok().json(json!({"errcode": 40013, "errmsg": "invalid appid"}));
    }
    let mut s = s.lock().unwrap();
    s.tokens_issued += 1;
    HttpResponse::Ok().json(json!({"access_token": format!("token-{}", s.tokens_issued), "expires_in": 7200}))
}

async fn send(
    s: web::Data<Mutex<WechatState>>,
    q: web::Query<HashMap<String, String>>,
    body: web::Json<Value>,
) -> HttpResponse {
    let mut s = s.lock().unwrap();
    let valid = q
        .get("access_token")
        .and_then(|t| t.strip_prefix("token-"))
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n > s.revoked_up_to && n <= s.tokens_issued);
    if !valid {
        return HttpResponse::Ok().json(json!({"errcode": 40001, "errmsg": "invalid credential"}));
    }
    if body["touser"].as_str().is_none_or(str::is_empty) || body["template_id"].as_str().is_none() {
        return HttpResponse::Ok().json(json!({"errcode": 40003, "errmsg": "invalid openid"}));
    }
    if s.failed < s.fail_sends {
        s.failed += 1;
        return HttpResponse::Ok().json(json!({"errcode": -1, "errmsg": "system busy"}));
    }
    s.sent.push(body.into_inner());
    HttpResponse::Ok().json(json!({"errcode": 0, "errmsg": "ok"}))
}

async fn wechat_login(app: &TestApp, code: &str) -> crate::helpers::Resp {
    app.send(Method::POST, "/auth/wechat", None, Some(json!({"code": code})), &[])
        .await
}

async fn bind(app: &TestApp, token: &str, code: &str) -> crate::helpers::Resp {
    app.post("/auth/wechat/bind", token, json!({"code": code})).await
}

/// Polls (bounded) until `f` holds.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}

async fn a_bound_wechat_account_logs_in_and_an_unbound_one_is_told_so(b: Backend) {
    let wx = Double::start().await;
    let app = spawn_app_with(b, &wx.settings()).await;
    let (recorder, token) = app.recorder(1).await;

    // Not bound yet: 401 wechat_not_bound; a code WeChat does not know: wechat_code_invalid.
    wechat_login(&app, &wx.code("c1", "openid-recorder-1"))
        .await
        .err(401, "wechat_not_bound");
    wechat_login(&app, "unknown-code").await.err(401, "wechat_code_invalid");
    let missing = app
        .send(Method::POST, "/auth/wechat", None, Some(json!({})), &[])
        .await
        .err(400, "validation_failed");
    assert!(missing.body["details"]["code"].is_string());
    wechat_login(&app, "").await.err(400, "validation_failed");

    // Bound: the login answers exactly what a password login answers.
    let bound = bind(&app, &token, &wx.code("c2", "openid-recorder-1")).await.ok();
    assert_eq!(bound.data()["bound"], true);
    // The lookup keys by a keyed hash: the openid is not in the read store in clear.
    let hashes: Vec<String> = sqlx::query_scalar("SELECT openid_hash FROM wechat_bindings")
        .fetch_all(app.state.read().await.pool())
        .await
        .unwrap();
    assert_eq!(hashes.len(), 1);
    assert!(!hashes[0].contains("openid") && hashes[0].len() == 64, "{hashes:?}");
    // In the event store the openid is sealed (crypto-shredding), not in clear.
    let raw = app.state.store.read_raw_after(0, 10_000).await.unwrap();
    let bound: Vec<_> = raw.iter().filter(|e| e.event_type == "WechatBound").collect();
    assert_eq!(bound.len(), 1);
    assert!(!bound[0].payload.contains("openid-recorder-1"), "{}", bound[0].payload);
    let opened = app
        .state
        .store
        .open_many(bound.into_iter().cloned().collect())
        .await
        .unwrap();
    assert_eq!(opened[0].payload["WechatBound"]["openid"], "openid-recorder-1");
    let r = wechat_login(&app, &wx.code("c3", "openid-recorder-1")).await.ok();
    let password = app
        .send(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "recorder1", "password": "recorder-pass"})),
            &[],
        )
        .await
        .ok();
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(r.data()), keys(password.data()));
    assert_eq!(r.data()["user"]["id"], recorder.as_str());
    assert_eq!(r.data()["user"]["role"], "recorder");
    assert_eq!(r.data()["token_type"], "Bearer");
    // The tokens work, and the session is a real one (logout revokes it).
    let access = r.data()["access_token"].as_str().unwrap().to_string();
    app.get("/auth/me", &access).await.ok();
    app.post("/auth/logout", &access, json!({})).await.ok();
    app.get("/auth/me", &access).await.err(401, "unauthorized");

    // Unbound again: the WeChat account no longer logs in.
    app.send(Method::DELETE, "/auth/wechat/bind", Some(&token), None, &[])
        .await
        .ok();
    wechat_login(&app, &wx.code("c4", "openid-recorder-1"))
        .await
        .err(401, "wechat_not_bound");
    let hashes: Vec<String> = sqlx::query_scalar("SELECT openid_hash FROM wechat_bindings")
        .fetch_all(app.state.read().await.pool())
        .await
        .unwrap();
    assert!(hashes.is_empty());
}

async fn an_openid_is_bound_to_one_account_at_most(b: Backend) {
    let wx = Double::start().await;
    let app = spawn_app_with(b, &wx.settings()).await;
    let (first, t1) = app.recorder(1).await;
    let (_, t2) = app.recorder(2).await;
    bind(&app, &t1, &wx.code("a", "openid-shared")).await.ok();
    bind(&app, &t2, &wx.code("b", "openid-shared"))
        .await
        .err(409, "wechat_already_bound");
    // Binding again (the same user, the same openid) changes nothing.
    bind(&app, &t1, &wx.code("c", "openid-shared")).await.ok();
    let r = wechat_login(&app, &wx.code("d", "openid-shared")).await.ok();
    assert_eq!(r.data()["user"]["id"], first.as_str());

    // Concurrently, two accounts binding one new openid: exactly one wins.
    let (_, t3) = app.recorder(3).await;
    let (c2, c3) = (wx.code("e", "openid-race"), wx.code("f", "openid-race"));
    let (r2, r3) = tokio::join!(bind(&app, &t2, &c2), bind(&app, &t3, &c3));
    let mut statuses = [r2.status.as_u16(), r3.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", r2.body, r3.body);

    // The first user moves to another WeChat account: the old one is free again.
    bind(&app, &t1, &wx.code("g", "openid-new")).await.ok();
    bind(&app, &t2, &wx.code("h", "openid-shared")).await.ok();
}

/// A recorder with a patient, a doctor bound to WeChat; abnormal vitals raise
/// an order request for that doctor. Returns the app and the recorder's record answer.
async fn abnormal_record_for_bound_doctor(app: &TestApp, wx: &Double) -> (String, Value) {
    let (recorder, rtoken) = app.recorder(1).await;
    let (doctor, dtoken) = app.staff("doctor", 1).await;
    bind(app, &dtoken, &wx.code("doc", "openid-doctor-1")).await.ok();
    let family = app.family("推送家").await;
    let patient = app.patient(&family, "推送奶奶").await;
    let package = app.package().await;
    app.subscribe(&patient, &package, &recorder).await;
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        .to_string();
    let r = app
        .post(
            "/health-records",
            &rtoken,
            json!({"patient_id": patient, "visit_date": today, "visit_time": "09:00",
                   "vital_signs": {"blood_pressure": "150/95"}}),
        )
        .await
        .ok();
    assert!(r.data()["order_request_id"].is_string(), "{}", r.body);
    (doctor, r.data().clone())
}

/// The pushes recorded for `user`, read until `done` holds of them (at most
/// ten seconds), then as they stand.
async fn pushes_once(app: &TestApp, user: &str, done: impl Fn(&[PushRow]) -> bool) -> Vec<PushRow> {
    let user = user.parse().unwrap();
    let mut pushes = Vec::new();
    for _ in 0..100 {
        pushes = app.state.read().await.wechat().pushes_to(user).await.unwrap();
        if done(&pushes) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pushes
}

async fn an_order_request_reaches_its_doctor_on_wechat_exactly_once(b: Backend) {
    let wx = Double::start().await;
    let app = spawn_app_with(b, &wx.settings()).await;
    let (doctor, _) = abnormal_record_for_bound_doctor(&app, &wx).await;
    eventually("the doctor's message is sent", || !wx.sent().is_empty()).await;
    let sent = wx.sent();
    assert_eq!(sent[0]["touser"], "openid-doctor-1");
    assert_eq!(sent[0]["template_id"], TEMPLATE);
    assert_eq!(sent[0]["data"]["thing1"]["value"], "患者生命体征异常，请开具医嘱");
    // Recorded as events, and never sent again.
    let p = pushes_once(&app, &doctor, |p| {
        p.first().is_some_and(|p| p.status == PushStatus::Sent)
    })
    .await;
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!((p[0].status, p[0].attempts), (PushStatus::Sent, 1));
    assert_eq!(p[0].kind, "order_request_abnormal");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(wx.sent().len(), 1, "exactly once");
    // The recorder has no WeChat binding and gets nothing; the doctor's in-app notification is there too.
    let access = wechat_login(&app, &wx.code("again", "openid-doctor-1")).await.ok();
    let token = access.data()["access_token"].as_str().unwrap().to_string();
    let n = app.get("/notifications", &token).await.ok();
    assert!(n.body.to_string().contains("order_request_abnormal"), "{}", n.body);
}

async fn a_failed_push_is_retried_and_sent_once_without_delaying_the_command(b: Backend) {
    let wx = Double::start().await;
    wx.state.lock().unwrap().fail_sends = 2;
    let app = spawn_app_with(b, &wx.settings()).await;
    let started = std::time::Instant::now();
    let (doctor, _) = abnormal_record_for_bound_doctor(&app, &wx).await;
    // The command was answered before any send succeeded (retries wait 1 s, then 2 s).
    let answered = started.elapsed();
    assert!(
        wx.sent().is_empty(),
        "answered after {answered:?} without waiting for WeChat"
    );
    eventually("the message is sent after two failures", || wx.sent().len() == 1).await;
    assert_eq!(wx.state.lock().unwrap().failed, 2);
    let p = pushes_once(&app, &doctor, |p| {
        p.first().is_some_and(|p| p.status == PushStatus::Sent)
    })
    .await;
    assert_eq!((p[0].status, p[0].attempts), (PushStatus::Sent, 3), "{p:?}");
    assert!(p[0].last_error.as_deref().is_some_and(|e| e.contains("-1")), "{p:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(wx.sent().len(), 1, "sent once");
    // Counted for /metrics.
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("carelog_wechat_pushes_total{outcome=\"failed\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("carelog_wechat_pushes_total{outcome=\"sent\"}"));
}

async fn without_wechat_settings_login_is_not_found_and_nothing_is_pushed(b: Backend) {
    let app = spawn_app(b).await;
    let (_, token) = app.recorder(1).await;
    wechat_login(&app, "any").await.err(404, "wechat_not_configured");
    bind(&app, &token, "any").await.err(404, "wechat_not_configured");
    app.send(Method::DELETE, "/auth/wechat/bind", Some(&token), None, &[])
        .await
        .err(404, "wechat_not_configured");
    assert!(app.state.wechat.is_none(), "no client, so no push follower");
}

async fn an_access_token_wechat_calls_invalid_is_fetched_again(b: Backend) {
    let wx = Double::start().await;
    let app = spawn_app_with(b, &wx.settings()).await;
    let (doctor, record) = abnormal_record_for_bound_doctor(&app, &wx).await;
    eventually("the first message is sent", || wx.sent().len() == 1).await;
    assert_eq!(wx.state.lock().unwrap().tokens_issued, 1, "one token, cached");
    // WeChat invalidates the cached token: the next send fetches another and succeeds at once.
    wx.state.lock().unwrap().revoked_up_to = 1;
    let rtoken = app.login("recorder1", "recorder-pass").await;
    let record = record["record_id"].as_str().unwrap();
    app.post(
        &format!("/health-records/{record}/order-requests"),
        &rtoken,
        json!({"doctor_id": doctor, "reason": "复查"}),
    )
    .await
    .ok();
    eventually("the second message is sent", || wx.sent().len() == 2).await;
    assert_eq!(wx.state.lock().unwrap().tokens_issued, 2);
    assert_eq!(wx.sent()[1]["touser"], "openid-doctor-1");
    let p = pushes_once(&app, &doctor, |p| {
        p.len() == 2 && p.iter().all(|p| p.status == PushStatus::Sent)
    })
    .await;
    assert!(
        p.iter().all(|p| p.status == PushStatus::Sent && p.attempts == 1),
        "{p:?}"
    );
}

/// The 20:00 job's reminder is a notification like any other: a recorder
/// bound to WeChat gets it as a subscribe message, once, however often the
/// period is run.
async fn the_evening_visit_reminder_reaches_a_bound_recorder_once(b: Backend) {
    use carelog::app::jobs::{run, Job, RunResult};
    use chrono::TimeZone;

    let wx = Double::start().await;
    let app = spawn_app_with(b, &wx.settings()).await;
    let (recorder, rtoken) = app.recorder(1).await;
    bind(&app, &rtoken, &wx.code("rec", "openid-recorder-1")).await.ok();
    let family = app.family("提醒家").await;
    let patient = app.patient(&family, "提醒奶奶").await;
    let package = app.package().await;
    app.subscribe(&patient, &package, &recorder).await;
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let tomorrow = today + chrono::Duration::days(1);
    app.post(
        "/appointments",
        &rtoken,
        json!({"patient_id": patient, "scheduled_date": tomorrow.to_string(), "scheduled_time": "09:30",
               "appointment_type": "emergency"}),
    )
    .await
    .ok();
    let at = chrono_tz::Asia::Shanghai
        .from_local_datetime(&today.and_hms_opt(20, 0, 0).unwrap())
        .single()
        .unwrap()
        .to_utc();
    let first = run(&app.state, Job::VisitReminders, at).await.expect("the job runs");
    assert!(matches!(first, RunResult::Ran { .. }), "{first:?}");
    let again = run(&app.state, Job::VisitReminders, at).await.expect("the job runs");
    assert!(matches!(again, RunResult::AlreadyRan { .. }), "{again:?}");
    eventually("the recorder's reminder is sent", || {
        wx.sent().iter().any(|m| m["template_id"] == REMINDER_TEMPLATE)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let reminders: Vec<Value> = wx
        .sent()
        .into_iter()
        .filter(|m| m["template_id"] == REMINDER_TEMPLATE)
        .collect();
    assert_eq!(reminders.len(), 1, "once per period: {reminders:?}");
    assert_eq!(reminders[0]["touser"], "openid-recorder-1");
}
