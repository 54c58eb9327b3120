//! `X-Carelog-Position`: read-your-writes across requests (see
//! [`crate::fence`]). A command's answer names the position of the last event
//! it committed; a request may name a position its reads must show (a client
//! that spreads its requests over instances without session affinity, or
//! hands a position from one device to another). Positions above what the
//! store holds are not waited for.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;

use crate::api::error::respond;
use crate::app::error::AppError;

/// The header, both ways.
pub const POSITION: HeaderName = HeaderName::from_static("x-carelog-position");

/// The position a request names: none, or a whole number from 0.
fn named(req: &ServiceRequest) -> Result<i64, AppError> {
    let Some(raw) = req.headers().get(&POSITION) else {
        return Ok(0);
    };
    raw.to_str()
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .filter(|p| *p >= 0)
        .ok_or_else(|| AppError::field("X-Carelog-Position", "须为不小于0的整数（事件位置）"))
}

/// Under `/api/v1` (the operations documented with the header); elsewhere
/// (`/health`, `/metrics`, the docs) the header is ignored and reads wait
/// for this process's commits only.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if !req.path().starts_with("/api/v1/") {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    let named = match named(&req) {
        Ok(p) => p,
        Err(e) => return Ok(req.into_response(respond(e)).map_into_right_body()),
    };
    let (res, committed) = crate::fence::scope(named, next.call(req)).await;
    let mut res = res?;
    if committed > 0 {
        res.headers_mut().insert(POSITION, HeaderValue::from(committed));
    }
    Ok(res.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn a_named_position_is_a_whole_number_from_zero() {
        let with = |v: &str| named(&TestRequest::default().insert_header((POSITION, v)).to_srv_request());
        assert_eq!(named(&TestRequest::default().to_srv_request()).ok(), Some(0));
        assert_eq!(with("42").ok(), Some(42));
        assert_eq!(with(" 7 ").ok(), Some(7));
        assert_eq!(with("0").ok(), Some(0));
        for bad in ["-1", "x", "1.5", "", "99999999999999999999"] {
            assert!(with(bad).is_err(), "{bad:?} accepted");
        }
    }
}
