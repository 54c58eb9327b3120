//! The access log: every read of a patient's data is recorded before it is
//! answered (actor, patient, endpoint, where from, when), refused reads are
//! not, auditors query it, and nobody can change it.

use std::collections::HashMap;

use carelog::store::Backend as Store;
use reqwest::multipart::{Form, Part};
use reqwest::Method;
use serde_json::{json, Value};

use crate::dual;
use crate::helpers::{png, spawn_app, Backend, Resp, TestApp};

dual!(
    reads_of_patient_data_are_logged_for_auditors,
    only_auditors_and_admins_read_the_log,
    concurrent_reads_are_each_logged_once,
    the_access_log_cannot_be_changed,
);

const UA: &str = "carelog-access-test/1.0";

struct World {
    app: TestApp,
    recorder: String,
    rtoken: String,
    doctor: String,
    dtoken: String,
    /// A doctor with no request or order for the patient.
    other_dtoken: String,
    auditor: String,
    atoken: String,
    family: String,
    patient: String,
    /// A patient in another family, not assigned to the recorder.
    other_family: String,
    other_patient: String,
    record: String,
    request: String,
    order: String,
    file: String,
}

async fn user(app: &TestApp, body: Value, password: &str) -> (String, String) {
    let username = body["username"].as_str().unwrap().to_string();
    let id = app.post("/users", &app.admin_token, body).await.ok().id();
    (id, app.login(&username, password).await)
}

/// Everything the reads need, made with writes only (writes are not logged).
async fn world(b: Backend) -> World {
    let app = spawn_app(b).await;
    let (recorder, rtoken) = app.recorder(1).await;
    let (doctor, dtoken) = user(
        &app,
        json!({"username": "drwang", "phone": "13700000011", "password": "doctor-pass", "role": "doctor", "name": "王医生",
               "doctor": {"license_number": "L-11", "specialty": "全科"}}),
        "doctor-pass",
    )
    .await;
    let (auditor, atoken) = user(
        &app,
        json!({"username": "audit1", "phone": "13700000012", "password": "auditor-pass", "role": "auditor", "name": "审计员"}),
        "auditor-pass",
    )
    .await;
    let family = app.family("林家").await;
    let patient = app.patient(&family, "林奶奶").await;
    let other_family = app.family("周家").await;
    let other_patient = app.patient(&other_family, "周爷爷").await;
    let package = app.package().await;
    app.subscribe(&patient, &package, &recorder).await;

    let form = Form::new()
        .text("type", "image")
        .part("file", Part::bytes(png(60, 40)).file_name("wound.png"));
    let up: Value = app
        .client
        .post(app.url("/files/upload"))
        .bearer_auth(&rtoken)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file = up["data"]["file_id"].as_str().expect("file id").to_string();
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        .to_string();
    // High blood pressure: the request to the (only) doctor is raised at once.
    let r = app
        .post(
            "/health-records",
            &rtoken,
            json!({"patient_id": patient, "visit_date": today, "visit_time": "09:00",
                   "vital_signs": {"blood_pressure": "160/100", "heart_rate": 80}, "photos": [file]}),
        )
        .await
        .ok();
    let record = r.data()["record_id"].as_str().unwrap().to_string();
    let request = r.data()["order_request_id"]
        .as_str()
        .expect("alert request")
        .to_string();
    let order = app
        .post(
            "/medical-orders",
            &dtoken,
            json!({"patient_id": patient, "request_id": request, "order_type": "followup", "content": "一周后复测血压"}),
        )
        .await
        .ok()
        .id();
    let (_, other_dtoken) = user(
        &app,
        json!({"username": "drzhao", "phone": "13700000013", "password": "doctor-pass", "role": "doctor", "name": "赵医生",
               "doctor": {"license_number": "L-13", "specialty": "内科"}}),
        "doctor-pass",
    )
    .await;
    World {
        app,
        recorder,
        rtoken,
        doctor,
        dtoken,
        other_dtoken,
        auditor,
        atoken,
        family,
        patient,
        other_family,
        other_patient,
        record,
        request,
        order,
        file,
    }
}

