//! Field work: visits, vitals with files, alerts to doctors, orders back to
//! recorders, and the rules around them.

use chrono::{Datelike, Duration, Timelike};
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

use crate::dual;
use crate::helpers::{spawn_app, Backend, Resp, TestApp};

dual!(
    a_recorders_day_from_visit_to_doctors_order,
    visit_rules,
    vitals_and_upload_rules,
    ownership_of_field_work,
    an_abnormal_record_committed_without_its_request_still_alerts_the_doctor,
    concurrent_schedules_never_exceed_the_monthly_quota,
);

use crate::helpers::png;

fn wav() -> Vec<u8> {
    let data = vec![0u8; 800];
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&8000u32.to_le_bytes());
    v.extend_from_slice(&16000u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(&data);
    v
}

fn shanghai_now() -> chrono::NaiveDateTime {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .naive_local()
}

struct World {
    app: TestApp,
    recorder: String,
    rtoken: String,
    doctor: String,
    dtoken: String,
    family: String,
    patient: String,
}

async fn world(b: Backend, frequency: u32) -> World {
    let app = spawn_app(b).await;
    let (recorder, rtoken) = app.recorder(1).await;
    let doctor = app
        .post(
            "/users",
            &app.admin_token,
            json!({"username": "drli", "phone": "13700000001", "password": "doctor-pass", "role": "doctor", "name": "李医生",
                   "doctor": {"license_number": "L-1", "specialty": "全科"}}),
        )
        .await
        .ok()
        .id();
    let dtoken = app.login("drli", "doctor-pass").await;
    let family = app
        .post(
            "/families",
            &app.admin_token,
            json!({"family_name": "陈家", "primary_address": "上海市徐汇区漕溪北路1号", "contact_phone": "13912345678",
                   "home_lat": 31.2304, "home_lng": 121.4737}),
        )
        .await
        .ok()
        .id();
    let patient = app.patient(&family, "陈奶奶").await;
    let package = app
        .post(
            "/service-packages",
            &app.admin_token,
            json!({"name": "标准包", "price": "999.00", "duration_days": 365, "service_frequency": frequency}),
        )
        .await
        .ok()
        .id();
    app.subscribe(&patient, &package, &recorder).await;
    World {
        app,
        recorder,
        rtoken,
        doctor,
        dtoken,
        family,
        patient,
    }
}

async fn schedule(w: &World, date: &str, time: &str, kind: &str) -> Resp {
    w.app
        .post(
            "/appointments",
            &w.rtoken,
            json!({"patient_id": w.patient, "scheduled_date": date, "scheduled_time": time, "appointment_type": kind, "notes": "测血压"}),
        )
        .await
}

async fn multipart_record(w: &World, form: Form) -> Resp {
    w.app.multipart("/health-records", &w.rtoken, form).await
}

fn uploads_in(app: &TestApp) -> usize {
    fn count(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| if e.path().is_dir() { count(&e.path()) } else { 1 })
                    .sum()
            })
            .unwrap_or(0)
    }
    count(&app._dir.path().join("uploads"))
}

