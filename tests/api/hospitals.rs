//! Hospital booking: catalog, search, the booking lifecycle, and capacity under
//! concurrency.

use chrono::Duration;
use serde_json::json;

use crate::dual;
use crate::helpers::{spawn_app, Backend, TestApp};

dual!(
    a_booking_from_search_to_result,
    fifty_concurrent_bookings_never_overbook_a_slot,
    booking_rules
);

struct Catalog {
    hospital: String,
    cardio: String,
    neuro: String,
    doctor: String,
    date: String,
}

async fn catalog(app: &TestApp) -> Catalog {
    let hospital = app
        .post("/hospitals", &app.admin_token, json!({"name": "瑞金医院", "address": "上海市黄浦区瑞金二路197号", "phone": "021-64370045", "level": "三级甲等"}))
        .await
        .ok()
        .id();
    let cardio = app
        .post(
            &format!("/hospitals/{hospital}/departments"),
            &app.admin_token,
            json!({"name": "心内科"}),
        )
        .await
        .ok()
        .id();
    let neuro = app
        .post(
            &format!("/hospitals/{hospital}/departments"),
            &app.admin_token,
            json!({"name": "神经内科"}),
        )
        .await
        .ok()
        .id();
    let doctor = app
        .post(
            &format!("/hospitals/{hospital}/doctors"),
            &app.admin_token,
            json!({"department_id": cardio, "name": "张主任", "title": "主任医师", "specialty": "高血压", "consultation_fee": "50.00"}),
        )
        .await
        .ok()
        .id();
    let date = (chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        + Duration::days(7))
    .to_string();
    Catalog {
        hospital,
        cardio,
        neuro,
        doctor,
        date,
    }
}

async fn slot(app: &TestApp, c: &Catalog, dep: &str, doctor: Option<&str>, time: &str, capacity: i64) -> String {
    let mut body = json!({"department_id": dep, "date": c.date, "time": time, "capacity": capacity});
    if let Some(d) = doctor {
        body["doctor_id"] = json!(d);
    }
    app.post(&format!("/hospitals/{}/slots", c.hospital), &app.admin_token, body)
        .await
        .ok()
        .id()
}

/// A recorder with `n` patients, each subscribed and assigned to them.
async fn recorder_with_patients(app: &TestApp, k: u32, n: usize, package: &str) -> (String, String, Vec<String>) {
    let (rid, token) = app.recorder(k).await;
    let family = app.family(&format!("家{k}")).await;
    let mut patients = Vec::new();
    for i in 0..n {
        let p = app.patient(&family, &format!("患者{k}-{i}")).await;
        app.subscribe(&p, package, &rid).await;
        patients.push(p);
    }
    (rid, token, patients)
}

