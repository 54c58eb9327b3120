//! Visit verification: check-in and check-out with server time and distance
//! from home, compliance of recorders, and the exceptions raised as the facts
//! arrive.

use serde_json::{json, Value};

use crate::dual;
use crate::helpers::{spawn_app, spawn_app_with, today, Backend, Resp, TestApp};

dual!(
    check_in_and_check_out_mark_the_visit_and_its_distance_from_home,
    check_in_rules,
    an_expired_or_off_duty_recorder_gets_no_new_work,
    a_scripted_day_raises_each_exception_once_and_it_is_acknowledged_and_resolved,
    an_exception_is_raised_once_from_a_check_out_committed_without_its_request,
    a_visit_never_checked_out_raises_missing_check_out_once_after_its_day,
    a_record_is_away_from_home_by_the_configured_radius,
);

/// The family's home in Shanghai; a point about 95 m east, and one about 800 m east.
const HOME: (f64, f64) = (31.2304, 121.4737);
const NEAR_LNG: f64 = 121.4747;
const FAR_LNG: f64 = 121.4821;

struct World {
    app: TestApp,
    recorder: String,
    rtoken: String,
    patient: String,
}

fn tomorrow() -> String {
    (today() + chrono::Duration::days(1)).to_string()
}

/// A recorder with one patient, whose family lives at [`HOME`] when `located`.
async fn world(app: TestApp, located: bool) -> World {
    let (recorder, rtoken) = app.recorder(1).await;
    let mut family =
        json!({"family_name": "陈家", "primary_address": "上海市徐汇区漕溪北路1号", "contact_phone": "13912345678"});
    if located {
        family["home_lat"] = json!(HOME.0);
        family["home_lng"] = json!(HOME.1);
    }
    let family = app.post("/families", &app.admin_token, family).await.ok().id();
    let patient = app.patient(&family, "陈奶奶").await;
    let package = app
        .post(
            "/service-packages",
            &app.admin_token,
            json!({"name": "标准包", "price": "999.00", "duration_days": 365, "service_frequency": 30}),
        )
        .await
        .ok()
        .id();
    app.subscribe(&patient, &package, &recorder).await;
    World {
        app,
        recorder,
        rtoken,
        patient,
    }
}

impl World {
    async fn visit(&self, time: &str) -> String {
        self.app
            .post(
                "/appointments",
                &self.rtoken,
                json!({"patient_id": self.patient, "scheduled_date": tomorrow(), "scheduled_time": time}),
            )
            .await
            .ok()
            .id()
    }
    async fn check(&self, visit: &str, end: &str, lng: f64) -> Resp {
        self.app
            .post(
                &format!("/appointments/{visit}/{end}"),
                &self.rtoken,
                json!({"lat": HOME.0, "lng": lng}),
            )
            .await
    }
    /// A JSON record for `visit`, with or without a signature.
    async fn record(&self, visit: &str, lng: f64) -> Resp {
        self.app
            .post(
                "/health-records",
                &self.rtoken,
                json!({"patient_id": self.patient, "appointment_id": visit, "visit_date": today().to_string(), "visit_time": "00:00",
                       "location_lat": HOME.0, "location_lng": lng,
                       "vital_signs": {"blood_pressure": "120/80", "heart_rate": 70}}),
            )
            .await
    }
}

fn distance(mark: &Value) -> f64 {
    mark["distance_from_home_m"].as_f64().expect("a distance")
}