async fn a_recorders_day_from_visit_to_doctors_order(b: Backend) {
    let w = world(b, 8).await;
    let app = &w.app;
    let now = shanghai_now();
    // Two visits later today (when there is still time today), else tomorrow.
    let day = if now.hour() < 23 {
        now.date()
    } else {
        now.date() + Duration::days(1)
    };
    let v2 = schedule(&w, &day.to_string(), "23:59", "regular").await.ok().id();
    let v1 = schedule(&w, &day.to_string(), "23:58", "regular").await.ok();
    assert_eq!(v1.data()["status"], "scheduled");
    let v1 = v1.id();
    if day == now.date() {
        let today = app.get("/appointments/today", &w.rtoken).await.ok();
        let list = today.data().as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["id"], v1.as_str(), "sorted by time");
        assert_eq!(list[1]["id"], v2.as_str());
        assert_eq!(list[0]["patient"]["name"], "陈奶奶");
        assert_eq!(list[0]["patient"]["family_name"], "陈家");
        assert_eq!(list[0]["patient"]["address"], "上海市徐汇区漕溪北路1号");
        assert_eq!(list[0]["scheduled_time"], "23:58");
        assert_eq!(list[0]["notes"], "测血压");
    }
    app.post(&format!("/appointments/{v1}/confirm"), &w.rtoken, json!({}))
        .await
        .ok();

    // Vitals with photos, audio and a signature in one multipart request; BP is high.
    let form = Form::new()
        .text("patient_id", w.patient.clone())
        .text("appointment_id", v1.clone())
        .text("visit_date", now.date().to_string())
        .text("visit_time", "09:30")
        .text("location_lat", "31.2305")
        .text("location_lng", "121.4738")
        .text("location_address", "漕溪北路1号")
        .text(
            "vital_signs",
            json!({"blood_pressure": "150/95", "heart_rate": 78, "temperature": 36.6, "blood_oxygen": 97}).to_string(),
        )
        .text("symptoms", "头晕")
        .text("notes", "血压偏高，已嘱休息")
        .part("photos", Part::bytes(png(640, 480)).file_name("a.png"))
        .part("photos", Part::bytes(png(320, 200)).file_name("b.png"))
        .part("audio_file", Part::bytes(wav()).file_name("note.wav"))
        .part("patient_signature", Part::bytes(png(200, 80)).file_name("sign.png"));
    let r = multipart_record(&w, form).await.ok();
    let record = r.data()["record_id"].as_str().unwrap().to_string();
    assert_eq!(r.data()["abnormal"], true);
    assert_eq!(r.data()["alerts"][0]["code"], "blood_pressure_high");
    assert!(r.data()["distance_from_home_m"].as_f64().unwrap() < 50.0);
    assert_eq!(r.data()["away_from_home"], false);

    // The visit is completed, the family shows the last record.
    let v = app.get(&format!("/appointments/{v1}"), &w.rtoken).await.ok();
    assert_eq!(v.data()["status"], "completed");
    assert_eq!(v.data()["health_record_id"], record.as_str());
    let f = app.get(&format!("/families/{}", w.family), &w.rtoken).await.ok();
    let last = &f.data()["patients"][0]["last_record"];
    assert_eq!(last["date"], now.date().to_string());
    assert_eq!(last["notes"], "血压偏高，已嘱休息");

    let rec = app.get(&format!("/health-records/{record}"), &w.rtoken).await.ok();
    assert_eq!(rec.data()["vital_signs"]["blood_pressure"], "150/95");
    assert_eq!(rec.data()["vital_signs"]["heart_rate"], 78);
    let files = rec.data()["files"].as_array().unwrap();
    assert_eq!(files.len(), 4);
    let photo = files.iter().find(|f| f["role"] == "photo").unwrap();
    let url = format!("{}{}", app.base, photo["file_url"].as_str().unwrap());
    let bytes = app
        .client
        .get(&url)
        .bearer_auth(&w.rtoken)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(image::load_from_memory(&bytes).unwrap().width(), 640);
    let thumb = format!("{}{}", app.base, photo["thumbnail_url"].as_str().unwrap());
    let t = app
        .client
        .get(&thumb)
        .bearer_auth(&w.rtoken)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let t = image::load_from_memory(&t).unwrap();
    assert_eq!((t.width(), t.height()), (300, 300));
    // No token, no file.
    assert_eq!(app.client.get(&url).send().await.unwrap().status().as_u16(), 401);

    // The abnormal blood pressure reached the doctor's inbox by itself.
    let inbox = app.get("/notifications?status=unread", &w.dtoken).await.ok();
    assert_eq!(inbox.data()["total"], 1, "{}", inbox.body);
    assert_eq!(inbox.data()["notifications"][0]["kind"], "order_request_abnormal");
    let open = app.get("/order-requests?status=open", &w.dtoken).await.ok();
    assert_eq!(open.data()["total"], 1);
    let request = open.data()["requests"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(open.data()["requests"][0]["abnormal"], true);
    assert_eq!(open.data()["requests"][0]["patient_name"], "陈奶奶");
    // The doctor now sees the patient's records.
    app.get(&format!("/patients/{}/health-records", w.patient), &w.dtoken)
        .await
        .ok();

    let order = app
        .post(
            "/medical-orders",
            &w.dtoken,
            json!({"patient_id": w.patient, "request_id": request, "order_type": "medication", "content": "氨氯地平片 5mg",
                   "dosage": "5mg", "frequency": "每日一次", "duration": "14天"}),
        )
        .await
        .ok()
        .id();
    assert_eq!(
        app.get("/order-requests?status=open", &w.dtoken).await.ok().data()["total"],
        0
    );
    let n = app.get("/notifications?status=unread", &w.rtoken).await.ok();
    assert_eq!(n.data()["total"], 1);
    assert_eq!(n.data()["notifications"][0]["kind"], "medical_order");
    let nid = n.data()["notifications"][0]["id"].as_str().unwrap().to_string();
    app.post(&format!("/notifications/{nid}/read"), &w.rtoken, json!({}))
        .await
        .ok();
    assert_eq!(
        app.get("/notifications?status=unread", &w.rtoken).await.ok().data()["total"],
        0
    );
    app.post(&format!("/notifications/{nid}/read"), &w.dtoken, json!({}))
        .await
        .err(404, "not_found");

    let orders = app
        .get(&format!("/patients/{}/medical-orders", w.patient), &w.rtoken)
        .await
        .ok();
    assert_eq!(orders.data()["total"], 1);
    assert_eq!(orders.data()["orders"][0]["content"], "氨氯地平片 5mg");
    app.post(&format!("/medical-orders/{order}/complete"), &w.dtoken, json!({}))
        .await
        .ok();
    app.post(&format!("/medical-orders/{order}/cancel"), &w.dtoken, json!({}))
        .await
        .err(409, "conflict");

    // A recorder's own request goes to the doctor of the latest order.
    let req = app
        .post(
            &format!("/health-records/{record}/order-requests"),
            &w.rtoken,
            json!({"reason": "复查"}),
        )
        .await
        .ok();
    assert_eq!(req.data()["doctor_id"], w.doctor.as_str());
    let _ = (&w.recorder, v2);
}

