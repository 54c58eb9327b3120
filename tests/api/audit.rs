//! Audit and privacy: the auditor's history and point-in-time state, the hash
//! chain and `carelog audit verify`, erasure by key, and who may do what.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

use crate::dual;
use crate::helpers::{spawn_app, today, Backend, TestApp};

dual!(
    an_auditor_reconstructs_a_patients_story,
    verify_names_the_event_edited_in_the_database,
    erasure_leaves_nothing_to_find,
    an_erasure_recorded_just_before_a_crash_is_completed,
    auditors_write_nothing_and_others_do_not_audit,
    a_patients_page_reads_the_hashes_of_its_own_events_only,
    audit_lists_count_no_further_than_their_cap,
);

const NAME: &str = "欧阳删除测试";
const ID_CARD: &str = "110105195001011234";
const PHONE: &str = "13711112222";
const OTHER_NAME: &str = "司马保留测试";
const OTHER_ID_CARD: &str = "310104195203154568";
const OTHER_PHONE: &str = "13633334444";

async fn user(app: &TestApp, username: &str, role: &str, phone: &str, extra: Value) -> (String, String) {
    let mut body =
        json!({"username": username, "phone": phone, "password": "pass-word-1", "role": role, "name": username});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let id = app.post("/users", &app.admin_token, body).await.ok().id();
    (id, app.login(username, "pass-word-1").await)
}

async fn auditor(app: &TestApp) -> (String, String) {
    user(app, "auditor1", "auditor", "13500000001", json!({})).await
}

/// A family with one patient whose personal data are all distinctive.
async fn family_with_patient(app: &TestApp, name: &str, id_card: &str, phone: &str, birth: &str) -> (String, String) {
    let family = app
        .post(
            "/families",
            &app.admin_token,
            json!({"family_name": format!("{name}家"), "primary_address": format!("{name}路88号"), "contact_phone": phone}),
        )
        .await
        .ok()
        .id();
    let patient = app
        .post(
            &format!("/families/{family}/patients"),
            &app.admin_token,
            json!({"name": name, "gender": "male", "birth_date": birth, "id_card": id_card, "phone": phone,
                   "relationship_to_head": "本人", "medical_history": [format!("{name}的病史")], "current_medications": []}),
        )
        .await
        .ok()
        .id();
    (family, patient)
}

