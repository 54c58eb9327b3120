//! Home visits: schedule, confirm, reschedule, cancel, complete, check in and
//! out; today's list.

use actix_web::web;
use domain::ids::PatientId;
use domain::route::GeoPoint;
use domain::user::Role;
use domain::values::{date, optional_text};
use domain::visit::VisitStatus;
use domain::Validator;
use projections::visits::{VisitFilter, VisitView};
use projections::Page;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access_log::ReadOrigin;
use crate::api::error::{created, ok, ok_versioned, ApiResult};
use crate::api::{paging, Body};
use crate::app;
use crate::app::day::RoutedDay;
use crate::app::error::AppError;
use crate::app::input::filter_id;
use crate::app::schedule::{self, CancelInput, RescheduleInput, ScheduleInput, VisitScheduled, VisitTransitioned};
use crate::app::visits::{PositionInput, VisitEnd};
use crate::auth::Principal;
use crate::policy::recorder_scope;
use crate::state::{AppState, RequestMeta};

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.post("/appointments", schedule)
        .get("/appointments", list)
        .get("/appointments/today", today)
        .get("/appointments/{id}", get)
        .post("/appointments/{id}/confirm", confirm)
        .post("/appointments/{id}/cancel", cancel)
        .post("/appointments/{id}/reschedule", reschedule)
        .post("/appointments/{id}/complete", complete)
        .post("/appointments/{id}/check-in", check_in)
        .post("/appointments/{id}/check-out", check_out);
}

#[utoipa::path(post, path = "/api/v1/appointments", tag = "visits", request_body = ScheduleInput, security(("bearer" = [])),
    responses((status = 201, body = crate::api::Envelope<VisitScheduled>),
        (status = 400, description = "bad field or a time in the past", body = crate::api::ErrorBody),
        (status = 404, description = "no such patient, or not the recorder's", body = crate::api::ErrorBody),
        (status = 409, description = "no active subscription, or the month's regular visits are used up", body = crate::api::ErrorBody)))]
pub async fn schedule(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    body: Body<ScheduleInput>,
) -> ApiResult {
    p.require(&[Role::Recorder, Role::Admin])?;
    let visit = body.0.parse()?;
    let now = schedule::now_local(&state);
    Ok(created(schedule::schedule(&state, &p, &meta, visit, now).await?))
}