async fn visit_rules(b: Backend) {
    let w = world(b, 2).await;
    let app = &w.app;
    let now = shanghai_now();
    // A time in the past.
    let past = now - Duration::hours(2);
    let r = schedule(
        &w,
        &past.date().to_string(),
        &past.format("%H:%M").to_string(),
        "regular",
    )
    .await
    .err(400, "validation_failed");
    assert!(r.body["details"]["scheduled_time"].is_string(), "{}", r.body);
    // The month's quota (2 regular visits), in next month to stay in the future.
    let next = (now.date().with_day(1).unwrap() + Duration::days(40))
        .with_day(10)
        .unwrap();
    let a = schedule(&w, &next.to_string(), "09:00", "regular").await.ok().id();
    schedule(&w, &next.to_string(), "10:00", "regular").await.ok();
    schedule(&w, &next.to_string(), "11:00", "regular")
        .await
        .err(409, "conflict");
    schedule(&w, &next.to_string(), "11:00", "emergency").await.ok();
    schedule(&w, &next.to_string(), "12:00", "makeup").await.ok();
    // Cancelling frees a regular place; a cancelled visit cannot be completed or confirmed.
    app.post(
        &format!("/appointments/{a}/cancel"),
        &w.rtoken,
        json!({"reason": "家属外出"}),
    )
    .await
    .ok();
    app.post(&format!("/appointments/{a}/complete"), &w.rtoken, json!({}))
        .await
        .err(409, "conflict");
    app.post(&format!("/appointments/{a}/confirm"), &w.rtoken, json!({}))
        .await
        .err(409, "conflict");
    let c = schedule(&w, &next.to_string(), "13:00", "regular").await.ok().id();
    // Completing without a record.
    app.post(&format!("/appointments/{c}/complete"), &w.rtoken, json!({}))
        .await
        .err(409, "conflict");
    // Rescheduling keeps the history.
    let later = next + Duration::days(1);
    let r = app
        .post(
            &format!("/appointments/{c}/reschedule"),
            &w.rtoken,
            json!({"scheduled_date": later.to_string(), "scheduled_time": "15:30"}),
        )
        .await
        .ok();
    assert_eq!(r.data()["scheduled_time"], "15:30");
    let v = app.get(&format!("/appointments/{c}"), &w.rtoken).await.ok();
    let h = v.data()["history"].as_array().unwrap();
    assert_eq!(h.last().unwrap()["event"], "rescheduled");
    assert_eq!(h.last().unwrap()["from_time"], "13:00");
    assert_eq!(v.data()["scheduled_date"], later.to_string());
    let list = app
        .get(&format!("/appointments?date={next}&status=cancelled"), &w.rtoken)
        .await
        .ok();
    assert_eq!(list.data()["total"], 1);
    // No active subscription.
    let other = app.patient(&w.family, "陈爷爷").await;
    let r = app
        .post(
            "/appointments",
            &app.admin_token,
            json!({"patient_id": other, "scheduled_date": next.to_string(), "scheduled_time": "09:00"}),
        )
        .await;
    r.err(409, "conflict");
}