async fn check_in_and_check_out_mark_the_visit_and_its_distance_from_home(b: Backend) {
    let w = world(spawn_app(b).await, true).await;
    let app = &w.app;
    let visit = w.visit("10:00").await;
    let before = app.get(&format!("/appointments/{visit}"), &w.rtoken).await.ok();
    assert!(before.data()["check_in"].is_null() && before.data()["check_out"].is_null());

    let checked_in = w.check(&visit, "check-in", NEAR_LNG).await.ok();
    let data = checked_in.data();
    assert_eq!(data["status"], "in_progress");
    assert_eq!(data["recorder_id"], w.recorder.as_str());
    assert!((distance(&data["check_in"]) - 95.0).abs() < 2.0, "{data}");
    assert_eq!(data["check_in"]["lat"], HOME.0);
    let at = chrono::DateTime::parse_from_rfc3339(data["check_in"]["at"].as_str().unwrap()).unwrap();
    assert!(
        (chrono::Utc::now() - at.to_utc()).num_seconds().abs() < 30,
        "server time"
    );
    assert!(data["check_out"].is_null());

    // The record taken during the visit waits for the check-out.
    w.record(&visit, NEAR_LNG).await.ok();
    let during = app.get(&format!("/appointments/{visit}"), &w.rtoken).await.ok();
    assert_eq!(during.data()["status"], "in_progress");
    assert!(during.data()["health_record_id"].is_string());

    let out = w.check(&visit, "check-out", FAR_LNG).await.ok();
    assert_eq!(out.data()["status"], "completed");
    assert!(
        (distance(&out.data()["check_out"]) - 800.0).abs() < 20.0,
        "{}",
        out.body
    );
    assert_eq!(out.headers["etag"], format!("\"{}\"", out.data()["version"]).as_str());

    // Lists show both ends too.
    let list = app.get("/appointments", &w.rtoken).await.ok();
    let item = &list.data()["appointments"][0];
    assert_eq!(item["id"], visit.as_str());
    assert!(item["check_in"]["at"].is_string() && item["check_out"]["at"].is_string());

    // A visit checked out before its record is completed by the record.
    let second = w.visit("15:00").await;
    w.check(&second, "check-in", NEAR_LNG).await.ok();
    let out = w.check(&second, "check-out", NEAR_LNG).await.ok();
    assert_eq!(out.data()["status"], "checked_out");
    w.record(&second, NEAR_LNG).await.ok();
    let done = app.get(&format!("/appointments/{second}"), &w.rtoken).await.ok();
    assert_eq!(done.data()["status"], "completed");
    assert!(done.data()["health_record_id"].is_string());
}

async fn check_in_rules(b: Backend) {
    let w = world(spawn_app(b).await, false).await;
    let app = &w.app;
    let visit = w.visit("10:00").await;
    // Positions are validated, naming the field.
    let r = app
        .post(
            &format!("/appointments/{visit}/check-in"),
            &w.rtoken,
            json!({"lat": 91.0, "lng": 121.0}),
        )
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["lat"].is_string(), "{}", r.body);
    let r = app
        .post(
            &format!("/appointments/{visit}/check-in"),
            &w.rtoken,
            json!({"lat": 31.0, "lng": -181.0}),
        )
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["lng"].is_string(), "{}", r.body);
    let r = app
        .post(
            &format!("/appointments/{visit}/check-in"),
            &w.rtoken,
            json!({"lat": 31.0}),
        )
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["lng"].is_string(), "{}", r.body);

    // A check-out needs a check-in.
    w.check(&visit, "check-out", NEAR_LNG).await.err(409, "conflict");
    // Only its recorder: not an admin, not another recorder.
    app.post(
        &format!("/appointments/{visit}/check-in"),
        &app.admin_token,
        json!({"lat": HOME.0, "lng": NEAR_LNG}),
    )
    .await
    .err(403, "forbidden");
    let (_, other) = app.recorder(2).await;
    app.post(
        &format!("/appointments/{visit}/check-in"),
        &other,
        json!({"lat": HOME.0, "lng": NEAR_LNG}),
    )
    .await
    .err(404, "not_found");

    // Without home coordinates the distance is unknown.
    let r = w.check(&visit, "check-in", NEAR_LNG).await.ok();
    assert!(r.data()["check_in"]["distance_from_home_m"].is_null(), "{}", r.body);
    // Once in progress: no second check-in, no cancel.
    w.check(&visit, "check-in", NEAR_LNG).await.err(409, "conflict");
    app.post(&format!("/appointments/{visit}/cancel"), &w.rtoken, json!({}))
        .await
        .err(409, "conflict");
    w.check(&visit, "check-out", NEAR_LNG).await.ok();
    w.check(&visit, "check-out", NEAR_LNG).await.err(409, "conflict");
    // The status filter knows the new states.
    let list = app.get("/appointments?status=checked_out", &w.rtoken).await.ok();
    assert_eq!(list.data()["total"], 1);
}

