//! Alerts of abnormal vitals: raised with their order request, acknowledged
//! and resolved by their doctor, seen by role, escalated when nobody
//! acknowledges them in time — once per level, also with two servers.

use carelog::state::AppState;
use domain::alert::Alert;
use serde_json::{json, Value};

use crate::dual;
use crate::helpers::{second_instance, spawn_app, spawn_app_with, Backend, TestApp};

dual!(
    an_abnormal_record_raises_an_alert_its_doctor_acknowledges_and_resolves,
    an_abnormal_record_committed_without_its_alert_still_gets_one,
    unacknowledged_alerts_are_escalated_once_per_level_even_by_two_instances,
    the_server_escalates_an_urgent_alert_nobody_acknowledges,
    alerts_go_only_to_active_available_doctors,
);

struct World {
    app: TestApp,
    rtoken: String,
    patient: String,
    doctors: Vec<(String, String)>,
}

fn today() -> String {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        .to_string()
}

/// A recorder with a patient, and `doctors` doctors (created in order).
async fn world_on(app: TestApp, doctors: u32) -> World {
    let (recorder, rtoken) = app.recorder(1).await;
    let mut ds = Vec::new();
    for n in 1..=doctors {
        ds.push(app.staff("doctor", n).await);
    }
    let family = app.family("警报家").await;
    let patient = app.patient(&family, "警报奶奶").await;
    let package = app.package().await;
    app.subscribe(&patient, &package, &recorder).await;
    World {
        app,
        rtoken,
        patient,
        doctors: ds,
    }
}

impl World {
    /// Records vitals; the answer's data.
    async fn vitals(&self, vitals: Value) -> Value {
        self.app
            .post(
                "/health-records",
                &self.rtoken,
                json!({"patient_id": self.patient, "visit_date": today(), "visit_time": "09:00", "vital_signs": vitals}),
            )
            .await
            .ok()
            .data()
            .clone()
    }

    async fn alert(&self, id: &str) -> Value {
        self.app
            .get(&format!("/alerts/{id}"), &self.app.admin_token)
            .await
            .ok()
            .data()
            .clone()
    }

    fn doctor_token(&self, id: &str) -> &str {
        &self
            .doctors
            .iter()
            .find(|(d, _)| d == id)
            .expect("one of the doctors")
            .1
    }
}

