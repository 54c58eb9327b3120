//! Corrections, not edits: a recorder amends their own health record within
//! the amendment window, the original stays in the event history, and past
//! the window only an admin's unlock reopens it.

use chrono::{Duration, NaiveTime, Utc};
use domain::health_record::{HealthRecord, HealthRecordCommand, NewRecord, RecordFacts, RecordFiles};
use domain::vitals::{AlertThresholds, BloodPressure, VitalSigns};
use reqwest::Method;
use serde_json::{json, Value};

use crate::dual;
use crate::helpers::{spawn_app_with, today, Backend, Resp, TestApp};

dual!(
    a_recorder_corrects_their_record_and_the_original_stays_in_the_history,
    only_the_records_recorder_may_amend_and_only_an_admin_may_unlock,
    an_old_record_is_locked_until_an_admin_unlocks_it,
    amendments_are_validated_like_new_records,
    an_erased_patients_amended_record_still_replays,
    with_a_zero_window_only_an_unlock_admits_a_correction,
);

struct World {
    app: TestApp,
    recorder: String,
    rtoken: String,
    patient: String,
}

async fn world(b: Backend) -> World {
    world_with(b, &[]).await
}

async fn world_with(b: Backend, settings: &[(&str, String)]) -> World {
    let app = spawn_app_with(b, settings).await;
    let (recorder, rtoken) = app.recorder(1).await;
    let family = app.family("陈家").await;
    let patient = app.patient(&family, "陈奶奶").await;
    let package = app.package().await;
    app.subscribe(&patient, &package, &recorder).await;
    World {
        app,
        recorder,
        rtoken,
        patient,
    }
}

/// A record written through the API today: BP 120/80, HR 72, 36.5 °C.
async fn new_record(w: &World) -> String {
    let r = w
        .app
        .post(
            "/health-records",
            &w.rtoken,
            json!({"patient_id": w.patient, "visit_date": today().to_string(), "visit_time": "09:30",
                   "vital_signs": {"blood_pressure": "120/80", "heart_rate": 72, "temperature": 36.5},
                   "symptoms": "头晕", "notes": "血压正常"}),
        )
        .await
        .ok();
    r.data()["record_id"].as_str().unwrap().to_string()
}

async fn amend(w: &World, token: &str, record: &str, body: Value) -> Resp {
    w.app
        .post(&format!("/health-records/{record}/amendments"), token, body)
        .await
}

/// The stored events of one aggregate, oldest first.
async fn history(app: &TestApp, id: &str) -> Vec<projections::StoredEvent> {
    let all = app.state.store.read_after(0, 100_000).await.unwrap();
    all.into_iter().filter(|e| e.aggregate_id == id).collect()
}

fn version(r: &Resp) -> i64 {
    r.data()["version"]
        .as_i64()
        .unwrap_or_else(|| panic!("no version in {}", r.body))
}