async fn an_expired_or_off_duty_recorder_gets_no_new_work(b: Backend) {
    let w = world(spawn_app(b).await, true).await;
    let app = &w.app;
    let user = format!("/users/{}", w.recorder);
    let schedule = json!({"patient_id": w.patient, "scheduled_date": tomorrow(), "scheduled_time": "10:00"});
    let yesterday = (today() - chrono::Duration::days(1)).to_string();

    // Expired yesterday: no new visit, with the reason.
    app.patch(
        &user,
        &app.admin_token,
        json!({"recorder": {"cert_expiry_date": yesterday}}),
    )
    .await
    .ok();
    let profile = app.get(&user, &app.admin_token).await.ok();
    assert_eq!(profile.data()["recorder"]["cert_expiry_date"], yesterday.as_str());
    let r = app
        .post("/appointments", &w.rtoken, schedule.clone())
        .await
        .err(409, "conflict");
    assert!(r.body["message"].as_str().unwrap().contains("证书"), "{}", r.body);
    // Nor by an admin, nor a new subscription.
    let r = app
        .post("/appointments", &app.admin_token, schedule.clone())
        .await
        .err(409, "conflict");
    assert!(r.body["message"].as_str().unwrap().contains("证书"), "{}", r.body);
    let other = app.patient(&app.family("李家").await, "李爷爷").await;
    let package = app.package().await;
    let subscribe = json!({"patient_id": other, "package_id": package, "recorder_id": w.recorder,
                           "start_date": today().to_string()});
    let r = app
        .post("/subscriptions", &app.admin_token, subscribe.clone())
        .await
        .err(409, "conflict");
    assert!(r.body["message"].as_str().unwrap().contains("证书"), "{}", r.body);

    // Valid until today is still valid; off duty is refused, naming why.
    app.patch(
        &user,
        &app.admin_token,
        json!({"recorder": {"cert_expiry_date": today().to_string(), "is_on_duty": false}}),
    )
    .await
    .ok();
    let r = app
        .post("/appointments", &w.rtoken, schedule.clone())
        .await
        .err(409, "conflict");
    assert!(r.body["message"].as_str().unwrap().contains("不在岗"), "{}", r.body);
    let r = app
        .post("/subscriptions", &app.admin_token, subscribe.clone())
        .await
        .err(409, "conflict");
    assert!(r.body["message"].as_str().unwrap().contains("不在岗"), "{}", r.body);

    // Back on duty: work again.
    app.patch(&user, &app.admin_token, json!({"recorder": {"is_on_duty": true}}))
        .await
        .ok();
    app.post("/appointments", &w.rtoken, schedule).await.ok();
    app.post("/subscriptions", &app.admin_token, subscribe).await.ok();
}

/// The exceptions the recorder sees, once the follower has raised `n` of them
/// (bounded wait: the follower runs after the commit).
async fn exceptions(w: &World, query: &str, n: u64) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        last = w
            .app
            .get(&format!("/evv/exceptions{query}"), &w.rtoken)
            .await
            .ok()
            .data()
            .clone();
        if last["total"].as_u64() >= Some(n) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    last
}

