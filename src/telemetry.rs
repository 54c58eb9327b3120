//! Logging: one `tracing` subscriber for the process, and a middleware that
//! gives every request an id, a span carrying it (so every log line of the
//! request shows it), and an `X-Request-Id` response header.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

tokio::task_local! {
    /// The current request's id, set by the request-id middleware.
    pub static REQUEST_ID: String;
}

/// The id of the request being handled, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

/// Installs the global subscriber: `RUST_LOG` filters (default `info`),
/// `CARELOG_LOG_FORMAT=json` switches to JSON lines. Safe to call twice.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if std::env::var("CARELOG_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // Accept a caller's id only if it looks like one (it ends up in logs).
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.path());
    let started = Instant::now();
    let result = REQUEST_ID
        .scope(id.clone(), next.call(req).instrument(span.clone()))
        .await;
    let _enter = span.enter();
    match result {
        Ok(mut res) => {
            tracing::info!(
                status = res.status().as_u16(),
                ms = started.elapsed().as_millis() as u64,
                "request done"
            );
            if let Ok(v) = HeaderValue::from_str(&id) {
                res.headers_mut().insert(HeaderName::from_static("x-request-id"), v);
            }
            Ok(res)
        }
        Err(e) => {
            tracing::warn!(error = %e, "request failed");
            Err(e)
        }
    }
}
