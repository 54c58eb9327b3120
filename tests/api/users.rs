use serde_json::json;

use crate::dual;
use crate::helpers::{spawn_app, Backend};

dual!(
    users_of_each_role_are_created_and_listed,
    duplicates_are_409,
    roles_are_enforced
);

async fn users_of_each_role_are_created_and_listed(b: Backend) {
    let app = spawn_app(b).await;
    let (rid, _) = app.recorder(1).await;
    let did = app
        .post(
            "/users",
            &app.admin_token,
            json!({"username": "drwang", "phone": "13700000001", "password": "doctor-pass", "role": "doctor", "name": "王医生",
                   "doctor": {"license_number": "L-001", "specialty": "全科", "consultation_fee": "50.00"}}),
        )
        .await
        .ok()
        .id();
    app.post(
        "/users",
        &app.admin_token,
        json!({"username": "auditor1", "phone": "13700000002", "password": "auditor-pass", "role": "auditor", "name": "审计"}),
    )
    .await
    .ok();
    let r = app.get(&format!("/recorders/{rid}"), &app.admin_token).await.ok();
    assert_eq!(r.data()["recorder"]["employee_id"], "E0001");
    assert_eq!(r.headers["etag"], format!("\"{}\"", r.data()["version"]));
    let d = app.get(&format!("/doctors/{did}"), &app.admin_token).await.ok();
    assert_eq!(d.data()["doctor"]["license_number"], "L-001");
    assert_eq!(d.data()["doctor"]["consultation_fee"], "50.00");
    // A recorder id is not a doctor.
    app.get(&format!("/doctors/{rid}"), &app.admin_token)
        .await
        .err(404, "not_found");
    let list = app.get("/users?role=doctor", &app.admin_token).await.ok();
    assert_eq!(list.data()["total"], 1);
    assert_eq!(list.data()["users"][0]["id"], did.as_str());
    let all = app.get("/users?page=1&limit=2", &app.admin_token).await.ok();
    assert_eq!(all.data()["total"], 4);
    assert_eq!(all.data()["users"].as_array().unwrap().len(), 2);
    assert_eq!(all.data()["limit"], 2);
    app.get("/users?limit=500", &app.admin_token)
        .await
        .err(400, "validation_failed");
}

async fn duplicates_are_409(b: Backend) {
    let app = spawn_app(b).await;
    app.recorder(1).await;
    let before = app.event_count().await;
    for (field, body) in [
        (
            "username",
            json!({"username": "recorder1", "phone": "13600000000", "password": "recorder-pass", "role": "recorder", "name": "x", "recorder": {"employee_id": "E9"}}),
        ),
        (
            "phone",
            json!({"username": "other", "phone": "13900000001", "password": "recorder-pass", "role": "recorder", "name": "x", "recorder": {"employee_id": "E9"}}),
        ),
        (
            "employee_id",
            json!({"username": "other", "phone": "13600000000", "password": "recorder-pass", "role": "recorder", "name": "x", "recorder": {"employee_id": "E0001"}}),
        ),
    ] {
        let r = app.post("/users", &app.admin_token, body).await;
        assert_eq!(r.status.as_u16(), 409, "{field}: {}", r.body);
        assert_eq!(r.body["error"], "conflict");
    }
    assert_eq!(app.event_count().await, before, "nothing written");
    // The values refused above were not left claimed.
    app.post(
        "/users",
        &app.admin_token,
        json!({"username": "other", "phone": "13600000000", "password": "recorder-pass", "role": "recorder", "name": "x", "recorder": {"employee_id": "E9"}}),
    )
    .await
    .ok();
    let r = app
        .post("/users", &app.admin_token, json!({"username": "doc", "phone": "13600000009", "password": "doctor-pass", "role": "doctor", "name": "x"}))
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["doctor"].is_string());
}

async fn roles_are_enforced(b: Backend) {
    let app = spawn_app(b).await;
    let (_, token) = app.recorder(1).await;
    app.get("/users", &token).await.err(403, "forbidden");
    app.post(
        "/families",
        &token,
        json!({"family_name": "x", "primary_address": "y", "contact_phone": "13912345678"}),
    )
    .await
    .err(403, "forbidden");
    app.post(
        "/users",
        &app.admin_token,
        json!({"username": "auditor1", "phone": "13700000002", "password": "auditor-pass", "role": "auditor", "name": "审计"}),
    )
    .await
    .ok();
    let auditor = app.login("auditor1", "auditor-pass").await;
    app.get("/families", &auditor).await.err(403, "forbidden");
    app.post(
        "/service-packages",
        &auditor,
        json!({"name": "x", "price": 1, "duration_days": 1, "service_frequency": 1}),
    )
    .await
    .err(403, "forbidden");
}
