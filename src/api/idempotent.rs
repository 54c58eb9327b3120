//! The `Idempotency-Key` middleware: a command with a key is reserved,
//! run once, and its response stored ([`crate::idempotency`] keeps them); a
//! repeat gets that response back after passing again what the first request
//! passed (see [`crate::idempotency`]'s docs).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use actix_web::body::{to_bytes, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::api::error::{respond, ApiError};
use crate::api::extract::authenticate;
use crate::app::error::AppError;
use crate::app::refusal::Refusal;
use crate::auth::TokenKind;
use crate::idempotency::{complete, release, reserve, Answer, Reservation, WAIT_FOR_FIRST};
use crate::state::AppState;

fn replay(status: u16, body: String) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header(("Idempotent-Replayed", "true"))
        .body(body)
}

/// The most a command's body may be, by its content type: the multipart form
/// limit for uploads, the JSON limit otherwise.
fn body_limit(req: &ServiceRequest, state: &AppState) -> usize {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/"));
    if multipart {
        state.settings.limits.max_form_bytes
    } else {
        state.settings.limits.max_json_bytes
    }
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
    // Login, refresh and logout answer with live tokens: never stored.
    let auth_route = req.path().starts_with("/api/v1/auth/");
    let (Some(key), true, false) = (key, is_command, auth_route) else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    if key.is_empty() || key.len() > 255 {
        let e = AppError::field("Idempotency-Key", "长度应为1到255个字符");
        return Ok(req.into_response(respond(e)));
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    // Who asks, checked as the handler would, before anything is read or written.
    let principal = match authenticate(&state, req.request(), TokenKind::Access).await {
        Ok(p) => p,
        Err(e) => return Ok(req.into_response(respond(e))),
    };
    req.extensions_mut().insert(principal.clone());
    let scope = principal.user_id.to_string();

    let limit = body_limit(&req, &state);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Ok(req.into_response(respond(AppError::PayloadTooLarge)));
    }
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            return Ok(req.into_response(respond(AppError::PayloadTooLarge)));
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

    let ttl = state.settings.limits.idempotency_ttl_secs;
    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    loop {
        match reserve(&state.store, &scope, &key, &fingerprint, ttl)
            .await
            .map_err(ApiError::from)?
        {
            Reservation::New => break,
            Reservation::Done {
                fingerprint: f,
                status,
                body,
                guards,
                position,
            } => {
                if f != fingerprint {
                    return Ok(req.into_response(respond(AppError::IdempotencyKeyReused)));
                }
                // Checks that cannot be read fail closed: refused, not answered.
                let Some(guards) = guards else {
                    return Ok(req.into_response(respond(AppError::NotFound("resource"))));
                };
                for guard in &guards {
                    if !guard.holds(&state, &principal).await.map_err(ApiError)? {
                        return Ok(req.into_response(respond(guard.refusal())));
                    }
                }
                // The first answer's position, named again by the
                // consistency middleware around this one.
                crate::fence::committed(position);
                return Ok(req.into_response(replay(status, body)));
            }
            Reservation::InFlight if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Reservation::InFlight => {
                let e = AppError::Refused(Refusal::RequestInProgress);
                return Ok(req.into_response(respond(e)));
            }
        }
    }

    req.set_payload(actix_web::dev::Payload::from(body));
    let guards = Rc::new(RefCell::new(Vec::new()));
    let res = crate::policy::remembering(guards.clone(), next.call(req)).await;
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
        .map_err(|_| ApiError(AppError::internal(anyhow::anyhow!("response body"))))?;
    if status.is_server_error() || status == StatusCode::UNAUTHORIZED {
        release(&state.store, &scope, &key).await.map_err(ApiError::from)?;
    } else {
        let text = String::from_utf8_lossy(&bytes);
        let guards = guards.borrow().clone();
        let answer = Answer {
            status: status.as_u16(),
            body: &text,
            guards: &guards,
            position: crate::fence::committed_so_far(),
        };
        complete(&state.store, &scope, &key, answer)
            .await
            .map_err(ApiError::from)?;
    }
    let response = head.set_body(bytes).map_into_boxed_body();
    Ok(ServiceResponse::new(http_req, response))
}