async fn a_booking_from_search_to_result(b: Backend) {
    let app = spawn_app(b).await;
    let c = catalog(&app).await;
    let s = slot(&app, &c, &c.cardio, Some(&c.doctor), "09:00", 5).await;
    let package = app.package().await;
    let (_rid, token, patients) = recorder_with_patients(&app, 1, 1, &package).await;

    // Search by city and department.
    let found = app
        .get(
            "/hospitals?search=%E4%B8%8A%E6%B5%B7&department=%E5%BF%83%E5%86%85",
            &token,
        )
        .await
        .ok(); // 上海, 心内
    let list = found.data().as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "瑞金医院");
    assert_eq!(list[0]["level"], "三级甲等");
    assert_eq!(list[0]["departments"].as_array().unwrap().len(), 1);
    assert_eq!(list[0]["departments"][0]["name"], "心内科");
    assert_eq!(list[0]["departments"][0]["available"], true);
    let all = app.get("/hospitals", &token).await.ok();
    let deps = all.data()[0]["departments"].as_array().unwrap().clone();
    assert_eq!(deps.len(), 2);
    assert_eq!(
        deps.iter().find(|d| d["name"] == "神经内科").unwrap()["available"],
        false
    );
    assert_eq!(
        app.get("/hospitals?search=%E5%8C%97%E4%BA%AC", &token)
            .await
            .ok()
            .data()
            .as_array()
            .unwrap()
            .len(),
        0
    ); // 北京

    let booked = app
        .post(
            "/hospital-appointments",
            &token,
            json!({"patient_id": patients[0], "hospital_id": c.hospital, "department_id": c.cardio, "doctor_id": c.doctor,
                   "appointment_date": c.date, "appointment_time": "09:00", "notes": "复查血压"}),
        )
        .await
        .ok();
    assert_eq!(booked.data()["status"], "pending");
    let appt = booked.data()["appointment_id"].as_str().unwrap().to_string();
    let slots = app
        .get(
            &format!(
                "/hospitals/{}/slots?department_id={}&date={}",
                c.hospital, c.cardio, c.date
            ),
            &token,
        )
        .await
        .ok();
    assert_eq!(slots.data()[0]["id"], s.as_str());
    assert_eq!(slots.data()[0]["booked"], 1);
    assert_eq!(slots.data()[0]["capacity"], 5);
    assert_eq!(slots.data()[0]["doctor_id"], c.doctor.as_str());

    // The admin confirms for the hospital; the recorder sees it and is notified.
    app.post(
        &format!("/hospital-appointments/{appt}/confirm"),
        &app.admin_token,
        json!({"appointment_number": "RJ-0001", "fee": "50.00"}),
    )
    .await
    .ok();
    let mine = app.get("/hospital-appointments", &token).await.ok();
    assert_eq!(mine.data()["total"], 1);
    let a = &mine.data()["appointments"][0];
    assert_eq!(a["status"], "confirmed");
    assert_eq!(a["appointment_number"], "RJ-0001");
    assert_eq!(a["fee"], "50.00");
    assert_eq!(a["hospital_name"], "瑞金医院");
    assert_eq!(a["doctor_name"], "张主任");
    let n = app.get("/notifications?status=unread", &token).await.ok();
    assert_eq!(n.data()["notifications"][0]["kind"], "hospital_appointment_confirmed");
    // Completed with result notes; nothing after that.
    let done = app
        .post(
            &format!("/hospital-appointments/{appt}/complete"),
            &token,
            json!({"result_notes": "血压控制良好，继续用药"}),
        )
        .await
        .ok();
    assert_eq!(done.data()["status"], "completed");
    app.post(&format!("/hospital-appointments/{appt}/cancel"), &token, json!({}))
        .await
        .err(409, "conflict");
    let by_patient = app
        .get(&format!("/hospital-appointments?patient_id={}", patients[0]), &token)
        .await
        .ok();
    assert_eq!(
        by_patient.data()["appointments"][0]["result_notes"],
        "血压控制良好，继续用药"
    );
}

async fn fifty_concurrent_bookings_never_overbook_a_slot(b: Backend) {
    let app = spawn_app(b).await;
    let c = catalog(&app).await;
    let s = slot(&app, &c, &c.cardio, None, "10:00", 10).await;
    let package = app.package().await;
    let mut clients = Vec::new();
    for k in 0..5 {
        let (_, token, patients) = recorder_with_patients(&app, k + 1, 10, &package).await;
        for p in patients {
            clients.push((token.clone(), p));
        }
    }
    assert_eq!(clients.len(), 50);
    let mut tasks = Vec::new();
    for (token, patient) in clients {
        let (client, url) = (app.client.clone(), app.url("/hospital-appointments"));
        let body = json!({"patient_id": patient, "hospital_id": c.hospital, "department_id": c.cardio,
                          "appointment_date": c.date, "appointment_time": "10:00"});
        tasks.push(tokio::spawn(async move {
            let r = client.post(url).bearer_auth(token).json(&body).send().await.unwrap();
            let status = r.status().as_u16();
            let v: serde_json::Value = r.json().await.unwrap();
            (status, v)
        }));
    }
    let results: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let ok: Vec<_> = results.iter().filter(|(s, _)| *s == 201).collect();
    let full: Vec<_> = results
        .iter()
        .filter(|(s, v)| *s == 409 && v["error"] == "conflict")
        .collect();
    assert_eq!(ok.len(), 10, "{:?}", results.iter().map(|(s, _)| s).collect::<Vec<_>>());
    assert_eq!(full.len(), 40);
    let slots = app
        .get(
            &format!("/hospitals/{}/slots?department_id={}", c.hospital, c.cardio),
            &app.admin_token,
        )
        .await
        .ok();
    let row = slots
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == s.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["booked"], 10);
    let listed = app
        .get(&format!("/hospital-appointments?slot_id={s}"), &app.admin_token)
        .await
        .ok();
    assert_eq!(listed.data()["total"], 10);

    // Cancelling one frees exactly one place.
    let first = ok[0].1["data"]["appointment_id"].as_str().unwrap().to_string();
    app.post(
        &format!("/hospital-appointments/{first}/cancel"),
        &app.admin_token,
        json!({"reason": "家属改期"}),
    )
    .await
    .ok();
    let (_, token, patients) = recorder_with_patients(&app, 9, 2, &package).await;
    let body = |p: &str| json!({"patient_id": p, "hospital_id": c.hospital, "department_id": c.cardio, "appointment_date": c.date, "appointment_time": "10:00"});
    app.post("/hospital-appointments", &token, body(&patients[0]))
        .await
        .ok();
    app.post("/hospital-appointments", &token, body(&patients[1]))
        .await
        .err(409, "conflict");
}

