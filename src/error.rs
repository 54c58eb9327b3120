//! The one place where errors become HTTP responses. Every variant names its
//! status and stable `error` string; `message` is for people, in Chinese.
//! Internal errors are logged with their cause chain and reach the client only
//! as `internal` plus the request id.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use domain::{DomainError, FieldErrors};
use serde::Serialize;
use serde_json::{json, Value};

use crate::store::CommandError;

tokio::task_local! {
    /// The current request's id, set by the request-id middleware.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `validation_failed`: names every offending field in `details`.
    #[error("validation failed")]
    Validation(FieldErrors),
    /// 401 `unauthorized`: missing, invalid, expired or revoked credentials.
    #[error("unauthorized")]
    Unauthorized,
    /// 403 `forbidden`: the role may never do this.
    #[error("forbidden")]
    Forbidden,
    /// 404 `not_found`: absent, or not visible to this user.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409 `version_conflict`: `If-Match` named an older version.
    #[error("version conflict: expected {expected}, actual {actual}")]
    VersionConflict { expected: i64, actual: i64 },
    /// 409 `conflict`: a business rule refused the command.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 413 `payload_too_large`.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 415 `unsupported_media_type`.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// 429 `rate_limited`: too many requests from this IP, or too many failed
    /// logins for this username; `Retry-After` says how many seconds to wait.
    #[error("rate limited for {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// 422 `idempotency_key_reused`: same key, different request.
    #[error("idempotency key reused with another request")]
    IdempotencyKeyReused,
    /// 503 `unavailable`.
    #[error("service unavailable")]
    Unavailable,
    /// 500 `internal`.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn field(field: &str, reason: impl Into<String>) -> Self {
        let mut m = FieldErrors::new();
        m.insert(field.to_string(), reason.into());
        ApiError::Validation(m)
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }

    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Validation(_) => (StatusCode::BAD_REQUEST, "validation_failed"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::VersionConflict { .. } => (StatusCode::CONFLICT, "version_conflict"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::IdempotencyKeyReused => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::Validation(fields) => {
                let names: Vec<&str> = fields.keys().map(String::as_str).collect();
                format!("参数校验失败：{}", names.join("、"))
            }
            ApiError::Unauthorized => "未登录或登录已失效".into(),
            ApiError::Forbidden => "无权执行此操作".into(),
            ApiError::NotFound(what) => format!("资源不存在：{what}"),
            ApiError::VersionConflict { .. } => "数据已被他人修改，请刷新后重试".into(),
            ApiError::Conflict(reason) => reason.clone(),
            ApiError::PayloadTooLarge => "请求内容过大".into(),
            ApiError::UnsupportedMediaType(what) => format!("不支持的文件或内容类型：{what}"),
            ApiError::IdempotencyKeyReused => "幂等键已用于另一个不同的请求".into(),
            ApiError::RateLimited { retry_after } => format!("请求过于频繁，请{retry_after}秒后再试"),
            ApiError::Unavailable => "服务暂不可用".into(),
            ApiError::Internal(_) => "服务器内部错误".into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, error) = self.parts();
        let mut body = json!({
            "code": status.as_u16(),
            "message": self.message(),
            "data": Value::Null,
            "error": error,
        });
        match self {
            ApiError::Validation(fields) => body["details"] = json!(fields),
            ApiError::VersionConflict { actual, .. } => body["details"] = json!({ "current_version": actual }),
            ApiError::RateLimited { retry_after } => {
                body["details"] = json!({ "retry_after": retry_after });
                return HttpResponse::build(status)
                    .insert_header((actix_web::http::header::RETRY_AFTER, retry_after.to_string()))
                    .json(body);
            }
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                body["request_id"] = json!(current_request_id());
            }
            _ => {}
        }
        HttpResponse::build(status).json(body)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Validation(f) => ApiError::Validation(f),
            DomainError::NotFound(what) => ApiError::NotFound(what),
            DomainError::Conflict(reason) => ApiError::Conflict(reason),
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Domain(d) => d.into(),
            CommandError::VersionConflict { expected, actual } => ApiError::VersionConflict { expected, actual },
            CommandError::Store(s) => ApiError::Internal(anyhow::anyhow!(s)),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

/// The success envelope.
pub fn envelope<T: Serialize>(status: StatusCode, data: T) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "code": status.as_u16(), "message": "成功", "data": data }))
}

pub fn ok<T: Serialize>(data: T) -> HttpResponse {
    envelope(StatusCode::OK, data)
}

pub fn created<T: Serialize>(data: T) -> HttpResponse {
    envelope(StatusCode::CREATED, data)
}

/// 200 with the aggregate's version also in the `ETag` header.
pub fn ok_versioned<T: Serialize>(data: T, version: i64) -> HttpResponse {
    let mut r = ok(data);
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&format!("\"{version}\"")) {
        r.headers_mut().insert(actix_web::http::header::ETAG, v);
    }
    r
}

pub type ApiResult = Result<HttpResponse, ApiError>;