fn codes_of(list: &Value, visit: &str) -> Vec<String> {
    let mut codes: Vec<String> = list["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["visit_id"] == visit)
        .map(|x| x["code"].as_str().unwrap().to_string())
        .collect();
    codes.sort();
    codes
}

async fn a_scripted_day_raises_each_exception_once_and_it_is_acknowledged_and_resolved(b: Backend) {
    let w = world(spawn_app(b).await, true).await;
    let app = &w.app;
    let first = w.visit("10:00").await;
    let second = w.visit("15:00").await;
    // 800 m from home; then the second visit begins before the first ends.
    w.check(&first, "check-in", FAR_LNG).await.ok();
    w.check(&second, "check-in", NEAR_LNG).await.ok();
    // Vitals for the second visit, without the patient's signature.
    w.record(&second, NEAR_LNG).await.ok();
    // The first visit lasted seconds.
    w.check(&first, "check-out", NEAR_LNG).await.ok();

    let list = exceptions(&w, "", 4).await;
    assert_eq!(codes_of(&list, &first), ["away_from_home", "short_visit"], "{list}");
    assert_eq!(
        codes_of(&list, &second),
        ["missing_signature", "overlapping_visits"],
        "{list}"
    );
    assert_eq!(list["total"], 4);
    let away = list["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == "away_from_home")
        .unwrap()
        .clone();
    assert_eq!(away["status"], "open");
    assert_eq!(away["patient_id"], w.patient.as_str());
    assert_eq!(away["recorder_id"], w.recorder.as_str());
    assert!(
        away["details"]["distance_from_home_m"].as_f64().unwrap() > 700.0,
        "{away}"
    );
    assert_eq!(away["details"]["radius_m"], 500.0);
    let overlap = list["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == "overlapping_visits")
        .unwrap();
    assert_eq!(overlap["details"]["other_visit_id"], first.as_str());

    // The catalogue; a code outside it is refused naming the field.
    let catalogue = app.get("/evv/reason-codes", &w.rtoken).await.ok();
    let gps = catalogue
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "gps_inaccurate");
    assert!(gps.is_some_and(|c| c["label"].as_str().is_some_and(|l| !l.is_empty())));
    let id = away["id"].as_str().unwrap();
    let ack = format!("/evv/exceptions/{id}/acknowledge");
    let r = app
        .post(&ack, &w.rtoken, json!({"reason_code": "because"}))
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["reason_code"].is_string(), "{}", r.body);
    // Another recorder may not; its recorder may.
    let (_, other) = app.recorder(2).await;
    app.post(&ack, &other, json!({"reason_code": "gps_inaccurate"}))
        .await
        .err(404, "not_found");
    assert_eq!(app.get("/evv/exceptions", &other).await.ok().data()["total"], 0);
    let acked = app
        .post(&ack, &w.rtoken, json!({"reason_code": "gps_inaccurate"}))
        .await
        .ok();
    assert_eq!(acked.data()["status"], "acknowledged");
    assert_eq!(acked.data()["reason_code"], "gps_inaccurate");
    app.post(&ack, &w.rtoken, json!({"reason_code": "other"}))
        .await
        .err(409, "conflict");

    // Only an admin resolves.
    let resolve = format!("/evv/exceptions/{id}/resolve");
    app.post(&resolve, &w.rtoken, json!({"resolution": "核实"}))
        .await
        .err(403, "forbidden");
    let done = app
        .post(
            &resolve,
            &app.admin_token,
            json!({"resolution": "已电话核实，定位漂移"}),
        )
        .await
        .ok();
    assert_eq!(done.data()["status"], "resolved");
    assert_eq!(done.data()["resolution"], "已电话核实，定位漂移");

    // Filters; auditors see everything, doctors nothing.
    let (_, auditor) = app.staff("auditor", 1).await;
    let all = app.get("/evv/exceptions", &auditor).await.ok();
    assert_eq!(all.data()["total"], 4);
    let resolved = app.get("/evv/exceptions?status=resolved", &auditor).await.ok();
    assert_eq!(resolved.data()["total"], 1);
    let short = app
        .get(
            &format!("/evv/exceptions?code=short_visit&recorder_id={}", w.recorder),
            &app.admin_token,
        )
        .await
        .ok();
    assert_eq!(short.data()["total"], 1);
    let today = today().to_string();
    let dated = app
        .get(&format!("/evv/exceptions?from={today}&to={today}"), &auditor)
        .await
        .ok();
    assert_eq!(dated.data()["total"], 4);
    let r = app
        .get("/evv/exceptions?status=late", &auditor)
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["status"].is_string());
    let (_, doctor) = app.staff("doctor", 2).await;
    app.get("/evv/exceptions", &doctor).await.err(403, "forbidden");
    // Every step is an event in the audit trail, for auditors.
    let trail = app
        .get("/audit/events?aggregate_type=evv_exception&limit=100", &auditor)
        .await
        .ok();
    let types: Vec<&str> = trail.data()["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert_eq!(
        types.iter().filter(|t| **t == "EvvExceptionRaised").count(),
        4,
        "{types:?}"
    );
    assert!(types.contains(&"EvvExceptionAcknowledged") && types.contains(&"EvvExceptionResolved"));
}

