//! Doctors' side: open requests, medical orders; everyone's notifications.

use actix_web::web;
use domain::ids::{OrderRequestId, PatientId};
use domain::order::{MedicalOrderCommand, RequestStatus};
use domain::user::Role;
use domain::values::optional_text;
use projections::orders::{MedicalOrderView, NotificationView, OrderRequestView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access_log::ReadOrigin;
use crate::api::error::{created, ok, ok_versioned, ApiResult};
use crate::api::{paging, path_id, Body, PageQuery, StatusChanged};
use crate::app::error::AppError;
pub use crate::app::notifications::NotificationRead;
pub use crate::app::orders::{OrderInput, OrderIssued};
use crate::app::{notifications, orders};
use crate::auth::Principal;
use crate::policy::{can_see_patient, ensure_sees_patient};
use crate::state::{AppState, RequestMeta};

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.get("/order-requests", list_requests)
        .get("/order-requests/{id}", get_request)
        .post("/medical-orders", issue)
        .get("/medical-orders/{id}", get_order)
        .post("/medical-orders/{id}/complete", complete)
        .post("/medical-orders/{id}/cancel", cancel)
        .get("/patients/{id}/medical-orders", patient_orders)
        .get("/notifications", notifications)
        .post("/notifications/{id}/read", mark_read);
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestListQuery {
    /// open | fulfilled | cancelled | all (default: all)
    pub status: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
}

crate::api::list_page!(
    /// `{requests:[...], total, page, limit}`
    RequestList { requests: OrderRequestView }
);

#[utoipa::path(get, path = "/api/v1/order-requests", tag = "medical orders", params(RequestListQuery), security(("bearer" = [])),
    responses((status = 200, description = "a doctor sees those addressed to them, urgent first", body = crate::api::Envelope<RequestList>)))]
pub async fn list_requests(
    state: web::Data<AppState>,
    p: Principal,
    origin: ReadOrigin,
    q: web::Query<RequestListQuery>,
) -> ApiResult {
    p.require(&[Role::Doctor, Role::Admin])?;
    let page = paging(q.page, q.limit)?;
    let status = match q.status.as_deref() {
        None | Some("") | Some("all") => None,
        Some("open") => Some(RequestStatus::Open),
        Some("fulfilled") => Some(RequestStatus::Fulfilled),
        Some("cancelled") => Some(RequestStatus::Cancelled),
        Some(_) => return Err(AppError::field("status", "应为open、fulfilled或cancelled").into()),
    };
    let doctor = p.is(Role::Doctor).then_some(p.user_id);
    let list = state.read().await.orders().requests(doctor, status, page).await?;
    // The patients whose requests (and vitals) this page shows.
    state
        .access
        .patients(&p, &origin, list.items.iter().map(|r| &r.patient_id))
        .await?;
    Ok(ok(RequestList::from(list)))
}

#[utoipa::path(get, path = "/api/v1/order-requests/{id}", tag = "medical orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "order request id")),
    responses((status = 200, body = crate::api::Envelope<OrderRequestView>, headers(("ETag" = String, description = "the version, quoted"))),
        (status = 404, description = "no such request, or not visible to the caller", body = crate::api::ErrorBody)))]
pub async fn get_request(
    state: web::Data<AppState>,
    p: Principal,
    origin: ReadOrigin,
    id: web::Path<String>,
) -> ApiResult {
    let rid: OrderRequestId = path_id(&id, "order_request")?;
    let r = state
        .read()
        .await
        .orders()
        .request(rid)
        .await?
        .ok_or(AppError::NotFound("order_request"))?;
    let visible = match p.role {
        Role::Admin => true,
        Role::Doctor => r.doctor_id == p.user_id,
        Role::Recorder => can_see_patient(&state, &p, r.patient_id).await?,
        Role::Auditor => false,
    };
    if !visible {
        return Err(AppError::NotFound("order_request").into());
    }
    state.access.patients(&p, &origin, [&r.patient_id]).await?;
    let version = r.version;
    Ok(ok_versioned(r, version))
}

#[utoipa::path(post, path = "/api/v1/medical-orders", tag = "medical orders", request_body = OrderInput, security(("bearer" = [])),
    responses((status = 201, description = "the patient's recorder is notified", body = crate::api::Envelope<OrderIssued>),
        (status = 400, description = "names the field; also a request_id that is not the caller's for this patient", body = crate::api::ErrorBody),
        (status = 404, description = "no such patient, or not the doctor's", body = crate::api::ErrorBody),
        (status = 409, description = "the request was already handled", body = crate::api::ErrorBody)))]
pub async fn issue(state: web::Data<AppState>, p: Principal, meta: RequestMeta, body: Body<OrderInput>) -> ApiResult {
    Ok(created(orders::issue(&state, &p, &meta, &body.0).await?))
}

#[utoipa::path(get, path = "/api/v1/medical-orders/{id}", tag = "medical orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "medical order id")),
    responses((status = 200, body = crate::api::Envelope<MedicalOrderView>, headers(("ETag" = String, description = "the version, quoted"))),
        (status = 404, description = "no such order, or not visible to the caller", body = crate::api::ErrorBody)))]