#[utoipa::path(post, path = "/api/v1/appointments/{id}/confirm", tag = "visits", security(("bearer" = [])),
    params(("id" = String, Path, description = "visit id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    responses((status = 200, body = crate::api::Envelope<VisitTransitioned>),
        (status = 404, description = "no such visit, or not the recorder's", body = crate::api::ErrorBody),
        (status = 409, description = "illegal transition, or If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn confirm(state: web::Data<AppState>, p: Principal, meta: RequestMeta, id: web::Path<String>) -> ApiResult {
    Ok(ok(schedule::confirm(&state, &p, &meta, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/appointments/{id}/cancel", tag = "visits", request_body = CancelInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "visit id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    responses((status = 200, body = crate::api::Envelope<VisitTransitioned>),
        (status = 404, description = "no such visit, or not the recorder's", body = crate::api::ErrorBody),
        (status = 409, description = "illegal transition, or If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn cancel(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<CancelInput>,
) -> ApiResult {
    let reason = optional_text(body.0.reason.as_deref(), 500).map_err(|e| AppError::field("reason", e))?;
    Ok(ok(schedule::cancel(&state, &p, &meta, &id, reason).await?))
}

#[utoipa::path(post, path = "/api/v1/appointments/{id}/reschedule", tag = "visits", request_body = RescheduleInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "visit id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    responses((status = 200, body = crate::api::Envelope<VisitTransitioned>),
        (status = 400, description = "bad or past time", body = crate::api::ErrorBody),
        (status = 404, description = "no such visit, or not the recorder's", body = crate::api::ErrorBody),
        (status = 409, description = "illegal transition, outside the subscription, the month's regular visits used up, or If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn reschedule(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<RescheduleInput>,
) -> ApiResult {
    let (day, at) = body.0.parse()?;
    Ok(ok(schedule::reschedule(&state, &p, &meta, &id, day, at).await?))
}

#[utoipa::path(post, path = "/api/v1/appointments/{id}/complete", tag = "visits", security(("bearer" = [])),
    params(("id" = String, Path, description = "visit id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    responses((status = 200, body = crate::api::Envelope<VisitTransitioned>),
        (status = 404, description = "no such visit, or not the recorder's", body = crate::api::ErrorBody),
        (status = 409, description = "no health record yet, illegal transition, or If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn complete(state: web::Data<AppState>, p: Principal, meta: RequestMeta, id: web::Path<String>) -> ApiResult {
    Ok(ok(schedule::complete(&state, &p, &meta, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/appointments/{id}/check-in", tag = "visits", request_body = PositionInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "visit id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    responses((status = 200, description = "the visit, now in_progress, with its check_in", body = crate::api::Envelope<VisitView>),
        (status = 400, description = "lat or lng missing or out of range", body = crate::api::ErrorBody),
        (status = 403, description = "not a recorder", body = crate::api::ErrorBody),
        (status = 404, description = "no such visit, or not the recorder's", body = crate::api::ErrorBody),
        (status = 409, description = "not scheduled or confirmed, or If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn check_in(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<PositionInput>,
) -> ApiResult {
    mark(&state, &p, &meta, &id, &body.0, VisitEnd::CheckIn).await
}

#[utoipa::path(post, path = "/api/v1/appointments/{id}/check-out", tag = "visits", request_body = PositionInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "visit id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    responses((status = 200, description = "the visit with its check_out: completed if its record was taken, else checked_out until it is", body = crate::api::Envelope<VisitView>),
        (status = 400, description = "lat or lng missing or out of range", body = crate::api::ErrorBody),
        (status = 403, description = "not a recorder", body = crate::api::ErrorBody),
        (status = 404, description = "no such visit, or not the recorder's", body = crate::api::ErrorBody),
        (status = 409, description = "not checked in, or If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn check_out(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    id: web::Path<String>,
    body: Body<PositionInput>,
) -> ApiResult {
    mark(&state, &p, &meta, &id, &body.0, VisitEnd::CheckOut).await
}

/// A check-in or check-out now, by the server's clock.
async fn mark(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    body: &PositionInput,
    end: VisitEnd,
) -> ApiResult {
    let marked = app::visits::mark(state, p, meta, id, end, body.parse()?, chrono::Utc::now()).await?;
    Ok(ok_versioned(marked.visit, marked.version))
}

/// Visit lists show patients' names and addresses: each patient on them is a
/// read of patient data.
async fn log_patients<'a>(
    state: &AppState,
    p: &Principal,
    origin: &ReadOrigin,
    visits: impl IntoIterator<Item = &'a VisitView>,
) -> Result<(), AppError> {
    let mut patients: Vec<PatientId> = visits.into_iter().map(|v| v.patient.id).collect();
    patients.sort_unstable();
    patients.dedup();
    state.access.patients(p, origin, patients).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TodayQuery {
    /// `route`: in the order that travels least between the homes (see the answer's second form).
    pub order: Option<String>,
    /// Where the route starts (with `start_lng`), -90 to 90.
    #[param(minimum = -90, maximum = 90)]
    pub start_lat: Option<f64>,
    /// Where the route starts (with `start_lat`), -180 to 180.
    #[param(minimum = -180, maximum = 180)]
    pub start_lng: Option<f64>,
}

impl TodayQuery {
    /// `Some(start)` when the route is asked for (`start` when given), `None` for the order by time.
    fn route(&self) -> Result<Option<Option<GeoPoint>>, AppError> {
        match self.order.as_deref() {
            None | Some("") | Some("time") => return Ok(None),
            Some("route") => {}
            Some(_) => return Err(AppError::field("order", "应为route或time")),
        }
        match (self.start_lat, self.start_lng) {
            (None, None) => Ok(Some(None)),
            (Some(lat), Some(lng)) => GeoPoint::parse(lat, lng)
                .map(|g| Some(Some(g)))
                .map_err(|bad| AppError::field(&format!("start_{bad}"), "坐标超出范围")),
            (None, Some(_)) => Err(AppError::field("start_lat", "start_lat与start_lng须同时提供")),
            (Some(_), None) => Err(AppError::field("start_lng", "start_lat与start_lng须同时提供")),
        }
    }
}

/// `GET /appointments/today`: the list by time, or with `order=route` the route.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum TodayAnswer {
    ByTime(Vec<VisitView>),
    Route(RoutedDay),
}

#[utoipa::path(get, path = "/api/v1/appointments/today", tag = "visits", params(TodayQuery), security(("bearer" = [])),
    responses((status = 200, description = "the calling recorder's visits today (cancelled ones left out): by time, or with order=route {appointments (each with leg_m and route_note), total_m, by_time_total_m}", body = crate::api::Envelope<TodayAnswer>)))]
pub async fn today(
    state: web::Data<AppState>,
    p: Principal,
    origin: ReadOrigin,
    q: web::Query<TodayQuery>,
) -> ApiResult {
    p.require(&[Role::Recorder])?;
    let answer = match q.route()? {
        None => TodayAnswer::ByTime(app::day::today(&state, &p).await?),
        Some(start) => TodayAnswer::Route(app::day::today_route(&state, &p, start).await?),
    };
    let visits: Vec<&VisitView> = match &answer {
        TodayAnswer::ByTime(v) => v.iter().collect(),
        TodayAnswer::Route(r) => r.appointments.iter().map(|a| &a.visit).collect(),
    };
    log_patients(&state, &p, &origin, visits).await?;
    Ok(ok(answer))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VisitListQuery {
    /// `YYYY-MM-DD`.
    pub date: Option<String>,
    /// scheduled | confirmed | in_progress | checked_out | completed | cancelled | missed
    pub status: Option<String>,
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
    /// `{appointments:[...], total, page, limit}`
    VisitList { appointments: VisitView }
);

#[utoipa::path(get, path = "/api/v1/appointments", tag = "visits", params(VisitListQuery), security(("bearer" = [])),
    responses((status = 200, description = "a recorder sees their own", body = crate::api::Envelope<VisitList>)))]
pub async fn list(
    state: web::Data<AppState>,
    p: Principal,
    origin: ReadOrigin,
    q: web::Query<VisitListQuery>,
) -> ApiResult {
    p.require(&[Role::Recorder, Role::Admin])?;
    let page = paging(q.page, q.limit)?;
    let mut v = Validator::new();
    let day = q
        .date
        .as_deref()
        .filter(|d| !d.is_empty())
        .and_then(|d| v.check("date", date(d)));
    let status = q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| v.check("status", VisitStatus::parse(s)));
    v.finish()?;
    let Ok(patient) = filter_id(q.patient_id.as_deref().filter(|s| !s.is_empty())) else {
        return Ok(ok(VisitList::from(Page::empty(page))));
    };
    let filter = VisitFilter {
        recorder: recorder_scope(&p),
        patient,
        date: day,
        status,
        ..VisitFilter::new(state.today())
    };
    let visits = state.read().await.visits().list(&filter, page).await?;
    log_patients(&state, &p, &origin, &visits.items).await?;
    Ok(ok(VisitList::from(visits)))
}

#[utoipa::path(get, path = "/api/v1/appointments/{id}", tag = "visits", security(("bearer" = [])),
    params(("id" = String, Path, description = "visit id")),
    responses((status = 200, description = "the visit with its history", body = crate::api::Envelope<VisitView>, headers(("ETag" = String, description = "the version, quoted"))),
        (status = 404, description = "no such visit, or not the recorder's", body = crate::api::ErrorBody)))]
pub async fn get(state: web::Data<AppState>, p: Principal, origin: ReadOrigin, id: web::Path<String>) -> ApiResult {
    let visit = schedule::own_visit(&state, &p, &id).await?;
    state.access.patients(&p, &origin, [&visit.patient.id]).await?;
    let version = visit.version;
    Ok(ok_versioned(visit, version))
}
