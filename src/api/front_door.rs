//! The front door's middleware: decides the client IP once (trusting only the
//! configured proxies), applies the per-IP rate limit and sets the security
//! headers on every response. The rules themselves are in [`crate::front_door`].

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

use crate::api::error::respond;
use crate::app::error::AppError;
use crate::front_door::{exempt, resolve, secure_headers, ClientIp};
use crate::state::AppState;

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    };
    let door = &state.settings.front_door;
    let ip = resolve(req.peer_addr().map(|a| a.ip()), req.headers(), &door.trusted_proxies);
    if let Some(ip) = ip {
        req.extensions_mut().insert(ClientIp(ip));
    }
    let api = req.path().starts_with("/api/");
    if let (Some(ip), false) = (ip, exempt(req.path())) {
        if let Err(retry_after) = state.rate_limiter.check(ip) {
            crate::metrics::rate_limited();
            let mut res = respond(AppError::RateLimited { retry_after });
            secure_headers(res.headers_mut(), door, api);
            return Ok(req.into_response(res).map_into_right_body());
        }
    }
    let mut res = next.call(req).await?;
    secure_headers(res.headers_mut(), door, api);
    Ok(res.map_into_left_body())
}
