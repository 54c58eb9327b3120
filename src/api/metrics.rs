//! `GET /metrics`: reads the lags and pools from the stores at scrape time and
//! renders the registry of [`crate::metrics`].

use actix_web::{web, HttpResponse};

use crate::api::error::ApiResult;
use crate::app::error::AppError;
use crate::auth::Principal;
use crate::backend::Backend;
use crate::metrics::{render, Readings};
use crate::state::AppState;

/// What the stores say now.
async fn read(state: &AppState) -> Readings {
    let mut r = Readings::default();
    if let Ok(head) = state.store.head().await {
        r.head = head;
        if let Ok(cp) = state.read_now().min_checkpoint().await {
            r.projection = Some((cp, lag_seconds(state, cp, head).await));
        }
        if state.relay.is_some() {
            if let Ok(cp) = crate::relay::checkpoint(&state.store).await {
                r.relay = Some((cp, lag_seconds(state, cp, head).await));
            }
        }
    }
    match state.store.backend() {
        Backend::Postgres(p) => r.pools.push(("events", p.size(), p.num_idle())),
        Backend::Sqlite(db) => {
            r.pools.push(("events", db.read.size(), db.read.num_idle()));
            r.pools.push(("events_writer", db.write.size(), db.write.num_idle()));
        }
    }
    if let Ok(runs) = state.read_now().jobs().latest_runs().await {
        r.jobs = runs
            .into_iter()
            .filter_map(|j| {
                let at = chrono::DateTime::parse_from_rfc3339(&j.recorded_at).ok()?;
                Some((j.job, at.timestamp()))
            })
            .collect();
    }
    r.pools.push((
        "read",
        state.read_now().pool().size(),
        state.read_now().pool().num_idle(),
    ));
    if state.read_now().dialect() == projections::Dialect::Sqlite {
        r.pools.push((
            "read_writer",
            state.read_now().writer().size(),
            state.read_now().writer().num_idle(),
        ));
    }
    r
}

/// How long the first event after `checkpoint` has waited (0 when caught up).
async fn lag_seconds(state: &AppState, checkpoint: i64, head: i64) -> f64 {
    if checkpoint >= head {
        return 0.0;
    }
    match state.store.read_raw_after(checkpoint, 1).await {
        Ok(next) => next
            .first()
            .and_then(|e| chrono::DateTime::parse_from_rfc3339(&e.recorded_at).ok())
            .map(|t| {
                (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                    .as_seconds_f64()
                    .max(0.0)
            })
            .unwrap_or(0.0),
        Err(_) => 0.0,
    }
}

fn exposition(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}

/// `GET /metrics` on the API listener: admins only.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain"),
        (status = 401, body = crate::api::ErrorBody), (status = 403, description = "not an admin", body = crate::api::ErrorBody)))]
pub async fn admin_metrics(state: web::Data<AppState>, p: Principal) -> ApiResult {
    p.require(&[domain::user::Role::Admin])?;
    Ok(exposition(render(&read(&state).await)))
}

/// `GET /metrics` on the private metrics listener (`CARELOG_METRICS_BIND`).
pub async fn private_metrics(state: web::Data<AppState>) -> HttpResponse {
    exposition(render(&read(&state).await))
}

/// Serves `/metrics` alone on `bind`.
pub fn serve_private(state: AppState, bind: std::net::SocketAddr) -> Result<(actix_web::dev::Server, u16), AppError> {
    let listener = std::net::TcpListener::bind(bind).map_err(AppError::internal)?;
    let port = listener.local_addr().map_err(AppError::internal)?.port();
    let data = web::Data::new(state);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .route("/metrics", web::get().to(private_metrics))
    })
    .workers(1)
    .listen(listener)
    .map_err(AppError::internal)?
    .run();
    Ok((server, port))
}
