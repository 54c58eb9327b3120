//! Home visits: schedule, confirm, reschedule, cancel, complete; today's list.

use actix_web::{web, HttpRequest};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use domain::ids::{PatientId, SubscriptionId, UserId, VisitId};
use domain::route::GeoPoint;
use domain::user::Role;
use domain::values::{date, optional_text};
use domain::visit::{ScheduleContext, Visit, VisitCommand, VisitPlan, VisitStatus, VisitType};
use domain::Validator;
use projections::visits::{VisitFilter, VisitView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::{path_id, required, Body, PageQuery};
use crate::app;
use crate::app::day::RoutedDay;
use crate::auth::Principal;
use crate::error::{created, ok, ok_versioned, ApiError, ApiResult};
use crate::policy::{can_see_patient, ensure_not_erased, recorder_scope};
use crate::state::{AppState, RequestMeta};

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.post("/appointments", schedule)
        .get("/appointments", list)
        .get("/appointments/today", today)
        .get("/appointments/{id}", get)
        .post("/appointments/{id}/confirm", confirm)
        .post("/appointments/{id}/cancel", cancel)
        .post("/appointments/{id}/reschedule", reschedule)
        .post("/appointments/{id}/complete", complete);
}

/// Claims scope of the numbered monthly places of regular visits.
const QUOTA_SCOPE: &str = "visit_quota";

/// Takes one of the numbered places of `day`'s month for visit `owner`.
async fn claim_place(state: &AppState, patient: &str, day: NaiveDate, quota: u32, owner: &str) -> Result<(), ApiError> {
    let month = day.format("%Y-%m");
    for n in 1..=quota {
        if state
            .store
            .claim(QUOTA_SCOPE, &format!("{patient}:{month}:{n}"), owner)
            .await?
        {
            return Ok(());
        }
    }
    Err(ApiError::Conflict(format!("本月常规上门次数已达套餐上限（{quota}次）")))
}

/// `HH:MM` (seconds, if sent, must be zero).
pub fn time(raw: &str) -> Result<NaiveTime, String> {
    let raw = raw.trim();
    NaiveTime::parse_from_str(raw, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(raw, "%H:%M:%S"))
        .map_err(|_| "时间格式应为HH:MM".to_string())
}

fn now_local(state: &AppState) -> NaiveDateTime {
    chrono::Utc::now()
        .with_timezone(&state.settings.field_work.timezone)
        .naive_local()
}

/// The quota facts for a regular visit of `patient` in the month of `date`.
async fn schedule_context(
    state: &AppState,
    patient: &str,
    package_id: &str,
    date: NaiveDate,
    except: Option<&str>,
) -> Result<ScheduleContext, ApiError> {
    let package = state
        .read
        .package(package_id)
        .await?
        .ok_or(ApiError::NotFound("service_package"))?;
    let month = date.format("%Y-%m").to_string();
    let used = state.read.regular_visits_in_month(patient, &month, except).await?;
    Ok(ScheduleContext {
        now: now_local(state),
        monthly_quota: u32::try_from(package.service_frequency).unwrap_or(0),
        regular_visits_that_month: u32::try_from(used).unwrap_or(u32::MAX),
    })
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ScheduleInput {
    #[schema(required = true, value_type = String, format = Uuid)]
    pub patient_id: Option<String>,
    /// `YYYY-MM-DD`.
    #[schema(required = true, value_type = String, format = Date)]
    pub scheduled_date: Option<String>,
    /// `HH:MM`; date and time not in the past.
    #[schema(required = true, value_type = String, pattern = "^[0-9]{2}:[0-9]{2}$")]
    pub scheduled_time: Option<String>,
    /// regular (default) | makeup | emergency
    pub appointment_type: Option<String>,
    /// Up to 1000 characters.
    #[schema(max_length = 1000)]
    pub notes: Option<String>,
    /// Admins schedule for the patient's recorder; a recorder always for themselves.
    pub recorder_id: Option<String>,
}

/// What scheduling a visit answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitScheduled {
    pub id: String,
    /// Always `scheduled`.
    pub status: String,
    pub version: i64,
}

