//! Subscriptions: a patient, a package, a recorder, and dates.

use actix_web::web;
use domain::ids::{PackageId, PatientId, SubscriptionId, UserId};
use domain::package::ServicePackage;
use domain::patient::Patient;
use domain::subscription::{PaymentStatus, Subscription, SubscriptionCommand, SubscriptionStatus};
use domain::user::{Role, User};
use domain::values::date;
use domain::Validator;
use projections::subscriptions::SubscriptionView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::{parse_required, path_id, required, uuid_field, Body, PageQuery, StatusChanged};
use crate::auth::Principal;
use crate::error::{created, ok, ok_versioned, ApiError, ApiResult};
use crate::state::{AppState, RequestMeta};

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.post("/subscriptions", create_subscription)
        .get("/subscriptions", list_subscriptions)
        .get("/subscriptions/{id}", get_subscription)
        .post("/subscriptions/{id}/status", change_status)
        .post("/subscriptions/{id}/payment", change_payment);
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SubscriptionInput {
    #[schema(required = true, value_type = String, format = Uuid)]
    pub patient_id: Option<String>,
    #[schema(required = true, value_type = String, format = Uuid)]
    pub package_id: Option<String>,
    /// An active recorder (user id).
    #[schema(required = true, value_type = String, format = Uuid)]
    pub recorder_id: Option<String>,
    /// `YYYY-MM-DD`.
    #[schema(required = true, value_type = String, format = Date)]
    pub start_date: Option<String>,
}

/// What creating a subscription answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionCreated {
    pub id: String,
    /// `start_date` + the package's `duration_days`.
    pub end_date: Option<String>,
    /// Always `active`.
    pub status: String,
    pub version: i64,
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
    p.require(&[Role::Admin])?;
    let r = &body.0;
    let mut v = Validator::new();
    let raw = required(&mut v, "patient_id", &r.patient_id);
    let patient_id: Option<PatientId> = uuid_field(&mut v, "patient_id", raw);
    let raw = required(&mut v, "package_id", &r.package_id);
    let package_id: Option<PackageId> = uuid_field(&mut v, "package_id", raw);
    let raw = required(&mut v, "recorder_id", &r.recorder_id);
    let recorder_id: Option<UserId> = uuid_field(&mut v, "recorder_id", raw);
    let start_date = required(&mut v, "start_date", &r.start_date).and_then(|d| v.check("start_date", date(d)));
    v.finish()?;
    let (Some(patient_id), Some(package_id), Some(recorder_id), Some(start_date)) =
        (patient_id, package_id, recorder_id, start_date)
    else {
        return Err(ApiError::field("body", "缺少必填字段"));
    };
    // The referenced aggregates are read from the event store, not a read model.
    let mut v = Validator::new();
    if state.store.load::<Patient>(&patient_id.to_string()).await?.is_none() {
        v.add("patient_id", "患者不存在");
    }
    let package = state.store.load::<ServicePackage>(&package_id.to_string()).await?;
    let duration = package
        .as_ref()
        .and_then(|(p, _)| p.details.as_ref())
        .map(|d| d.duration_days);
    if duration.is_none() {
        v.add("package_id", "套餐不存在");
    }
    match state.store.load::<User>(&recorder_id.to_string()).await? {
        Some((u, _)) if u.role == Some(Role::Recorder) && u.is_active() => {}
        _ => v.add("recorder_id", "记录员不存在或不可用"),
    }
    v.finish()?;
    crate::policy::ensure_not_erased(&state, &patient_id.to_string()).await?;
    let id = SubscriptionId(crate::idempotency::new_id(&meta, &p));
    let cmd = SubscriptionCommand::Create {
        patient_id,
        package_id,
        recorder_id,
        start_date,
        duration_days: duration.unwrap_or(0),
        recorder: crate::app::compliance::recorder_standing(&state, &recorder_id.to_string()).await?,
    };
    let c = state
        .execute::<Subscription>(&id.to_string(), cmd, meta.context(Some(&p), "CreateSubscription"))
        .await?;
    let (sub, _) = state
        .store
        .load::<Subscription>(&id.to_string())
        .await?
        .ok_or(ApiError::NotFound("subscription"))?;
    let end_date = sub.terms.map(|t| t.end_date.to_string());
    Ok(created(SubscriptionCreated {
        id: id.to_string(),
        end_date,
        status: "active".into(),
        version: c.version,
    }))
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
    let c = state
        .execute::<Subscription>(
            &sid.to_string(),
            SubscriptionCommand::ChangeStatus { status },
            meta.context(Some(&p), "ChangeSubscriptionStatus"),
        )
        .await?;
    Ok(ok(StatusChanged {
        id: sid.to_string(),
        status: status.as_str().to_string(),
        version: c.version,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PaymentInput {
    #[schema(required = true, value_type = String, pattern = "^(paid|unpaid|refunded)$")]
    pub payment_status: Option<String>,
}

/// What a payment change answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentChanged {
    pub id: String,
    pub payment_status: String,
    pub version: i64,
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
    let c = state
        .execute::<Subscription>(
            &sid.to_string(),
            SubscriptionCommand::ChangePayment { payment_status },
            meta.context(Some(&p), "ChangeSubscriptionPayment"),
        )
        .await?;
    Ok(ok(PaymentChanged {
        id: sid.to_string(),
        payment_status: payment_status.as_str().to_string(),
        version: c.version,
    }))
}

#[utoipa::path(get, path = "/api/v1/subscriptions/{id}", tag = "subscriptions", security(("bearer" = [])),
    params(("id" = String, Path, description = "subscription id")),
    responses((status = 200, body = crate::api::Envelope<SubscriptionView>, headers(("ETag" = String, description = "the version, quoted"))),
        (status = 404, description = "no such subscription, or not the caller's", body = crate::api::ErrorBody)))]
pub async fn get_subscription(state: web::Data<AppState>, p: Principal, id: web::Path<String>) -> ApiResult {
    p.require(&[Role::Admin, Role::Recorder])?;
    let sid: SubscriptionId = path_id(&id, "subscription")?;
    let sub = state.read.subscription(&sid.to_string(), state.today()).await?;
    let sub = sub
        .filter(|s| p.is(Role::Admin) || s.recorder_id == p.user_id.to_string())
        .ok_or(ApiError::NotFound("subscription"))?;
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
    let page = PageQuery {
        page: q.page,
        limit: q.limit,
    }
    .params()?;
    let recorder = p.is(Role::Recorder).then(|| p.user_id.to_string());
    let subs = state
        .read
        .subscriptions(q.patient_id.as_deref(), recorder.as_deref(), state.today(), page)
        .await?;
    Ok(ok(SubscriptionList::from(subs)))
}