/// A GET with our user agent and request id; returns the status (files are
/// not JSON).
async fn read(app: &TestApp, path: &str, token: &str, request_id: &str) -> u16 {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .header("user-agent", UA)
        .header("x-request-id", request_id)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn log(app: &TestApp, token: &str, query: &str) -> Resp {
    app.get(&format!("/audit/access?{query}"), token).await
}

fn entries(r: &Resp) -> Vec<Value> {
    r.data()["entries"].as_array().expect("entries").clone()
}

fn request_ids(r: &Resp) -> Vec<String> {
    entries(r)
        .iter()
        .map(|e| e["request_id"].as_str().unwrap().to_string())
        .collect()
}

async fn reads_of_patient_data_are_logged_for_auditors(b: Backend) {
    let w = world(b).await;
    let app = &w.app;
    let admin = app.admin_token.clone();
    let (p, f) = (&w.patient, &w.family);
    // (request id, who, path, route pattern)
    let reads: Vec<(&str, &str, String, &str)> = vec![
        ("r01", "recorder", format!("/patients/{p}"), "/patients/{id}"),
        ("r02", "recorder", format!("/families/{f}"), "/families/{id}"),
        (
            "r03",
            "recorder",
            format!("/health-records/{}", w.record),
            "/health-records/{id}",
        ),
        (
            "r04",
            "recorder",
            format!("/patients/{p}/health-records"),
            "/patients/{id}/health-records",
        ),
        (
            "r05",
            "recorder",
            format!("/patients/{p}/medical-orders"),
            "/patients/{id}/medical-orders",
        ),
        (
            "r06",
            "recorder",
            format!("/medical-orders/{}", w.order),
            "/medical-orders/{id}",
        ),
        ("r07", "recorder", format!("/files/{}", w.file), "/files/{id}"),
        (
            "r08",
            "recorder",
            format!("/files/{}/thumbnail", w.file),
            "/files/{id}/thumbnail",
        ),
        ("r09", "admin", format!("/patients/{p}"), "/patients/{id}"),
        (
            "r10",
            "admin",
            format!("/order-requests/{}", w.request),
            "/order-requests/{id}",
        ),
        ("r11", "admin", format!("/families/{f}"), "/families/{id}"),
        (
            "r12",
            "doctor",
            format!("/medical-orders/{}", w.order),
            "/medical-orders/{id}",
        ),
        ("r13", "doctor", "/order-requests".to_string(), "/order-requests"),
    ];
    let actors: HashMap<&str, (&str, &str)> = HashMap::from([
        ("recorder", (w.recorder.as_str(), w.rtoken.as_str())),
        ("admin", ("", admin.as_str())),
        ("doctor", (w.doctor.as_str(), w.dtoken.as_str())),
    ]);
    for (rid, who, path, _) in &reads {
        assert_eq!(read(app, path, actors[who].1, rid).await, 200, "{who} reads {path}");
    }

    // Refused reads leave nothing: not theirs (404), wrong role (403), absent (404).
    let refused = [
        (format!("/patients/{}", w.other_patient), w.rtoken.as_str(), 404),
        (format!("/families/{}", w.other_family), w.rtoken.as_str(), 404),
        (
            format!("/patients/{}/health-records", w.other_patient),
            w.rtoken.as_str(),
            404,
        ),
        (format!("/patients/{p}"), w.other_dtoken.as_str(), 404),
        (format!("/medical-orders/{}", w.order), w.other_dtoken.as_str(), 404),
        (format!("/files/{}", w.file), w.other_dtoken.as_str(), 404),
        (format!("/patients/{p}"), w.atoken.as_str(), 403),
        (format!("/families/{f}"), w.atoken.as_str(), 403),
        (
            format!("/health-records/{}", uuid::Uuid::new_v4()),
            w.rtoken.as_str(),
            404,
        ),
    ];
    for (i, (path, token, status)) in refused.iter().enumerate() {
        assert_eq!(read(app, path, token, &format!("x{i:02}")).await, *status, "{path}");
    }

    // The auditor sees exactly the reads above, oldest first, with who, what and where.
    let r = log(app, &w.atoken, &format!("patient_id={p}&limit=100")).await.ok();
    assert_eq!(r.data()["total"], reads.len(), "{}", r.body);
    assert_eq!(
        (r.data()["page"].as_u64(), r.data()["limit"].as_u64()),
        (Some(1), Some(100))
    );
    let got = entries(&r);
    let admin_id = got[8]["actor_id"].as_str().unwrap().to_string();
    for ((rid, who, path, pattern), e) in reads.iter().zip(&got) {
        assert_eq!(e["request_id"], *rid, "order: {}", r.body);
        assert_eq!(e["patient_id"], p.as_str());
        assert_eq!(e["actor_role"], *who);
        if *who != "admin" {
            assert_eq!(e["actor_id"], actors[who].0);
        }
        assert_eq!(e["endpoint"], format!("GET /api/v1{pattern}"));
        assert_eq!(e["path"], format!("/api/v1{path}"));
        assert_eq!(e["ip"], "127.0.0.1");
        assert_eq!(e["user_agent"], UA);
        assert!(e["id"].as_i64().is_some());
        chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).expect("RFC 3339");
    }
    assert!(
        got.windows(2).all(|w| w[0]["at"].as_str() < w[1]["at"].as_str()),
        "oldest first"
    );
    assert_ne!(admin_id, w.recorder);
    // Nothing else was logged: no other patient, no refused read.
    assert_eq!(log(app, &w.atoken, "").await.ok().data()["total"], reads.len());
    let other = log(app, &w.atoken, &format!("patient_id={}", w.other_patient))
        .await
        .ok();
    assert_eq!(other.data()["total"], 0, "{}", other.body);

    // By actor, alone and with the patient.
    let by = |id: &str| format!("actor={id}&limit=100");
    assert_eq!(
        request_ids(&log(app, &w.atoken, &by(&w.recorder)).await.ok()),
        ["r01", "r02", "r03", "r04", "r05", "r06", "r07", "r08"]
    );
    assert_eq!(
        request_ids(&log(app, &w.atoken, &by(&admin_id)).await.ok()),
        ["r09", "r10", "r11"]
    );
    assert_eq!(
        request_ids(
            &log(app, &w.atoken, &format!("{}&patient_id={p}", by(&w.doctor)))
                .await
                .ok()
        ),
        ["r12", "r13"]
    );
    assert_eq!(log(app, &w.atoken, &by(&w.auditor)).await.ok().data()["total"], 0);

    // By time: both bounds inclusive, in any offset.
    let at = |i: usize| got[i]["at"].as_str().unwrap().to_string();
    let r = log(app, &w.atoken, &format!("from={}&to={}&limit=100", at(2), at(5)))
        .await
        .ok();
    assert_eq!(request_ids(&r), ["r03", "r04", "r05", "r06"]);
    let shanghai = |i: usize| {
        chrono::DateTime::parse_from_rfc3339(&at(i))
            .unwrap()
            .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
    };
    let encoded = shanghai(10).replace('+', "%2B");
    let r = log(app, &w.atoken, &format!("from={encoded}")).await.ok();
    assert_eq!(request_ids(&r), ["r11", "r12", "r13"]);
    // An unencoded `+` (a space once decoded) is taken as meant.
    let r = log(app, &w.atoken, &format!("to={}", shanghai(1))).await.ok();
    assert_eq!(request_ids(&r), ["r01", "r02"]);
    let r = log(app, &w.atoken, &format!("to={}", at(0))).await.ok();
    assert_eq!(request_ids(&r), ["r01"]);

    // Pages.
    let r = log(app, &w.atoken, &format!("patient_id={p}&page=2&limit=5"))
        .await
        .ok();
    assert_eq!(request_ids(&r), ["r06", "r07", "r08", "r09", "r10"]);
    assert_eq!(r.data()["total"], reads.len());

    // Malformed filters name their field.
    for (query, field) in [
        ("from=yesterday", "from"),
        ("to=2024-13-01T00:00:00Z", "to"),
        ("from=2024-05-02T00:00:00Z&to=2024-05-01T00:00:00Z", "to"),
        ("patient_id=not-a-uuid", "patient_id"),
        ("actor=42", "actor"),
        ("limit=0", "limit"),
    ] {
        let r = log(app, &w.atoken, query).await.err(400, "validation_failed");
        assert!(r.body["details"][field].is_string(), "{query}: {}", r.body);
    }
}