/// What a visit's transition answers: its state after the command.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitTransitioned {
    pub id: String,
    pub status: String,
    pub scheduled_date: String,
    pub scheduled_time: String,
    pub version: i64,
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
    let r = &body.0;
    let mut v = Validator::new();
    let raw_patient = required(&mut v, "patient_id", &r.patient_id);
    let patient: Option<PatientId> =
        raw_patient.and_then(|s| v.check("patient_id", s.parse().map_err(|_| "应为UUID".to_string())));
    let raw_date = required(&mut v, "scheduled_date", &r.scheduled_date);
    let day = raw_date.and_then(|d| v.check("scheduled_date", date(d)));
    let raw_time = required(&mut v, "scheduled_time", &r.scheduled_time);
    let at = raw_time.and_then(|t| v.check("scheduled_time", time(t)));
    let kind = match r.appointment_type.as_deref() {
        None | Some("") => Some(VisitType::Regular),
        Some(k) => v.check("appointment_type", VisitType::parse(k)),
    };
    let notes = v.check("notes", optional_text(r.notes.as_deref(), 1000)).flatten();
    let recorder_field: Option<UserId> = r
        .recorder_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| v.check("recorder_id", s.parse().map_err(|_| "应为UUID".to_string())));
    v.finish()?;
    let (Some(patient), Some(day), Some(at), Some(kind)) = (patient, day, at, kind) else {
        return Err(ApiError::field("body", "缺少必填字段"));
    };
    if !can_see_patient(&state, &p, &patient.to_string()).await? {
        return Err(ApiError::NotFound("patient"));
    }
    ensure_not_erased(&state, &patient.to_string()).await?;
    if day.and_time(at) < now_local(&state) {
        return Err(ApiError::field("scheduled_time", "预约时间不能早于当前时间"));
    }
    // The subscription that covers the visit date, active and not expired.
    let today = state.today();
    let subs = state
        .read
        .subscriptions(
            Some(&patient.to_string()),
            None,
            today,
            projections::PageParams { page: 1, limit: 100 },
        )
        .await?;
    let sub = subs
        .items
        .into_iter()
        .find(|s| {
            s.status == "active"
                && s.start_date.as_str() <= day.to_string().as_str()
                && s.end_date.as_str() >= day.to_string().as_str()
        })
        .ok_or_else(|| ApiError::Conflict("患者在该日期没有有效的服务订阅".into()))?;
    let recorder: UserId = match p.role {
        Role::Recorder => {
            if sub.recorder_id != p.user_id.to_string() {
                return Err(ApiError::NotFound("patient"));
            }
            p.user_id
        }
        _ => match recorder_field {
            Some(r) if r.to_string() != sub.recorder_id => {
                return Err(ApiError::field("recorder_id", "该记录员未负责此患者"));
            }
            _ => path_id(&sub.recorder_id, "recorder")?,
        },
    };
    let context = schedule_context(&state, &patient.to_string(), &sub.package_id, day, None).await?;
    let plan = VisitPlan {
        patient_id: patient,
        recorder_id: recorder,
        subscription_id: path_id::<SubscriptionId>(&sub.id, "subscription")?,
        scheduled_date: day,
        scheduled_time: at,
        appointment_type: kind,
        notes,
    };
    let id = VisitId(crate::idempotency::new_id(&meta, &p));
    // The read-model count above can be stale by a concurrent request: a regular
    // visit also takes one of the month's numbered places, claimed atomically.
    if kind == VisitType::Regular {
        claim_place(
            &state,
            &patient.to_string(),
            day,
            context.monthly_quota,
            &id.to_string(),
        )
        .await?;
    }
    let result = state
        .execute::<Visit>(
            &id.to_string(),
            VisitCommand::Schedule { plan, context },
            meta.context(Some(&p), "ScheduleVisit"),
        )
        .await;
    let c = match result {
        Ok(c) => c,
        Err(e) => {
            state.store.release_all(QUOTA_SCOPE, &id.to_string(), "").await?;
            return Err(e);
        }
    };
    Ok(created(VisitScheduled {
        id: id.to_string(),
        status: "scheduled".into(),
        version: c.version,
    }))
}

/// The visit, if the caller may act on it: its recorder, or an admin.
async fn own_visit(state: &AppState, p: &Principal, id: &str) -> Result<VisitView, ApiError> {
    let vid: VisitId = path_id(id, "appointment")?;
    let visit = state
        .read
        .visit(&vid.to_string())
        .await?
        .ok_or(ApiError::NotFound("appointment"))?;
    match p.role {
        Role::Admin => Ok(visit),
        // Their own visit, of a patient still assigned to them.
        Role::Recorder
            if visit.recorder_id == p.user_id.to_string() && can_see_patient(state, p, &visit.patient.id).await? =>
        {
            Ok(visit)
        }
        Role::Recorder => Err(ApiError::NotFound("appointment")),
        _ => Err(ApiError::Forbidden),
    }
}

