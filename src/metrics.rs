//! `GET /metrics` in the Prometheus text format (the `prometheus` crate).
//!
//! Request latency per route (the route pattern, never the concrete path: ids
//! would make a series per patient), commands per aggregate and outcome,
//! rate-limited requests and login attempts, and, read at scrape time,
//! projection and relay lag in events and seconds, and the database pools' open
//! and idle connections.
//!
//! Where it is served: on `CARELOG_METRICS_BIND` when set (a private listener,
//! no token), else on the API listener for admins only.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

struct Metrics {
    registry: Registry,
    requests: HistogramVec,
    commands: IntCounterVec,
    rate_limited: IntCounter,
    logins: IntCounterVec,
    projection_lag: IntGauge,
    relay_lag: IntGauge,
    projection_lag_seconds: prometheus::Gauge,
    relay_lag_seconds: prometheus::Gauge,
    pools: prometheus::IntGaugeVec,
    head: IntGauge,
    read_your_writes: prometheus::Histogram,
}

fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let registry = Registry::new();
        let requests = HistogramVec::new(
            HistogramOpts::new("carelog_http_request_duration_seconds", "HTTP request latency by route").buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route", "status"],
        )
        .unwrap_or_else(|e| unreachable!("static metric options: {e}"));
        let commands = IntCounterVec::new(
            Opts::new(
                "carelog_commands_total",
                "Commands executed, by aggregate type and outcome",
            ),
            &["aggregate", "outcome"],
        )
        .unwrap_or_else(|e| unreachable!("static metric options: {e}"));
        let rate_limited = IntCounter::new(
            "carelog_rate_limited_total",
            "Requests refused by the per-IP rate limit",
        )
        .unwrap_or_else(|e| unreachable!("static metric options: {e}"));
        let logins = IntCounterVec::new(
            Opts::new("carelog_login_attempts_total", "Login attempts by outcome"),
            &["outcome"],
        )
        .unwrap_or_else(|e| unreachable!("static metric options: {e}"));
        let gauge = |name: &str, help: &str| {
            IntGauge::new(name, help).unwrap_or_else(|e| unreachable!("static metric options: {e}"))
        };
        let projection_lag = gauge(
            "carelog_projection_lag_events",
            "Events committed but not yet in every read model",
        );
        let relay_lag = gauge(
            "carelog_relay_lag_events",
            "Events committed but not yet acknowledged by Kafka",
        );
        let head = gauge("carelog_event_store_head", "Global position of the newest event");
        let seconds = |name: &str, help: &str| {
            prometheus::Gauge::new(name, help).unwrap_or_else(|e| unreachable!("static metric options: {e}"))
        };
        let projection_lag_seconds = seconds(
            "carelog_projection_lag_seconds",
            "Age of the oldest event not yet in every read model (0 when caught up)",
        );
        let relay_lag_seconds = seconds(
            "carelog_relay_lag_seconds",
            "Age of the oldest event not yet acknowledged by Kafka (0 when caught up)",
        );
        let pools = prometheus::IntGaugeVec::new(
            Opts::new(
                "carelog_db_pool_connections",
                "Database pool connections by pool and state (open, idle)",
            ),
            &["pool", "state"],
        )
        .unwrap_or_else(|e| unreachable!("static metric options: {e}"));
        let read_your_writes = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "carelog_read_your_writes_seconds",
                "From a command's commit until every read model shows it (what the command's caller waits)",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
        )
        .unwrap_or_else(|e| unreachable!("static metric options: {e}"));
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(commands.clone()),
            Box::new(rate_limited.clone()),
            Box::new(logins.clone()),
            Box::new(projection_lag.clone()),
            Box::new(relay_lag.clone()),
            Box::new(projection_lag_seconds.clone()),
            Box::new(relay_lag_seconds.clone()),
            Box::new(pools.clone()),
            Box::new(head.clone()),
            Box::new(read_your_writes.clone()),
        ] {
            // Names are distinct and static: registering cannot clash.
            let _ = registry.register(c);
        }
        Metrics {
            registry,
            requests,
            commands,
            rate_limited,
            logins,
            projection_lag,
            relay_lag,
            projection_lag_seconds,
            relay_lag_seconds,
            pools,
            head,
            read_your_writes,
        }
    })
}

/// Counts one command on `aggregate`.
pub fn command(aggregate: &str, ok: bool) {
    metrics()
        .commands
        .with_label_values(&[aggregate, if ok { "ok" } else { "error" }])
        .inc();
}

/// Observes how long a command waited for its read models.
pub fn read_your_writes(waited: std::time::Duration) {
    metrics().read_your_writes.observe(waited.as_secs_f64());
}

/// Counts one request refused by the rate limit.
pub fn rate_limited() {
    metrics().rate_limited.inc();
}

/// Counts one login attempt (`succeeded`, `failed`, `throttled`).
pub fn login(outcome: &str) {
    metrics().logins.with_label_values(&[outcome]).inc();
}

/// Times every request by its route pattern.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let res = next.call(req).await?;
    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_string());
    metrics()
        .requests
        .with_label_values(&[method.as_str(), route.as_str(), res.status().as_str()])
        .observe(started.elapsed().as_secs_f64());
    Ok(res)
}

/// The text exposition, with the lags read now.
pub async fn render(state: &AppState) -> String {
    let m = metrics();
    if let Ok(head) = state.store.head().await {
        m.head.set(head);
        if let Ok(cp) = state.read.min_checkpoint().await {
            m.projection_lag.set(head - cp);
            m.projection_lag_seconds.set(lag_seconds(state, cp, head).await);
        }
        if state.relay.is_some() {
            if let Ok(cp) = crate::relay::checkpoint(&state.store).await {
                m.relay_lag.set(head - cp);
                m.relay_lag_seconds.set(lag_seconds(state, cp, head).await);
            }
        }
    }
    let pool = |name: &str, open: u32, idle: usize| {
        m.pools.with_label_values(&[name, "open"]).set(i64::from(open));
        m.pools.with_label_values(&[name, "idle"]).set(idle as i64);
    };
    match state.store.backend() {
        crate::store::Backend::Postgres(p) => pool("events", p.size(), p.num_idle()),
        crate::store::Backend::Sqlite(db) => {
            pool("events", db.read.size(), db.read.num_idle());
            pool("events_writer", db.write.size(), db.write.num_idle());
        }
    }
    pool("read", state.read.pool().size(), state.read.pool().num_idle());
    if state.read.dialect() == projections::Dialect::Sqlite {
        pool(
            "read_writer",
            state.read.writer().size(),
            state.read.writer().num_idle(),
        );
    }
    let mut out = Vec::new();
    // Encoding into a Vec cannot fail for well-formed metrics.
    let _ = TextEncoder::new().encode(&m.registry.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
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
    Ok(exposition(render(&state).await))
}

/// `GET /metrics` on the private metrics listener (`CARELOG_METRICS_BIND`).
pub async fn private_metrics(state: web::Data<AppState>) -> HttpResponse {
    exposition(render(&state).await)
}

/// Serves `/metrics` alone on `bind`.
pub fn serve_private(state: AppState, bind: std::net::SocketAddr) -> Result<(actix_web::dev::Server, u16), ApiError> {
    let listener = std::net::TcpListener::bind(bind).map_err(ApiError::internal)?;
    let port = listener.local_addr().map_err(ApiError::internal)?.port();
    let data = web::Data::new(state);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .route("/metrics", web::get().to(private_metrics))
    })
    .workers(1)
    .listen(listener)
    .map_err(ApiError::internal)?
    .run();
    Ok((server, port))
}
