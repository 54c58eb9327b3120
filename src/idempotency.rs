//! `Idempotency-Key` for commands. The first request with a key (per user)
//! reserves it in the event store's database, runs, and stores its response; a
//! repeat with the same body gets that response back and writes nothing; a
//! repeat with another body gets 422. Concurrent repeats wait for the first.
//!
//! Creates derive the new aggregate's id from the key, so even if the process
//! dies between committing the events and storing the response, a retry lands
//! on the same aggregate (and is refused as existing) instead of making a twin.

use std::time::Duration;

use actix_web::body::{to_bytes, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::{Principal, TokenKind};
use crate::error::ApiError;
use crate::state::{AppState, RequestMeta};
use crate::store::{on_backend, Backend, EventStore};

/// Largest request body the middleware buffers to fingerprint.
const MAX_BUFFERED: usize = 64 * 1024 * 1024;
/// How long a repeat waits for the first request to finish.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(30);
/// A reservation without a response older than this is considered abandoned.
const ABANDONED_SECS: i64 = 60;

const NAMESPACE: Uuid = Uuid::from_u128(0x6361_7265_6c6f_6700_0000_0000_0000_0001);

/// The id of a new aggregate: derived from the caller and the idempotency key
/// when there is one, random otherwise.
pub fn new_id(meta: &RequestMeta, p: &Principal) -> Uuid {
    match &meta.idempotency_key {
        Some(key) => Uuid::new_v5(&NAMESPACE, format!("{}:{key}", p.user_id).as_bytes()),
        None => Uuid::new_v4(),
    }
}

enum Reservation {
    New,
    Done {
        fingerprint: String,
        status: u16,
        body: String,
    },
    InFlight,
}

async fn reserve(store: &EventStore, scope: &str, key: &str, fingerprint: &str) -> Result<Reservation, sqlx::Error> {
    let insert = "INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
    let n = on_backend!(store.backend(), |pool| sqlx::query(insert)
        .bind(scope)
        .bind(key)
        .bind(fingerprint)
        .execute(pool)
        .await?
        .rows_affected());
    if n == 1 {
        return Ok(Reservation::New);
    }
    let select =
        "SELECT fingerprint, response_status, response_body FROM idempotency_keys WHERE scope = $1 AND key = $2";
    let row: Option<(String, Option<i32>, Option<String>)> =
        on_backend!(store.backend(), |pool| sqlx::query_as(select)
            .bind(scope)
            .bind(key)
            .fetch_optional(pool)
            .await?);
    match row {
        None => Ok(Reservation::InFlight),
        Some((fingerprint, Some(status), body)) => Ok(Reservation::Done {
            fingerprint,
            status: status as u16,
            body: body.unwrap_or_default(),
        }),
        Some((_, None, _)) => {
            let taken = match store.backend() {
                Backend::Postgres(pool) => sqlx::query(
                    "UPDATE idempotency_keys SET created_at = now(), fingerprint = $3
                     WHERE scope = $1 AND key = $2 AND response_status IS NULL
                       AND created_at < now() - make_interval(secs => $4)",
                )
                .bind(scope)
                .bind(key)
                .bind(fingerprint)
                .bind(ABANDONED_SECS as f64)
                .execute(pool)
                .await?
                .rows_affected(),
                Backend::Sqlite(pool) => sqlx::query(
                    "UPDATE idempotency_keys SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), fingerprint = $3
                     WHERE scope = $1 AND key = $2 AND response_status IS NULL
                       AND created_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || $4 || ' seconds')",
                )
                .bind(scope)
                .bind(key)
                .bind(fingerprint)
                .bind(ABANDONED_SECS)
                .execute(pool)
                .await?
                .rows_affected(),
            };
            Ok(if taken == 1 {
                Reservation::New
            } else {
                Reservation::InFlight
            })
        }
    }
}

async fn complete(store: &EventStore, scope: &str, key: &str, status: u16, body: &str) -> Result<(), sqlx::Error> {
    let sql = "UPDATE idempotency_keys SET response_status = $3, response_body = $4 WHERE scope = $1 AND key = $2";
    on_backend!(store.backend(), |pool| sqlx::query(sql)
        .bind(scope)
        .bind(key)
        .bind(i32::from(status))
        .bind(body)
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(())
}

async fn release(store: &EventStore, scope: &str, key: &str) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND response_status IS NULL";
    on_backend!(store.backend(), |pool| sqlx::query(sql)
        .bind(scope)
        .bind(key)
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(())
}

fn replay(status: u16, body: String) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header(("Idempotent-Replayed", "true"))
        .body(body)
}

pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let is_command = matches!(
        *req.method(),
        Method::POST | Method::PATCH | Method::PUT | Method::DELETE
    );
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| k.trim().to_string());
    let (Some(key), true) = (key, is_command) else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    if key.is_empty() || key.len() > 255 {
        let e = ApiError::field("Idempotency-Key", "长度应为1到255个字符");
        return Ok(req.into_response(e.error_response()));
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    // Scope keys by the verified caller; an invalid token shares the anonymous scope
    // and will be refused by the handler anyway.
    let scope = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| state.jwt.verify(t.trim(), TokenKind::Access).ok())
        .map(|c| c.sub)
        .unwrap_or_else(|| "anonymous".into());

    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > MAX_BUFFERED {
            return Ok(req.into_response(ApiError::PayloadTooLarge.error_response()));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let mut h = Sha256::new();
    h.update(req.method().as_str());
    h.update(b" ");
    h.update(req.uri().to_string());
    h.update(b"\n");
    h.update(&body);
    let fingerprint = hex::encode(h.finalize());

    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    loop {
        match reserve(&state.store, &scope, &key, &fingerprint)
            .await
            .map_err(ApiError::from)?
        {
            Reservation::New => break,
            Reservation::Done {
                fingerprint: f,
                status,
                body,
            } => {
                let response = if f == fingerprint {
                    replay(status, body)
                } else {
                    ApiError::IdempotencyKeyReused.error_response()
                };
                return Ok(req.into_response(response));
            }
            Reservation::InFlight if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Reservation::InFlight => {
                let e = ApiError::Conflict("相同幂等键的请求仍在处理中".into());
                return Ok(req.into_response(e.error_response()));
            }
        }
    }

    req.set_payload(actix_web::dev::Payload::from(body));
    let res = next.call(req).await;
    let res = match res {
        Ok(r) => r,
        Err(e) => {
            release(&state.store, &scope, &key).await.map_err(ApiError::from)?;
            return Err(e);
        }
    };
    let status = res.status();
    let (http_req, response) = res.into_parts();
    let (head, body) = response.into_parts();
    let bytes = to_bytes(body)
        .await
        .map_err(|_| ApiError::internal(anyhow::anyhow!("response body")))?;
    if status.is_server_error() {
        release(&state.store, &scope, &key).await.map_err(ApiError::from)?;
    } else {
        let text = String::from_utf8_lossy(&bytes);
        complete(&state.store, &scope, &key, status.as_u16(), &text)
            .await
            .map_err(ApiError::from)?;
    }
    let response = head.set_body(bytes).map_into_boxed_body();
    Ok(ServiceResponse::new(http_req, response))
}
