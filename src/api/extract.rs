//! The request extractors: who is calling (`Principal`, from the bearer token
//! checked against its session) and the request facts every command records
//! (`RequestMeta`). They read the application state, so they live here, above
//! it, rather than in `auth` or `state`, which the state itself is made of.

use std::future::{ready, Future, Ready};
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use chrono::Utc;
use domain::user::{Role, UserStatus};

use crate::access_log::{ReadOrigin, MAX_USER_AGENT};
use crate::api::error::ApiError;
use crate::app::error::AppError;
use crate::auth::{Principal, TokenKind};
use crate::state::{AppState, RequestMeta};
use crate::telemetry::current_request_id;

fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Verifies a token of `kind` and checks its session and user are still good.
pub async fn authenticate(state: &AppState, req: &HttpRequest, kind: TokenKind) -> Result<Principal, AppError> {
    let token = bearer(req).ok_or(AppError::Unauthorized)?;
    let claims = state.jwt.verify(token, kind)?;
    let session = state
        .sessions
        .get_or_load(&claims.sid, async {
            match claims.sid.parse() {
                Ok(sid) => state.read().await.users().session(sid).await,
                Err(_) => Ok(None),
            }
        })
        .await?
        .ok_or(AppError::Unauthorized)?;
    let now = projections::store::instant(Utc::now());
    if session.revoked
        || session.user_status != UserStatus::Active
        || session.user_id.to_string() != claims.sub
        || session.expires_at < now
    {
        return Err(AppError::Unauthorized);
    }
    let principal = Principal {
        user_id: session.user_id,
        role: session.role,
        session_id: claims.sid.parse().map_err(|_| AppError::Unauthorized)?,
    };
    if principal.role == Role::Auditor && !auditor_may(req.method(), req.path()) {
        return Err(AppError::Forbidden);
    }
    Ok(principal)
}

/// Auditors read the audit endpoints (and the staff directory, to put names
/// on actor ids, the visit verification exceptions with their reason codes,
/// and the alerts, to follow abnormal readings to their end) and manage their
/// own session; nothing else, whatever a handler's own role list says.
fn auditor_may(method: &actix_web::http::Method, path: &str) -> bool {
    let path = path.trim_end_matches('/');
    if path.starts_with("/api/v1/auth/") {
        return true;
    }
    method == actix_web::http::Method::GET
        && (path.starts_with("/api/v1/audit/")
            || path == "/api/v1/users"
            || path.starts_with("/api/v1/users/")
            || path == "/api/v1/evv/exceptions"
            || path == "/api/v1/evv/reason-codes"
            || path == "/api/v1/alerts"
            || path.starts_with("/api/v1/alerts/"))
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            // Already checked for this request (the idempotency middleware does).
            if let Some(p) = req.extensions().get::<Principal>().cloned() {
                return Ok(p);
            }
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("app state missing")))?;
            Ok(authenticate(state, &req, TokenKind::Access).await?)
        })
    }
}

fn parse_if_match(raw: &str) -> Result<i64, AppError> {
    let v = raw.trim().trim_start_matches("W/").trim_matches('"');
    v.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| AppError::field("If-Match", "应为资源的版本号"))
}

impl FromRequest for RequestMeta {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let request_id = current_request_id().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let if_match = match header("if-match") {
            Some(raw) => match parse_if_match(&raw) {
                Ok(v) => Some(v),
                Err(e) => return ready(Err(e.into())),
            },
            None => None,
        };
        ready(Ok(RequestMeta {
            ip: crate::front_door::client_ip(req),
            user_agent: header("user-agent").unwrap_or_default(),
            correlation_id: header("x-correlation-id").unwrap_or_else(|| request_id.clone()),
            request_id,
            if_match,
            idempotency_key: header("idempotency-key")
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty()),
        }))
    }
}

/// The request facts an access record keeps, for use cases that read patient data.
impl FromRequest for ReadOrigin {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(Ok(read_origin(req)))
    }
}

/// See [`ReadOrigin`].
pub fn read_origin(req: &HttpRequest) -> ReadOrigin {
    ReadOrigin {
        endpoint: format!(
            "{} {}",
            req.method(),
            req.match_pattern().unwrap_or_else(|| req.path().to_string())
        ),
        path: req.path().to_string(),
        ip: crate::front_door::client_ip(req),
        user_agent: req
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(MAX_USER_AGENT)
            .collect(),
        request_id: current_request_id().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auditors_only_read_the_audit_trail() {
        use actix_web::http::Method;
        assert!(auditor_may(&Method::GET, "/api/v1/audit/events"));
        assert!(auditor_may(&Method::GET, "/api/v1/users/abc"));
        assert!(auditor_may(&Method::POST, "/api/v1/auth/logout"));
        assert!(!auditor_may(&Method::POST, "/api/v1/audit/events"));
        assert!(!auditor_may(&Method::POST, "/api/v1/families"));
        assert!(!auditor_may(&Method::GET, "/api/v1/patients/abc"));
        assert!(!auditor_may(&Method::PATCH, "/api/v1/users/abc/status"));
    }
}
