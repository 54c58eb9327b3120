use serde_json::json;

use crate::dual;
use crate::helpers::{spawn_app, Backend};

dual!(
    a_recorder_sees_only_their_families_field_by_field,
    family_updates_show_at_once,
    patients_read_and_update,
    medications_are_free_text_or_structured_and_read_back_as_sent,
    search_finds_what_the_families_hold_now,
    a_name_with_spaces_is_searchable_after_a_rename
);

async fn a_recorder_sees_only_their_families_field_by_field(b: Backend) {
    let app = spawn_app(b).await;
    let (r1, t1) = app.recorder(1).await;
    let (_r2, t2) = app.recorder(2).await;
    let package = app.package().await;
    let fam = app.family("王家").await;
    let other = app.family("李家").await;
    let p1 = app.patient(&fam, "王奶奶").await;
    let _p2 = app.patient(&fam, "王爷爷").await;
    let p3 = app.patient(&other, "李大爷").await;

    // No subscription yet: the recorder sees nothing.
    let l = app.get("/families", &t1).await.ok();
    assert_eq!(l.data()["total"], 0);

    let sub = app.subscribe(&p1, &package, &r1).await;
    let l = app.get("/families", &t1).await.ok();
    assert_eq!(l.data()["total"], 1, "{}", l.body);
    let f = &l.data()["families"][0];
    assert_eq!(f["id"], fam.as_str());
    assert_eq!(f["family_name"], "王家");
    assert_eq!(f["primary_address"], "上海市王家路1号");
    assert_eq!(f["contact_phone"], "13912345678");
    // Only the recorder's own patient of the household is counted (issue 10).
    assert_eq!(f["patient_count"], 1);
    assert_eq!(f["active_subscriptions"], 1);
    assert_eq!(l.data()["page"], 1);
    assert_eq!(l.data()["limit"], 20);
    // A page past the end has no rows to carry the total: it is still given.
    let past = app.get("/families?page=3", &t1).await.ok();
    assert_eq!(past.data()["families"], json!([]));
    assert_eq!(past.data()["total"], 1, "{}", past.body);

    let d = app.get(&format!("/families/{fam}"), &t1).await.ok();
    let data = d.data();
    assert_eq!(data["family_name"], "王家");
    assert_eq!(d.headers["etag"], format!("\"{}\"", data["version"]));
    // The household's other patient is not the recorder's: left out (issue 10).
    let patients = data["patients"].as_array().unwrap();
    assert_eq!(patients.len(), 1);
    let grandma = patients.iter().find(|p| p["id"] == p1.as_str()).unwrap();
    assert_eq!(grandma["name"], "王奶奶");
    assert_eq!(grandma["gender"], "female");
    assert_eq!(grandma["relationship_to_head"], "本人");
    assert!(grandma["age"].as_i64().unwrap() >= 76);
    assert_eq!(grandma["current_subscription"]["package_name"], "基础护理包");
    assert_eq!(grandma["current_subscription"]["status"], "active");
    assert!(grandma["current_subscription"]["end_date"].is_string());
    assert!(grandma["last_record"].is_null());
    let all = app.get(&format!("/families/{fam}"), &app.admin_token).await.ok();
    let all = all.data()["patients"].as_array().unwrap().clone();
    assert_eq!(all.len(), 2, "the admin sees the whole household");
    let grandpa = all.iter().find(|p| p["id"] != p1.as_str()).unwrap();
    assert!(grandpa["current_subscription"].is_null());

    // The second recorder sees neither the list entry nor the detail.
    assert_eq!(app.get("/families", &t2).await.ok().data()["total"], 0);
    app.get(&format!("/families/{fam}"), &t2).await.err(404, "not_found");
    app.get(&format!("/patients/{p1}"), &t2).await.err(404, "not_found");
    app.get(&format!("/families/{other}"), &t1).await.err(404, "not_found");
    app.get(&format!("/patients/{p3}"), &t1).await.err(404, "not_found");

    // Admin sees all; search matches family name, address or a patient's name.
    assert_eq!(app.get("/families", &app.admin_token).await.ok().data()["total"], 2);
    let s = app
        .get("/families?search=%E6%9D%8E%E5%A4%A7", &app.admin_token)
        .await
        .ok(); // 李大
    assert_eq!(s.data()["total"], 1);
    assert_eq!(s.data()["families"][0]["id"], other.as_str());
    let past = app
        .get("/families?search=%E6%9D%8E%E5%A4%A7&page=2", &app.admin_token)
        .await
        .ok();
    assert_eq!(past.data()["families"], json!([]));
    assert_eq!(past.data()["total"], 1, "{}", past.body);
    let s = app
        .get("/families?search=%E7%8E%8B%E5%AE%B6%E8%B7%AF", &app.admin_token)
        .await
        .ok(); // 王家路
    assert_eq!(s.data()["total"], 1);
    let s = app.get("/families?limit=1&page=2", &app.admin_token).await.ok();
    assert_eq!(s.data()["families"].as_array().unwrap().len(), 1);
    assert_eq!(s.data()["total"], 2);

    // Pausing the subscription removes the family from the recorder's list at once.
    app.post(
        &format!("/subscriptions/{sub}/status"),
        &app.admin_token,
        json!({"status": "paused"}),
    )
    .await
    .ok();
    assert_eq!(app.get("/families", &t1).await.ok().data()["total"], 0);
    app.get(&format!("/families/{fam}"), &t1).await.err(404, "not_found");
    let d = app.get(&format!("/families/{fam}"), &app.admin_token).await.ok();
    let grandma = d.data()["patients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == p1.as_str())
        .unwrap()
        .clone();
    assert_eq!(grandma["current_subscription"]["status"], "paused");
    // Resumed: back in the list, counted as before; cancelled: gone for good.
    app.post(
        &format!("/subscriptions/{sub}/status"),
        &app.admin_token,
        json!({"status": "active"}),
    )
    .await
    .ok();
    let l = app.get("/families", &t1).await.ok();
    assert_eq!(l.data()["total"], 1, "{}", l.body);
    assert_eq!(l.data()["families"][0]["patient_count"], 1);
    assert_eq!(l.data()["families"][0]["active_subscriptions"], 1);
    app.post(
        &format!("/subscriptions/{sub}/status"),
        &app.admin_token,
        json!({"status": "cancelled"}),
    )
    .await
    .ok();
    assert_eq!(app.get("/families", &t1).await.ok().data()["total"], 0);
    app.post(
        &format!("/subscriptions/{sub}/status"),
        &app.admin_token,
        json!({"status": "active"}),
    )
    .await
    .err(409, "conflict");
    let pay = app
        .post(
            &format!("/subscriptions/{sub}/payment"),
            &app.admin_token,
            json!({"payment_status": "paid"}),
        )
        .await
        .ok();
    assert!(pay.data()["version"].as_i64().unwrap() >= 3);
}

async fn family_updates_show_at_once(b: Backend) {
    let app = spawn_app(b).await;
    let fam = app.family("张家").await;
    let r = app
        .patch(
            &format!("/families/{fam}"),
            &app.admin_token,
            json!({"primary_address": "北京市朝阳区", "home_lat": 39.9, "home_lng": 116.4}),
        )
        .await
        .ok();
    assert_eq!(r.data()["version"], 2);
    let d = app.get(&format!("/families/{fam}"), &app.admin_token).await.ok();
    assert_eq!(d.data()["primary_address"], "北京市朝阳区");
    assert_eq!(d.data()["family_name"], "张家");
    assert_eq!(d.data()["home_lat"], 39.9);
    assert_eq!(d.data()["version"], 2);
    // A stale If-Match is refused; the current one is accepted.
    app.send(
        reqwest::Method::PATCH,
        &format!("/families/{fam}"),
        Some(&app.admin_token),
        Some(json!({"family_name": "张府"})),
        &[("If-Match", "1")],
    )
    .await
    .err(409, "version_conflict");
    app.send(
        reqwest::Method::PATCH,
        &format!("/families/{fam}"),
        Some(&app.admin_token),
        Some(json!({"family_name": "张府"})),
        &[("If-Match", "\"2\"")],
    )
    .await
    .ok();
    assert_eq!(
        app.get(&format!("/families/{fam}"), &app.admin_token).await.ok().data()["family_name"],
        "张府"
    );
    app.get("/families/00000000-0000-0000-0000-000000000000", &app.admin_token)
        .await
        .err(404, "not_found");
    app.get("/families/not-a-uuid", &app.admin_token)
        .await
        .err(404, "not_found");
}

async fn patients_read_and_update(b: Backend) {
    let app = spawn_app(b).await;
    let (r1, t1) = app.recorder(1).await;
    let fam = app.family("赵家").await;
    let p = app.patient(&fam, "赵奶奶").await;
    let package = app.package().await;
    app.subscribe(&p, &package, &r1).await;
    let v = app.get(&format!("/patients/{p}"), &t1).await.ok();
    assert_eq!(v.data()["id_card"], "11010519491231002X");
    assert_eq!(v.data()["medical_history"], json!(["高血压"]));
    assert_eq!(v.data()["family_id"], fam.as_str());
    let u = app
        .patch(
            &format!("/patients/{p}"),
            &app.admin_token,
            json!({"phone": "13811112222", "allergies": "青霉素"}),
        )
        .await
        .ok();
    assert_eq!(u.data()["version"], 2);
    let v = app.get(&format!("/patients/{p}"), &t1).await.ok();
    assert_eq!(v.data()["phone"], "13811112222");
    assert_eq!(v.data()["allergies"], "青霉素");
    assert_eq!(v.data()["name"], "赵奶奶");
    app.patch(&format!("/patients/{p}"), &t1, json!({"allergies": "x"}))
        .await
        .err(403, "forbidden");
}

async fn medications_are_free_text_or_structured_and_read_back_as_sent(b: Backend) {
    let app = spawn_app(b).await;
    let fam = app.family("钱家").await;
    // Registered with a string, as every patient was before structured medications.
    let p = app.patient(&fam, "钱奶奶").await;
    let path = format!("/patients/{p}");
    let v = app.get(&path, &app.admin_token).await.ok();
    assert_eq!(v.data()["current_medications"], json!(["氨氯地平"]));

    let mixed = json!([
        "氨氯地平 5mg 每日一次",
        {"name": "二甲双胍缓释片", "dosage": "0.5g", "frequency": "每日两次", "route": "口服"},
        {"name": " 阿司匹林 ", "dosage": "100mg"},
        "  "
    ]);
    app.patch(&path, &app.admin_token, json!({"current_medications": mixed}))
        .await
        .ok();
    let v = app.get(&path, &app.admin_token).await.ok();
    assert_eq!(
        v.data()["current_medications"],
        json!([
            "氨氯地平 5mg 每日一次",
            {"name": "二甲双胍缓释片", "dosage": "0.5g", "frequency": "每日两次", "route": "口服"},
            {"name": "阿司匹林", "dosage": "100mg", "frequency": null, "route": null}
        ]),
        "strings stay strings, objects come back with every key, blank entries are dropped"
    );

    // A structured entry without a name is refused naming it; nothing changes.
    let r = app
        .patch(
            &path,
            &app.admin_token,
            json!({"current_medications": ["氨氯地平", "  ", {"dosage": "5mg"}]}),
        )
        .await
        .err(400, "validation_failed");
    assert!(
        r.body["details"]["current_medications[2].name"].is_string(),
        "{}",
        r.body
    );
    let r = app
        .patch(
            &path,
            &app.admin_token,
            json!({"current_medications": [{"name": "药", "route": "口".repeat(101)}]}),
        )
        .await
        .err(400, "validation_failed");
    assert!(
        r.body["details"]["current_medications[0].route"].is_string(),
        "{}",
        r.body
    );
    let r = app
        .patch(&path, &app.admin_token, json!({"current_medications": [42]}))
        .await
        .err(400, "validation_failed");
    assert!(r.body["details"]["current_medications[0]"].is_string(), "{}", r.body);
    let v = app.get(&path, &app.admin_token).await.ok();
    assert_eq!(v.data()["current_medications"].as_array().unwrap().len(), 3);
}

/// The total of `/families?search=…` as the admin reads it.
async fn found(app: &crate::helpers::TestApp, text: &str) -> i64 {
    let q: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
    app.get(&format!("/families?search={q}"), &app.admin_token)
        .await
        .ok()
        .data()["total"]
        .as_i64()
        .unwrap()
}

/// Search runs on grams the projector keeps: it must follow every rename and
/// erasure, match one character, any case of ASCII letters, and find the
/// families a store held before the grams existed.
async fn search_finds_what_the_families_hold_now(b: Backend) {
    let app = spawn_app(b).await;
    let fam = app.family("张家").await;
    let patient = app.patient(&fam, "张三丰").await;
    let other = app.family("Smith").await;
    for (text, n) in [
        ("张三", 1),
        ("张", 1),
        // One character that only ends a text: the last character is kept.
        ("丰", 1),
        ("H", 1),
        ("张家", 1),
        ("张家路", 1),
        ("上海市", 2),
        ("smi", 1),
        ("SMITH", 1),
        ("三丰张", 0),
        ("赵", 0),
    ] {
        assert_eq!(found(&app, text).await, n, "{text}");
    }
    app.patch(
        &format!("/families/{fam}"),
        &app.admin_token,
        json!({"family_name": "赵家", "primary_address": "北京市朝阳区"}),
    )
    .await
    .ok();
    app.patch(
        &format!("/patients/{patient}"),
        &app.admin_token,
        json!({"name": "李四"}),
    )
    .await
    .ok();
    for (text, n) in [
        ("张家", 0),
        ("张三", 0),
        ("赵家", 1),
        ("朝阳", 1),
        ("李四", 1),
        ("上海市", 1),
    ] {
        assert_eq!(found(&app, text).await, n, "{text}");
    }
    // A store that held families before the grams: filled at start-up.
    let read = &app.state.read;
    sqlx::query("DELETE FROM family_grams")
        .execute(read.writer())
        .await
        .unwrap();
    assert_eq!(found(&app, "李四").await, 0);
    read.fill_family_grams().await.unwrap();
    assert_eq!(found(&app, "李四").await, 1);
    assert_eq!(found(&app, "Smith").await, 1);
    let _ = other;
}

/// MySQL compares grams ignoring trailing spaces (`PAD SPACE`), so a
/// household whose texts hold "e " (a character followed by a space) and "e"
/// (the same character ending a text) has two grams that are one key there.
/// Renamed into such texts, its grams are still written, and the read model
/// follows: no duplicate-key failure stops the projection.
async fn a_name_with_spaces_is_searchable_after_a_rename(b: Backend) {
    let app = spawn_app(b).await;
    let fam = app.family("王家").await;
    app.patch(
        &format!("/families/{fam}"),
        &app.admin_token,
        json!({"family_name": "Lee Ann", "primary_address": "上海市 Lee"}),
    )
    .await
    .ok();
    let v = app.get(&format!("/families/{fam}"), &app.admin_token).await.ok();
    assert_eq!(v.data()["family_name"], "Lee Ann");
    for (text, n) in [("Lee Ann", 1), ("ann", 1), ("市 Lee", 1), ("e", 1), ("王家", 0)] {
        assert_eq!(found(&app, text).await, n, "{text}");
    }
    // The next command's change shows too: the projection did not stop.
    app.patch(
        &format!("/families/{fam}"),
        &app.admin_token,
        json!({"family_name": "Lee Bo"}),
    )
    .await
    .ok();
    assert_eq!(found(&app, "Lee Bo").await, 1);
}
