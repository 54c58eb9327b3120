//! `GET /metrics` in the Prometheus text format (the `prometheus` crate).
//!
//! Request latency per route (the route pattern, never the concrete path: ids
//! would make a series per patient), commands per aggregate and outcome,
//! rate-limited requests, login attempts and WeChat pushes, and, read at scrape time,
//! projection and relay lag in events and seconds, and the database pools' open
//! and idle connections.
//!
//! Where it is served (`crate::api::metrics`): on `CARELOG_METRICS_BIND` when
//! set (a private listener, no token), else on the API listener for admins only.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

struct Metrics {
    registry: Registry,
    requests: HistogramVec,
    commands: IntCounterVec,
    rate_limited: IntCounter,
    logins: IntCounterVec,
    pushes: IntCounterVec,
    projection_lag: IntGauge,
    relay_lag: IntGauge,
    projection_lag_seconds: prometheus::Gauge,
    relay_lag_seconds: prometheus::Gauge,
    pools: prometheus::IntGaugeVec,
    head: IntGauge,
    read_your_writes: prometheus::Histogram,
    projection_delay: prometheus::Histogram,
    job_runs: IntCounterVec,
    job_last_run: prometheus::IntGaugeVec,
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
        let pushes = IntCounterVec::new(
            Opts::new(
                "carelog_wechat_pushes_total",
                "WeChat subscribe messages by outcome (sent, failed, skipped)",
            ),
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
        let latency_buckets = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
        ];
        let read_your_writes = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "carelog_read_your_writes_seconds",
                "How long a read waited until the read models showed what its request must see (its caller's writes)",
            )
            .buckets(latency_buckets),
        )
        .unwrap_or_else(|e| unreachable!("static metric options: {e}"));
        let projection_delay = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "carelog_projection_delay_seconds",
                "From an event's append until every read model shows it (per applied batch, its oldest event)",
            )
            // Finer around the target (p99 < 100 ms under load).
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
        )
        .unwrap_or_else(|e| unreachable!("static metric options: {e}"));
        let job_runs = IntCounterVec::new(
            Opts::new(
                "carelog_job_runs_total",
                "Scheduled job periods run by this process, by job",
            ),
            &["job"],
        )
        .unwrap_or_else(|e| unreachable!("static metric options: {e}"));
        let job_last_run = prometheus::IntGaugeVec::new(
            Opts::new(
                "carelog_job_last_run_timestamp_seconds",
                "When each scheduled job last ran (any instance), Unix seconds",
            ),
            &["job"],
        )
        .unwrap_or_else(|e| unreachable!("static metric options: {e}"));
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(job_runs.clone()),
            Box::new(job_last_run.clone()),
            Box::new(commands.clone()),
            Box::new(rate_limited.clone()),
            Box::new(logins.clone()),
            Box::new(pushes.clone()),
            Box::new(projection_lag.clone()),
            Box::new(relay_lag.clone()),
            Box::new(projection_lag_seconds.clone()),
            Box::new(relay_lag_seconds.clone()),
            Box::new(pools.clone()),
            Box::new(head.clone()),
            Box::new(read_your_writes.clone()),
            Box::new(projection_delay.clone()),
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
            pushes,
            projection_lag,
            relay_lag,
            projection_lag_seconds,
            relay_lag_seconds,
            pools,
            head,
            read_your_writes,
            projection_delay,
            job_runs,
            job_last_run,
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

/// Observes how long a read waited for its request's writes.
pub fn read_your_writes(waited: std::time::Duration) {
    metrics().read_your_writes.observe(waited.as_secs_f64());
}

/// Observes how long after its append a batch's oldest event reached every
/// read model.
pub fn projection_delay(since_append: chrono::Duration) {
    let secs = since_append.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
    metrics().projection_delay.observe(secs.max(0.0));
}

/// Counts one period of a scheduled job run by this process.
pub fn job_ran(job: &str) {
    metrics().job_runs.with_label_values(&[job]).inc();
}

/// Counts one request refused by the rate limit.
pub fn rate_limited() {
    metrics().rate_limited.inc();
}

/// Counts one login attempt (`succeeded`, `failed`, `throttled`).
pub fn login(outcome: &str) {
    metrics().logins.with_label_values(&[outcome]).inc();
}

/// Counts one WeChat send (`sent`, `failed`, `skipped`).
pub fn push(outcome: &str) {
    metrics().pushes.with_label_values(&[outcome]).inc();
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

/// What is read from the stores at scrape time.
#[derive(Debug, Default)]
pub struct Readings {
    /// The event store's head position.
    pub head: i64,
    /// The lowest projector checkpoint and how long its next event has waited.
    pub projection: Option<(i64, f64)>,
    /// The relay's checkpoint and how long its next event has waited (when it runs).
    pub relay: Option<(i64, f64)>,
    /// Database pools: name, open connections, idle connections.
    pub pools: Vec<(&'static str, u32, usize)>,
    /// Each scheduled job's last run (Unix seconds), from the read model.
    pub jobs: Vec<(String, i64)>,
}

/// The text exposition, with the readings of this scrape.
pub fn render(readings: &Readings) -> String {
    let m = metrics();
    m.head.set(readings.head);
    if let Some((cp, secs)) = readings.projection {
        m.projection_lag.set(readings.head - cp);
        m.projection_lag_seconds.set(secs);
    }
    if let Some((cp, secs)) = readings.relay {
        m.relay_lag.set(readings.head - cp);
        m.relay_lag_seconds.set(secs);
    }
    for (name, open, idle) in &readings.pools {
        m.pools.with_label_values(&[name, "open"]).set(i64::from(*open));
        m.pools.with_label_values(&[name, "idle"]).set(*idle as i64);
    }
    for (job, at) in &readings.jobs {
        m.job_last_run.with_label_values(&[job]).set(*at);
        m.job_runs.with_label_values(&[job]);
    }
    let mut out = Vec::new();
    // Encoding into a Vec cannot fail for well-formed metrics.
    let _ = TextEncoder::new().encode(&m.registry.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}