async fn a_recorder_corrects_their_record_and_the_original_stays_in_the_history(b: Backend) {
    let w = world(b).await;
    let app = &w.app;
    let record = new_record(&w).await;
    let before = app.get(&format!("/health-records/{record}"), &w.rtoken).await.ok();
    let v0 = version(&before);
    assert_eq!(before.data()["amendments"], json!([]));
    assert_eq!(before.data()["amendment_count"], 0);

    let r = amend(
        &w,
        &w.rtoken,
        &record,
        json!({"reason_code": "typo", "changes": {
            "notes": "血压偏高，已嘱休息",
            "visit_time": "10:15",
            "vital_signs": {"heart_rate": 78, "blood_pressure": "150/95"}}}),
    )
    .await
    .ok();
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(version(&r), v0 + 1, "a new version");
    assert_eq!(
        r.headers.get("etag").and_then(|v| v.to_str().ok()),
        Some(format!("\"{}\"", v0 + 1).as_str())
    );
    let d = r.data();
    assert_eq!(d["id"], record.as_str());
    assert_eq!(d["notes"], "血压偏高，已嘱休息");
    assert_eq!(d["symptoms"], "头晕", "fields not named keep their value");
    assert_eq!(d["visit_time"], "10:15");
    assert_eq!(d["vital_signs"]["heart_rate"], 78);
    assert_eq!(d["vital_signs"]["blood_pressure"], "150/95");
    assert_eq!(
        d["vital_signs"]["temperature"], 36.5,
        "vitals not named keep their value"
    );
    // Alerts are recomputed for the corrected vitals.
    assert_eq!(d["abnormal"], true);
    assert_eq!(d["alerts"][0]["code"], "blood_pressure_high");

    // GET shows the amended values and the correction trail.
    let got = app.get(&format!("/health-records/{record}"), &w.rtoken).await.ok();
    assert_eq!(version(&got), v0 + 1);
    let g = got.data();
    assert_eq!(g["notes"], "血压偏高，已嘱休息");
    assert_eq!(g["vital_signs"]["heart_rate"], 78);
    assert_eq!(g["amendment_count"], 1);
    assert!(g["amended_at"].as_str().is_some());
    let trail = g["amendments"].as_array().unwrap();
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0]["reason_code"], "typo");
    assert_eq!(trail[0]["amended_by"], w.recorder.as_str());
    assert!(trail[0]["at"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(
        trail[0]["changes"],
        json!({"notes": "血压偏高，已嘱休息", "visit_time": "10:15",
               "vital_signs": {"heart_rate": 78, "blood_pressure": "150/95"}})
    );
    // The patient's list shows the amended record too.
    let list = app
        .get(&format!("/patients/{}/health-records", w.patient), &w.rtoken)
        .await
        .ok();
    assert_eq!(list.data()["records"][0]["vital_signs"]["heart_rate"], 78);
    assert_eq!(list.data()["records"][0]["amendments"][0]["reason_code"], "typo");

    // The original values stay in the history: the created event is unchanged,
    // the amendment is a second event that names the patient and the recorder.
    let events = history(app, &record).await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["HealthRecordCreated", "HealthRecordAmended"]);
    let created = &events[0].payload["HealthRecordCreated"];
    assert_eq!(created["vital_signs"]["heart_rate"], 72);
    assert_eq!(created["visit_time"], "09:30:00");
    assert!(
        created["recorded_at"].as_str().is_some(),
        "the window's start is recorded"
    );
    let amended = &events[1].payload["HealthRecordAmended"];
    assert_eq!(amended["patient_id"], w.patient.as_str());
    assert_eq!(amended["reason_code"], "typo");
    assert_eq!(amended["amended_by"], w.recorder.as_str());
    assert_eq!(amended["changes"]["vital_signs"]["heart_rate"], 78);
    assert_eq!(events[1].metadata["actor_id"], w.recorder);
    assert_eq!(events[1].metadata["command"], "AmendHealthRecord");

    // If-Match: a stale version is refused, the current one accepted.
    let stale = app
        .send(
            Method::POST,
            &format!("/health-records/{record}/amendments"),
            Some(&w.rtoken),
            Some(json!({"reason_code": "typo", "changes": {"symptoms": "头晕乏力"}})),
            &[("If-Match", &format!("\"{v0}\""))],
        )
        .await
        .err(409, "version_conflict");
    assert_eq!(stale.body["details"]["current_version"], v0 + 1);
    let current = app
        .send(
            Method::POST,
            &format!("/health-records/{record}/amendments"),
            Some(&w.rtoken),
            Some(json!({"reason_code": "wrong_symptom", "changes": {"symptoms": null}})),
            &[("If-Match", &(v0 + 1).to_string())],
        )
        .await
        .ok();
    assert_eq!(version(&current), v0 + 2);
    assert_eq!(current.data()["symptoms"], Value::Null, "null removes a value");
    assert_eq!(current.data()["amendment_count"], 2);
    assert_eq!(current.data()["amendments"][1]["changes"], json!({"symptoms": null}));

    // The read model is replayable: rebuilt from the events, the record reads the same.
    let live = app.get(&format!("/health-records/{record}"), &w.rtoken).await.ok();
    let head = app.state.store.head().await.unwrap();
    let records = projections::records::RecordsProjector;
    app.state.read().await.reset(&records).await.unwrap();
    let mut caught_up = false;
    for _ in 0..200 {
        if app.state.read().await.checkpoint("health_records").await.unwrap() >= head {
            caught_up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(caught_up, "the projector replayed the history");
    let rebuilt = app.get(&format!("/health-records/{record}"), &w.rtoken).await.ok();
    assert_eq!(rebuilt.body, live.body);
}

async fn only_the_records_recorder_may_amend_and_only_an_admin_may_unlock(b: Backend) {
    let w = world(b).await;
    let app = &w.app;
    let record = new_record(&w).await;
    let (other, other_token) = app.recorder(2).await;
    // The other recorder serves the same patient too: seeing it is not enough.
    let package = app.package().await;
    app.subscribe(&w.patient, &package, &other).await;
    app.get(&format!("/health-records/{record}"), &other_token).await.ok();
    app.post(
        "/users",
        &app.admin_token,
        json!({"username": "drli", "phone": "13700000001", "password": "doctor-pass", "role": "doctor", "name": "李医生",
               "doctor": {"license_number": "L-1", "specialty": "全科"}}),
    )
    .await
    .ok();
    let doctor = app.login("drli", "doctor-pass").await;

    let body = json!({"reason_code": "typo", "changes": {"notes": "改过的备注"}});
    for token in [&other_token, &doctor, &app.admin_token] {
        amend(&w, token, &record, body.clone()).await.err(403, "forbidden");
    }
    let unlock = format!("/health-records/{record}/unlock");
    for token in [&w.rtoken, &other_token, &doctor] {
        app.post(&unlock, token, json!({"reason": "想改"}))
            .await
            .err(403, "forbidden");
    }
    let got = app.get(&format!("/health-records/{record}"), &w.rtoken).await.ok();
    assert_eq!(got.data()["notes"], "血压正常", "nothing changed");
    assert_eq!(got.data()["amendment_count"], 0);
    assert_eq!(history(app, &record).await.len(), 1);

    // An unknown record is not found.
    let missing = uuid::Uuid::new_v4();
    amend(&w, &w.rtoken, &missing.to_string(), body.clone())
        .await
        .err(404, "not_found");
    app.post(
        &format!("/health-records/{missing}/unlock"),
        &app.admin_token,
        json!({"reason": "核对"}),
    )
    .await
    .err(404, "not_found");
    // Its own recorder may.
    amend(&w, &w.rtoken, &record, body).await.ok();
}

async fn an_old_record_is_locked_until_an_admin_unlocks_it(b: Backend) {
    let w = world(b).await;
    let app = &w.app;
    // A record written ten days ago, straight into the store (as the handler
    // would have written it then).
    let ten_days_ago = Utc::now() - Duration::days(10);
    let vitals = VitalSigns {
        blood_pressure: Some(BloodPressure::parse("130/85").unwrap()),
        heart_rate: Some(70),
        ..Default::default()
    };
    let written = NewRecord {
        patient_id: w.patient.parse().unwrap(),
        recorder_id: w.recorder.parse().unwrap(),
        appointment_id: None,
        visit_date: today() - Duration::days(10),
        visit_time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        location: None,
        vital_signs: vitals,
        symptoms: None,
        notes: Some("一切正常".into()),
        files: RecordFiles::default(),
    };
    let facts = RecordFacts {
        home: None,
        thresholds: AlertThresholds::default(),
        recorded_at: ten_days_ago,
        away_radius_m: domain::health_record::AWAY_FROM_HOME_METERS,
    };
    let record = uuid::Uuid::new_v4().to_string();
    app.state
        .execute::<HealthRecord>(
            &record,
            HealthRecordCommand::Create { record: written, facts },
            carelog::state::RequestMeta::system("RecordVitals"),
        )
        .await
        .unwrap();

    let body = json!({"reason_code": "late_correction", "changes": {"vital_signs": {"heart_rate": 76}}});
    let refused = amend(&w, &w.rtoken, &record, body.clone()).await.err(409, "conflict");
    assert!(refused.body["message"].as_str().unwrap().contains("7天"));

    // Unlocking needs a reason.
    let unlock = format!("/health-records/{record}/unlock");
    let r = app
        .post(&unlock, &app.admin_token, json!({}))
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["reason"].is_string(), "{}", r.body);
    let r = app
        .post(&unlock, &app.admin_token, json!({"reason": "   "}))
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["reason"].is_string(), "{}", r.body);

    let r = app
        .post(&unlock, &app.admin_token, json!({"reason": "家属反映心率记录有误"}))
        .await
        .ok();
    assert_eq!(version(&r), 2);
    assert!(r.data()["unlocked_at"].as_str().is_some());
    assert_eq!(r.data()["vital_signs"]["heart_rate"], 70, "unlocking changes no value");

    let r = amend(&w, &w.rtoken, &record, body).await.ok();
    assert_eq!(version(&r), 3);
    assert_eq!(r.data()["vital_signs"]["heart_rate"], 76);
    assert_eq!(r.data()["vital_signs"]["blood_pressure"], "130/85");

    let events = history(app, &record).await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["HealthRecordCreated", "HealthRecordUnlocked", "HealthRecordAmended"]
    );
    let unlocked = &events[1].payload["HealthRecordUnlocked"];
    assert_eq!(unlocked["patient_id"], w.patient.as_str());
    assert_eq!(unlocked["reason"], "家属反映心率记录有误");
    assert_eq!(events[1].metadata["actor_role"], "admin");
    assert_eq!(
        events[0].payload["HealthRecordCreated"]["vital_signs"]["heart_rate"],
        70
    );
}