async fn booking_rules(b: Backend) {
    let app = spawn_app(b).await;
    let c = catalog(&app).await;
    slot(&app, &c, &c.cardio, None, "09:00", 3).await;
    slot(&app, &c, &c.neuro, None, "09:00", 3).await;
    let package = app.package().await;
    let (_, token, patients) = recorder_with_patients(&app, 1, 1, &package).await;
    let (_, other_token, _) = recorder_with_patients(&app, 2, 1, &package).await;
    let p = &patients[0];
    let req = |dep: &str, date: &str, time: &str| json!({"patient_id": p, "hospital_id": c.hospital, "department_id": dep, "appointment_date": date, "appointment_time": time});
    let before = app.event_count().await;
    // Bad dates, unknown ids, no matching slot.
    let r = app
        .post("/hospital-appointments", &token, req(&c.cardio, "2026-02-30", "09:00"))
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["appointment_date"].is_string());
    app.post("/hospital-appointments", &token, req(&c.cardio, "2020-01-01", "09:00"))
        .await
        .err(400, "validation_failed");
    app.post("/hospital-appointments", &token, req("not-a-uuid", &c.date, "09:00"))
        .await
        .err(400, "validation_failed");
    app.post("/hospital-appointments", &token, req(&c.hospital, &c.date, "09:00"))
        .await
        .err(400, "validation_failed");
    app.post("/hospital-appointments", &token, req(&c.cardio, &c.date, "11:00"))
        .await
        .err(409, "conflict");
    // Another recorder's patient.
    app.post("/hospital-appointments", &other_token, req(&c.cardio, &c.date, "09:00"))
        .await
        .err(404, "not_found");
    assert_eq!(app.event_count().await, before, "nothing written");

    // One booking per patient per date and time, even in another department.
    let first = app
        .post("/hospital-appointments", &token, req(&c.cardio, &c.date, "09:00"))
        .await
        .ok();
    app.post("/hospital-appointments", &token, req(&c.neuro, &c.date, "09:00"))
        .await
        .err(409, "conflict");
    let id = first.data()["appointment_id"].as_str().unwrap().to_string();
    // Illegal transitions.
    app.post(
        &format!("/hospital-appointments/{id}/complete"),
        &token,
        json!({"result_notes": "x"}),
    )
    .await
    .err(409, "conflict");
    app.post(
        &format!("/hospital-appointments/{id}/confirm"),
        &token,
        json!({"appointment_number": "1"}),
    )
    .await
    .err(403, "forbidden");
    app.post(&format!("/hospital-appointments/{id}/cancel"), &token, json!({}))
        .await
        .ok();
    app.post(
        &format!("/hospital-appointments/{id}/confirm"),
        &app.admin_token,
        json!({"appointment_number": "1"}),
    )
    .await
    .err(409, "conflict");
    // After cancelling, the patient may book that time again.
    app.post("/hospital-appointments", &token, req(&c.neuro, &c.date, "09:00"))
        .await
        .ok();

    // Deactivating hides and refuses; existing bookings stay.
    app.post(
        &format!("/hospitals/{}/departments/{}/status", c.hospital, c.cardio),
        &app.admin_token,
        json!({"status": "inactive"}),
    )
    .await
    .ok();
    let found = app.get("/hospitals?department=%E5%BF%83%E5%86%85", &token).await.ok(); // 心内
    assert_eq!(found.data().as_array().unwrap().len(), 0);
    let (_, t3, p3) = recorder_with_patients(&app, 3, 1, &package).await;
    app.post(
        "/hospital-appointments",
        &t3,
        json!({"patient_id": p3[0], "hospital_id": c.hospital, "department_id": c.cardio, "appointment_date": c.date, "appointment_time": "09:00"}),
    )
    .await
    .err(409, "conflict");
    app.post(
        &format!("/hospitals/{}/status", c.hospital),
        &app.admin_token,
        json!({"status": "inactive"}),
    )
    .await
    .ok();
    assert_eq!(
        app.get("/hospitals", &token)
            .await
            .ok()
            .data()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        app.get("/hospital-appointments", &token).await.ok().data()["total"],
        2,
        "existing bookings are kept"
    );
    // Catalog is admin-only.
    app.post("/hospitals", &token, json!({"name": "x", "address": "y"}))
        .await
        .err(403, "forbidden");
}
