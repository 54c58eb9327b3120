//! `GET /health`: the state of each dependency; 503 when one is down.

use actix_web::{http::StatusCode, web, HttpResponse};
use serde_json::json;

use crate::state::AppState;

#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "{status, database, read_store, broker}"), (status = 503)))]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let (db, read) = tokio::join!(state.store.ping(), state.read.ping());
    let up = up_down;
    let (broker, broker_ok, relay_lag) = match &state.relay {
        None => ("disabled", true, json!(null)),
        Some(relay) => {
            let up = relay.probe().await;
            let lag = match (state.store.head().await, crate::relay::checkpoint(&state.store).await) {
                (Ok(head), Ok(cp)) => json!(head - cp),
                _ => json!(null),
            };
            (up_down(up), up, lag)
        }
    };
    let healthy = db && read && broker_ok;
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let lag = match (state.store.head().await, state.read.min_checkpoint().await) {
        (Ok(head), Ok(cp)) => json!(head - cp),
        _ => json!(null),
    };
    let data = json!({
        "status": if healthy { "ok" } else { "degraded" },
        "database": up(db),
        "read_store": up(read),
        "broker": broker,
        "projection_lag": lag,
        "relay_lag": relay_lag,
    });
    let mut body =
        json!({ "code": status.as_u16(), "message": if healthy { "成功" } else { "服务暂不可用" }, "data": data });
    if !healthy {
        body["error"] = json!("unavailable");
    }
    HttpResponse::build(status).json(body)
}

fn up_down(b: bool) -> &'static str {
    if b {
        "up"
    } else {
        "down"
    }
}
