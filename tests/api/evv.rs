//! Visit verification: check-in and check-out with server time and distance
//! from home, compliance of recorders, and the exceptions raised as the facts
//! arrive.

use serde_json::{json, Value};

use crate::dual;
use crate::helpers::{spawn_app, Backend, Resp, TestApp};

dual!(
    check_in_and_check_out_mark_the_visit_and_its_distance_from_home,
    check_in_rules,
    an_expired_or_off_duty_recorder_gets_no_new_work,
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

fn today() -> chrono::NaiveDate {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
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