async fn transition(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    id: &str,
    cmd: VisitCommand,
    name: &str,
) -> ApiResult {
    let visit = own_visit(state, p, id).await?;
    let c = state
        .execute::<Visit>(&visit.id, cmd, meta.context(Some(p), name))
        .await?;
    let after = state
        .read
        .visit(&visit.id)
        .await?
        .ok_or(ApiError::NotFound("appointment"))?;
    Ok(ok(VisitTransitioned {
        id: visit.id,
        status: after.status,
        scheduled_date: after.scheduled_date,
        scheduled_time: after.scheduled_time,
        version: c.version,
    }))
}

#[utoipa::path(post, path = "/api/v1/appointments/{id}/confirm", tag = "visits", security(("bearer" = [])),
    params(("id" = String, Path, description = "visit id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    responses((status = 200, body = crate::api::Envelope<VisitTransitioned>),
        (status = 404, description = "no such visit, or not the recorder's", body = crate::api::ErrorBody),
        (status = 409, description = "illegal transition, or If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn confirm(state: web::Data<AppState>, p: Principal, meta: RequestMeta, id: web::Path<String>) -> ApiResult {
    transition(&state, &p, &meta, &id, VisitCommand::Confirm, "ConfirmVisit").await
}

#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct CancelInput {
    /// Up to 500 characters.
    #[schema(max_length = 500)]
    pub reason: Option<String>,
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
    let reason = optional_text(body.0.reason.as_deref(), 500).map_err(|e| ApiError::field("reason", e))?;
    let response = transition(&state, &p, &meta, &id, VisitCommand::Cancel { reason }, "CancelVisit").await?;
    let vid: VisitId = path_id(&id, "appointment")?;
    state.store.release_all(QUOTA_SCOPE, &vid.to_string(), "").await?;
    Ok(response)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RescheduleInput {
    /// `YYYY-MM-DD`, within the subscription.
    #[schema(required = true, value_type = String, format = Date)]
    pub scheduled_date: Option<String>,
    /// `HH:MM`; date and time not in the past.
    #[schema(required = true, value_type = String, pattern = "^[0-9]{2}:[0-9]{2}$")]
    pub scheduled_time: Option<String>,
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
    let mut v = Validator::new();
    let raw_date = required(&mut v, "scheduled_date", &body.0.scheduled_date);
    let day = raw_date.and_then(|d| v.check("scheduled_date", date(d)));
    let raw_time = required(&mut v, "scheduled_time", &body.0.scheduled_time);
    let at = raw_time.and_then(|t| v.check("scheduled_time", time(t)));
    v.finish()?;
    let (Some(day), Some(at)) = (day, at) else {
        return Err(ApiError::field("body", "缺少必填字段"));
    };
    let visit = own_visit(&state, &p, &id).await?;
    let sub = state
        .read
        .subscription(&visit.subscription_id, state.today())
        .await?
        .ok_or(ApiError::NotFound("subscription"))?;
    if day.to_string() > sub.end_date || day.to_string() < sub.start_date {
        return Err(ApiError::Conflict("改期日期不在服务订阅有效期内".into()));
    }
    let context = schedule_context(&state, &visit.patient.id, &sub.package_id, day, Some(&visit.id)).await?;
    // A regular visit moving to another month takes a place there and gives
    // back its place in the old month.
    let old_month = visit.scheduled_date.get(..7).unwrap_or_default().to_string();
    let new_month = day.format("%Y-%m").to_string();
    let moves = visit.appointment_type == "regular" && old_month != new_month && visit.status != "cancelled";
    if moves {
        claim_place(&state, &visit.patient.id, day, context.monthly_quota, &visit.id).await?;
    }
    let cmd = VisitCommand::Reschedule {
        date: day,
        time: at,
        context,
    };
    let result = transition(&state, &p, &meta, &id, cmd, "RescheduleVisit").await;
    if moves {
        let month = if result.is_ok() { &old_month } else { &new_month };
        let prefix = format!("{}:{month}:", visit.patient.id);
        state.store.release_all(QUOTA_SCOPE, &visit.id, &prefix).await?;
    }
    result
}

#[utoipa::path(post, path = "/api/v1/appointments/{id}/complete", tag = "visits", security(("bearer" = [])),
    params(("id" = String, Path, description = "visit id"), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, description = "expected version")),
    responses((status = 200, body = crate::api::Envelope<VisitTransitioned>),
        (status = 404, description = "no such visit, or not the recorder's", body = crate::api::ErrorBody),
        (status = 409, description = "no health record yet, illegal transition, or If-Match is stale", body = crate::api::ErrorBody)))]
