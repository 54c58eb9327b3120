use reqwest::Method;
use serde_json::json;

use crate::dual;
use crate::helpers::{spawn_app, Backend};

dual!(
    twenty_updates_with_one_if_match_give_one_success,
    twenty_creates_with_one_idempotency_key_give_one_family,
    idempotency_replays_and_refuses_another_body
);

async fn twenty_updates_with_one_if_match_give_one_success(b: Backend) {
    let app = spawn_app(b).await;
    let fam = app.family("孙家").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/families/{fam}")),
            app.admin_token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            client
                .patch(url)
                .bearer_auth(token)
                .header("If-Match", "1")
                .json(&json!({"family_name": format!("孙家{i}")}))
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
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 19, "{statuses:?}");
    assert_eq!(
        app.get(&format!("/families/{fam}"), &app.admin_token).await.ok().data()["version"],
        2
    );
}

async fn twenty_creates_with_one_idempotency_key_give_one_family(b: Backend) {
    let app = spawn_app(b).await;
    let body = json!({"family_name": "周家", "primary_address": "上海", "contact_phone": "13912345678"});
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (client, url, token, body) = (
            app.client.clone(),
            app.url("/families"),
            app.admin_token.clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", "create-zhou-1")
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let v: serde_json::Value = r.json().await.unwrap();
            (status, v["data"]["id"].as_str().map(str::to_string))
        }));
    }
    let results: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(results.iter().all(|(s, _)| *s == 201), "{results:?}");
    let first = results[0].1.clone().unwrap();
    assert!(
        results.iter().all(|(_, id)| id.as_deref() == Some(first.as_str())),
        "same id for all: {results:?}"
    );
    let list = app.get("/families", &app.admin_token).await.ok();
    assert_eq!(list.data()["total"], 1);
}

async fn idempotency_replays_and_refuses_another_body(b: Backend) {
    let app = spawn_app(b).await;
    let body = json!({"family_name": "吴家", "primary_address": "上海", "contact_phone": "13912345678"});
    let h = [("Idempotency-Key", "k-1")];
    let a = app
        .send(
            Method::POST,
            "/families",
            Some(&app.admin_token),
            Some(body.clone()),
            &h,
        )
        .await
        .ok();
    let events = app.event_count().await;
    let b2 = app
        .send(
            Method::POST,
            "/families",
            Some(&app.admin_token),
            Some(body.clone()),
            &h,
        )
        .await
        .ok();
    assert_eq!(a.body, b2.body);
    assert_eq!(b2.headers["idempotent-replayed"], "true");
    assert_eq!(app.event_count().await, events, "the repeat wrote nothing");
    let other = json!({"family_name": "郑家", "primary_address": "上海", "contact_phone": "13912345678"});
    app.send(Method::POST, "/families", Some(&app.admin_token), Some(other), &h)
        .await
        .err(422, "idempotency_key_reused");
    // A refused request is replayed as refused, and also writes nothing.
    let bad = json!({"family_name": "x"});
    let h2 = [("Idempotency-Key", "k-2")];
    app.send(
        Method::POST,
        "/families",
        Some(&app.admin_token),
        Some(bad.clone()),
        &h2,
    )
    .await
    .err(400, "validation_failed");
    app.send(Method::POST, "/families", Some(&app.admin_token), Some(bad), &h2)
        .await
        .err(400, "validation_failed");
    assert_eq!(app.event_count().await, events);
}