async fn only_auditors_and_admins_read_the_log(b: Backend) {
    let w = world(b).await;
    let app = &w.app;
    assert_eq!(
        read(app, &format!("/patients/{}", w.patient), &w.rtoken, "only").await,
        200
    );
    log(app, &w.rtoken, "").await.err(403, "forbidden");
    log(app, &w.dtoken, "").await.err(403, "forbidden");
    let anonymous = app.send(Method::GET, "/audit/access", None, None, &[]).await;
    anonymous.err(401, "unauthorized");
    let as_admin = log(app, &app.admin_token, "").await.ok();
    assert_eq!(request_ids(&as_admin), ["only"]);
    let as_auditor = log(app, &w.atoken, "").await.ok();
    assert_eq!(request_ids(&as_auditor), ["only"]);
    // Reading the log is not a read of patient data.
    assert_eq!(log(app, &w.atoken, "").await.ok().data()["total"], 1);
}

async fn concurrent_reads_are_each_logged_once(b: Backend) {
    let w = world(b).await;
    let app = &w.app;
    let path = format!("/patients/{}", w.patient);
    let reads = (0..50).map(|i| {
        let (app, path, token) = (&w.app, &path, &w.rtoken);
        async move { read(app, path, token, &format!("c{i:02}")).await }
    });
    let statuses = futures::future::join_all(reads).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let r = log(app, &w.atoken, &format!("patient_id={}&limit=100", w.patient))
        .await
        .ok();
    assert_eq!(r.data()["total"], 50, "{}", r.body);
    let mut ids = request_ids(&r);
    ids.sort();
    let expected: Vec<String> = (0..50).map(|i| format!("c{i:02}")).collect();
    assert_eq!(ids, expected, "each read exactly once");
    let (writes, records) = app.state.access.stats();
    assert_eq!(records, 50);
    eprintln!("50 concurrent reads: {records} records in {writes} writes");
}