async fn amendments_are_validated_like_new_records(b: Backend) {
    let w = world(b).await;
    let app = &w.app;
    let record = new_record(&w).await;
    let fails_on = |field: &'static str| {
        move |r: Resp| {
            let r = r.err(400, "validation_failed");
            assert!(
                r.body["details"][field].is_string(),
                "expected details.{field}: {}",
                r.body
            );
        }
    };
    let cases = [
        (
            json!({"reason_code": "typo", "changes": {"vital_signs": {"heart_rate": 400}}}),
            "changes.vital_signs.heart_rate",
        ),
        (
            json!({"reason_code": "typo", "changes": {"vital_signs": {"blood_pressure": "80/120"}}}),
            "changes.vital_signs.blood_pressure",
        ),
        (
            json!({"reason_code": "typo", "changes": {"vital_signs": {"temperature": "hot"}}}),
            "changes.vital_signs.temperature",
        ),
        (
            json!({"reason_code": "typo", "changes": {"vital_signs": {"pulse": 70}}}),
            "changes.vital_signs.pulse",
        ),
        (
            json!({"reason_code": "typo", "changes": {"location_lat": 31.2}}),
            "changes.location_lat",
        ),
        (
            json!({"reason_code": "typo", "changes": {"visit_date": "2999-01-01"}}),
            "changes.visit_date",
        ),
        (
            json!({"reason_code": "typo", "changes": {"visit_time": "25:00"}}),
            "changes.visit_time",
        ),
        (json!({"reason_code": "typo", "changes": {}}), "changes"),
        (json!({"reason_code": "typo"}), "changes"),
        // Values equal to the recorded ones change nothing.
        (
            json!({"reason_code": "typo", "changes": {"notes": "血压正常", "vital_signs": {"heart_rate": 72}}}),
            "changes",
        ),
        // A record must keep some observation.
        (
            json!({"reason_code": "typo", "changes": {"symptoms": null, "notes": "",
                   "vital_signs": {"blood_pressure": null, "heart_rate": null, "temperature": null}}}),
            "changes",
        ),
        (json!({"changes": {"notes": "补充"}}), "reason_code"),
        (json!({"reason_code": " ", "changes": {"notes": "补充"}}), "reason_code"),
        (
            json!({"reason_code": "笔误 了", "changes": {"notes": "补充"}}),
            "reason_code",
        ),
        (
            json!({"reason_code": "x".repeat(65), "changes": {"notes": "补充"}}),
            "reason_code",
        ),
    ];
    for (body, field) in cases {
        fails_on(field)(amend(&w, &w.rtoken, &record, body).await);
    }
    let got = app.get(&format!("/health-records/{record}"), &w.rtoken).await.ok();
    assert_eq!(version(&got), 1, "no refused amendment wrote anything");
    assert_eq!(history(app, &record).await.len(), 1);

    // Clients bring their own reason codes.
    let r = amend(
        &w,
        &w.rtoken,
        &record,
        json!({"reason_code": "Device-Error.v2_recheck", "changes": {"vital_signs": {"temperature": 37.1}}}),
    )
    .await
    .ok();
    assert_eq!(r.data()["amendments"][0]["reason_code"], "Device-Error.v2_recheck");
    assert_eq!(r.data()["vital_signs"]["temperature"], 37.1);
    assert_eq!(r.data()["abnormal"], false);
}

