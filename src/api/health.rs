//! `GET /health`: the state of each dependency; 503 when one is down.

use actix_web::{http::StatusCode, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// The state of each dependency.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthStatus {
    /// `ok` or `degraded`.
    pub status: String,
    /// The event store: `up` or `down`.
    pub database: String,
    /// The read store: `up` or `down`.
    pub read_store: String,
    /// The Kafka broker: `up`, `down` or `disabled`.
    pub broker: String,
    /// Events committed but not yet in every read model (null: unknown).
    pub projection_lag: Option<i64>,
    /// Events committed but not yet acknowledged by Kafka (null: no broker, or unknown).
    pub relay_lag: Option<i64>,
}

/// The answer of `GET /health`, healthy or not: the envelope with the state in
/// `data`, and `error: unavailable` when degraded.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthBody {
    /// 200 or 503.
    pub code: u16,
    pub message: String,
    pub data: HealthStatus,
    /// `unavailable` when degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, body = HealthBody), (status = 503, description = "a dependency is down", body = HealthBody)))]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let (db, read) = tokio::join!(state.store.ping(), state.read_now().ping());
    let (broker, broker_ok, relay_lag) = match &state.relay {
        None => ("disabled", true, None),
        Some(relay) => {
            let up = relay.probe().await;
            let lag = match (state.store.head().await, crate::relay::checkpoint(&state.store).await) {
                (Ok(head), Ok(cp)) => Some(head - cp),
                _ => None,
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
    let projection_lag = match (state.store.head().await, state.read_now().min_checkpoint().await) {
        (Ok(head), Ok(cp)) => Some(head - cp),
        _ => None,
    };
    let body = HealthBody {
        code: status.as_u16(),
        message: if healthy { "成功" } else { "服务暂不可用" }.into(),
        data: HealthStatus {
            status: if healthy { "ok" } else { "degraded" }.into(),
            database: up_down(db).into(),
            read_store: up_down(read).into(),
            broker: broker.into(),
            projection_lag,
            relay_lag,
        },
        error: (!healthy).then(|| "unavailable".to_string()),
    };
    HttpResponse::build(status).json(body)
}

fn up_down(b: bool) -> &'static str {
    if b {
        "up"
    } else {
        "down"
    }
}