pub async fn complete(state: web::Data<AppState>, p: Principal, meta: RequestMeta, id: web::Path<String>) -> ApiResult {
    transition(
        &state,
        &p,
        &meta,
        &id,
        VisitCommand::Complete { record: None },
        "CompleteVisit",
    )
    .await
}

/// Visit lists show patients' names and addresses: each patient on them is a
/// read of patient data.
async fn log_patients<'a>(
    state: &AppState,
    p: &Principal,
    req: &HttpRequest,
    visits: impl IntoIterator<Item = &'a VisitView>,
) -> Result<(), ApiError> {
    let mut patients: Vec<&str> = visits.into_iter().map(|v| v.patient.id.as_str()).collect();
    patients.sort_unstable();
    patients.dedup();
    state.access.patients(p, req, patients).await
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
    fn route(&self) -> Result<Option<Option<GeoPoint>>, ApiError> {
        match self.order.as_deref() {
            None | Some("") | Some("time") => return Ok(None),
            Some("route") => {}
            Some(_) => return Err(ApiError::field("order", "应为route或time")),
        }
        match (self.start_lat, self.start_lng) {
            (None, None) => Ok(Some(None)),
            (Some(lat), Some(lng)) => GeoPoint::parse(lat, lng)
                .map(|g| Some(Some(g)))
                .map_err(|bad| ApiError::field(&format!("start_{bad}"), "坐标超出范围")),
            (None, Some(_)) => Err(ApiError::field("start_lat", "start_lat与start_lng须同时提供")),
            (Some(_), None) => Err(ApiError::field("start_lng", "start_lat与start_lng须同时提供")),
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
pub async fn today(state: web::Data<AppState>, p: Principal, req: HttpRequest, q: web::Query<TodayQuery>) -> ApiResult {
    p.require(&[Role::Recorder])?;
    let answer = match q.route()? {
        None => TodayAnswer::ByTime(app::day::today(&state, &p).await?),
        Some(start) => TodayAnswer::Route(app::day::today_route(&state, &p, start).await?),
    };
    let visits: Vec<&VisitView> = match &answer {
        TodayAnswer::ByTime(v) => v.iter().collect(),
        TodayAnswer::Route(r) => r.appointments.iter().map(|a| &a.visit).collect(),
    };
    log_patients(&state, &p, &req, visits).await?;
    Ok(ok(answer))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VisitListQuery {
    /// `YYYY-MM-DD`.
    pub date: Option<String>,
    /// scheduled | confirmed | completed | cancelled
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
    req: HttpRequest,
    q: web::Query<VisitListQuery>,
) -> ApiResult {
    p.require(&[Role::Recorder, Role::Admin])?;
    let page = PageQuery {
        page: q.page,
        limit: q.limit,
    }
    .params()?;
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
    let filter = VisitFilter {
        recorder: recorder_scope(&p),
        today: state.today(),
        patient: q.patient_id.clone().filter(|s| !s.is_empty()),
        date: day,
        status: status.map(|s| s.as_str().to_string()),
    };
    let visits = state.read.visits(&filter, page).await?;
    log_patients(&state, &p, &req, &visits.items).await?;
    Ok(ok(VisitList::from(visits)))
}

#[utoipa::path(get, path = "/api/v1/appointments/{id}", tag = "visits", security(("bearer" = [])),
    params(("id" = String, Path, description = "visit id")),
    responses((status = 200, description = "the visit with its history", body = crate::api::Envelope<VisitView>, headers(("ETag" = String, description = "the version, quoted"))),
        (status = 404, description = "no such visit, or not the recorder's", body = crate::api::ErrorBody)))]
pub async fn get(state: web::Data<AppState>, p: Principal, req: HttpRequest, id: web::Path<String>) -> ApiResult {
    let visit = own_visit(&state, &p, &id).await?;
    state.access.patients(&p, &req, [&visit.patient.id]).await?;
    let version = visit.version;
    Ok(ok_versioned(visit, version))
}