/// Erasure destroys the patient's key, so an amendment's sealed `changes`
/// read as null from then on: the record must still load and replay.
async fn an_erased_patients_amended_record_still_replays(b: Backend) {
    let w = world(b).await;
    let app = &w.app;
    let record = new_record(&w).await;
    amend(
        &w,
        &w.rtoken,
        &record,
        json!({"reason_code": "typo", "changes": {"notes": "家住三楼，钥匙在门垫下"}}),
    )
    .await
    .ok();
    app.post(
        &format!("/patients/{}/erase", w.patient),
        &app.admin_token,
        json!({"reason": "家属书面申请"}),
    )
    .await
    .ok();

    // The aggregate still loads (an unlock is a command on it).
    let r = app
        .post(
            &format!("/health-records/{record}/unlock"),
            &app.admin_token,
            json!({"reason": "核对"}),
        )
        .await;
    assert_ne!(r.status.as_u16(), 500, "{}", r.body);
    let live = app
        .get(&format!("/health-records/{record}"), &app.admin_token)
        .await
        .ok();
    assert!(!live.body.to_string().contains("钥匙在门垫下"), "{}", live.body);
    assert_eq!(live.data()["amendments"][0]["reason_code"], "typo");

    // A rebuild replays the erased amendment instead of stalling on it.
    let head = app.state.store.head().await.unwrap();
    app.state
        .read()
        .await
        .reset(&projections::records::RecordsProjector)
        .await
        .unwrap();
    let mut caught_up = false;
    for _ in 0..200 {
        if app.state.read().await.checkpoint("health_records").await.unwrap() >= head {
            caught_up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(caught_up, "the projector replayed the history");
    let rebuilt = app
        .get(&format!("/health-records/{record}"), &app.admin_token)
        .await
        .ok();
    assert!(!rebuilt.body.to_string().contains("钥匙在门垫下"));
    assert_eq!(rebuilt.data()["amendments"][0]["reason_code"], "typo");
    assert_eq!(rebuilt.data()["amendment_count"], 1);
}

async fn with_a_zero_window_only_an_unlock_admits_a_correction(b: Backend) {
    let w = world_with(b, &[("CARELOG_AMENDMENT_WINDOW_DAYS", "0".into())]).await;
    let record = new_record(&w).await;
    let fix = |notes: &str| json!({"reason_code": "typo", "changes": {"notes": notes}});
    amend(&w, &w.rtoken, &record, fix("更正一")).await.err(409, "conflict");
    w.app
        .post(
            &format!("/health-records/{record}/unlock"),
            &w.app.admin_token,
            json!({"reason": "家属要求更正"}),
        )
        .await
        .ok();
    amend(&w, &w.rtoken, &record, fix("更正一")).await.ok();
    amend(&w, &w.rtoken, &record, fix("更正二")).await.err(409, "conflict");
}
