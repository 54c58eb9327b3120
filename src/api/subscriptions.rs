//! Subscriptions: a patient, a package, a recorder, and dates.

use actix_web::web;
use domain::ids::{PatientId, SubscriptionId};
use domain::subscription::{PaymentStatus, SubscriptionStatus};
use domain::user::Role;
use projections::subscriptions::SubscriptionView;
use projections::Page;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::error::{created, ok, ok_versioned, ApiResult};
use crate::api::{paging, parse_required, path_id, Body, StatusChanged};
use crate::app::error::AppError;
use crate::app::input::filter_id;
use crate::app::subscriptions::{self, PaymentChanged};
pub use crate::app::subscriptions::{SubscriptionCreated, SubscriptionInput};
use crate::auth::Principal;
use crate::state::{AppState, RequestMeta};

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.post("/subscriptions", create_subscription)
        .get("/subscriptions", list_subscriptions)
        .get("/subscriptions/{id}", get_subscription)
        .post("/subscriptions/{id}/status", change_status)
        .post("/subscriptions/{id}/payment", change_payment);
}

#[utoipa::path(post, path = "/api/v1/subscriptions", tag = "subscriptions", request_body = SubscriptionInput, security(("bearer" = [])),
    responses((status = 201, body = crate::api::Envelope<SubscriptionCreated>),
        (status = 400, description = "names the field; also an unknown patient, package or recorder", body = crate::api::ErrorBody)))]
pub async fn create_subscription(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    body: Body<SubscriptionInput>,
) -> ApiResult {
    Ok(created(subscriptions::subscribe(&state, &p, &meta, &body.0).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SubscriptionStatusInput {
    #[schema(required = true, value_type = String, pattern = "^(active|paused|cancelled)$")]
    pub status: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/status", tag = "subscriptions", request_body = SubscriptionStatusInput,
    params(("id" = String, Path, description = "subscription id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    security(("bearer" = [])), responses((status = 200, body = crate::api::Envelope<StatusChanged>),
        (status = 404, body = crate::api::ErrorBody),
        (status = 409, description = "`conflict`: a cancelled subscription cannot change; `version_conflict`: If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn change_status(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<SubscriptionStatusInput>,
) -> ApiResult {
    p.require(&[Role::Admin])?;
    let sid: SubscriptionId = path_id(&id, "subscription")?;
    let status = parse_required("status", &body.0.status, SubscriptionStatus::parse)?;
    Ok(ok(subscriptions::change_status(&state, &p, &meta, sid, status).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PaymentInput {
    #[schema(required = true, value_type = String, pattern = "^(paid|unpaid|refunded)$")]
    pub payment_status: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/payment", tag = "subscriptions", request_body = PaymentInput,
    params(("id" = String, Path, description = "subscription id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    security(("bearer" = [])), responses((status = 200, body = crate::api::Envelope<PaymentChanged>),
        (status = 404, body = crate::api::ErrorBody),
        (status = 409, description = "`conflict`: e.g. refunding an unpaid subscription; `version_conflict`: If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn change_payment(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<PaymentInput>,
) -> ApiResult {
    p.require(&[Role::Admin])?;
    let sid: SubscriptionId = path_id(&id, "subscription")?;
    let payment_status = parse_required("payment_status", &body.0.payment_status, PaymentStatus::parse)?;
    Ok(ok(subscriptions::change_payment(
        &state,
        &p,
        &meta,
        sid,
        payment_status,
    )
    .await?))
}

#[utoipa::path(get, path = "/api/v1/subscriptions/{id}", tag = "subscriptions", security(("bearer" = [])),
    params(("id" = String, Path, description = "subscription id")),
    responses((status = 200, body = crate::api::Envelope<SubscriptionView>, headers(("ETag" = String, description = "the version, quoted"))),
        (status = 404, description = "no such subscription, or not the caller's", body = crate::api::ErrorBody)))]
pub async fn get_subscription(state: web::Data<AppState>, p: Principal, id: web::Path<String>) -> ApiResult {
    p.require(&[Role::Admin, Role::Recorder])?;
    let sid: SubscriptionId = path_id(&id, "subscription")?;
    let sub = state.read().await.subscriptions().get(sid, state.today()).await?;
    let sub = sub
        .filter(|s| p.is(Role::Admin) || s.recorder_id == p.user_id)
        .ok_or(AppError::NotFound("subscription"))?;
    let version = sub.version;
    Ok(ok_versioned(sub, version))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubscriptionListQuery {
    /// Only this patient's.
    pub patient_id: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
}

crate::api::list_page!(
    /// `{subscriptions:[...], total, page, limit}`
    SubscriptionList { subscriptions: SubscriptionView }
);

#[utoipa::path(get, path = "/api/v1/subscriptions", tag = "subscriptions", params(SubscriptionListQuery), security(("bearer" = [])),
    responses((status = 200, description = "a recorder sees their own", body = crate::api::Envelope<SubscriptionList>)))]
pub async fn list_subscriptions(
    state: web::Data<AppState>,
    p: Principal,
    q: web::Query<SubscriptionListQuery>,
) -> ApiResult {
    p.require(&[Role::Admin, Role::Recorder])?;
    let page = paging(q.page, q.limit)?;
    let recorder = p.is(Role::Recorder).then_some(p.user_id);
    let Ok(patient) = filter_id::<PatientId>(q.patient_id.as_deref()) else {
        return Ok(ok(SubscriptionList::from(Page::empty(page))));
    };
    let subs = state
        .read()
        .await
        .subscriptions()
        .list(patient, recorder, state.today(), page)
        .await?;
    Ok(ok(SubscriptionList::from(subs)))
}