async fn vitals_and_upload_rules(b: Backend) {
    let w = world(b, 8).await;
    let app = &w.app;
    let today = shanghai_now().date().to_string();
    let before = app.event_count().await;
    for (vitals, field) in [
        (json!({"blood_pressure": "80/120"}), "vital_signs.blood_pressure"),
        (json!({"blood_pressure": "abc"}), "vital_signs.blood_pressure"),
        (json!({"temperature": 45.0}), "vital_signs.temperature"),
        (json!({"blood_oxygen": 120}), "vital_signs.blood_oxygen"),
        (json!({"heart_rate": 300}), "vital_signs.heart_rate"),
        (json!({"blood_glucose": 0.1}), "vital_signs.blood_glucose"),
        (json!({"weight": 900}), "vital_signs.weight"),
        (json!({"heart_rate": "fast"}), "vital_signs.heart_rate"),
    ] {
        let r = app
            .post(
                "/health-records",
                &w.rtoken,
                json!({"patient_id": w.patient, "visit_date": today, "visit_time": "10:00", "vital_signs": vitals}),
            )
            .await
            .err(400, "validation_failed");
        assert!(r.body["details"][field].is_string(), "{field}: {}", r.body);
    }
    let r = app
        .post("/health-records", &w.rtoken, json!({"patient_id": w.patient, "visit_date": today, "visit_time": "10:00", "location_lat": 95.0, "location_lng": 10.0, "notes": "x"}))
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["location_lat"].is_string());
    assert_eq!(app.event_count().await, before, "nothing stored");

    // A .jpg that is not a JPEG.
    let form = Form::new()
        .text("type", "image")
        .part("file", Part::bytes(b"hello, not an image".to_vec()).file_name("x.jpg"));
    let res = app
        .client
        .post(app.url("/files/upload"))
        .bearer_auth(&w.rtoken)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 415);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_media_type");
    // Over 16 MiB.
    let big = vec![0u8; 17 * 1024 * 1024];
    let form = Form::new()
        .text("type", "document")
        .part("file", Part::bytes(big).file_name("big.pdf"));
    let res = app
        .client
        .post(app.url("/files/upload"))
        .bearer_auth(&w.rtoken)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
    // A good upload, then its id in a JSON record.
    let form = Form::new()
        .text("type", "image")
        .part("file", Part::bytes(png(50, 50)).file_name("ok.png"));
    let res = app
        .client
        .post(app.url("/files/upload"))
        .bearer_auth(&w.rtoken)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let up: Value = res.json().await.unwrap();
    let file_id = up["data"]["file_id"].as_str().unwrap().to_string();
    assert_eq!(up["data"]["file_url"], format!("/api/v1/files/{file_id}"));
    assert_eq!(uploads_in(app), 2, "file and thumbnail");

    // A bad file inside a multipart record: no record, no stored file.
    let records_before = app
        .get(&format!("/patients/{}/health-records", w.patient), &w.rtoken)
        .await
        .ok()
        .data()["total"]
        .clone();
    let form = Form::new()
        .text("patient_id", w.patient.clone())
        .text("visit_date", today.clone())
        .text("visit_time", "10:00")
        .text("vital_signs", json!({"blood_pressure": "120/80"}).to_string())
        .part("photos", Part::bytes(png(10, 10)).file_name("ok.png"))
        .part(
            "photos",
            Part::bytes(b"MZ\x90\x00 not a photo".to_vec()).file_name("evil.png"),
        );
    let r = multipart_record(&w, form).await;
    assert_eq!(r.status.as_u16(), 415, "{}", r.body);
    assert_eq!(uploads_in(app), 2, "no file left behind");
    assert_eq!(
        app.get(&format!("/patients/{}/health-records", w.patient), &w.rtoken)
            .await
            .ok()
            .data()["total"],
        records_before
    );

    // Normal vitals, far from home: flagged, not abnormal.
    let r = app
        .post(
            "/health-records",
            &w.rtoken,
            json!({"patient_id": w.patient, "visit_date": today, "visit_time": "10:00", "location_lat": 31.2400, "location_lng": 121.4737,
                   "vital_signs": {"blood_pressure": "120/80", "temperature": 36.5}, "photos": [file_id]}),
        )
        .await
        .ok();
    assert_eq!(r.data()["abnormal"], false);
    assert_eq!(r.data()["away_from_home"], true);
    assert!(r.data()["distance_from_home_m"].as_f64().unwrap() > 1000.0);
    assert_eq!(
        app.get("/notifications", &w.dtoken).await.ok().data()["total"],
        0,
        "no alert for normal vitals"
    );
    // The same file cannot be attached twice.
    app.post(
        "/health-records",
        &w.rtoken,
        json!({"patient_id": w.patient, "visit_date": today, "visit_time": "11:00", "notes": "x", "photos": [file_id]}),
    )
    .await
    .err(400, "validation_failed");
    // Urgent readings raise an urgent request.
    let r = app
        .post("/health-records", &w.rtoken, json!({"patient_id": w.patient, "visit_date": today, "visit_time": "12:00", "vital_signs": {"blood_pressure": "190/125", "blood_oxygen": 85}}))
        .await
        .ok();
    assert_eq!(r.data()["alerts"].as_array().unwrap().len(), 2);
    let n = app.get("/notifications?status=unread", &w.dtoken).await.ok();
    assert_eq!(n.data()["notifications"][0]["kind"], "order_request_urgent");
    assert_eq!(n.data()["notifications"][0]["urgent"], true);
    let page = app
        .get(&format!("/patients/{}/health-records?limit=1", w.patient), &w.rtoken)
        .await
        .ok();
    assert_eq!(page.data()["total"], 2);
    assert_eq!(page.data()["records"][0]["visit_time"], "12:00", "newest first");
}

