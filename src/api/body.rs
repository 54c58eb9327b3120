//! `Body<T>`: a JSON body extractor whose errors name the field. Malformed JSON,
//! a wrong type or an unknown enum value all become 400 `validation_failed`
//! with the JSON path of the offending field; bodies over the limit become 413.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};
use futures::{FutureExt, StreamExt};
use serde::de::DeserializeOwned;

use crate::api::error::ApiError;
use crate::app::error::AppError;
use crate::state::AppState;

pub struct Body<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.settings.limits.max_json_bytes)
            .unwrap_or(1024 * 1024);
        let content_type = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let declared = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(
            async move {
                if !content_type.is_empty() && !content_type.starts_with("application/json") {
                    return Err(AppError::UnsupportedMediaType(content_type));
                }
                if declared.is_some_and(|n| n > limit) {
                    return Err(AppError::PayloadTooLarge);
                }
                let mut bytes = web::BytesMut::new();
                while let Some(chunk) = payload.next().await {
                    let chunk = chunk.map_err(|_| AppError::field("body", "请求体读取失败"))?;
                    if bytes.len() + chunk.len() > limit {
                        return Err(AppError::PayloadTooLarge);
                    }
                    bytes.extend_from_slice(&chunk);
                }
                let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
                    b"{}"
                } else {
                    &bytes
                };
                let de = &mut serde_json::Deserializer::from_slice(text);
                serde_path_to_error::deserialize(de).map(Body).map_err(|e| {
                    let path = e.path().to_string();
                    let inner = e.into_inner();
                    let field = if path == "." || path.is_empty() || path == "?" {
                        // A missing field reports no path; serde names it in the message.
                        missing_field(&inner.to_string()).unwrap_or_else(|| "body".into())
                    } else {
                        path
                    };
                    let reason = if inner.is_syntax() || inner.is_eof() {
                        "JSON格式错误".to_string()
                    } else {
                        format!("类型或取值错误（{}）", inner)
                    };
                    AppError::field(&field, reason)
                })
            }
            .map(|r| r.map_err(ApiError)),
        )
    }
}

fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next().map(str::to_string)
}
