//! The recorder's day (today's route) and offline sync (push and pull).

use chrono::{NaiveDate, NaiveTime};
use domain::ids::{PatientId, SubscriptionId, UserId, VisitId};
use domain::visit::{ScheduleContext, Visit, VisitCommand, VisitPlan, VisitType};
use serde_json::{json, Value};

use crate::dual;
use crate::helpers::{spawn_app, Backend, TestApp};

dual!(todays_route_is_shorter_than_the_time_order_where_the_homes_allow_it);

/// About a kilometre of longitude at the equator.
const KM: f64 = 0.009;

fn today() -> NaiveDate {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
}

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
            VisitCommand::Schedule { plan, context },
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
