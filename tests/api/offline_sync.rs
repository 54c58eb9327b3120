//! The recorder's day (today's route) and offline sync (push and pull).

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use domain::ids::{PatientId, SubscriptionId, UserId, VisitId};
use domain::visit::{ScheduleContext, Visit, VisitCommand, VisitPlan, VisitType};
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

use crate::dual;
use crate::helpers::{png, spawn_app, today, Backend, TestApp};

dual!(
    todays_route_is_shorter_than_the_time_order_where_the_homes_allow_it,
    a_day_captured_offline_is_applied_once_however_often_it_is_pushed,
    rejected_commands_say_why_and_stop_only_what_depends_on_them,
    concurrent_pushes_of_one_batch_apply_each_command_once,
    pull_returns_a_snapshot_then_exactly_what_changed,
    a_randomized_offline_day_ends_as_if_each_command_was_applied_once,
    a_push_cut_by_sigkill_then_resent_applies_each_command_once,
);

/// About a kilometre of longitude at the equator.
const KM: f64 = 0.009;

/// A household (with its home at `lng` on the equator, if any) and one patient subscribed
/// and assigned to `recorder`; (patient, subscription).
async fn household(app: &TestApp, n: u32, lng: Option<f64>, package: &str, recorder: &str) -> (String, String) {
    let mut body = json!({"family_name": format!("{n}号家"), "primary_address": format!("上海市{n}号路1号"),
                          "contact_phone": "13912345678"});
    if let Some(lng) = lng {
        body["home_lat"] = json!(0.0);
        body["home_lng"] = json!(lng);
    }
    let family = app.post("/families", &app.admin_token, body).await.ok().id();
    let patient = app.patient(&family, &format!("患者{n}")).await;
    let sub = app.subscribe(&patient, package, recorder).await;
    (patient, sub)
}

/// Schedules a visit today at `time` straight through the event store, as if it had been
/// scheduled earlier today (the API refuses a time already past, and a test may run late).
async fn visit_today(app: &TestApp, patient: &str, sub: &str, recorder: &str, time: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let plan = VisitPlan {
        patient_id: patient.parse::<PatientId>().unwrap(),
        recorder_id: recorder.parse::<UserId>().unwrap(),
        subscription_id: sub.parse::<SubscriptionId>().unwrap(),
        scheduled_date: today(),
        scheduled_time: NaiveTime::parse_from_str(time, "%H:%M").unwrap(),
        appointment_type: VisitType::Emergency,
        notes: None,
    };
    let context = ScheduleContext {
        now: today().and_hms_opt(0, 0, 0).unwrap(),
        monthly_quota: 0,
        regular_visits_that_month: 0,
    };
    app.state
        .execute::<Visit>(
            &id.parse::<VisitId>().unwrap().to_string(),
            VisitCommand::Schedule {
                plan,
                context,
                recorder: domain::compliance::RecorderStanding::good(today()),
            },
            carelog::state::RequestMeta::system("ScheduleVisit"),
        )
        .await
        .unwrap();
    id
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

async fn todays_route_is_shorter_than_the_time_order_where_the_homes_allow_it(b: Backend) {
    let app = spawn_app(b).await;
    let (recorder, token) = app.recorder(1).await;
    let package = app.package().await;
    // Homes on a line, visited by time in a zig-zag: 0, 2, 1, (no home), 4, 3 km.
    let plan = [
        ("09:00", Some(0.0)),
        ("09:20", Some(2.0 * KM)),
        ("09:40", Some(KM)),
        ("09:50", None),
        ("10:00", Some(4.0 * KM)),
        ("10:20", Some(3.0 * KM)),
    ];
    let mut visits = Vec::new();
    for (n, (time, lng)) in plan.iter().enumerate() {
        let (patient, sub) = household(&app, n as u32, *lng, &package, &recorder).await;
        visits.push(visit_today(&app, &patient, &sub, &recorder, time).await);
    }

    // Without order=route the answer is the list by time, as before.
    let by_time = app.get("/appointments/today", &token).await.ok();
    assert_eq!(ids(by_time.data()), visits);
    assert!(by_time.data()[0].get("leg_m").is_none());

    let r = app.get("/appointments/today?order=route", &token).await.ok();
    let route = r.data();
    let order = ids(&route["appointments"]);
    let expected: Vec<String> = [0, 2, 1, 3, 5, 4].iter().map(|&i| visits[i].clone()).collect();
    assert_eq!(order, expected, "{route}");
    let total = route["total_m"].as_f64().unwrap();
    let by_time_total = route["by_time_total_m"].as_f64().unwrap();
    assert!((total - 4_000.0).abs() < 40.0, "{route}");
    assert!((by_time_total - 7_000.0).abs() < 70.0, "{route}");
    let items = route["appointments"].as_array().unwrap();
    // The visit without home coordinates keeps its slot and says why; it has no leg.
    assert_eq!(items[3]["route_note"], "no_home_coordinates");
    assert!(items[3]["leg_m"].is_null());
    assert!(items[0]["route_note"].is_null());
    assert_eq!(items[0]["leg_m"], 0.0);
    let legs: f64 = items.iter().filter_map(|i| i["leg_m"].as_f64()).sum();
    assert!((legs - total).abs() <= 3.0, "legs {legs} vs total {total}");
    // Each item is the visit as in the list.
    assert_eq!(items[0]["patient"]["name"], "患者0");
    assert_eq!(items[0]["scheduled_time"], "09:00");

    // From a start point near the far end, the first leg is measured from there.
    let r = app
        .get(
            &format!("/appointments/today?order=route&start_lat=0&start_lng={}", 4.1 * KM),
            &token,
        )
        .await
        .ok();
    let first = r.data()["appointments"][0]["leg_m"].as_f64().unwrap();
    assert!(first > 0.0);
    assert!(r.data()["total_m"].as_f64().unwrap() <= r.data()["by_time_total_m"].as_f64().unwrap());

    // Bad parameters name the field.
    let e = app
        .get("/appointments/today?order=shortest", &token)
        .await
        .err(400, "validation_failed");
    assert!(e.body["details"]["order"].is_string());
    let e = app
        .get("/appointments/today?order=route&start_lat=31.2", &token)
        .await
        .err(400, "validation_failed");
    assert!(e.body["details"]["start_lng"].is_string());
    let e = app
        .get("/appointments/today?order=route&start_lat=91&start_lng=0", &token)
        .await
        .err(400, "validation_failed");
    assert!(e.body["details"]["start_lat"].is_string());
    // Only recorders have a day.
    app.get("/appointments/today?order=route", &app.admin_token)
        .await
        .err(403, "forbidden");
}

fn local(t: DateTime<Utc>) -> chrono::NaiveDateTime {
    t.with_timezone(&chrono_tz::Asia::Shanghai).naive_local()
}

fn cmd(kind: &str, captured_at: DateTime<Utc>, body: Value) -> Value {
    json!({"command_id": uuid::Uuid::new_v4().to_string(), "type": kind,
           "captured_at": captured_at.to_rfc3339(), "body": body})
}

/// A recorder, an available doctor, and a patient subscribed to the recorder since yesterday
/// (so a day captured offline may start before midnight).
struct Field {
    app: TestApp,
    token: String,
    patient: String,
    package: String,
}

async fn field(b: Backend) -> Field {
    let app = spawn_app(b).await;
    let (recorder, token) = app.recorder(1).await;
    app.staff("doctor", 1).await;
    let family = app.family("陈家").await;
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
    subscribe_since_yesterday(&app, &patient, &package, &recorder).await;
    Field {
        app,
        token,
        patient,
        package,
    }
}

async fn subscribe_since_yesterday(app: &TestApp, patient: &str, package: &str, recorder: &str) -> String {
    app.post(
        "/subscriptions",
        &app.admin_token,
        json!({"patient_id": patient, "package_id": package, "recorder_id": recorder,
               "start_date": (today() - Duration::days(1)).to_string()}),
    )
    .await
    .ok()
    .id()
}

async fn push(app: &TestApp, token: &str, device: &str, commands: &[Value]) -> Vec<Value> {
    let r = app
        .post("/sync/push", token, json!({"device_id": device, "commands": commands}))
        .await
        .ok();
    assert_eq!(r.status.as_u16(), 200);
    let results = r.data()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), commands.len());
    for (c, r) in commands.iter().zip(&results) {
        assert_eq!(c["command_id"], r["command_id"], "results in the order sent");
    }
    results
}

