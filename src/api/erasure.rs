//! `POST /patients/{id}/erase`: erasure of a patient's personal data on
//! request (PIPL); the steps are `app::erasure`.

use actix_web::web;

use crate::api::error::{ok, ApiResult};
use crate::api::Body;
use crate::app::erasure;
pub use crate::app::erasure::{EraseInput, Erased};
use crate::auth::Principal;
use crate::state::{AppState, RequestMeta};

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.post("/patients/{id}/erase", erase);
}

#[utoipa::path(post, path = "/api/v1/patients/{id}/erase", tag = "patients", request_body = EraseInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "patient id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version of the patient")),
    responses((status = 200, body = crate::api::Envelope<Erased>),
        (status = 400, description = "reason missing", body = crate::api::ErrorBody),
        (status = 403, description = "not an admin", body = crate::api::ErrorBody),
        (status = 404, body = crate::api::ErrorBody),
        (status = 409, description = "`version_conflict`: If-Match is stale", body = crate::api::ErrorBody),
        (status = 503, description = "`unavailable`: the read models did not catch up in time; repeat the request to complete the erasure", body = crate::api::ErrorBody)))]
pub async fn erase(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<EraseInput>,
) -> ApiResult {
    Ok(ok(erasure::erase(&state, &p, &meta, &id, &body.0).await?))
}