async fn ownership_of_field_work(b: Backend) {
    let w = world(b, 8).await;
    let app = &w.app;
    let (_r2, t2) = app.recorder(2).await;
    let today = shanghai_now().date().to_string();
    let next = (shanghai_now().date() + Duration::days(3)).to_string();
    let v = schedule(&w, &next, "09:00", "regular").await.ok().id();
    let rec = app
        .post(
            "/health-records",
            &w.rtoken,
            json!({"patient_id": w.patient, "visit_date": today, "visit_time": "10:00", "notes": "ok"}),
        )
        .await
        .ok()
        .data()["record_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Another recorder: not their patient, visit or record.
    app.post(
        "/appointments",
        &t2,
        json!({"patient_id": w.patient, "scheduled_date": next, "scheduled_time": "10:00"}),
    )
    .await
    .err(404, "not_found");
    app.post(&format!("/appointments/{v}/cancel"), &t2, json!({}))
        .await
        .err(404, "not_found");
    app.get(&format!("/health-records/{rec}"), &t2)
        .await
        .err(404, "not_found");
    app.get(&format!("/patients/{}/health-records", w.patient), &t2)
        .await
        .err(404, "not_found");
    app.post(
        "/health-records",
        &t2,
        json!({"patient_id": w.patient, "visit_date": today, "visit_time": "10:00", "notes": "x"}),
    )
    .await
    .err(404, "not_found");
    // A doctor with no request or order for the patient sees nothing.
    app.get(&format!("/health-records/{rec}"), &w.dtoken)
        .await
        .err(404, "not_found");
    app.get(&format!("/patients/{}/medical-orders", w.patient), &w.dtoken)
        .await
        .err(404, "not_found");
    app.post(
        "/medical-orders",
        &w.dtoken,
        json!({"patient_id": w.patient, "order_type": "lifestyle", "content": "多喝水"}),
    )
    .await
    .err(404, "not_found");
    // Roles.
    app.post(
        "/medical-orders",
        &w.rtoken,
        json!({"patient_id": w.patient, "order_type": "lifestyle", "content": "x"}),
    )
    .await
    .err(403, "forbidden");
    app.get("/order-requests", &w.rtoken).await.err(403, "forbidden");
    app.get("/appointments/today", &w.dtoken).await.err(403, "forbidden");
    // After the recorder asks this doctor, the doctor sees the record.
    app.post(
        &format!("/health-records/{rec}/order-requests"),
        &w.rtoken,
        json!({"doctor_id": w.doctor}),
    )
    .await
    .ok();
    app.get(&format!("/health-records/{rec}"), &w.dtoken).await.ok();
    app.post(
        &format!("/health-records/{rec}/order-requests"),
        &w.rtoken,
        json!({"doctor_id": w.family}),
    )
    .await
    .err(400, "validation_failed");
}

/// As if the server died right after committing the record: the record's
/// events are in the store but the handler never raised the request. The alert
/// reactor, following the store, raises it.
async fn an_abnormal_record_committed_without_its_request_still_alerts_the_doctor(b: Backend) {
    use domain::health_record::{HealthRecord, HealthRecordCommand, NewRecord, RecordFacts, RecordFiles};
    use domain::vitals::{AlertThresholds, BloodPressure, VitalSigns};
    let w = world(b, 8).await;
    let vitals = VitalSigns {
        blood_pressure: Some(BloodPressure::parse("160/100").unwrap()),
        ..Default::default()
    };
    let record = NewRecord {
        patient_id: w.patient.parse().unwrap(),
        recorder_id: w.recorder.parse().unwrap(),
        appointment_id: None,
        visit_date: shanghai_now().date(),
        visit_time: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        location: None,
        vital_signs: vitals,
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
    let ctx = carelog::state::RequestMeta::system("RecordVitals");
    w.app
        .state
        .store
        .execute::<HealthRecord>(&id, HealthRecordCommand::Create { record, facts }, &ctx)
        .await
        .unwrap();
    // The reactor runs asynchronously: wait (bounded) until its request shows in
    // both read models that carry it.
    let mut found = false;
    for _ in 0..300 {
        let open = w.app.get("/order-requests?status=open", &w.dtoken).await.ok();
        let inbox = w.app.get("/notifications?status=unread", &w.dtoken).await.ok();
        if open.data()["total"] == 1 && inbox.data()["total"] == 1 {
            assert_eq!(open.data()["requests"][0]["health_record_id"], id.as_str());
            assert_eq!(open.data()["requests"][0]["abnormal"], true);
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(found, "the reactor raised the request and the doctor was notified");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        w.app.get("/order-requests", &w.dtoken).await.ok().data()["total"],
        1,
        "exactly once"
    );
}

async fn concurrent_schedules_never_exceed_the_monthly_quota(b: Backend) {
    let w = world(b, 2).await;
    let now = shanghai_now();
    let next = (now.date().with_day(1).unwrap() + Duration::days(40))
        .with_day(5)
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (client, url, token, patient) = (
            w.app.client.clone(),
            w.app.url("/appointments"),
            w.rtoken.clone(),
            w.patient.clone(),
        );
        let body =
            json!({"patient_id": patient, "scheduled_date": next.to_string(), "scheduled_time": format!("1{i}:00")});
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let statuses: Vec<u16> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 2, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 4, "{statuses:?}");
    // Moving one to the next month frees its place in this one.
    let list = w.app.get(&format!("/appointments?date={next}"), &w.rtoken).await.ok();
    let id = list.data()["appointments"][0]["id"].as_str().unwrap().to_string();
    let later = (next + Duration::days(31)).to_string();
    w.app
        .post(
            &format!("/appointments/{id}/reschedule"),
            &w.rtoken,
            json!({"scheduled_date": later, "scheduled_time": "09:00"}),
        )
        .await
        .ok();
    schedule(&w, &next.to_string(), "20:00", "regular").await.ok();
    schedule(&w, &next.to_string(), "21:00", "regular")
        .await
        .err(409, "conflict");
}