async fn an_abnormal_record_raises_an_alert_its_doctor_acknowledges_and_resolves(b: Backend) {
    let w = world_on(spawn_app(b).await, 2).await;
    let app = &w.app;
    let (_, auditor_token) = app.staff("auditor", 9).await;

    // Normal vitals: no alert.
    let normal = w.vitals(json!({"blood_pressure": "120/80"})).await;
    assert!(normal["alert_id"].is_null() && normal["order_request_id"].is_null());

    // Urgent vitals: an alert and its order request, which links it.
    let r = w.vitals(json!({"blood_pressure": "185/100", "blood_oxygen": 95})).await;
    let id = r["alert_id"].as_str().expect("an alert").to_string();
    let request = r["order_request_id"].as_str().expect("a request").to_string();
    let alert = w.alert(&id).await;
    assert_eq!(alert["status"], "triggered");
    assert_eq!(alert["severity"], "urgent");
    assert_eq!(alert["escalation_level"], 0);
    assert_eq!(alert["health_record_id"], r["record_id"]);
    assert_eq!(alert["order_request_id"], request.as_str());
    assert_eq!(alert["patient_name"], "警报奶奶");
    assert_eq!(alert["reasons"][0]["code"], "blood_pressure_urgent");
    assert!(alert["acknowledged_at"].is_null() && alert["outcome"].is_null());
    let doctor = alert["doctor_id"].as_str().unwrap().to_string();
    let dtoken = w.doctor_token(&doctor).to_string();
    let (_, other_token) = w.doctors.iter().find(|(d, _)| *d != doctor).cloned().unwrap();
    let linked = app.get(&format!("/order-requests/{request}"), &dtoken).await.ok();
    assert_eq!(linked.data()["alert_id"], id.as_str());
    assert_eq!(linked.data()["doctor_id"], doctor.as_str());

    // Who sees it: its doctor, admins and auditors; not another doctor, not recorders.
    let mine = app.get("/alerts?status=triggered&severity=urgent", &dtoken).await.ok();
    assert_eq!(mine.data()["total"], 1);
    assert_eq!(mine.data()["alerts"][0]["id"], id.as_str());
    assert_eq!(
        app.get("/alerts?severity=abnormal", &dtoken).await.ok().data()["total"],
        0
    );
    assert_eq!(app.get("/alerts", &other_token).await.ok().data()["total"], 0);
    assert_eq!(app.get("/alerts", &auditor_token).await.ok().data()["total"], 1);
    app.get(&format!("/alerts/{id}"), &auditor_token).await.ok();
    app.get(&format!("/alerts/{id}"), &other_token)
        .await
        .err(404, "not_found");
    app.get("/alerts", &w.rtoken).await.err(403, "forbidden");
    let bad = app
        .get("/alerts?status=open&severity=high", &dtoken)
        .await
        .err(400, "validation_failed");
    assert!(bad.body["details"]["status"].is_string() && bad.body["details"]["severity"].is_string());
    app.get("/alerts/not-a-uuid", &dtoken).await.err(404, "not_found");

    // Acknowledged by its doctor only, once.
    let ack = format!("/alerts/{id}/acknowledge");
    app.post(&ack, &other_token, json!({})).await.err(404, "not_found");
    app.post(&ack, &app.admin_token, json!({})).await.err(403, "forbidden");
    app.post(&ack, &auditor_token, json!({})).await.err(403, "forbidden");
    let acked = app.post(&ack, &dtoken, json!({})).await.ok();
    assert_eq!(acked.data()["status"], "acknowledged");
    assert_eq!(acked.data()["acknowledged_by"], doctor.as_str());
    assert!(acked.data()["acknowledged_at"].is_string());
    assert_eq!(acked.headers["etag"], "\"2\"");
    app.post(&ack, &dtoken, json!({})).await.err(409, "conflict");

    // Resolved with an outcome, once.
    let resolve = format!("/alerts/{id}/resolve");
    let bad = app
        .post(&resolve, &dtoken, json!({"outcome": "cured", "note": "x".repeat(1001)}))
        .await
        .err(400, "validation_failed");
    assert!(bad.body["details"]["outcome"].is_string() && bad.body["details"]["note"].is_string());
    app.post(&resolve, &dtoken, json!({}))
        .await
        .err(400, "validation_failed");
    app.post(&resolve, &other_token, json!({"outcome": "referred"}))
        .await
        .err(404, "not_found");
    app.post(&resolve, &w.rtoken, json!({"outcome": "referred"}))
        .await
        .err(403, "forbidden");
    let done = app
        .post(
            &resolve,
            &dtoken,
            json!({"outcome": "order_issued", "note": "已开降压药"}),
        )
        .await
        .ok();
    assert_eq!(done.data()["status"], "resolved");
    assert_eq!(done.data()["outcome"], "order_issued");
    assert_eq!(done.data()["note"], "已开降压药");
    assert!(done.data()["resolved_at"].is_string());
    app.post(&resolve, &app.admin_token, json!({"outcome": "referred"}))
        .await
        .err(409, "conflict");
    assert_eq!(
        app.get("/alerts?status=resolved", &dtoken).await.ok().data()["total"],
        1
    );

    // An abnormal (not urgent) alert, resolved by an admin without acknowledgement.
    let r = w.vitals(json!({"temperature": 38.5})).await;
    let second = r["alert_id"].as_str().expect("an alert").to_string();
    assert_eq!(w.alert(&second).await["severity"], "abnormal");
    let done = app
        .post(
            &format!("/alerts/{second}/resolve"),
            &app.admin_token,
            json!({"outcome": "no_action_needed"}),
        )
        .await
        .ok();
    assert_eq!(done.data()["status"], "resolved");
    assert!(done.data()["acknowledged_at"].is_null());
    let admin = app.get("/auth/me", &app.admin_token).await.ok().id();
    assert_eq!(done.data()["resolved_by"], admin.as_str());
    assert_eq!(app.get("/alerts", &app.admin_token).await.ok().data()["total"], 2);
}