fn statuses(results: &[Value]) -> Vec<&str> {
    results.iter().map(|r| r["status"].as_str().unwrap()).collect()
}

async fn upload_photo(app: &TestApp, token: &str) -> String {
    let form = Form::new()
        .text("type", "image")
        .part("file", Part::bytes(png(60, 40)).file_name("wound.png"));
    let r = app.multipart("/files/upload", token, form).await.ok();
    r.data()["file_id"].as_str().unwrap().to_string()
}

async fn a_day_captured_offline_is_applied_once_however_often_it_is_pushed(b: Backend) {
    let f = field(b).await;
    let app = &f.app;
    let photo = upload_photo(app, &f.token).await;
    // The visit was scheduled offline 40 minutes ago for 10 minutes later: in the past by now,
    // but not when it was captured.
    let start = Utc::now() - Duration::minutes(40);
    let visit_at = local(start + Duration::minutes(10));
    let schedule = cmd(
        "schedule_visit",
        start,
        json!({"patient_id": f.patient, "scheduled_date": visit_at.date().to_string(),
               "scheduled_time": visit_at.format("%H:%M").to_string(), "appointment_type": "emergency"}),
    );
    let visit_ref = schedule["command_id"].as_str().unwrap().to_string();
    let confirm = cmd(
        "confirm_visit",
        start + Duration::minutes(5),
        json!({"appointment_id": visit_ref}),
    );
    let checked_in_at = start + Duration::minutes(12);
    let check_in = cmd(
        "check_in",
        checked_in_at,
        json!({"appointment_id": visit_ref, "lat": 31.2304, "lng": 121.4737}),
    );
    let recorded_at = start + Duration::minutes(20);
    let record = cmd(
        "record_vitals",
        recorded_at,
        json!({"patient_id": f.patient, "appointment_id": visit_ref, "photos": [photo],
               "vital_signs": {"blood_pressure": "120/80", "heart_rate": 72}, "notes": "离线记录"}),
    );
    let record_ref = record["command_id"].as_str().unwrap().to_string();
    let order = cmd(
        "request_order",
        start + Duration::minutes(25),
        json!({"health_record_id": record_ref, "reason": "复查"}),
    );
    let checked_out_at = start + Duration::minutes(32);
    let check_out = cmd(
        "check_out",
        checked_out_at,
        json!({"appointment_id": visit_ref, "lat": 31.2305, "lng": 121.4738}),
    );
    let batch = vec![schedule, confirm, check_in, record, order, check_out];
    let first = push(app, &f.token, "phone-1", &batch).await;
    assert_eq!(statuses(&first), vec!["applied"; 6], "{first:?}");
    assert!(first.iter().all(|r| r["code"] == "ok"));
    let visit = first[0]["data"]["appointment_id"].as_str().unwrap().to_string();
    assert_eq!(
        first[1]["data"]["appointment_id"],
        visit.as_str(),
        "referred to by command id"
    );
    assert_eq!(first[2]["data"]["appointment_id"], visit.as_str());
    assert_eq!(first[5]["data"]["appointment_id"], visit.as_str());
    let rec = first[3]["data"]["health_record_id"].as_str().unwrap().to_string();
    let request = first[4]["data"]["order_request_id"].as_str().unwrap().to_string();

    // The state: one visit, checked in and out at the captured times, completed by its record
    // taken at the captured time.
    let v = app.get(&format!("/appointments/{visit}"), &f.token).await.ok();
    assert_eq!(v.data()["status"], "completed", "{}", v.body);
    assert_eq!(v.data()["health_record_id"], rec.as_str());
    for (end, at) in [("check_in", checked_in_at), ("check_out", checked_out_at)] {
        let mark: DateTime<Utc> = v.data()[end]["at"]
            .as_str()
            .unwrap_or_else(|| panic!("{end} missing: {}", v.body))
            .parse()
            .unwrap();
        assert_eq!(mark.timestamp(), at.timestamp(), "{end} at the captured time");
    }
    assert_eq!(v.data()["check_in"]["lat"], 31.2304);
    let r = app.get(&format!("/health-records/{rec}"), &f.token).await.ok();
    assert_eq!(r.data()["visit_date"], local(recorded_at).date().to_string());
    assert_eq!(r.data()["visit_time"], local(recorded_at).format("%H:%M").to_string());
    assert_eq!(r.data()["files"].as_array().unwrap().len(), 1);
    app.get(&format!("/order-requests/{request}"), &app.admin_token)
        .await
        .ok();
    // The events keep the server's time and name the captured one.
    let audit = app
        .get(&format!("/audit/events?aggregate_id={rec}"), &app.admin_token)
        .await
        .ok();
    let created = &audit.data()["events"][0];
    assert_eq!(created["sync_command_id"], record_ref.as_str());
    assert_eq!(created["device_id"], "phone-1");
    let captured: DateTime<Utc> = created["captured_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(captured.timestamp(), recorded_at.timestamp());
    let server: DateTime<Utc> = created["recorded_at"].as_str().unwrap().parse().unwrap();
    assert!(server > recorded_at + Duration::minutes(10));
    let payload = &created["payload"]["HealthRecordCreated"];
    let recorded: DateTime<Utc> = payload["recorded_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(recorded.timestamp(), recorded_at.timestamp(), "{payload}");

    // Resent twice: every command a duplicate with its first result; nothing written.
    let events = app.event_count().await;
    for _ in 0..2 {
        let again = push(app, &f.token, "phone-1", &batch).await;
        assert_eq!(statuses(&again), vec!["duplicate"; 6]);
        for (a, b) in again.iter().zip(&first) {
            assert_eq!(a["data"], b["data"]);
            assert_eq!(a["code"], b["code"]);
        }
        assert_eq!(app.event_count().await, events);
    }
    // Once more with one new command: only that one is applied.
    let mut more = batch.clone();
    more.push(cmd(
        "schedule_visit",
        Utc::now(),
        json!({"patient_id": f.patient, "scheduled_date": (today() + Duration::days(1)).to_string(),
               "scheduled_time": "10:00", "appointment_type": "emergency"}),
    ));
    let third = push(app, &f.token, "phone-1", &more).await;
    assert_eq!(
        statuses(&third),
        vec![
            "duplicate",
            "duplicate",
            "duplicate",
            "duplicate",
            "duplicate",
            "duplicate",
            "applied"
        ]
    );
    let list = app.get("/appointments?limit=100", &f.token).await.ok();
    assert_eq!(list.data()["total"], 2, "one visit per schedule_visit command");
    let records = app
        .get(&format!("/patients/{}/health-records", f.patient), &f.token)
        .await
        .ok();
    assert_eq!(records.data()["total"], 1);
}

async fn rejected_commands_say_why_and_stop_only_what_depends_on_them(b: Backend) {
    let f = field(b).await;
    let app = &f.app;
    let now = Utc::now();
    let tomorrow = (today() + Duration::days(1)).to_string();
    let schedule = |time: &str| {
        cmd(
            "schedule_visit",
            now,
            json!({"patient_id": f.patient, "scheduled_date": tomorrow, "scheduled_time": time,
                   "appointment_type": "emergency"}),
        )
    };
    // Another recorder's patient.
    let (other, _) = app.recorder(2).await;
    let family = app.family("周家").await;
    let theirs = app.patient(&family, "周爷爷").await;
    subscribe_since_yesterday(app, &theirs, &f.package, &other).await;

    let good = schedule("09:00");
    let visit_ref = good["command_id"].as_str().unwrap().to_string();
    // A visit before the time it was captured.
    let past = cmd(
        "schedule_visit",
        now,
        json!({"patient_id": f.patient, "scheduled_date": (today() - Duration::days(1)).to_string(),
               "scheduled_time": "08:00", "appointment_type": "emergency"}),
    );
    let past_ref = past["command_id"].as_str().unwrap().to_string();
    let batch = vec![
        good.clone(),
        past,
        cmd("confirm_visit", now, json!({"appointment_id": past_ref})),
        cmd(
            "confirm_visit",
            now,
            json!({"appointment_id": visit_ref, "expected_version": 7}),
        ),
        cmd(
            "confirm_visit",
            now,
            json!({"appointment_id": visit_ref, "expected_version": 1}),
        ),
        cmd(
            "schedule_visit",
            now - Duration::days(8),
            json!({"patient_id": f.patient}),
        ),
        cmd(
            "schedule_visit",
            now + Duration::minutes(10),
            json!({"patient_id": f.patient}),
        ),
        cmd("fly_to_the_moon", now, json!({})),
        json!({"command_id": "not-a-uuid", "type": "confirm_visit", "captured_at": now.to_rfc3339(), "body": {}}),
        cmd(
            "schedule_visit",
            now,
            json!({"patient_id": theirs, "scheduled_date": tomorrow, "scheduled_time": "11:00"}),
        ),
        cmd(
            "schedule_visit",
            now,
            json!({"patient_id": f.patient, "scheduled_date": tomorrow}),
        ),
        cmd(
            "mark_read",
            now,
            json!({"notification_id": uuid::Uuid::new_v4().to_string()}),
        ),
        schedule("10:00"),
    ];
    let r = push(app, &f.token, "phone-1", &batch).await;
    let codes: Vec<(&str, &str)> = r
        .iter()
        .map(|r| (r["status"].as_str().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("applied", "ok"),
            ("rejected", "validation_failed"),
            ("rejected", "dependency_rejected"),
            ("rejected", "version_conflict"),
            ("applied", "ok"),
            ("rejected", "validation_failed"),
            ("rejected", "validation_failed"),
            ("rejected", "unsupported_type"),
            ("rejected", "validation_failed"),
            ("rejected", "patient_not_assigned"),
            ("rejected", "validation_failed"),
            ("rejected", "not_found"),
            ("applied", "ok"),
        ],
        "{r:#?}"
    );
    assert!(r[1]["details"]["scheduled_time"].is_string());
    assert_eq!(r[3]["details"]["current_version"], 1);
    assert!(r[5]["details"]["captured_at"].is_string());
    assert!(r[6]["details"]["captured_at"].is_string());
    assert!(r[8]["details"]["command_id"].is_string());
    assert!(r[10]["details"]["scheduled_time"].is_string());
    assert!(r
        .iter()
        .filter(|r| r["status"] == "rejected")
        .all(|r| r["error"].is_string()));

    // An admin cancels the visit while the phone is offline: its commands on it say so.
    let visit = r[0]["data"]["appointment_id"].as_str().unwrap().to_string();
    app.post(
        &format!("/appointments/{visit}/cancel"),
        &app.admin_token,
        json!({"reason": "家属改约"}),
    )
    .await
    .ok();
    let at_home = json!({"appointment_id": visit_ref, "lat": 31.2304, "lng": 121.4737});
    let late = push(
        app,
        &f.token,
        "phone-1",
        &[
            cmd("confirm_visit", now, json!({"appointment_id": visit_ref})),
            cmd("check_in", now, at_home.clone()),
        ],
    )
    .await;
    for late in &late {
        assert_eq!(
            (late["status"].as_str(), late["code"].as_str()),
            (Some("rejected"), Some("visit_cancelled")),
            "{late}"
        );
    }
    // Check-out needs a check-in; a position needs both coordinates.
    let other_visit = push(app, &f.token, "phone-1", &[schedule("15:00")]).await;
    let other_visit = other_visit[0]["data"]["appointment_id"].as_str().unwrap().to_string();
    let marks = push(
        app,
        &f.token,
        "phone-1",
        &[
            cmd(
                "check_out",
                now,
                json!({"appointment_id": other_visit, "lat": 31.2, "lng": 121.4}),
            ),
            cmd("check_in", now, json!({"appointment_id": other_visit, "lat": 31.2})),
        ],
    )
    .await;
    assert_eq!(
        marks
            .iter()
            .map(|r| (r["status"].as_str().unwrap(), r["code"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        vec![("rejected", "conflict"), ("rejected", "validation_failed")],
        "{marks:#?}"
    );
    assert!(marks[1]["details"]["lng"].is_string(), "{marks:#?}");
    // A rejected command may be sent again (it wrote nothing); an applied one is a duplicate.
    let again = push(app, &f.token, "phone-1", &batch[..2]).await;
    assert_eq!(statuses(&again), vec!["duplicate", "rejected"]);

    // Only recorders push; a malformed push is 400 naming the field.
    app.post(
        "/sync/push",
        &app.admin_token,
        json!({"device_id": "x", "commands": []}),
    )
    .await
    .err(403, "forbidden");
    let e = app
        .post("/sync/push", &f.token, json!({"commands": []}))
        .await
        .err(400, "validation_failed");
    assert!(e.body["details"]["device_id"].is_string());
}

async fn concurrent_pushes_of_one_batch_apply_each_command_once(b: Backend) {
    let f = field(b).await;
    let app = &f.app;
    let tomorrow = (today() + Duration::days(1)).to_string();
    let batch: Vec<Value> = (0..12)
        .map(|i| {
            cmd(
                "schedule_visit",
                Utc::now(),
                json!({"patient_id": f.patient, "scheduled_date": tomorrow,
                       "scheduled_time": format!("{:02}:{:02}", 8 + i / 4, (i % 4) * 15)}),
            )
        })
        .collect();
    let (a, b2, c) = tokio::join!(
        push(app, &f.token, "phone-1", &batch),
        push(app, &f.token, "phone-1", &batch),
        push(app, &f.token, "phone-2", &batch),
    );
    for i in 0..batch.len() {
        let all = [&a[i], &b2[i], &c[i]];
        let applied = all.iter().filter(|r| r["status"] == "applied").count();
        let duplicates = all.iter().filter(|r| r["status"] == "duplicate").count();
        assert_eq!((applied, duplicates), (1, 2), "command {i}: {all:?}");
        assert!(all.iter().all(|r| r["data"] == all[0]["data"]));
    }
    let list = app.get("/appointments?limit=100", &f.token).await.ok();
    assert_eq!(list.data()["total"], 12);
    // Regular visits each took one of the month's places, once.
    let sql = "SELECT COUNT(*) FROM unique_claims WHERE scope = 'visit_quota'";
    let places: i64 = match app.state.store.backend() {
        carelog::store::Backend::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        carelog::store::Backend::Sqlite(db) => sqlx::query_scalar(sql).fetch_one(&db.read).await.unwrap(),
    };
    assert_eq!(places, 12, "no place taken twice or lost");
}

async fn pull(app: &TestApp, token: &str, cursor: Option<&str>) -> Value {
    let path = match cursor {
        Some(c) => format!("/sync/pull?cursor={c}"),
        None => "/sync/pull".to_string(),
    };
    app.get(&path, token).await.ok().data().clone()
}

fn count(changes: &Value) -> usize {
    [
        "families",
        "patients",
        "appointments",
        "medical_orders",
        "notifications",
    ]
    .iter()
    .map(|k| changes[k].as_array().unwrap().len())
    .sum::<usize>()
        + ["families", "patients", "appointments"]
            .iter()
            .map(|k| changes["removed"][k].as_array().unwrap().len())
            .sum::<usize>()
}

async fn pull_returns_a_snapshot_then_exactly_what_changed(b: Backend) {
    let f = field(b).await;
    let app = &f.app;
    let tomorrow = (today() + Duration::days(1)).to_string();
    let r = push(
        app,
        &f.token,
        "phone-1",
        &[cmd(
            "schedule_visit",
            Utc::now(),
            json!({"patient_id": f.patient, "scheduled_date": tomorrow, "scheduled_time": "09:00"}),
        )],
    )
    .await;
    let visit = r[0]["data"]["appointment_id"].as_str().unwrap().to_string();
    // Someone else's household: never in this recorder's pulls.
    let (other, _) = app.recorder(2).await;
    let other_family = app.family("周家").await;
    let theirs = app.patient(&other_family, "周爷爷").await;
    let other_sub = subscribe_since_yesterday(app, &theirs, &f.package, &other).await;

    let snap = pull(app, &f.token, None).await;
    let c = &snap["changes"];
    assert_eq!(c["families"].as_array().unwrap().len(), 1, "{c}");
    assert_eq!(c["families"][0]["family_name"], "陈家");
    assert_eq!(c["patients"][0]["id"], f.patient.as_str());
    assert_eq!(c["appointments"][0]["id"], visit.as_str());
    let cursor = snap["cursor"].as_str().unwrap().to_string();

    // Nothing changed: nothing new.
    let again = pull(app, &f.token, Some(&cursor)).await;
    assert_eq!(count(&again["changes"]), 0, "{again}");
    assert_eq!(again["cursor"], cursor.as_str());

    // An admin cancels the visit (and changes someone else's household): exactly that visit.
    app.post(
        &format!("/appointments/{visit}/cancel"),
        &app.admin_token,
        json!({"reason": "家属改约"}),
    )
    .await
    .ok();
    app.patch(
        &format!("/families/{other_family}"),
        &app.admin_token,
        json!({"family_name": "周府"}),
    )
    .await
    .ok();
    let changed = pull(app, &f.token, Some(&cursor)).await;
    let c = &changed["changes"];
    assert_eq!(count(c), 1, "{c}");
    assert_eq!(c["appointments"][0]["id"], visit.as_str());
    assert_eq!(c["appointments"][0]["status"], "cancelled");
    let cursor = changed["cursor"].as_str().unwrap().to_string();
    assert_eq!(count(&pull(app, &f.token, Some(&cursor)).await["changes"]), 0);

    // The household renamed: the household, nothing else.
    let family = c["appointments"][0]["patient"]["family_id"]
        .as_str()
        .unwrap()
        .to_string();
    app.patch(
        &format!("/families/{family}"),
        &app.admin_token,
        json!({"family_name": "陈府"}),
    )
    .await
    .ok();
    let renamed = pull(app, &f.token, Some(&cursor)).await;
    assert_eq!(count(&renamed["changes"]), 1, "{renamed}");
    assert_eq!(renamed["changes"]["families"][0]["family_name"], "陈府");
    let cursor = renamed["cursor"].as_str().unwrap().to_string();

    // The patient is no longer the recorder's: the phone is told to delete what it held.
    let subs = app
        .get(&format!("/subscriptions?patient_id={}", f.patient), &app.admin_token)
        .await
        .ok();
    let sub = subs.data()["subscriptions"][0]["id"].as_str().unwrap().to_string();
    assert_ne!(sub, other_sub);
    app.post(
        &format!("/subscriptions/{sub}/status"),
        &app.admin_token,
        json!({"status": "cancelled"}),
    )
    .await
    .ok();
    let gone = pull(app, &f.token, Some(&cursor)).await;
    let removed = &gone["changes"]["removed"];
    assert_eq!(removed["patients"], json!([f.patient]), "{gone}");
    assert_eq!(removed["families"], json!([family]));
    assert_eq!(removed["appointments"], json!([visit]));
    assert!(gone["changes"]["patients"].as_array().unwrap().is_empty());

    let e = app
        .get("/sync/pull?cursor=abc", &f.token)
        .await
        .err(400, "validation_failed");
    assert!(e.body["details"]["cursor"].is_string());
    app.get("/sync/pull", &app.admin_token).await.err(403, "forbidden");
}

/// The model of the visits a randomized day touches: what applying each
/// command once, in order, must leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    Scheduled,
    Confirmed,
    /// Checked in at this captured time (seconds); whether its record was taken.
    InProgress {
        at: i64,
        record: bool,
    },
    CheckedOut,
    Completed,
    Cancelled,
}

async fn a_randomized_offline_day_ends_as_if_each_command_was_applied_once(b: Backend) {
    use rand::{Rng, SeedableRng};
    let seed: u64 = std::env::var("SYNC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let f = field(b).await;
    let app = &f.app;
    let family = app.family("王家").await;
    let second = app.patient(&family, "王爷爷").await;
    let recorder = app.get("/auth/me", &f.token).await.ok().data()["id"]
        .as_str()
        .unwrap()
        .to_string();
    subscribe_since_yesterday(app, &second, &f.package, &recorder).await;
    let patients = [f.patient.clone(), second];
    let tomorrow = (today() + Duration::days(1)).to_string();

    // Three phones, each with its own day of commands referring to its own earlier ones.
    const DEVICES: usize = 3;
    const PER_DEVICE: usize = 70;
    let mut streams: Vec<Vec<Value>> = vec![Vec::new(); DEVICES];
    for (d, stream) in streams.iter_mut().enumerate() {
        let mut visits: Vec<String> = Vec::new();
        let mut records: Vec<String> = Vec::new();
        for i in 0..PER_DEVICE {
            let at = Utc::now() - Duration::minutes(rng.gen_range(0..600));
            let roll = rng.gen_range(0..100);
            let c = if visits.is_empty() || roll < 30 {
                cmd(
                    "schedule_visit",
                    at,
                    json!({"patient_id": patients[rng.gen_range(0..2)], "scheduled_date": tomorrow,
                           "scheduled_time": format!("{:02}:{:02}", 8 + d * 3 + i / 30, i % 60),
                           "appointment_type": if roll % 2 == 0 { "emergency" } else { "makeup" }}),
                )
            } else {
                let visit = visits[rng.gen_range(0..visits.len())].clone();
                match roll {
                    30..=44 => cmd("confirm_visit", at, json!({"appointment_id": visit})),
                    45..=54 => cmd("cancel_visit", at, json!({"appointment_id": visit, "reason": "随机"})),
                    55..=62 => cmd(
                        "check_in",
                        at,
                        json!({"appointment_id": visit, "lat": 31.23, "lng": 121.47}),
                    ),
                    63..=70 => cmd(
                        "check_out",
                        at,
                        json!({"appointment_id": visit, "lat": 31.23, "lng": 121.47}),
                    ),
                    71..=89 => cmd(
                        "record_vitals",
                        at,
                        json!({"patient_id": patients[0], "appointment_id": visit,
                               "vital_signs": {"blood_pressure": "118/76", "heart_rate": 70}}),
                    ),
                    _ if !records.is_empty() => cmd(
                        "request_order",
                        at,
                        json!({"health_record_id": records[rng.gen_range(0..records.len())], "reason": "随机"}),
                    ),
                    _ => cmd("confirm_visit", at, json!({"appointment_id": visit})),
                }
            };
            let id = c["command_id"].as_str().unwrap().to_string();
            match c["type"].as_str().unwrap() {
                "schedule_visit" => visits.push(id),
                "record_vitals" => records.push(id),
                _ => {}
            }
            stream.push(c);
        }
    }

    // The model: command id -> the visit it created, and each visit's state.
    let mut visit_of: HashMap<String, String> = HashMap::new();
    let mut state: HashMap<String, Model> = HashMap::new();
    let mut patient_of: HashMap<String, String> = HashMap::new();
    let mut first: HashMap<String, Value> = HashMap::new();
    let mut applied = HashMap::<String, usize>::new();
    let mut next = [0usize; DEVICES];
    let mut sends = 0;
    let mut admin_cancels = 0;
    let mut batches = 0;
    while next.iter().zip(&streams).any(|(n, s)| *n < s.len()) {
        let d = loop {
            let d = rng.gen_range(0..DEVICES);
            if next[d] < streams[d].len() {
                break d;
            }
        };
        let size = rng.gen_range(5..=20).min(streams[d].len() - next[d]);
        let batch = streams[d][next[d]..next[d] + size].to_vec();
        next[d] += size;
        for _ in 0..rng.gen_range(1..=3) {
            let results = push(app, &f.token, &format!("phone-{d}"), &batch).await;
            sends += 1;
            for (c, r) in batch.iter().zip(&results) {
                let id = c["command_id"].as_str().unwrap().to_string();
                // Applied before: a duplicate with its first result.
                if let Some(was) = first.get(&id).filter(|was| was["status"] != "rejected") {
                    assert_eq!(r["status"], "duplicate", "{c} {r}");
                    assert_eq!(r["data"], was["data"]);
                    continue;
                }
                // Not applied yet (first send, or rejected before: a rejection wrote nothing,
                // so a resend is judged afresh — a check-out rejected before its check-in
                // arrived applies once the check-in has): what applying it once, now, must do.
                let expect_ok = |visit: &str, state: &HashMap<String, Model>, ok: &[Model]| {
                    visit_of
                        .get(visit)
                        .and_then(|v| state.get(v))
                        .is_some_and(|m| ok.contains(m))
                };
                let kind = c["type"].as_str().unwrap();
                let target = c["body"]["appointment_id"].as_str().unwrap_or_default().to_string();
                let now_model = visit_of.get(&target).and_then(|v| state.get(v)).copied();
                let captured = c["captured_at"]
                    .as_str()
                    .unwrap()
                    .parse::<DateTime<Utc>>()
                    .unwrap()
                    .timestamp();
                let ok = match kind {
                    "schedule_visit" => true,
                    "confirm_visit" => expect_ok(&target, &state, &[Model::Scheduled, Model::Confirmed]),
                    "cancel_visit" => expect_ok(&target, &state, &[Model::Scheduled, Model::Confirmed]),
                    "check_in" => expect_ok(&target, &state, &[Model::Scheduled, Model::Confirmed]),
                    // A check-out needs a check-in, and cannot precede it.
                    "check_out" => matches!(now_model, Some(Model::InProgress { at, .. }) if captured >= at),
                    "record_vitals" => {
                        matches!(
                            now_model,
                            Some(
                                Model::Scheduled
                                    | Model::Confirmed
                                    | Model::CheckedOut
                                    | Model::InProgress { record: false, .. }
                            )
                        ) && patient_of.get(&target).map(String::as_str) == Some(patients[0].as_str())
                    }
                    // A request for a record that was taken.
                    _ => {
                        let record = c["body"]["health_record_id"].as_str().unwrap_or_default();
                        first.get(record).is_some_and(|r| r["status"] == "applied")
                    }
                };
                let status = if ok { "applied" } else { "rejected" };
                assert_eq!(r["status"], status, "seed {seed}: {c} -> {r}");
                if ok {
                    *applied.entry(kind.to_string()).or_default() += 1;
                    match kind {
                        "schedule_visit" => {
                            let v = r["data"]["appointment_id"].as_str().unwrap().to_string();
                            visit_of.insert(id.clone(), v.clone());
                            state.insert(v, Model::Scheduled);
                            patient_of.insert(id.clone(), c["body"]["patient_id"].as_str().unwrap().to_string());
                        }
                        "confirm_visit" => {
                            state.insert(visit_of[&target].clone(), Model::Confirmed);
                        }
                        "cancel_visit" => {
                            state.insert(visit_of[&target].clone(), Model::Cancelled);
                        }
                        "check_in" => {
                            let at = Model::InProgress {
                                at: captured,
                                record: false,
                            };
                            state.insert(visit_of[&target].clone(), at);
                        }
                        "check_out" => {
                            let done = match now_model {
                                Some(Model::InProgress { record: true, .. }) => Model::Completed,
                                _ => Model::CheckedOut,
                            };
                            state.insert(visit_of[&target].clone(), done);
                        }
                        "record_vitals" => {
                            let done = match now_model {
                                Some(Model::InProgress { at, .. }) => Model::InProgress { at, record: true },
                                _ => Model::Completed,
                            };
                            state.insert(visit_of[&target].clone(), done);
                        }
                        _ => {}
                    }
                } else if let Some(v) = visit_of.get(&target) {
                    // (A record naming another patient's visit is refused for that first.)
                    let right_patient = kind != "record_vitals" || patient_of[&target] == patients[0];
                    if state[v] == Model::Cancelled && right_patient {
                        assert_eq!(r["code"], "visit_cancelled", "{c} -> {r}");
                    }
                }
                first.insert(id, r.clone());
            }
        }
        // Meanwhile an admin cancels a visit now and then.
        batches += 1;
        if batches % 3 == 1 {
            let open: Vec<String> = state
                .iter()
                .filter(|(_, m)| matches!(m, Model::Scheduled | Model::Confirmed))
                .map(|(v, _)| v.clone())
                .collect();
            if !open.is_empty() {
                let v = &open[rng.gen_range(0..open.len())];
                app.post(
                    &format!("/appointments/{v}/cancel"),
                    &app.admin_token,
                    json!({"reason": "管理员取消"}),
                )
                .await
                .ok();
                state.insert(v.clone(), Model::Cancelled);
                admin_cancels += 1;
            }
        }
    }
    let total: usize = streams.iter().map(Vec::len).sum();
    assert!(total >= 200 && sends > DEVICES * PER_DEVICE / 20, "seed {seed}");
    assert!(admin_cancels > 0, "seed {seed}: the day had no admin cancellation");
    assert!(
        applied.get("check_in").is_some_and(|n| *n > 0),
        "seed {seed}: the day had no check-in: {applied:?}"
    );

    // The server's state is the model's: one visit per applied schedule, in the model's status.
    let list = app.get("/appointments?limit=100", &f.token).await.ok();
    let mut listed: Vec<Value> = list.data()["appointments"].as_array().unwrap().clone();
    let mut page = 2;
    while (listed.len() as u64) < list.data()["total"].as_u64().unwrap() {
        let more = app
            .get(&format!("/appointments?limit=100&page={page}"), &f.token)
            .await
            .ok();
        listed.extend(more.data()["appointments"].as_array().unwrap().iter().cloned());
        page += 1;
    }
    assert_eq!(listed.len(), state.len(), "seed {seed}: one visit per schedule_visit");
    for v in &listed {
        let expected = match state[v["id"].as_str().unwrap()] {
            Model::Scheduled => "scheduled",
            Model::Confirmed => "confirmed",
            Model::InProgress { .. } => "in_progress",
            Model::CheckedOut => "checked_out",
            Model::Completed => "completed",
            Model::Cancelled => "cancelled",
        };
        assert_eq!(v["status"], expected, "seed {seed}: {v}");
    }
    let records = app
        .get(&format!("/patients/{}/health-records?limit=1", f.patient), &f.token)
        .await
        .ok();
    assert_eq!(
        records.data()["total"].as_u64().unwrap() as usize,
        applied.get("record_vitals").copied().unwrap_or(0),
        "seed {seed}: one record per applied record_vitals"
    );
    let dtoken = app.login("doctor1", "staff-pass-1").await;
    let requests = app.get("/order-requests?limit=1", &dtoken).await.ok();
    assert_eq!(
        requests.data()["total"].as_u64().unwrap() as usize,
        applied.get("request_order").copied().unwrap_or(0),
        "seed {seed}: one order request per applied request_order"
    );
}

/// `POST` to a subprocess server as `token`; the envelope's `data`.
async fn post_to(client: &reqwest::Client, base: &str, token: &str, path: &str, body: Value) -> Value {
    let r = client
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json::<Value>().await.unwrap()["data"].clone()
}

async fn visits_total(client: &reqwest::Client, base: &str, token: &str) -> u64 {
    let r: Value = client
        .get(format!("{base}/appointments?limit=1"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["data"]["total"].as_u64().unwrap()
}

async fn a_push_cut_by_sigkill_then_resent_applies_each_command_once(b: Backend) {
    use crate::operations::{login, start, subprocess_setup};
    let (_dir, vars, port) = subprocess_setup(b, &[]).await;
    let mut server = start(&vars, port).await;
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let client = reqwest::Client::new();
    let admin = login(&client, &base).await;
    let recorder = post_to(
        &client,
        &base,
        &admin,
        "/users",
        json!({"username": "rec1", "phone": "13900000001", "password": "recorder-pass", "role": "recorder",
               "name": "记录员", "recorder": {"employee_id": "E1"}}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let family = post_to(
        &client,
        &base,
        &admin,
        "/families",
        json!({"family_name": "陈家", "primary_address": "上海", "contact_phone": "13912345678"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let patient = post_to(
        &client,
        &base,
        &admin,
        &format!("/families/{family}/patients"),
        json!({"name": "陈奶奶", "gender": "female", "birth_date": "1940-01-01", "relationship_to_head": "本人"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let package = post_to(
        &client,
        &base,
        &admin,
        "/service-packages",
        json!({"name": "包", "price": "9.00", "duration_days": 30, "service_frequency": 4}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    post_to(
        &client,
        &base,
        &admin,
        "/subscriptions",
        json!({"patient_id": patient, "package_id": package, "recorder_id": recorder,
               "start_date": today().to_string()}),
    )
    .await;
    let login_recorder = || async {
        let r: Value = client
            .post(format!("{base}/auth/login"))
            .json(&json!({"username": "rec1", "password": "recorder-pass"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["data"]["access_token"].as_str().unwrap().to_string()
    };
    let token = login_recorder().await;

    const N: usize = 120;
    let tomorrow = (today() + Duration::days(1)).to_string();
    let batch: Vec<Value> = (0..N)
        .map(|i| {
            cmd(
                "schedule_visit",
                Utc::now(),
                json!({"patient_id": patient, "scheduled_date": tomorrow, "appointment_type": "emergency",
                       "scheduled_time": format!("{:02}:{:02}", 6 + i / 60, i % 60)}),
            )
        })
        .collect();
    let body = json!({"device_id": "phone-1", "commands": batch});
    let cut = {
        let (client, url, token, body) = (client.clone(), format!("{base}/sync/push"), token.clone(), body.clone());
        tokio::spawn(async move { client.post(url).bearer_auth(token).json(&body).send().await })
    };
    // Kill the server once some, not all, of the batch is applied.
    let mut seen = 0;
    for _ in 0..600 {
        seen = visits_total(&client, &base, &admin).await;
        if seen >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    server.kill();
    assert!(seen >= 5, "the push was under way");
    let answered = cut.await.unwrap().is_ok_and(|r| r.status().is_success());

    let mut server = start(&vars, port).await;
    let token = login_recorder().await;
    let admin = login(&client, &base).await;
    let resend = post_to(&client, &base, &token, "/sync/push", body.clone()).await;
    let results = resend["results"].as_array().unwrap();
    let statuses = |s: &str| results.iter().filter(|r| r["status"] == s).count();
    // What committed before the kill is a duplicate, the rest is applied now.
    let before = statuses("duplicate");
    assert_eq!(before + statuses("applied"), N, "{resend}");
    assert!(
        before >= seen as usize,
        "the visits seen before the kill were committed"
    );
    assert!(answered || before < N, "killed in the middle of the batch");
    assert_eq!(
        visits_total(&client, &base, &admin).await as usize,
        N,
        "each command applied once"
    );
    let again = post_to(&client, &base, &token, "/sync/push", body).await;
    for (a, r) in again["results"].as_array().unwrap().iter().zip(results) {
        assert_eq!(a["status"], "duplicate");
        assert_eq!(a["data"], r["data"]);
    }
    assert_eq!(visits_total(&client, &base, &admin).await as usize, N);
    server.kill();
}
