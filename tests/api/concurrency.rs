use reqwest::Method;
use serde_json::json;

use crate::dual;
use crate::helpers::{spawn_app, spawn_app_with, Backend};

dual!(
    a_commands_answer_names_its_position_and_the_next_read_shows_it,
    a_named_position_is_a_whole_number_and_never_past_the_head,
    with_no_lead_allowed_a_command_answers_once_the_read_models_show_it,
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
    // The replay names the first answer's position: a client that lost the
    // first answer still gets a position its next read (on any instance)
    // waits for.
    assert_eq!(
        position(&b2),
        position(&a),
        "the replay names the first answer's position"
    );
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

fn position(r: &crate::helpers::Resp) -> i64 {
    r.headers
        .get("x-carelog-position")
        .expect("a command's answer names its position")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A command answers at its commit, naming the position of its last event;
/// the caller's next read waits for the read models to show it. Forty
/// creations, each read back at once (the detail, the list's total, and a
/// search for its name), and an update read back the same way.
async fn a_commands_answer_names_its_position_and_the_next_read_shows_it(b: Backend) {
    let app = spawn_app(b).await;
    let mut last = 0;
    for i in 0..40 {
        let name = format!("即读{i}家");
        let r = app
            .post(
                "/families",
                &app.admin_token,
                json!({"family_name": name, "primary_address": "上海市", "contact_phone": "13912345678"}),
            )
            .await
            .ok();
        let p = position(&r);
        assert!(p > last, "positions grow: {p} after {last}");
        last = p;
        let id = r.id();
        let f = app.get(&format!("/families/{id}"), &app.admin_token).await.ok();
        assert_eq!(f.data()["family_name"], name);
        let list = app.get("/families?limit=1", &app.admin_token).await.ok();
        assert_eq!(list.data()["total"], i + 1);
        let found = app
            .get(&format!("/families?search={}", urlencoding(&name)), &app.admin_token)
            .await
            .ok();
        assert_eq!(found.data()["families"][0]["id"], id.as_str());
        let r = app
            .patch(
                &format!("/families/{id}"),
                &app.admin_token,
                json!({"family_name": format!("{name}改")}),
            )
            .await
            .ok();
        assert!(position(&r) > p);
        let f = app.get(&format!("/families/{id}"), &app.admin_token).await.ok();
        assert_eq!(f.data()["family_name"], format!("{name}改"));
    }
    // A read names no position of its own.
    let r = app.get("/families?limit=1", &app.admin_token).await.ok();
    assert!(r.headers.get("x-carelog-position").is_none());
}

fn urlencoding(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// `X-Carelog-Position` on a request: anything but a whole number from 0 is
/// refused, naming the header; a position the store does not hold yet is not
/// waited for (a client cannot hold its reads for the wait's whole bound).
async fn a_named_position_is_a_whole_number_and_never_past_the_head(b: Backend) {
    let app = spawn_app(b).await;
    let fam = app.family("位置家").await;
    let path = format!("/families/{fam}");
    let get = |position: String| {
        let (app, path) = (&app, &path);
        async move {
            app.send(
                Method::GET,
                path,
                Some(&app.admin_token),
                None,
                &[("X-Carelog-Position", &position)],
            )
            .await
        }
    };
    for bad in ["-1", "abc", "1.5", "99999999999999999999"] {
        let r = get(bad.to_string()).await.err(400, "validation_failed");
        let message = r.body["message"].as_str().unwrap();
        assert!(message.contains("X-Carelog-Position"), "{}", r.body);
    }
    let head = app.event_count().await;
    let started = std::time::Instant::now();
    let r = get((head + 1_000_000).to_string()).await.ok();
    assert_eq!(r.data()["family_name"], "位置家");
    // The wait's bound is ten seconds: an answer well before it did not wait.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "a position past the head was waited for"
    );
    let r = get(head.to_string()).await.ok();
    assert_eq!(r.data()["family_name"], "位置家");
}

/// `CARELOG_PROJECTION_MAX_BEHIND=0`: a command answers only once the read
/// models show it, so the read models read as they are, without the read's
/// own wait, already hold every household created.
async fn with_no_lead_allowed_a_command_answers_once_the_read_models_show_it(b: Backend) {
    let app = spawn_app_with(b, &[("CARELOG_PROJECTION_MAX_BEHIND", "0".to_string())]).await;
    let today = crate::helpers::today();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (client, url, token) = (app.client.clone(), app.url("/families"), app.admin_token.clone());
        let state = app.state.clone();
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"family_name": format!("等读{i}家"), "primary_address": "上海", "contact_phone": "13912345678"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            let v: serde_json::Value = r.json().await.unwrap();
            let id: domain::ids::FamilyId = v["data"]["id"].as_str().unwrap().parse().unwrap();
            let shown = state.read_now().families().get(id, today, None).await.unwrap();
            assert_eq!(shown.map(|f| f.family_name), Some(format!("等读{i}家")));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
