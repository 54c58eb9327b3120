use reqwest::Method;
use serde_json::json;

use crate::dual;
use crate::helpers::{spawn_app, Backend, ADMIN_PASSWORD};

dual!(
    login_returns_tokens_and_user,
    wrong_password_is_401,
    logout_revokes_the_session_at_once,
    suspension_takes_effect_on_the_next_request,
    refresh_issues_a_new_access_token,
);

async fn login_returns_tokens_and_user(b: Backend) {
    let app = spawn_app(b).await;
    let r = app
        .send(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
            &[],
        )
        .await
        .ok();
    let d = r.data();
    assert!(d["access_token"].is_string() && d["refresh_token"].is_string());
    assert_eq!(d["user"]["username"], "admin");
    assert_eq!(d["user"]["role"], "admin");
    assert_eq!(d["user"]["name"], "管理员");
    assert!(d["user"]["id"].is_string());
    assert!(d["user"].as_object().unwrap().contains_key("avatar"));
    let me = app.get("/auth/me", &app.admin_token).await.ok();
    assert_eq!(me.data()["username"], "admin");
    assert!(me.data().get("password_hash").is_none(), "no hash leaks");
}

async fn wrong_password_is_401(b: Backend) {
    let app = spawn_app(b).await;
    for body in [
        json!({"username": "admin", "password": "wrong-password"}),
        json!({"username": "nobody", "password": "wrong-password"}),
    ] {
        app.send(Method::POST, "/auth/login", None, Some(body), &[])
            .await
            .err(401, "unauthorized");
    }
    app.send(Method::GET, "/auth/me", None, None, &[])
        .await
        .err(401, "unauthorized");
    app.send(Method::GET, "/auth/me", Some("garbage"), None, &[])
        .await
        .err(401, "unauthorized");
}

async fn logout_revokes_the_session_at_once(b: Backend) {
    let app = spawn_app(b).await;
    let r = app
        .send(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
            &[],
        )
        .await
        .ok();
    let access = r.data()["access_token"].as_str().unwrap().to_string();
    let refresh = r.data()["refresh_token"].as_str().unwrap().to_string();
    app.get("/auth/me", &access).await.ok();
    app.send(Method::POST, "/auth/logout", Some(&access), None, &[])
        .await
        .ok();
    app.get("/auth/me", &access).await.err(401, "unauthorized");
    app.send(Method::POST, "/auth/refresh", Some(&refresh), None, &[])
        .await
        .err(401, "unauthorized");
    // Other sessions of the same user are untouched.
    app.get("/auth/me", &app.admin_token).await.ok();
}

async fn suspension_takes_effect_on_the_next_request(b: Backend) {
    let app = spawn_app(b).await;
    let (id, token) = app.recorder(1).await;
    app.get("/auth/me", &token).await.ok();
    app.patch(
        &format!("/users/{id}/status"),
        &app.admin_token,
        json!({"status": "suspended"}),
    )
    .await
    .ok();
    app.get("/auth/me", &token).await.err(401, "unauthorized");
    app.send(
        Method::POST,
        "/auth/login",
        None,
        Some(json!({"username": "recorder1", "password": "recorder-pass"})),
        &[],
    )
    .await
    .err(401, "unauthorized");
    app.patch(
        &format!("/users/{id}/status"),
        &app.admin_token,
        json!({"status": "active"}),
    )
    .await
    .ok();
    app.login("recorder1", "recorder-pass").await;
}

async fn refresh_issues_a_new_access_token(b: Backend) {
    let app = spawn_app(b).await;
    let r = app
        .send(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
            &[],
        )
        .await
        .ok();
    let refresh = r.data()["refresh_token"].as_str().unwrap().to_string();
    let access = r.data()["access_token"].as_str().unwrap().to_string();
    // A refresh token is not an access token, and vice versa.
    app.get("/auth/me", &refresh).await.err(401, "unauthorized");
    app.send(Method::POST, "/auth/refresh", Some(&access), None, &[])
        .await
        .err(401, "unauthorized");
    let new = app
        .send(Method::POST, "/auth/refresh", Some(&refresh), None, &[])
        .await
        .ok();
    let new_access = new.data()["access_token"].as_str().unwrap().to_string();
    app.get("/auth/me", &new_access).await.ok();
}

/// Session checks are kept a moment (`CARELOG_SESSION_CACHE_SECS`): a logout
/// through this instance is refused here at once, and through another
/// instance on the same databases once that moment has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_elsewhere_is_refused_here_once_the_session_cache_has_expired() {
    let app =
        crate::helpers::spawn_app_with(Backend::Servers, &[("CARELOG_SESSION_CACHE_SECS", "1".to_string())]).await;
    let other = crate::helpers::second_instance(&app).await;
    let other_base = other.base.clone();
    let me_there = |token: String| {
        let client = app.client.clone();
        let url = format!("{other_base}/auth/me");
        async move { client.get(url).bearer_auth(token).send().await.unwrap().status() }
    };

    let (_, token) = app.recorder(1).await;
    // Checked (and kept) on both instances.
    app.get("/auth/me", &token).await.ok();
    assert_eq!(me_there(token.clone()).await, 200);

    // Logged out through the other instance: refused there at once...
    let r = app
        .client
        .post(format!("{other_base}/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(me_there(token.clone()).await, 401);
    // ...and here once the kept check has expired (bounded wait, not a timing assertion).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = app.get("/auth/me", &token).await.status;
        if status == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {status} long after the cache time"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