async fn an_auditor_reconstructs_a_patients_story(b: Backend) {
    let app = spawn_app(b).await;
    let (auditor_id, auditor) = auditor(&app).await;
    let (rid, rtoken) = app.recorder(1).await;
    let (_, patient) = family_with_patient(&app, NAME, ID_CARD, PHONE, "1950-01-01").await;
    let package = app.package().await;
    app.subscribe(&patient, &package, &rid).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    let before_update = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(30)).await;
    app.send(
        reqwest::Method::PATCH,
        &format!("/patients/{patient}"),
        Some(&app.admin_token),
        Some(json!({"phone": "13899990000"})),
        &[
            ("user-agent", "MicroMessenger/8.0 carelog-test"),
            ("x-correlation-id", "corr-42"),
        ],
    )
    .await
    .ok();
    let record = app
        .post(
            "/health-records",
            &rtoken,
            json!({"patient_id": patient, "visit_date": today().to_string(), "visit_time": "08:00",
                   "vital_signs": {"blood_pressure": "120/80", "heart_rate": 70}, "notes": "情况稳定"}),
        )
        .await
        .ok()
        .data()["record_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The recorder reads the record; the read is logged.
    app.get(&format!("/health-records/{record}"), &rtoken).await.ok();

    // Every change to the patient, oldest first, with actor and origin.
    let r = app
        .get(
            &format!("/audit/events?aggregate_type=patient&aggregate_id={patient}"),
            &auditor,
        )
        .await
        .ok();
    let events = r.data()["events"].as_array().unwrap().clone();
    assert_eq!(r.data()["total"], 2);
    assert_eq!(events[0]["type"], "PatientRegistered");
    assert_eq!(events[1]["type"], "PatientUpdated");
    assert!(events[0]["position"].as_i64() < events[1]["position"].as_i64());
    assert_eq!(events[0]["sequence"], 1);
    assert_eq!(events[0]["actor_role"], "admin");
    assert_eq!(events[0]["ip"], "127.0.0.1");
    assert!(events[0]["request_id"].is_string());
    assert_eq!(events[1]["user_agent"], "MicroMessenger/8.0 carelog-test");
    assert_eq!(events[1]["correlation_id"], "corr-42");
    assert!(events[0]["recorded_at"].is_string());
    assert_eq!(
        events[0]["payload"]["PatientRegistered"]["details"]["name"], NAME,
        "auditors see the history in clear"
    );
    assert_eq!(events[1]["payload"]["PatientUpdated"]["phone"], "13899990000");
    // The whole story of the patient: their own events and those of the
    // aggregates about them, oldest first.
    let r = app
        .get(&format!("/audit/events?patient_id={patient}&limit=100"), &auditor)
        .await
        .ok();
    let story: Vec<String> = r.data()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        story,
        [
            "PatientRegistered",
            "SubscriptionCreated",
            "PatientUpdated",
            "HealthRecordCreated"
        ],
        "{}",
        r.body
    );
    // By actor: the recorder's events are the record (and whatever it caused).
    let r = app.get(&format!("/audit/events?actor={rid}"), &auditor).await.ok();
    let mine = r.data()["events"].as_array().unwrap().clone();
    assert!(!mine.is_empty());
    assert!(mine.iter().all(|e| e["actor_id"] == rid.as_str()));
    assert!(mine.iter().any(|e| e["type"] == "HealthRecordCreated"));
    // By time: nothing of the patient's after "now".
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let r = app
        .get(
            &format!("/audit/events?aggregate_id={patient}&from={}", urlencode(&later)),
            &auditor,
        )
        .await
        .ok();
    assert_eq!(r.data()["total"], 0);
    // Paging.
    let r = app.get("/audit/events?limit=1&page=2", &auditor).await.ok();
    assert_eq!(r.data()["events"].as_array().unwrap().len(), 1);
    assert_eq!(r.data()["events"][0]["position"], 2);
    app.get("/audit/events?from=yesterday", &auditor)
        .await
        .err(400, "validation_failed");
    app.get("/audit/events?aggregate_type=spaceship", &auditor)
        .await
        .err(400, "validation_failed");

    // What we knew before the update differs from today.
    let past = app
        .get(
            &format!(
                "/audit/patient/{patient}/state?as_of={}",
                urlencode(&before_update.to_rfc3339())
            ),
            &auditor,
        )
        .await
        .ok();
    assert_eq!(past.data()["version"], 1);
    assert_eq!(past.data()["state"]["details"]["phone"], PHONE);
    let now = app.get(&format!("/audit/patient/{patient}/state"), &auditor).await.ok();
    assert_eq!(now.data()["version"], 2);
    assert_eq!(now.data()["state"]["details"]["phone"], "13899990000");
    let long_ago = urlencode("2000-01-01T00:00:00Z");
    app.get(&format!("/audit/patient/{patient}/state?as_of={long_ago}"), &auditor)
        .await
        .err(404, "not_found");
    // Users' state never shows a password hash, even to auditors.
    let u = app.get(&format!("/audit/user/{rid}/state"), &auditor).await.ok();
    assert!(!u.body.to_string().contains("$argon2"), "{}", u.body);

    // And every read of the patient's records.
    let r = app
        .get(&format!("/audit/access?patient_id={patient}"), &auditor)
        .await
        .ok();
    let reads = r.data()["entries"].as_array().unwrap().clone();
    assert!(reads
        .iter()
        .any(|e| e["actor_id"] == rid.as_str() && e["endpoint"].as_str().unwrap_or("").contains("/health-records/")));
    // Including the auditor's own reads of the patient's history.
    let r = app
        .get(
            &format!("/audit/access?patient_id={patient}&actor={auditor_id}"),
            &auditor,
        )
        .await
        .ok();
    let own = r.data()["entries"].as_array().unwrap().clone();
    assert!(own
        .iter()
        .any(|e| e["endpoint"].as_str().unwrap_or("").contains("/audit/events")));
    assert!(own
        .iter()
        .any(|e| e["endpoint"].as_str().unwrap_or("").contains("/state")));
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