/// As if the server died right after committing the record: the alert
/// reactor, following the store, triggers the alert and opens its request.
async fn an_abnormal_record_committed_without_its_alert_still_gets_one(b: Backend) {
    use domain::health_record::{HealthRecord, HealthRecordCommand, NewRecord, RecordFacts, RecordFiles};
    use domain::vitals::{AlertThresholds, BloodPressure, VitalSigns};
    let w = world_on(spawn_app(b).await, 1).await;
    let (doctor, dtoken) = w.doctors[0].clone();
    let record = NewRecord {
        patient_id: w.patient.parse().unwrap(),
        recorder_id: w.app.get("/auth/me", &w.rtoken).await.ok().id().parse().unwrap(),
        appointment_id: None,
        visit_date: chrono::Utc::now()
            .with_timezone(&chrono_tz::Asia::Shanghai)
            .date_naive(),
        visit_time: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        location: None,
        vital_signs: VitalSigns {
            blood_pressure: Some(BloodPressure::parse("190/125").unwrap()),
            ..Default::default()
        },
        symptoms: None,
        notes: None,
        files: RecordFiles::default(),
    };
    let facts = RecordFacts {
        home: None,
        thresholds: AlertThresholds::default(),
        recorded_at: chrono::Utc::now(),
        away_radius_m: domain::health_record::AWAY_FROM_HOME_METERS,
    };
    let id = uuid::Uuid::new_v4().to_string();
    w.app
        .state
        .store
        .execute::<HealthRecord>(
            &id,
            HealthRecordCommand::Create { record, facts },
            &carelog::state::RequestMeta::system("RecordVitals"),
        )
        .await
        .unwrap();
    let mut alert = Value::Null;
    for _ in 0..300 {
        let list = w.app.get("/alerts", &dtoken).await.ok();
        if list.data()["total"] == 1 && list.data()["alerts"][0]["order_request_id"].is_string() {
            alert = list.data()["alerts"][0].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(alert["health_record_id"], id.as_str(), "the reactor raised the alert");
    assert_eq!(alert["doctor_id"], doctor.as_str());
    assert_eq!(alert["severity"], "urgent");
    let request = w
        .app
        .get(
            &format!("/order-requests/{}", alert["order_request_id"].as_str().unwrap()),
            &dtoken,
        )
        .await
        .ok();
    assert_eq!(request.data()["alert_id"], alert["id"]);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        w.app.get("/alerts", &dtoken).await.ok().data()["total"],
        1,
        "exactly once"
    );
}

/// The alert's events: (version, its aggregate).
async fn stored(state: &AppState, id: &str) -> (Alert, i64) {
    state
        .store
        .load::<Alert>(id)
        .await
        .unwrap()
        .expect("the alert is stored")
}

async fn unacknowledged_alerts_are_escalated_once_per_level_even_by_two_instances(b: Backend) {
    let w = world_on(spawn_app(b).await, 2).await;
    let app = &w.app;
    let (first, _) = w.doctors[0].clone();
    let (second, second_token) = w.doctors[1].clone();
    let urgent = w.vitals(json!({"blood_pressure": "185/100"})).await["alert_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(w.alert(&urgent).await["doctor_id"], first.as_str());
    let abnormal = w.vitals(json!({"temperature": 38.6})).await["alert_id"]
        .as_str()
        .unwrap()
        .to_string();
    let states = match b {
        Backend::Servers => vec![app.state.clone(), second_instance(app).await.state],
        Backend::Embedded => vec![app.state.clone(), app.state.clone()],
    };
    let escalate_all = |at: chrono::DateTime<chrono::Utc>| {
        let states = states.clone();
        async move {
            let runs = states.iter().map(|s| carelog::app::alerts::escalate_due(s, at));
            futures::future::join_all(runs)
                .await
                .into_iter()
                .flat_map(|r| r.expect("escalation runs"))
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
        }
    };
    let now = chrono::Utc::now();

    // Before 15 minutes nothing is due.
    assert!(escalate_all(now + chrono::TimeDelta::minutes(14)).await.is_empty());
    // After 15 minutes the urgent alert is, once, to the other doctor; the
    // abnormal one waits 120 minutes.
    let at = now + chrono::TimeDelta::minutes(16);
    assert_eq!(escalate_all(at).await, vec![urgent.clone()], "escalated once");
    assert!(escalate_all(at).await.is_empty(), "a repeat escalates nothing");
    let alert = w.alert(&urgent).await;
    assert_eq!(alert["escalation_level"], 1);
    assert_eq!(alert["doctor_id"], second.as_str());
    assert_eq!(alert["status"], "triggered");
    assert_eq!(stored(&app.state, &urgent).await.1, 2, "triggered, escalated once");
    assert_eq!(w.alert(&abnormal).await["escalation_level"], 0);

    // The new doctor is told and sees it (and its patient); the admins are told.
    let inbox = app.get("/notifications?status=unread", &second_token).await.ok();
    let kinds: Vec<&str> = inbox.data()["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"alert_escalated"), "{kinds:?}");
    let admin_inbox = app.get("/notifications", &app.admin_token).await.ok();
    assert_eq!(admin_inbox.data()["notifications"][0]["kind"], "alert_escalated_admin");
    assert_eq!(admin_inbox.data()["notifications"][0]["ref_id"], urgent.as_str());
    let theirs = app
        .get("/alerts?status=triggered&severity=urgent", &second_token)
        .await
        .ok();
    assert_eq!(theirs.data()["alerts"][0]["id"], urgent.as_str());
    app.get(&format!("/patients/{}/health-records", w.patient), &second_token)
        .await
        .ok();
    // The first doctor no longer has it.
    app.post(
        &format!("/alerts/{urgent}/acknowledge"),
        w.doctor_token(&first),
        json!({}),
    )
    .await
    .err(404, "not_found");

    // Still unacknowledged 15 minutes after its escalation: level 2, back to
    // the first doctor (the only other one); the abnormal one is due by now too.
    let later = at + chrono::TimeDelta::minutes(15);
    let mut escalated = escalate_all(later + chrono::TimeDelta::minutes(90)).await;
    escalated.sort();
    let mut expected = vec![urgent.clone(), abnormal.clone()];
    expected.sort();
    assert_eq!(escalated, expected);
    let alert = w.alert(&urgent).await;
    assert_eq!(alert["escalation_level"], 2);
    assert_eq!(alert["doctor_id"], first.as_str());

    // Acknowledged: never escalated again.
    app.post(
        &format!("/alerts/{urgent}/acknowledge"),
        w.doctor_token(&first),
        json!({}),
    )
    .await
    .ok();
    assert!(escalate_all(later + chrono::TimeDelta::hours(24))
        .await
        .iter()
        .all(|a| *a != urgent));
    assert_eq!(w.alert(&urgent).await["escalation_level"], 2);
}

/// With the wait set to one minute, the server's own loop escalates an urgent
/// alert nobody acknowledges, exactly once (on PostgreSQL + MySQL with two
/// servers running on the same databases).
async fn the_server_escalates_an_urgent_alert_nobody_acknowledges(b: Backend) {
    let app = spawn_app_with(
        b,
        &[
            ("CARELOG_ALERT_ESCALATE_URGENT_MIN", "1".into()),
            ("CARELOG_ALERT_ESCALATION_TICK_SECS", "1".into()),
        ],
    )
    .await;
    let _other = if b == Backend::Servers {
        Some(second_instance(&app).await)
    } else {
        None
    };
    let w = world_on(app, 2).await;
    let (first, _) = w.doctors[0].clone();
    let (second, _) = w.doctors[1].clone();
    let id = w.vitals(json!({"blood_oxygen": 85})).await["alert_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(w.alert(&id).await["doctor_id"], first.as_str());
    let started = std::time::Instant::now();
    let mut alert = Value::Null;
    while started.elapsed() < std::time::Duration::from_secs(120) {
        alert = w.alert(&id).await;
        if alert["escalation_level"] != 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(alert["escalation_level"], 1, "escalated after a minute: {alert}");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(50),
        "not before its minute"
    );
    assert_eq!(alert["doctor_id"], second.as_str());
    // A few more ticks: still once.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert_eq!(
        stored(&w.app.state, &id).await.1,
        2,
        "triggered, escalated exactly once"
    );
}

async fn alerts_go_only_to_active_available_doctors(b: Backend) {
    let w = world_on(spawn_app(b).await, 2).await;
    let app = &w.app;
    let (first, _) = w.doctors[0].clone();
    let (second, _) = w.doctors[1].clone();
    // The first doctor (who would be picked: fewest open requests, oldest account) is away.
    app.patch(
        &format!("/users/{first}"),
        &app.admin_token,
        json!({"doctor": {"is_available": false}}),
    )
    .await
    .ok();
    let id = w.vitals(json!({"blood_pressure": "185/100"})).await["alert_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(w.alert(&id).await["doctor_id"], second.as_str());
    // Nobody else can take it: escalated all the same, staying with its doctor.
    let escalated = carelog::app::alerts::escalate_due(&app.state, chrono::Utc::now() + chrono::TimeDelta::minutes(16))
        .await
        .unwrap();
    assert_eq!(escalated.len(), 1);
    let alert = w.alert(&id).await;
    assert_eq!(
        (alert["escalation_level"].as_i64(), alert["doctor_id"].as_str()),
        (Some(1), Some(second.as_str()))
    );

    // The patient's doctor from an order is skipped too once unavailable.
    let request = app
        .get("/order-requests?status=open", w.doctor_token(&second))
        .await
        .ok()
        .data()["requests"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        "/medical-orders",
        w.doctor_token(&second),
        json!({"patient_id": w.patient, "request_id": request, "order_type": "lifestyle", "content": "低盐饮食"}),
    )
    .await
    .ok();
    app.patch(
        &format!("/users/{first}"),
        &app.admin_token,
        json!({"doctor": {"is_available": true}}),
    )
    .await
    .ok();
    app.patch(
        &format!("/users/{second}"),
        &app.admin_token,
        json!({"doctor": {"is_available": false}}),
    )
    .await
    .ok();
    let id = w.vitals(json!({"blood_pressure": "150/95"})).await["alert_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        w.alert(&id).await["doctor_id"],
        first.as_str(),
        "not the unavailable doctor of the last order"
    );
    // Nobody available or active: no alert (and no request), nothing fails.
    app.patch(
        &format!("/users/{first}/status"),
        &app.admin_token,
        json!({"status": "inactive"}),
    )
    .await
    .ok();
    let r = w.vitals(json!({"blood_pressure": "150/95"})).await;
    assert!(r["alert_id"].is_null() && r["order_request_id"].is_null(), "{r}");
    // A recorder naming an unavailable doctor is told which field is wrong.
    let record = r["record_id"].as_str().unwrap();
    let named = app
        .post(
            &format!("/health-records/{record}/order-requests"),
            &w.rtoken,
            json!({"doctor_id": second}),
        )
        .await
        .err(400, "validation_failed");
    assert!(named.body["details"]["doctor_id"].is_string());
}
