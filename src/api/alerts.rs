//! Alerts of abnormal vitals (`app::alerts`): doctors see theirs, admins and
//! auditors all (auditors only read); a doctor acknowledges and resolves their
//! own, an admin resolves any.

use actix_web::web;
use domain::alert::{AlertStatus, Outcome};
use domain::ids::AlertId;
use domain::vitals::Severity;
use domain::Validator;
use projections::alerts::AlertDetails;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::access_log::ReadOrigin;
use crate::api::error::{ok, ok_versioned, ApiResult};
use crate::api::{paging, path_id, Body};
use crate::auth::Principal;
use crate::state::{AppState, RequestMeta};

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.get("/alerts", list)
        .get("/alerts/{id}", get)
        .post("/alerts/{id}/acknowledge", acknowledge)
        .post("/alerts/{id}/resolve", resolve);
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertListQuery {
    /// triggered | acknowledged | resolved | all (default: all)
    pub status: Option<String>,
    /// abnormal | urgent (default: both)
    pub severity: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
}

crate::api::list_page!(
    /// `{alerts:[...], total, page, limit}`
    AlertList { alerts: AlertDetails }
);

#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(AlertListQuery), security(("bearer" = [])),
    responses((status = 200, description = "a doctor sees the alerts with them now, admins and auditors all; unresolved and urgent first, newest first",
        body = crate::api::Envelope<AlertList>)))]
pub async fn list(
    state: web::Data<AppState>,
    p: Principal,
    origin: ReadOrigin,
    q: web::Query<AlertListQuery>,
) -> ApiResult {
    let page = paging(q.page, q.limit)?;
    let mut v = Validator::new();
    let status = match q.status.as_deref() {
        None | Some("") | Some("all") => None,
        Some("triggered") => Some(AlertStatus::Triggered),
        Some("acknowledged") => Some(AlertStatus::Acknowledged),
        Some("resolved") => Some(AlertStatus::Resolved),
        Some(_) => {
            v.add("status", "应为triggered、acknowledged、resolved或all");
            None
        }
    };
    let severity = q
        .severity
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| v.check("severity", Severity::parse(s)));
    v.finish()?;
    let list = crate::app::alerts::list(&state, &p, status, severity, page).await?;
    state
        .access
        .patients(&p, &origin, list.items.iter().map(|a| &a.patient_id))
        .await?;
    Ok(ok(AlertList::from(list)))
}

#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts", security(("bearer" = [])),
    params(("id" = String, Path, description = "alert id")),
    responses((status = 200, body = crate::api::Envelope<AlertDetails>, headers(("ETag" = String, description = "the version, quoted"))),
        (status = 404, description = "no such alert, or not the doctor's", body = crate::api::ErrorBody)))]
pub async fn get(state: web::Data<AppState>, p: Principal, origin: ReadOrigin, id: web::Path<String>) -> ApiResult {
    let id: AlertId = path_id(&id, "alert")?;
    let alert = crate::app::alerts::get(&state, &p, id).await?;
    state.access.patients(&p, &origin, [&alert.patient_id]).await?;
    let version = alert.version;
    Ok(ok_versioned(alert, version))
}

#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", tag = "alerts", security(("bearer" = [])),
    params(("id" = String, Path, description = "alert id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    responses((status = 200, description = "acknowledged: it is no longer escalated", body = crate::api::Envelope<AlertDetails>,
            headers(("ETag" = String, description = "the version, quoted"))),
        (status = 403, description = "only doctors acknowledge alerts", body = crate::api::ErrorBody),
        (status = 404, description = "no such alert, or not the doctor's", body = crate::api::ErrorBody),
        (status = 409, description = "already acknowledged or resolved, just escalated to another doctor, or If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn acknowledge(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
) -> ApiResult {
    let id: AlertId = path_id(&id, "alert")?;
    let alert = crate::app::alerts::acknowledge(&state, &p, &meta, id).await?;
    let version = alert.version;
    Ok(ok_versioned(alert, version))
}

/// `POST /alerts/{id}/resolve`.
#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct ResolveAlertInput {
    /// order_issued | no_action_needed | referred
    #[schema(required = true, value_type = String, pattern = "^(order_issued|no_action_needed|referred)$")]
    pub outcome: Option<String>,
    /// Up to 1000 characters (kept sealed, never published).
    #[schema(max_length = 1000)]
    pub note: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/alerts/{id}/resolve", tag = "alerts", request_body = ResolveAlertInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "alert id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    responses((status = 200, description = "resolved with its outcome", body = crate::api::Envelope<AlertDetails>,
            headers(("ETag" = String, description = "the version, quoted"))),
        (status = 400, description = "names the field: `outcome` or `note`", body = crate::api::ErrorBody),
        (status = 403, description = "only its doctor or an admin resolves an alert", body = crate::api::ErrorBody),
        (status = 404, description = "no such alert, or not the doctor's", body = crate::api::ErrorBody),
        (status = 409, description = "already resolved, just escalated to another doctor, or If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn resolve(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<ResolveAlertInput>,
) -> ApiResult {
    let id: AlertId = path_id(&id, "alert")?;
    let mut v = Validator::new();
    let outcome = match body.0.outcome.as_deref() {
        None => {
            v.add("outcome", "必填");
            None
        }
        Some(o) => v.check("outcome", Outcome::parse(o)),
    };
    let note = v
        .check("note", domain::values::optional_text(body.0.note.as_deref(), 1000))
        .flatten();
    v.finish()?;
    let Some(outcome) = outcome else {
        return Err(crate::app::error::AppError::field("outcome", "必填").into());
    };
    let alert = crate::app::alerts::resolve(&state, &p, &meta, id, outcome, note).await?;
    let version = alert.version;
    Ok(ok_versioned(alert, version))
}
