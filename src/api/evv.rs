//! Visit verification: the reason-code catalogue and the exceptions the
//! server raises (listed, acknowledged, resolved). Use cases in `app::evv`.

use actix_web::web;
use domain::evv::REASON_CODES;
use domain::ids::UserId;
use domain::values::date;
use domain::Validator;
use projections::evv::{EvvExceptionView, EvvFilter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::error::{ok, ok_versioned, ApiResult};
use crate::api::{paging, parse_required, Body};
use crate::auth::Principal;
use crate::state::{AppState, RequestMeta};

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.get("/evv/reason-codes", reason_codes)
        .get("/evv/exceptions", list)
        .post("/evv/exceptions/{id}/acknowledge", acknowledge)
        .post("/evv/exceptions/{id}/resolve", resolve);
}

/// A reason code of the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReasonCode {
    /// Stable: clients store it.
    pub code: &'static str,
    /// For people, in Chinese.
    pub label: &'static str,
}

#[utoipa::path(get, path = "/api/v1/evv/reason-codes", tag = "evv", security(("bearer" = [])),
    responses((status = 200, description = "the catalogue of reasons for acknowledging an exception", body = crate::api::Envelope<Vec<ReasonCode>>)))]
pub async fn reason_codes(_p: Principal) -> ApiResult {
    let codes: Vec<ReasonCode> = REASON_CODES
        .iter()
        .map(|&(code, label)| ReasonCode { code, label })
        .collect();
    Ok(ok(codes))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExceptionQuery {
    /// open | acknowledged | resolved
    pub status: Option<String>,
    /// away_from_home | overlapping_visits | missing_signature | short_visit | missing_check_out
    pub code: Option<String>,
    /// Only this recorder's (admins and auditors).
    pub recorder_id: Option<String>,
    /// Raised on or after this day (`YYYY-MM-DD`, local).
    pub from: Option<String>,
    /// Raised on or before this day (`YYYY-MM-DD`, local).
    pub to: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
}

crate::api::list_page!(
    /// `{exceptions:[...], total, page, limit}`
    ExceptionList { exceptions: EvvExceptionView }
);

fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

#[utoipa::path(get, path = "/api/v1/evv/exceptions", tag = "evv", params(ExceptionQuery), security(("bearer" = [])),
    responses((status = 200, description = "newest first; a recorder sees their own, admins and auditors all", body = crate::api::Envelope<ExceptionList>),
        (status = 400, description = "a bad filter, named", body = crate::api::ErrorBody),
        (status = 403, description = "doctors", body = crate::api::ErrorBody)))]
pub async fn list(state: web::Data<AppState>, p: Principal, q: web::Query<ExceptionQuery>) -> ApiResult {
    let page = paging(q.page, q.limit)?;
    let (status, code) = crate::app::evv::status_and_code(given(&q.status), given(&q.code))?;
    let mut v = Validator::new();
    let from = given(&q.from).and_then(|d| v.check("from", date(d)));
    let to = given(&q.to).and_then(|d| v.check("to", date(d)));
    let recorder = given(&q.recorder_id).and_then(|r| {
        v.check(
            "recorder_id",
            r.parse::<uuid::Uuid>().map_err(|_| "应为UUID".to_string()),
        )
    });
    v.finish()?;
    let (from, to) = crate::app::evv::day_bounds(&state, from, to);
    let filter = EvvFilter {
        status,
        code,
        recorder: recorder.map(UserId::from),
        from,
        to,
    };
    let page = crate::app::evv::list(&state, &p, filter, page).await?;
    Ok(ok(ExceptionList::from(page)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AcknowledgeInput {
    /// A code of `GET /evv/reason-codes`.
    #[schema(required = true)]
    pub reason_code: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/evv/exceptions/{id}/acknowledge", tag = "evv", request_body = AcknowledgeInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "exception id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    responses((status = 200, body = crate::api::Envelope<EvvExceptionView>),
        (status = 400, description = "reason_code missing or not in the catalogue", body = crate::api::ErrorBody),
        (status = 403, description = "neither a recorder nor an admin", body = crate::api::ErrorBody),
        (status = 404, description = "no such exception, or not the recorder's", body = crate::api::ErrorBody),
        (status = 409, description = "already acknowledged or resolved, or If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn acknowledge(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<AcknowledgeInput>,
) -> ApiResult {
    let reason_code = parse_required("reason_code", &body.0.reason_code, |s| Ok::<_, String>(s.to_string()))?;
    let x = crate::app::evv::acknowledge(&state, &p, &meta, &id, reason_code).await?;
    let version = x.version;
    Ok(ok_versioned(x, version))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ResolveInput {
    /// How it was settled; up to 500 characters.
    #[schema(required = true, max_length = 500)]
    pub resolution: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/evv/exceptions/{id}/resolve", tag = "evv", request_body = ResolveInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "exception id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    responses((status = 200, body = crate::api::Envelope<EvvExceptionView>),
        (status = 400, description = "resolution missing, empty or too long", body = crate::api::ErrorBody),
        (status = 403, description = "not an admin", body = crate::api::ErrorBody),
        (status = 404, description = "no such exception", body = crate::api::ErrorBody),
        (status = 409, description = "already resolved, or If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn resolve(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<ResolveInput>,
) -> ApiResult {
    let resolution = parse_required("resolution", &body.0.resolution, |s| Ok::<_, String>(s.to_string()))?;
    let x = crate::app::evv::resolve(&state, &p, &meta, &id, resolution).await?;
    let version = x.version;
    Ok(ok_versioned(x, version))
}