/// Events of the exception aggregates, from the store.
async fn exception_events(app: &TestApp) -> Vec<projections::StoredEvent> {
    let all = app.state.store.read_after(0, 100_000).await.unwrap();
    all.into_iter()
        .filter(|e| e.aggregate_type == "evv_exception")
        .collect()
}

async fn an_exception_is_raised_once_from_a_check_out_committed_without_its_request(b: Backend) {
    let w = world(spawn_app(b).await, true).await;
    let app = &w.app;
    let visit = w.visit("10:00").await;
    w.check(&visit, "check-in", NEAR_LNG).await.ok();
    // The check-out is committed and nothing else happens in its process (as
    // if it died right after the commit): the follower raises the exception.
    let facts = domain::visit::MarkFacts {
        at: chrono::Utc::now(),
        position: domain::visit::Coordinates::parse(HOME.0, NEAR_LNG).unwrap(),
        home: Some(HOME),
    };
    let ctx = carelog::state::RequestMeta::system("CheckOutVisit");
    app.state
        .store
        .execute::<domain::visit::Visit>(&visit, domain::visit::VisitCommand::CheckOut(facts), &ctx)
        .await
        .unwrap();
    let list = exceptions(&w, "?code=short_visit", 1).await;
    assert_eq!(codes_of(&list, &visit), ["short_visit"], "{list}");
    // Delivered again (a follower restarted before saving its checkpoint):
    // still one exception, one event.
    let check_out = app
        .state
        .store
        .read_after(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.event_type == "VisitCheckedOut")
        .unwrap();
    for _ in 0..2 {
        carelog::app::evv::react(&app.state, &check_out, &ctx).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let raised = exception_events(app).await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(exceptions(&w, "", 1).await["total"], 1);
}

async fn a_visit_never_checked_out_raises_missing_check_out_once_after_its_day(b: Backend) {
    let w = world(spawn_app(b).await, true).await;
    let app = &w.app;
    let open = w.visit("10:00").await;
    let closed = w.visit("15:00").await;
    w.check(&closed, "check-in", NEAR_LNG).await.ok();
    w.check(&closed, "check-out", NEAR_LNG).await.ok();
    w.check(&open, "check-in", NEAR_LNG).await.ok();
    let ctx = carelog::state::RequestMeta::system("RaiseEvvException");
    // Today nothing is missing yet.
    carelog::app::evv::sweep_missing_check_outs(&app.state, chrono::Utc::now(), &ctx)
        .await
        .unwrap();
    let list = exceptions(&w, "?code=missing_check_out", 0).await;
    assert_eq!(list["total"], 0);
    // Two days later (the server was down meanwhile), swept twice.
    let later = chrono::Utc::now() + chrono::Duration::days(2);
    for _ in 0..2 {
        carelog::app::evv::sweep_missing_check_outs(&app.state, later, &ctx)
            .await
            .unwrap();
    }
    let list = exceptions(&w, "?code=missing_check_out", 1).await;
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(codes_of(&list, &open), ["missing_check_out"]);
    let raised: Vec<_> = exception_events(app)
        .await
        .into_iter()
        .filter(|e| e.payload.to_string().contains("missing_check_out"))
        .collect();
    assert_eq!(raised.len(), 1);
}

/// The record's own `away_from_home` and the visit's `away_from_home`
/// exception use one radius, `CARELOG_EVV_RADIUS_M` (here 50 m: a record 95 m
/// from home is away).
async fn a_record_is_away_from_home_by_the_configured_radius(b: Backend) {
    let app = spawn_app_with(b, &[("CARELOG_EVV_RADIUS_M", "50".to_string())]).await;
    let w = world(app, true).await;
    let visit = w.visit("10:00").await;
    let r = w.record(&visit, NEAR_LNG).await.ok();
    let distance = r.data()["distance_from_home_m"].as_f64().unwrap();
    assert!((50.0..500.0).contains(&distance), "{}", r.body);
    assert_eq!(r.data()["away_from_home"], true, "{}", r.body);
    let list = exceptions(&w, "", 1).await;
    assert!(
        codes_of(&list, &visit).contains(&"away_from_home".to_string()),
        "{list}"
    );
}