async fn the_access_log_cannot_be_changed(b: Backend) {
    let w = world(b).await;
    let app = &w.app;
    assert_eq!(
        read(app, &format!("/patients/{}", w.patient), &w.rtoken, "kept").await,
        200
    );
    let statements = [
        "UPDATE access_reads SET actor_id = 'someone-else'",
        "UPDATE access_reads SET patients = patients",
        "DELETE FROM access_reads",
        "DELETE FROM access_reads WHERE request_id = 'kept'",
        "UPDATE access_read_patients SET patient_id = 'someone-else'",
        "DELETE FROM access_read_patients",
    ];
    for sql in statements {
        let outcome = match app.state.store.backend() {
            Store::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
            Store::Sqlite(carelog::store::SqliteDb { write: pool, .. }) => {
                sqlx::query(sql).execute(pool).await.map(|_| ())
            }
        };
        let err = outcome.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    if let Store::Postgres(pool) = app.state.store.backend() {
        for table in ["access_reads", "access_read_patients"] {
            let err = sqlx::query(&format!("TRUNCATE {table} CASCADE"))
                .execute(pool)
                .await
                .expect_err("truncate");
            assert!(err.to_string().contains("append-only"), "{table}: {err}");
        }
    }
    let r = log(app, &w.atoken, "").await.ok();
    assert_eq!(request_ids(&r), ["kept"]);
    assert_eq!(entries(&r)[0]["actor_id"], w.recorder.as_str());
}

/// By hand: `cargo test --test api -- --ignored --nocapture access_log::read_latency`.
/// 200 sequential `GET /patients/{id}` on each backend; prints the timings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn read_latency() {
    for b in [Backend::Embedded, Backend::Servers] {
        let w = world(b).await;
        let path = format!("/patients/{}", w.patient);
        for _ in 0..20 {
            read(&w.app, &path, &w.rtoken, "warm-up").await;
        }
        let mut times = Vec::new();
        for i in 0..200 {
            let started = std::time::Instant::now();
            assert_eq!(read(&w.app, &path, &w.rtoken, &format!("l{i}")).await, 200);
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let total: f64 = times.iter().sum();
        times.sort_by(|a, b| a.total_cmp(b));
        eprintln!(
            "{b:?}: 200 reads in {total:.0} ms, mean {:.2} ms, p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
            total / 200.0,
            times[100],
            times[190],
            times[199]
        );
    }
}