fn carelog(vars: &HashMap<String, String>, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_carelog"))
        .args(args)
        .envs(vars)
        .env_remove("CARELOG_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("carelog runs")
}

async fn verify_names_the_event_edited_in_the_database(b: Backend) {
    let app = spawn_app(b).await;
    let (family, patient) = family_with_patient(&app, NAME, ID_CARD, PHONE, "1950-01-01").await;
    app.patch(
        &format!("/families/{family}"),
        &app.admin_token,
        json!({"secondary_address": "别处"}),
    )
    .await
    .ok();
    app.package().await;
    app.sealed().await;
    let out = carelog(&app.vars, &["audit", "verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));

    // The chain itself cannot be cut short to hide an edit.
    let cut = match app.state.store.backend() {
        carelog::store::Backend::Postgres(pool) => sqlx::query("DELETE FROM event_hashes WHERE position > 1")
            .execute(pool)
            .await
            .is_err(),
        carelog::store::Backend::Sqlite(carelog::store::SqliteDb { write: pool, .. }) => {
            sqlx::query("DELETE FROM event_hashes WHERE position > 1")
                .execute(pool)
                .await
                .is_err()
        }
    };
    assert!(cut, "event_hashes refuses DELETE");
    // Someone with database access changes the patient's registration (its
    // gender, stored in clear) behind the application's back.
    let target: i64 = match app.state.store.backend() {
        carelog::store::Backend::Postgres(pool) => {
            let p: i64 = sqlx::query_scalar("SELECT position FROM events WHERE aggregate_id = $1 AND sequence = 1")
                .bind(&patient)
                .fetch_one(pool)
                .await
                .unwrap();
            let n = sqlx::query("UPDATE events SET payload = replace(payload::text, '\"male\"', '\"female\"')::json WHERE position = $1")
                .bind(p)
                .execute(pool)
                .await
                .unwrap()
                .rows_affected();
            assert_eq!(n, 1);
            p
        }
        carelog::store::Backend::Sqlite(carelog::store::SqliteDb { write: pool, .. }) => {
            let p: i64 = sqlx::query_scalar("SELECT position FROM events WHERE aggregate_id = $1 AND sequence = 1")
                .bind(&patient)
                .fetch_one(pool)
                .await
                .unwrap();
            sqlx::query("UPDATE events SET payload = replace(payload, '\"male\"', '\"female\"') WHERE position = $1")
                .bind(p)
                .execute(pool)
                .await
                .unwrap();
            p
        }
    };
    assert!(target > 1 && target < app.event_count().await, "an event in the middle");
    let out = carelog(&app.vars, &["audit", "verify"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("position {target}:")), "{stderr}");
}

/// An auditor, a recorder and a doctor: (auditor token, recorder id, recorder
/// token, doctor id, doctor token).
async fn staff(app: &TestApp) -> (String, String, String, String, String) {
    let (_, auditor) = auditor(app).await;
    let (rid, rtoken) = app.recorder(1).await;
    let (doctor, dtoken) = user(
        app,
        "doctor1",
        "doctor",
        "13600000001",
        json!({"doctor": {"license_number": "L-9", "specialty": "全科"}}),
    )
    .await;
    (auditor, rid, rtoken, doctor, dtoken)
}

async fn erasure_leaves_nothing_to_find(b: Backend) {
    let app = spawn_app(b).await;
    let (auditor, rid, rtoken, doctor, dtoken) = staff(&app).await;
    let package = app.package().await;
    let (family, patient) = family_with_patient(&app, NAME, ID_CARD, PHONE, "1950-01-01").await;
    let (other_family, other) = family_with_patient(&app, OTHER_NAME, OTHER_ID_CARD, OTHER_PHONE, "1952-03-15").await;
    for p in [&patient, &other] {
        app.subscribe(p, &package, &rid).await;
    }
    // Field work that mentions the patient everywhere free text goes.
    let tomorrow = (today() + chrono::Duration::days(1)).to_string();
    let visit = app
        .post(
            "/appointments",
            &rtoken,
            json!({"patient_id": patient, "scheduled_date": tomorrow, "scheduled_time": "09:00", "notes": format!("{NAME}要求上午")}),
        )
        .await
        .ok()
        .id();
    app.post(
        &format!("/appointments/{visit}/cancel"),
        &rtoken,
        json!({"reason": format!("{NAME}住院")}),
    )
    .await
    .ok();
    let record_body = json!({"patient_id": patient, "visit_date": today().to_string(), "visit_time": "08:00",
        "location_lat": 31.2, "location_lng": 121.4, "location_address": format!("{NAME}家楼下"),
        "vital_signs": {"blood_pressure": "128/82"}, "symptoms": format!("{NAME}头晕"), "notes": format!("{NAME}电话{PHONE}")});
    let record = app.post("/health-records", &rtoken, record_body).await.ok().data()["record_id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        &format!("/health-records/{record}/amendments"),
        &rtoken,
        json!({"reason_code": "typo", "changes": {"notes": format!("{NAME}电话{PHONE}（更正）")}}),
    )
    .await
    .ok();
    let request = app
        .post(
            &format!("/health-records/{record}/order-requests"),
            &rtoken,
            json!({"doctor_id": doctor, "reason": format!("{NAME}血压波动")}),
        )
        .await
        .ok()
        .id();
    app.post(
        "/medical-orders",
        &dtoken,
        json!({"patient_id": patient, "request_id": request, "order_type": "medication", "content": format!("{NAME}服用氨氯地平"), "dosage": "5mg"}),
    )
    .await
    .ok();
    // A photo attached to the record, so there is a file to delete.
    let uploads = record_with_photo(&app, &rtoken, &patient, &format!("{NAME}.png")).await;
    let files_before = count_files(&uploads);
    assert!(files_before >= 2, "photo and thumbnail stored");

    // Erasure: admin only, with a reason.
    app.post(
        &format!("/patients/{patient}/erase"),
        &rtoken,
        json!({"reason": "申请"}),
    )
    .await
    .err(403, "forbidden");
    app.post(&format!("/patients/{patient}/erase"), &app.admin_token, json!({}))
        .await
        .err(400, "validation_failed");
    let r = app
        .post(
            &format!("/patients/{patient}/erase"),
            &app.admin_token,
            json!({"reason": "家属书面申请 #2026-11"}),
        )
        .await
        .ok();
    assert_eq!(r.data()["erased"], true);
    assert!(r.data()["files_deleted"].as_i64().unwrap() >= 1);
    assert_eq!(r.data()["family_erased"], true);

    // The read models show the fields as erased; the other patient is untouched.
    let p = app.get(&format!("/patients/{patient}"), &app.admin_token).await.ok();
    assert_eq!(p.data()["erased"], true);
    assert_eq!(p.data()["name"], domain::ERASED);
    assert!(p.data()["id_card"].is_null() && p.data()["phone"].is_null());
    let f = app.get(&format!("/families/{family}"), &app.admin_token).await.ok();
    assert_eq!(f.data()["family_name"], domain::ERASED);
    let o = app.get(&format!("/patients/{other}"), &app.admin_token).await.ok();
    assert_eq!(o.data()["name"], OTHER_NAME);
    assert_eq!(o.data()["id_card"], OTHER_ID_CARD);
    let of = app
        .get(&format!("/families/{other_family}"), &app.admin_token)
        .await
        .ok();
    assert_eq!(of.data()["family_name"], format!("{OTHER_NAME}家"));
    // Nothing more can be recorded for the erased patient.
    app.patch(
        &format!("/patients/{patient}"),
        &app.admin_token,
        json!({"allergies": "无"}),
    )
    .await
    .err(409, "conflict");
    app.post(
        "/health-records",
        &rtoken,
        json!({"patient_id": patient, "visit_date": today().to_string(), "visit_time": "11:00", "notes": "再次记录"}),
    )
    .await
    .err(409, "conflict");
    // Not even what carries no personal field: vitals only, a visit, a new
    // subscription, a booking request, an order (issue 10 review).
    let before = app.event_count().await;
    app.post(
        "/health-records",
        &rtoken,
        json!({"patient_id": patient, "visit_date": today().to_string(), "visit_time": "11:30",
               "vital_signs": {"heart_rate": 70}}),
    )
    .await
    .err(409, "conflict");
    let tomorrow = (today() + chrono::Duration::days(1)).to_string();
    for token in [&rtoken, &app.admin_token] {
        app.post(
            "/appointments",
            token,
            json!({"patient_id": patient, "scheduled_date": tomorrow, "scheduled_time": "10:00"}),
        )
        .await
        .err(409, "conflict");
    }
    app.post(
        "/subscriptions",
        &app.admin_token,
        json!({"patient_id": patient, "package_id": package, "recorder_id": rid, "start_date": tomorrow}),
    )
    .await
    .err(409, "conflict");
    app.post(
        "/medical-orders",
        &dtoken,
        json!({"patient_id": patient, "order_type": "lifestyle", "content": "低盐饮食"}),
    )
    .await
    .err(409, "conflict");
    assert_eq!(
        app.event_count().await,
        before,
        "nothing recorded for the erased patient"
    );
    // The history still replays, and the erasure is in it.
    let s = app.get(&format!("/audit/patient/{patient}/state"), &auditor).await.ok();
    assert_eq!(s.data()["state"]["details"]["name"], domain::ERASED);
    assert_eq!(s.data()["state"]["erased"], true);
    let r = app
        .get(
            &format!("/audit/events?aggregate_type=patient&aggregate_id={patient}"),
            &auditor,
        )
        .await
        .ok();
    let last = r.data()["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "PatientErased");
    assert_eq!(last["actor_role"], "admin");
    assert_eq!(last["payload"]["PatientErased"]["reason"], "家属书面申请 #2026-11");
    // Files are gone from storage.
    assert!(
        count_files(&uploads) <= files_before - 2,
        "the record's photo and thumbnail were deleted"
    );

    // The Kafka pseudonyms of the patient's identifiers can no longer be computed.
    let payload = json!({"PatientUpdated": {}});
    let privacy = app.state.store.privacy();
    assert!(privacy
        .hash_secret("patient", &patient, &payload)
        .await
        .unwrap()
        .is_none());
    assert!(privacy
        .hash_secret("patient", &other, &payload)
        .await
        .unwrap()
        .is_some());
    // Nothing of the patient is left anywhere.
    let secrets = [NAME, ID_CARD, PHONE];
    let haystacks = dumps(&app, b).await;
    for (what, text) in &haystacks {
        for s in secrets {
            assert!(!text.contains(s), "{s} found in {what}");
        }
    }
    assert!(
        haystacks.iter().any(|(_, t)| t.contains(OTHER_NAME)),
        "the other patient's data are still stored (encrypted in events, clear in read models)"
    );
    for s in secrets {
        assert!(!scan_dir(&uploads, s), "{s} found in the upload directory");
    }

    // A rebuild from the events shows the same erased state.
    for p in projections::all_projectors() {
        app.state.read().await.reset(p.as_ref()).await.unwrap();
    }
    let head = app.event_count().await;
    for p in projections::all_projectors() {
        while app.state.read().await.checkpoint(p.name()).await.unwrap() < head {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let p = app.get(&format!("/patients/{patient}"), &app.admin_token).await.ok();
    assert_eq!(p.data()["name"], domain::ERASED);
    assert_eq!(p.data()["erased"], true);
    let o = app.get(&format!("/patients/{other}"), &app.admin_token).await.ok();
    assert_eq!(o.data()["name"], OTHER_NAME);
    let _ = (rid, auditor, dtoken);
}

/// A multipart health record with one photo (and its thumbnail); the upload dir.
async fn record_with_photo(app: &TestApp, rtoken: &str, patient: &str, file_name: &str) -> std::path::PathBuf {
    let form = Form::new()
        .text("patient_id", patient.to_string())
        .text("visit_date", today().to_string())
        .text("visit_time", "10:00")
        .text("notes", format!("{NAME}复测"))
        .text("vital_signs", r#"{"heart_rate": 72}"#)
        .part(
            "photos",
            Part::bytes(crate::helpers::png(40, 40)).file_name(file_name.to_string()),
        );
    let res = app
        .client
        .post(app.url("/health-records"))
        .bearer_auth(rtoken)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    app._dir.path().join("uploads")
}

fn count_files(dir: &Path) -> usize {
    walk(dir).len()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn scan_dir(dir: &Path, needle: &str) -> bool {
    walk(dir).iter().any(|p| {
        std::fs::read(p)
            .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .unwrap_or(false)
    })
}

/// Everything an attacker with the databases would have: the PostgreSQL and
/// MySQL dumps, or the embedded SQLite files (with their logs), as text.
async fn dumps(app: &TestApp, b: Backend) -> Vec<(String, String)> {
    match b {
        Backend::Servers => {
            let pg = &app.vars["CARELOG_EVENT_STORE_URL"];
            let out = Command::new("pg_dump").arg(pg).output().expect("pg_dump runs");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let my = &app.vars["CARELOG_READ_STORE_URL"];
            let db = my.rsplit('/').next().unwrap().split('?').next().unwrap();
            let out2 = Command::new("mysqldump")
                .args([
                    "-h127.0.0.1",
                    "-uroot",
                    "--default-character-set=utf8mb4",
                    "--skip-extended-insert",
                    db,
                ])
                .output()
                .expect("mysqldump runs");
            assert!(out2.status.success(), "{}", String::from_utf8_lossy(&out2.stderr));
            vec![
                (
                    "the PostgreSQL dump".into(),
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                ),
                (
                    "the MySQL dump".into(),
                    String::from_utf8_lossy(&out2.stdout).into_owned(),
                ),
            ]
        }
        Backend::Embedded => walk(app._dir.path())
            .into_iter()
            .filter(|p| !p.starts_with(app._dir.path().join("uploads")))
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap_or_default();
                (p.display().to_string(), String::from_utf8_lossy(&bytes).into_owned())
            })
            .collect(),
    }
}

async fn auditors_write_nothing_and_others_do_not_audit(b: Backend) {
    let app = spawn_app(b).await;
    let (auditor, _, rtoken, _, dtoken) = staff(&app).await;
    let family = app.family("审计家").await;
    let patient = app.patient(&family, "审计患者").await;
    let id = uuid::Uuid::new_v4();
    let before = app.event_count().await;
    let writes: Vec<(&str, String)> = vec![
        ("POST", "/users".into()),
        ("PATCH", format!("/users/{id}/status")),
        ("POST", "/families".into()),
        ("PATCH", format!("/families/{family}")),
        ("POST", format!("/families/{family}/patients")),
        ("PATCH", format!("/patients/{patient}")),
        ("POST", format!("/patients/{patient}/erase")),
        ("POST", "/service-packages".into()),
        ("POST", "/subscriptions".into()),
        ("POST", format!("/subscriptions/{id}/status")),
        ("POST", format!("/subscriptions/{id}/payment")),
        ("POST", "/appointments".into()),
        ("POST", format!("/appointments/{id}/confirm")),
        ("POST", format!("/appointments/{id}/cancel")),
        ("POST", format!("/appointments/{id}/reschedule")),
        ("POST", format!("/appointments/{id}/complete")),
        ("POST", "/health-records".into()),
        ("POST", format!("/health-records/{id}/amendments")),
        ("POST", format!("/health-records/{id}/unlock")),
        ("POST", format!("/health-records/{id}/order-requests")),
        ("POST", "/medical-orders".into()),
        ("POST", format!("/medical-orders/{id}/complete")),
        ("POST", format!("/medical-orders/{id}/cancel")),
        ("POST", "/files/upload".into()),
        ("POST", format!("/notifications/{id}/read")),
        ("POST", "/hospitals".into()),
        ("POST", format!("/hospitals/{id}/departments")),
        ("POST", format!("/hospitals/{id}/doctors")),
        ("POST", format!("/hospitals/{id}/slots")),
        ("POST", "/hospital-appointments".into()),
        ("POST", format!("/hospital-appointments/{id}/confirm")),
        ("POST", format!("/hospital-appointments/{id}/complete")),
        ("POST", format!("/hospital-appointments/{id}/cancel")),
    ];
    for (method, path) in &writes {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = app
            .send(m, path, Some(&auditor), Some(json!({"reason": "x", "name": "x"})), &[])
            .await;
        assert_eq!(r.status.as_u16(), 403, "auditor {method} {path}: {}", r.body);
    }
    // Nor business reads beyond auditing.
    for path in [
        format!("/patients/{patient}"),
        format!("/families/{family}"),
        "/families".to_string(),
        format!("/patients/{patient}/health-records"),
    ] {
        let r = app.get(&path, &auditor).await;
        assert_eq!(r.status.as_u16(), 403, "auditor GET {path}");
    }
    assert_eq!(app.event_count().await, before, "nothing written");
    // The audit endpoints are for auditors and admins only.
    for token in [&rtoken, &dtoken] {
        for path in [
            "/audit/events".to_string(),
            format!("/audit/patient/{patient}/state"),
            "/audit/access".to_string(),
        ] {
            let r = app.get(&path, token).await;
            assert_eq!(r.status.as_u16(), 403, "GET {path}");
        }
    }
    app.get("/audit/events", &auditor).await.ok();
    app.get("/audit/events", &app.admin_token).await.ok();
    app.get("/users", &auditor).await.ok();
}

async fn an_erasure_recorded_just_before_a_crash_is_completed(b: Backend) {
    let app = spawn_app(b).await;
    let (rid, rtoken) = app.recorder(1).await;
    let package = app.package().await;
    let (family, patient) = family_with_patient(&app, NAME, ID_CARD, PHONE, "1950-01-01").await;
    app.subscribe(&patient, &package, &rid).await;
    let uploads = record_with_photo(&app, &rtoken, &patient, "p.png").await;
    assert!(count_files(&uploads) >= 2);
    // The HTTP call recorded the erasure and the process died before anything
    // else: only the event is there.
    let admin: domain::ids::UserId = uuid::Uuid::new_v4().into();
    app.state
        .store
        .execute::<domain::patient::Patient>(
            &patient,
            domain::patient::PatientCommand::Erase {
                reason: "家属书面申请".into(),
                erased_by: admin,
            },
            &carelog::state::RequestMeta::system("ErasePatient"),
        )
        .await
        .unwrap();
    // The erasure reactor completes it: key, files, household.
    let privacy = app.state.store.privacy();
    for _ in 0..600 {
        if privacy.is_erased(&patient).await.unwrap()
            && privacy.is_erased(&family).await.unwrap()
            && count_files(&uploads) == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(privacy.is_erased(&patient).await.unwrap(), "patient key destroyed");
    assert!(privacy.is_erased(&family).await.unwrap(), "household key destroyed");
    assert_eq!(count_files(&uploads), 0, "files deleted");
    let p = app.get(&format!("/patients/{patient}"), &app.admin_token).await.ok();
    assert_eq!(p.data()["name"], domain::ERASED);
}

/// An auditor's page of a patient's history reads the hash of each of its
/// events, not every hash between its first and its last: a patient
/// registered early and updated now spans the whole store (2 s a page at
/// 3,000,000 events when it read the range).
async fn a_patients_page_reads_the_hashes_of_its_own_events_only(b: Backend) {
    let app = spawn_app(b).await;
    let (_, patient) = family_with_patient(&app, NAME, ID_CARD, PHONE, "1950-01-01").await;
    // Other households' events in between.
    for n in 0..40 {
        app.family(&format!("其他{n}")).await;
    }
    app.patch(
        &format!("/patients/{patient}"),
        &app.admin_token,
        json!({"phone": "13922223333"}),
    )
    .await
    .ok();
    app.sealed().await;
    let (_, token) = auditor(&app).await;
    let page = app
        .get(&format!("/audit/events?patient_id={patient}&limit=100"), &token)
        .await
        .ok();
    let events = page.data()["events"].as_array().unwrap().clone();
    let positions: Vec<i64> = events.iter().map(|e| e["position"].as_i64().unwrap()).collect();
    assert_eq!(positions.len(), 2, "{}", page.body);
    assert!(positions[positions.len() - 1] - positions[0] > 40, "{positions:?}");
    assert!(events.iter().all(|e| e["hash"].is_string()), "{}", page.body);
    // Each event's hash is the one the sealer stored at its position.
    for e in &events {
        let position = e["position"].as_i64().unwrap();
        let sql = "SELECT hash FROM event_hashes WHERE position = $1";
        let stored: String = match app.state.store.backend() {
            carelog::backend::Backend::Postgres(pool) => sqlx::query_scalar(sql).bind(position).fetch_one(pool).await,
            carelog::backend::Backend::Sqlite(db) => sqlx::query_scalar(sql).bind(position).fetch_one(&db.read).await,
        }
        .unwrap();
        assert_eq!(e["hash"].as_str(), Some(stored.as_str()), "{}", page.body);
    }
}

/// An auditor's unfiltered views of the history and of the access log grow
/// with the store (millions of events, tens of millions of reads): their
/// totals are counted as far as `AUDIT_TOTAL_CAP` and say when they stopped,
/// instead of reading every row on every page.
async fn audit_lists_count_no_further_than_their_cap(b: Backend) {
    use projections::page::AUDIT_TOTAL_CAP;
    let app = spawn_app(b).await;
    let seeded = carelog::seed::seed(
        &app.state,
        carelog::seed::SeedOptions {
            patients: 3_400,
            recorders: Some(2),
        },
    )
    .await
    .unwrap();
    assert!(seeded.events as i64 > AUDIT_TOTAL_CAP, "{seeded:?}");
    let reads = AUDIT_TOTAL_CAP as usize + 50;
    let patients: Vec<String> = (0..7).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let entries = (0..reads)
        .map(|n| carelog::access_log::AccessRead {
            at: chrono::Utc::now(),
            actor_id: "cap-test-actor".into(),
            actor_role: "admin".into(),
            patients: vec![patients[n % 7].clone()],
            endpoint: "GET /api/v1/patients/{id}".into(),
            path: "/api/v1/patients/cap".into(),
            ip: "127.0.0.1".into(),
            user_agent: "cap-test".into(),
            request_id: format!("cap-{n}"),
        })
        .collect();
    app.state.access.append(entries).await.unwrap();
    let (_, token) = auditor(&app).await;

    // The access log first: reading the history logs reads of its own.
    let page = app.get("/audit/access?limit=20", &token).await.ok();
    assert_eq!(page.data()["total"], AUDIT_TOTAL_CAP);
    assert_eq!(page.data()["total_exact"], false);
    // A page past the cap counts to its own end, and finds the real end.
    let last = (reads as i64 + 99) / 100;
    let page = app
        .get(&format!("/audit/access?limit=100&page={last}"), &token)
        .await
        .ok();
    assert_eq!(page.data()["total"], reads as i64);
    assert_eq!(page.data()["total_exact"], true);
    assert_eq!(page.data()["entries"].as_array().unwrap().len(), reads % 100);
    // Filters matching fewer rows than the cap are counted exactly.
    let page = app
        .get(&format!("/audit/access?limit=20&patient_id={}", patients[0]), &token)
        .await
        .ok();
    assert_eq!(page.data()["total"], reads.div_ceil(7) as i64);
    assert_eq!(page.data()["total_exact"], true);

    let page = app.get("/audit/events?limit=20", &token).await.ok();
    assert_eq!(page.data()["total"], AUDIT_TOTAL_CAP);
    assert_eq!(page.data()["total_exact"], false);
    let page = app
        .get("/audit/events?aggregate_type=family&limit=20", &token)
        .await
        .ok();
    assert_eq!(page.data()["total"], seeded.families as i64);
    assert_eq!(page.data()["total_exact"], true);
}