pub async fn get_order(
    state: web::Data<AppState>,
    p: Principal,
    origin: ReadOrigin,
    id: web::Path<String>,
) -> ApiResult {
    let order = orders::order(&state, &p, &origin, &id).await?;
    let version = order.version;
    Ok(ok_versioned(order, version))
}

#[utoipa::path(post, path = "/api/v1/medical-orders/{id}/complete", tag = "medical orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "medical order id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    responses((status = 200, body = crate::api::Envelope<StatusChanged>),
        (status = 404, description = "no such order, or not the doctor's", body = crate::api::ErrorBody),
        (status = 409, description = "already completed or cancelled, or If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn complete(state: web::Data<AppState>, p: Principal, meta: RequestMeta, id: web::Path<String>) -> ApiResult {
    let cmd = MedicalOrderCommand::Complete;
    Ok(ok(
        orders::finish(&state, &p, &meta, &id, cmd, "CompleteMedicalOrder").await?
    ))
}

#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct CancelOrderInput {
    /// Up to 500 characters.
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/medical-orders/{id}/cancel", tag = "medical orders", request_body = CancelOrderInput,
    params(("id" = String, Path, description = "medical order id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    security(("bearer" = [])), responses((status = 200, body = crate::api::Envelope<StatusChanged>),
        (status = 404, description = "no such order, or not the doctor's", body = crate::api::ErrorBody),
        (status = 409, description = "already completed or cancelled, or If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn cancel(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<CancelOrderInput>,
) -> ApiResult {
    let reason = optional_text(body.0.reason.as_deref(), 500).map_err(|e| AppError::field("reason", e))?;
    let cmd = MedicalOrderCommand::Cancel { reason };
    Ok(ok(
        orders::finish(&state, &p, &meta, &id, cmd, "CancelMedicalOrder").await?
    ))
}

crate::api::list_page!(
    /// `{orders:[...], total, page, limit}`
    OrderList { orders: MedicalOrderView }
);

#[utoipa::path(get, path = "/api/v1/patients/{id}/medical-orders", tag = "medical orders", params(("id" = String, Path, description = "patient id"), PageQuery), security(("bearer" = [])),
    responses((status = 200, description = "newest first", body = crate::api::Envelope<OrderList>),
        (status = 404, description = "no such patient, or not the caller's", body = crate::api::ErrorBody)))]
pub async fn patient_orders(
    state: web::Data<AppState>,
    p: Principal,
    origin: ReadOrigin,
    id: web::Path<String>,
    q: web::Query<PageQuery>,
) -> ApiResult {
    p.require(&[Role::Admin, Role::Recorder, Role::Doctor])?;
    let pid: PatientId = path_id(&id, "patient")?;
    ensure_sees_patient(&state, &p, pid).await?;
    let orders = state.read().await.orders().of_patient(pid, q.params()?).await?;
    state.access.patients(&p, &origin, [pid]).await?;
    Ok(ok(OrderList::from(orders)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// unread | all (default all)
    pub status: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
}

/// `{notifications:[...], total, page, limit, unread}`
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationList {
    pub notifications: Vec<NotificationView>,
    /// Items matching the filters, over all pages.
    pub total: i64,
    /// This page, from 1.
    #[schema(minimum = 1)]
    pub page: u32,
    /// Items per page, 1 to 100.
    #[schema(minimum = 1, maximum = 100)]
    pub limit: u32,
    /// The caller's unread notifications, whatever the filter.
    pub unread: i64,
}

#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", params(NotificationQuery), security(("bearer" = [])),
    responses((status = 200, description = "the caller's own, newest first", body = crate::api::Envelope<NotificationList>)))]
pub async fn notifications(state: web::Data<AppState>, p: Principal, q: web::Query<NotificationQuery>) -> ApiResult {
    let page = paging(q.page, q.limit)?;
    let unread_only = match q.status.as_deref() {
        None | Some("") | Some("all") => false,
        Some("unread") => true,
        Some(_) => return Err(AppError::field("status", "应为unread或all").into()),
    };
    let user = p.user_id;
    let scope = p.is(Role::Recorder).then(|| state.today());
    let list = state
        .read()
        .await
        .notifications()
        .list(user, unread_only, scope, page)
        .await?;
    let unread = state
        .read()
        .await
        .notifications()
        .list(user, true, scope, projections::PageParams { page: 1, limit: 1 })
        .await?
        .total;
    Ok(ok(NotificationList {
        notifications: list.items,
        total: list.total,
        page: list.page,
        limit: list.limit,
        unread,
    }))
}

#[utoipa::path(post, path = "/api/v1/notifications/{id}/read", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path, description = "notification id")),
    responses((status = 200, body = crate::api::Envelope<NotificationRead>),
        (status = 404, description = "no such notification of the caller's", body = crate::api::ErrorBody)))]
pub async fn mark_read(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
) -> ApiResult {
    Ok(ok(notifications::read(&state, &p, &meta, &id).await?))
}
