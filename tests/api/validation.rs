use reqwest::Method;
use serde_json::json;

use crate::dual;
use crate::helpers::{spawn_app, Backend};

dual!(bad_input_is_400_naming_the_field_and_writes_nothing);

async fn bad_input_is_400_naming_the_field_and_writes_nothing(b: Backend) {
    let app = spawn_app(b).await;
    let fam = app.family("钱家").await;
    let before = app.event_count().await;

    // Malformed JSON.
    let res = app
        .client
        .post(app.url("/families"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .body("{\"family_name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "validation_failed");

    // Missing fields are each named.
    let r = app
        .post("/families", &app.admin_token, json!({"family_name": "x"}))
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["primary_address"].is_string(), "{}", r.body);
    assert!(r.body["details"]["contact_phone"].is_string());
    assert!(r.body["message"].as_str().unwrap().contains("primary_address"));

    // Wrong type.
    let r = app
        .post(
            "/families",
            &app.admin_token,
            json!({"family_name": 5, "primary_address": "a", "contact_phone": "13912345678"}),
        )
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["family_name"].is_string());

    // Bad phone, bad ID card (checksum), bad date, bad enum.
    let r = app
        .post(
            "/families",
            &app.admin_token,
            json!({"family_name": "x", "primary_address": "a", "contact_phone": "12345"}),
        )
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["contact_phone"].is_string());
    let r = app
        .post(
            &format!("/families/{fam}/patients"),
            &app.admin_token,
            json!({"name": "钱奶奶", "gender": "female", "birth_date": "1949-12-31", "id_card": "110105194912310021", "relationship_to_head": "本人"}),
        )
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["id_card"].is_string(), "{}", r.body);
    let r = app
        .post(
            &format!("/families/{fam}/patients"),
            &app.admin_token,
            json!({"name": "钱奶奶", "gender": "other", "birth_date": "1949-02-30", "relationship_to_head": "本人"}),
        )
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["gender"].is_string());
    assert!(r.body["details"]["birth_date"].is_string());
    // A birth date nobody alive has (found by schemathesis).
    let r = app
        .post(
            &format!("/families/{fam}/patients"),
            &app.admin_token,
            json!({"name": "钱奶奶", "gender": "female", "birth_date": "0466-11-16", "relationship_to_head": "本人"}),
        )
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["birth_date"].is_string());
    let r = app
        .post(
            "/service-packages",
            &app.admin_token,
            json!({"name": "p", "price": -1, "duration_days": 0, "service_frequency": 4}),
        )
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["price"].is_string());
    assert!(r.body["details"]["duration_days"].is_string());
    let r = app
        .post(
            "/subscriptions",
            &app.admin_token,
            json!({"patient_id": "nope", "package_id": fam, "start_date": "2026-13-01"}),
        )
        .await
        .err(400, "validation_failed");
    for f in ["patient_id", "recorder_id", "start_date"] {
        assert!(r.body["details"][f].is_string(), "{f}: {}", r.body);
    }
    // Unknown references are named too.
    let r = app
        .post(
            "/subscriptions",
            &app.admin_token,
            json!({"patient_id": fam, "package_id": fam, "recorder_id": fam, "start_date": "2026-01-01"}),
        )
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["patient_id"].is_string());
    // A body that is too large.
    let big = "x".repeat(2 * 1024 * 1024);
    app.post("/families", &app.admin_token, json!({"family_name": big}))
        .await
        .err(413, "payload_too_large");
    // Bad If-Match.
    app.send(
        Method::PATCH,
        &format!("/families/{fam}"),
        Some(&app.admin_token),
        Some(json!({})),
        &[("If-Match", "abc")],
    )
    .await
    .err(400, "validation_failed");

    assert_eq!(
        app.event_count().await,
        before,
        "no event was written by any refused request"
    );
    let d = app.get(&format!("/families/{fam}"), &app.admin_token).await.ok();
    assert_eq!(d.data()["patients"].as_array().unwrap().len(), 0);
}
